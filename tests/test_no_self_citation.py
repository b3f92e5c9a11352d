"""Every parameter and limit cites a publication, never this project or its planning.

Scans every packaged data file (everything in the installed package that is not Python
code: the constraint and NTCP sets, ``py.typed``, any file added later), the built-in
recovery models, and every output format of every command, on the bundled example and on a
phantom DICOM case: ``assess`` (table, JSON, CSV, Markdown), ``accumulate`` (table, JSON and
the exported RTDOSE, NRRD and summary), ``explore`` (table, JSON, CSV, SVG figure), ``dvh``
(table, CSV, JSON, figure), ``lq``, ``constraints``, ``li2018``, ``stage`` and the report HTML.
A phrase pointing at the project's own brief, issues, sessions or planning documents instead
of a publication fails the test.

The phantom is assessed once per module (the expensive part, a voxel-wise accumulation) and
every output of it is rendered from that one result exactly as the commands do.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import reirrad
from reirrad.cli import main
from reirrad.core.recovery import builtin_recovery_models

PACKAGE = Path(reirrad.__file__).resolve().parent
DATA = PACKAGE / "data"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "npc-reirradiation-2026.yaml"

#: Phrases that cite the project instead of a publication. ``reirrad <n>`` is the project's
#: own numbering of its planning documents (a version such as ``reirrad 0.1.0`` is not).
SELF_CITATION = re.compile(
    r"project brief|the brief\b|this project|issue #?\d|\bissues?/\d|\breirrad \d+\b(?!\.\d)|"
    r"planning document|developers'? (note|brief)|the CEO|helper[- ]preamble|notes/issue|"
    r"\bthe lead\b|filed by a session",
    re.IGNORECASE,
)


def _found(text: str) -> list[str]:
    return [m.group(0) for m in SELF_CITATION.finditer(text)]


def _file_text(path: Path) -> str:
    """Any file as text: binary files (RTDOSE, NRRD, PNG) decoded byte for byte, so their
    text elements (series description, header, metadata) are searched too."""
    return path.read_bytes().decode("latin-1")


def _package_files() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".py", ".pyc")
    )


def test_the_scan_sees_every_data_file():
    files = set(_package_files())
    assert {p for p in DATA.rglob("*") if p.is_file()} <= files
    assert PACKAGE / "py.typed" in files and len(files) >= 5


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_packaged_data_cite_publications(path):
    assert not _found(_file_text(path)), (path.name, _found(_file_text(path)))


def test_recovery_models_cite_publications():
    for name, model in builtin_recovery_models().items():
        text = (
            f"{model.describe()} {getattr(model, 'citation', '')} {getattr(model, 'evidence', '')}"
        )
        assert not _found(text), name


def test_the_pattern_catches_self_citations():
    for text in (
        "values taken from the project brief",
        "see issue #10",
        "as decided in reirrad 6: the report",
        "per the planning documents",
    ):
        assert _found(text), text
    assert not _found("reirrad 0.1.0, Fowler 1989; Nieder 2006 Int J Radiat Oncol Biol Phys")


def _run(outputs: dict[str, str], label: str, args: list[str]) -> None:
    """Run one command as the console does and keep what it printed."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main([str(a) for a in args])
    assert code == 0, (label, stderr.getvalue())
    outputs[label] = stdout.getvalue() + stderr.getvalue()


@pytest.fixture(scope="module")
def example_outputs(tmp_path_factory) -> dict[str, str]:
    """Every command's every format on the bundled example (and the calculators)."""
    tmp = tmp_path_factory.mktemp("example-outputs")
    out: dict[str, str] = {}
    for fmt in ("table", "json", "csv", "markdown"):
        _run(out, f"assess {fmt}", ["assess", EXAMPLE, "--format", fmt])
    for fmt in ("table", "json", "csv"):
        _run(out, f"explore {fmt}", ["explore", EXAMPLE, "--format", fmt])
    _run(out, "explore plot", ["explore", EXAMPLE, "--plot", tmp / "explore.svg"])
    out["explore svg"] = _file_text(tmp / "explore.svg")
    lq = ["lq", "--alpha-beta", "10", "--dose", "70", "--fractions", "35"]
    for fmt in ("table", "json"):
        _run(out, f"lq {fmt}", [*lq, "--format", fmt])
        _run(out, f"lq repopulation {fmt}", [*lq, "--overall-time", "46", "--format", fmt])
        _run(out, f"lq lql {fmt}", [*lq, "--lql-dt", "1", "--format", fmt])
        _run(out, f"constraints {fmt}", ["constraints", "list", "--format", fmt])
        li = ["li2018", "--rgtv", "20", "--age", "50", "--rt", "rT3", "--format", fmt]
        _run(out, f"li2018 {fmt}", li)
        _run(out, f"stage {fmt}", ["stage", "--t", "T4", "--n", "N1", "--format", fmt])
    _run(out, "report", ["report", EXAMPLE, "--out", tmp / "report.html"])
    out["report html"] = _file_text(tmp / "report.html")
    return out


@pytest.fixture(scope="module")
def phantom_outputs(tmp_path_factory, phantom_case_2) -> dict[str, str]:
    """The phantom assessed once; every assess/accumulate output rendered from that result
    as the commands render it, the exported files, and the commands that read DICOM."""
    from reirrad.present import render
    from reirrad.present.export import write_voxel_outputs

    tmp = tmp_path_factory.mktemp("phantom-outputs")
    result = reirrad.assess_case(phantom_case_2)
    out = {
        "assess table": render.to_text(result),
        "assess json": json.dumps(render.assessment_to_dict(result)),
        "assess csv": render.to_csv(result),
        "assess markdown": render.to_markdown(result),
        "accumulate table": render.voxel_to_text(result.voxel),
        "accumulate json": json.dumps(render.voxel_to_dict(result.voxel)),
    }
    for key, path in write_voxel_outputs(result.voxel, tmp / "accumulate").items():
        out[f"accumulate file {key}"] = _file_text(path)  # RTDOSE (comment), NRRD, summary
    course = phantom_case_2.parent / "course2"
    dvh = ["dvh", "--dose", course / "RD.dcm", "--structures", course / "RS.dcm"]
    for fmt in ("table", "csv", "json"):
        _run(out, f"dvh {fmt}", [*dvh, "--format", fmt])
    _run(out, "dvh plot", [*dvh, "--plot", tmp / "dvh.png"])
    out["dvh png"] = _file_text(tmp / "dvh.png")
    for fmt in ("table", "json", "csv"):
        _run(out, f"explore {fmt}", ["explore", phantom_case_2, "--format", fmt])
    _run(out, "report", ["report", phantom_case_2, "--out", tmp / "report.html"])
    out["report html"] = _file_text(tmp / "report.html")
    return out


def test_example_outputs_cite_publications(example_outputs):
    assert len(example_outputs) == 23
    found = {label: _found(text) for label, text in example_outputs.items() if _found(text)}
    assert not found, found


def test_phantom_outputs_cite_publications(phantom_outputs):
    assert any(label.startswith("accumulate file") for label in phantom_outputs)
    found = {label: _found(text) for label, text in phantom_outputs.items() if _found(text)}
    assert not found, found
