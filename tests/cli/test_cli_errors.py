"""Bad options and usage errors: one stderr line ``reirrad: error: ...``, exit 2, no box.

Typer/click usage errors (bad option values, missing arguments, unknown options) take the
same path as :class:`reirrad.errors.InputError`; option values must be finite and plausible.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reirrad.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAIN = str(EXAMPLES / "npc-reirradiation-2026.yaml")
BOX = ("╭", "│", "╰", "─")


def _one_line(capsys, args: list[str], *fragments: str) -> str:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, (args, err)
    assert err.startswith("reirrad: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and not any(mark in err for mark in BOX), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


LQ = ["lq", "--alpha-beta", "3", "--dose", "24", "--fractions", "4"]

USAGE_ERRORS = [
    (
        ["lq", "--alpha-beta", "3", "--dose", "2", "--fractions", "abc"],
        ["reirrad lq", "--fractions"],
    ),
    (["lq", "--alpha-beta", "3", "--dose", "2"], ["Missing option", "--fractions"]),
    (["assess"], ["reirrad assess", "Missing argument"]),
    (["assess", MAIN, "--bogus"], ["No such option", "--bogus"]),
    (["assess", MAIN, "--format", "pdf"], ["--format", "pdf"]),
    (["nocommand"], ["No such command"]),
]


@pytest.mark.parametrize("args, fragments", USAGE_ERRORS)
def test_usage_errors_are_one_line(capsys, args, fragments):
    _one_line(capsys, args, *fragments)


LQ_ERRORS = [
    (["lq", "--alpha-beta", "3", "--dose", "2", "--fractions", "1e-300"], ["--fractions"]),
    (["lq", "--alpha-beta", "3", "--dose", "2", "--fractions", "nan"], ["--fractions", "finite"]),
    (["lq", "--alpha-beta", "3", "--dose", "2", "--fractions", "1000"], ["--fractions", "100"]),
    (["lq", "--alpha-beta", "3", "--dose", "2", "--fractions", "2.5"], ["whole number"]),
    ([*LQ, "--overall-time", "1e308"], ["--overall-time"]),
    ([*LQ, "--overall-time", "-1"], ["--overall-time", ">= 0"]),
    ([*LQ, "--overall-time", "0"], ["--overall-time", "more than 3 a day"]),
    ([*LQ, "--lql-dt", "0"], ["--lql-dt", "> 0"]),
    ([*LQ, "--lql-dt", "inf"], ["--lql-dt", "finite"]),
    (["lq", "--alpha-beta", "3", "--dose", "5000", "--fractions", "4"], ["--dose", "200"]),
    (["lq", "--alpha-beta", "3", "--eqd2", "1e6", "--fractions", "4"], ["--eqd2", "200 Gy"]),
    (["lq", "--alpha-beta", "inf", "--dose", "2", "--fractions", "1"], ["--alpha-beta"]),
]


@pytest.mark.parametrize("args, fragments", LQ_ERRORS)
def test_lq_options_must_be_finite_and_plausible(capsys, args, fragments):
    _one_line(capsys, args, *fragments)


def test_lq_negative_bed_from_repopulation_is_refused(capsys):
    # 70 Gy / 35 fx at a/b 10: BED 84 Gy; Pedicini 2015: 0.69 Gy/day EQD2 after 19.2 days,
    # BED loss 0.69 (300 - 19.2) (1 + 2/10) = 232.5 Gy > 84 Gy.
    args = ["lq", "--alpha-beta", "10", "--dose", "70", "--fractions", "35"]
    _one_line(capsys, [*args, "--overall-time", "300"], "repopulation", "--overall-time")


def test_lq_lql_transition_is_used_when_given(capsys):
    """--lql-dt 2 with 6 Gy fractions: LQ-L (Astrahan 2008) BED, not the LQ one."""
    import json

    assert main([*LQ, "--lql-dt", "2", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # Astrahan: above dt, BED per fraction = dt (1 + dt/ab) + (d - dt)(1 + 2 dt/ab)
    per_fraction = 2 * (1 + 2 / 3) + (6 - 2) * (1 + 2 * 2 / 3)
    assert doc["bed_gy"] == pytest.approx(4 * per_fraction)
    assert doc["model"].startswith("LQ-L")


def test_assess_method_options(capsys):
    _one_line(
        capsys,
        ["assess", MAIN, "--method", "IMRT=none", "--method", "IMRT=structure"],
        "--method",
        "'IMRT' given twice",
    )
    _one_line(capsys, ["assess", MAIN, "--method", "=none"], "--method", "course id")
    _one_line(capsys, ["assess", MAIN, "--lql-dt", "0"], "--lql-dt")
    # the same course with the same method twice is not a conflict
    assert main(["assess", MAIN, "--method", "IMRT=none", "--method", "IMRT=none"]) == 0
    capsys.readouterr()


def test_accumulate_empty_reference_is_refused(capsys):
    _one_line(capsys, ["accumulate", MAIN, "--reference", ""], "--reference", "empty")
    _one_line(capsys, ["accumulate", MAIN, "--reference", "  "], "--reference")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("1-10000000000", "from 1 to 100"),
        ("0-5", "from 1 to 100"),
        ("10-1", "from 1 to 100"),
        ("1-5,3", "twice"),
        ("a-b", "not a list"),
        (",", "no fraction number"),
    ],
)
def test_explore_fraction_ranges_are_bounded(capsys, text, fragment):
    _one_line(capsys, ["explore", MAIN, "--fractions", text], "--fractions", fragment)


def test_plot_must_name_a_figure_file(tmp_path, capsys):
    _one_line(capsys, ["explore", MAIN, "--plot", str(tmp_path)], "--plot", "folder")
    _one_line(capsys, ["explore", MAIN, "--plot", f"{tmp_path}/new/"], "--plot")
    _one_line(capsys, ["explore", MAIN, "--plot", str(tmp_path / "fig")], "--plot", ".png")
    _one_line(
        capsys, ["explore", MAIN, "--plot", str(tmp_path / "no" / "fig.png")], "does not exist"
    )
    assert not list(tmp_path.iterdir())  # nothing written, no DIR.png beside it
    assert not (tmp_path.parent / f"{tmp_path.name}.png").exists()
    dvh = ["dvh", "--dose", "RD.dcm", "--structures", "RS.dcm", "--plot", f"{tmp_path}/"]
    _one_line(capsys, dvh, "--plot", "folder")


def test_li2018_refuses_infinite_values(capsys):
    _one_line(capsys, ["li2018", "--rgtv", "inf", "--age", "60", "--rt", "rT3"], "--rgtv", "finite")
