"""Every command's bad output path and bad --format: one line, exit 2, no traceback."""

from __future__ import annotations

import pytest

from reirrad.cli import main


def _one_line_refusal(capsys, args) -> str:
    assert main(args) == 2, args
    err = capsys.readouterr().err.strip()
    assert err.startswith("reirrad: error:") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "args",
    [
        ["assess", "{example}", "--format", "xml"],
        ["explore", "{example}", "--format", "xml"],
        ["constraints", "list", "--format", "xml"],
        ["accumulate", "{phantom}", "--format", "csv"],
        ["dvh", "--dose", "{dose}", "--structures", "{rtstruct}", "--format", "xml"],
    ],
)
def test_bad_format(capsys, examples, phantom_case_2, args):
    values = {
        "example": str(examples / "npc-reirradiation-2026.yaml"),
        "phantom": str(phantom_case_2),
        "dose": str(phantom_case_2.parent / "course2" / "RD.dcm"),
        "rtstruct": str(phantom_case_2.parent / "course2" / "RS.dcm"),
    }
    _one_line_refusal(capsys, [a.format(**values) for a in args])


def test_bad_output_paths(capsys, tmp_path, examples, phantom_case_2):
    afile = tmp_path / "afile"
    afile.write_text("x")
    example = str(examples / "npc-reirradiation-2026.yaml")
    dose = str(phantom_case_2.parent / "course2" / "RD.dcm")
    rtstruct = str(phantom_case_2.parent / "course2" / "RS.dcm")
    _one_line_refusal(capsys, ["phantom", str(afile)])
    _one_line_refusal(capsys, ["report", example, "--out", str(tmp_path / "r.txt")])
    _one_line_refusal(capsys, ["report", example, "--out", str(afile / "r.html")])
    _one_line_refusal(capsys, ["explore", example, "--plot", str(tmp_path / "x.bmp")])
    _one_line_refusal(
        capsys, ["dvh", "--dose", dose, "--structures", rtstruct, "--plot", str(tmp_path)]
    )
    _one_line_refusal(capsys, ["accumulate", str(phantom_case_2), "--out", str(afile)])
