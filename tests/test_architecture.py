"""The layering the README promises: the core never imports the adapters or the interfaces."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "src" / "reirrad" / "core"
FORBIDDEN = ("reirrad.io", "reirrad.cli", "reirrad.api", "reirrad.render", "pydicom", "yaml")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_core_is_pure():
    offenders = {
        f"{path.name}: {name}"
        for path in CORE.glob("*.py")
        for name in _imports(path)
        if name.startswith(FORBIDDEN)
    }
    assert not offenders, offenders


def test_every_public_name_resolves():
    import reirrad

    missing = [name for name in reirrad.__all__ if not hasattr(reirrad, name)]
    assert not missing, missing
