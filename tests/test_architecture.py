"""The layering the README promises, checked on the source.

Layers, lowest first: ``core`` (pure computation), ``io`` (adapters), ``pipelines``
(orchestration), ``present`` (text, JSON, report, figures), ``web`` (the clinic service, a
top layer like the CLI: nothing below imports it, and only ``reirrad serve`` in the CLI
starts it), ``cli``. A module imports only
from its own layer or lower ones (``reirrad.errors`` is shared by all), imports made inside
functions included, and the package has no import cycle between modules.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "reirrad"
LAYERS = ("core", "io", "pipelines", "present", "web", "cli")
#: Third-party modules the pure core must not touch (files, formats, UI).
CORE_FORBIDDEN = ("pydicom", "yaml", "matplotlib", "pandas", "typer", "rich", "jinja2")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, top-level or inside functions (absolute names)."""
    tree = ast.parse(path.read_text())
    package = (
        _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    )
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from reirrad.present import render` imports the submodule, not the package's
            # own code; `from reirrad.core.dvh import DVH` imports the module
            submodules = {f"{module}.{alias.name}" for alias in node.names}
            submodules &= set(MODULES)
            found.update(submodules or {module})
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[0] == "reirrad" and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def test_every_module_is_in_a_layer():
    top = {name for name in MODULES if _layer(name) is None}
    assert top == {"reirrad", "reirrad.errors"}, top


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_downward_only(name):
    own = _layer(name)
    if own is None:
        return  # the package root re-exports lazily; errors imports nothing of reirrad
    upward = sorted(
        target
        for target in _imports(MODULES[name])
        if (layer := _layer(target)) is not None and layer > own
    )
    assert not upward, f"{name} imports a higher layer: {upward}"


def test_only_serve_imports_the_web_layer():
    """The CLI is not built on the web application: one command starts it, nothing else."""
    web = LAYERS.index("web")
    importers = sorted(
        name
        for name, path in MODULES.items()
        if _layer(name) != web and any(_layer(t) == web for t in _imports(path))
    )
    assert importers in ([], ["reirrad.cli.serve"]), importers


def test_web_layer_holds_no_dose_logic():
    """The web layer calls the library for every dose: it imports no radiobiology itself."""
    offenders = sorted(
        f"{name}: {target}"
        for name, path in MODULES.items()
        if _layer(name) == LAYERS.index("web")
        for target in _imports(path)
        if target.startswith(("reirrad.core.radiobiology", "reirrad.core.accumulate"))
        or target.split(".")[0] in ("numpy", "scipy", "SimpleITK")
    )
    assert not offenders, offenders


def test_core_is_pure():
    offenders = sorted(
        f"{name}: {target}"
        for name, path in MODULES.items()
        if _layer(name) == 0
        for target in _imports(path)
        if target.split(".")[0] in CORE_FORBIDDEN
    )
    assert not offenders, offenders


def test_no_import_cycles():
    graph = {
        name: {t for t in _imports(path) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    # the package root only re-exports; a module importing `reirrad` itself is not a cycle
    graph["reirrad"] = set()
    for name in graph:
        graph[name].discard("reirrad")
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_import_reirrad_stays_light():
    code = (
        "import sys, reirrad; heavy = ('pandas', 'matplotlib', 'SimpleITK', 'pydicom'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout


def test_typed_package():
    assert (PACKAGE / "py.typed").exists()


def test_every_public_name_resolves():
    import reirrad

    missing = [name for name in reirrad.__all__ if not hasattr(reirrad, name)]
    assert not missing, missing
