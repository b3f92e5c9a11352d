"""Every parameter and limit cites a publication, never this project or its planning.

Scans the packaged data files, the built-in recovery models and the text/JSON/Markdown/CSV
outputs of the bundled example for wording that points at the project's own brief, issues or
planning documents instead of a publication.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reirrad.cli import main
from reirrad.core.recovery import builtin_recovery_models

DATA = Path(__file__).resolve().parents[1] / "src" / "reirrad" / "data"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "npc-reirradiation-2026.yaml"

#: Phrases that cite the project instead of a publication.
SELF_CITATION = re.compile(
    r"project brief|the brief|this project|issue #?\d|reirrad \d+\b|planning document|"
    r"developers'? (note|brief)|the CEO",
    re.IGNORECASE,
)


@pytest.mark.parametrize("path", sorted(DATA.rglob("*.yaml")), ids=lambda p: p.name)
def test_packaged_data_cite_publications(path):
    found = SELF_CITATION.findall(path.read_text())
    assert not found, (path.name, found)


def test_recovery_models_cite_publications():
    for name, model in builtin_recovery_models().items():
        text = (
            f"{model.describe()} {getattr(model, 'citation', '')} {getattr(model, 'evidence', '')}"
        )
        assert not SELF_CITATION.search(text), name


@pytest.mark.parametrize("output", ["table", "json", "markdown", "csv"])
def test_outputs_cite_publications(capsys, output):
    assert main(["assess", str(EXAMPLE), "--format", output]) == 0
    text = capsys.readouterr().out
    assert not SELF_CITATION.search(text), SELF_CITATION.findall(text)
