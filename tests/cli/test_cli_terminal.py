"""The terminal text of ``reirrad assess`` and ``reirrad accumulate``: one screen, verdicts first.

The bundled case (Marinova et al., Med Clin Res 2026) must fit in 45 lines of at most 100
characters, list the case report's exceeded limits under EXCEEDED with values computed here
from the report's published doses, the carotid Dmax under NOT EVALUABLE, and fill the
cumulative EQD2 column of the table. Numbers are checked against the published doses
(Table 1) and the linear-quadratic formula, never against the program's own output.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from reirrad.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAIN = str(EXAMPLES / "npc-reirradiation-2026.yaml")
GROUPS = ("EXCEEDED", "NEAR THE LIMIT", "NOT EVALUABLE", "MET")

# Published per-course mean doses (Gy; case report, Table 1) and the case report's limits on
# the cumulative Dmean (Discussion): structure -> (IMRT Dmean, HFRS Dmean, limit).
EXCEEDED = {
    "Right submandibular gland": (63.7, 4.47, 26.0),
    "Levator and tensor veli palatini / pharyngeal constrictor muscles": (68.9, 26.9, 55.0),
    "Nasopharyngeal and pharyngeal mucosa": (68.9, 26.7, 30.0),
}
# Table 1 totals (method none: physical dose as EQD2, 50 % of the IMRT dose recovered).
TABLE1_TOTALS = {
    "Right submandibular gland": 36.32,
    "Levator and tensor veli palatini / pharyngeal constrictor muscles": 61.35,
    "Nasopharyngeal and pharyngeal mucosa": 61.15,
}


def _eqd2(dose: float, fractions: int, alpha_beta: float) -> float:
    """EQD2 = D (d + a/b) / (2 + a/b) with d = D / n (Withers 1983; Bentzen 2012)."""
    return dose * (dose / fractions + alpha_beta) / (2.0 + alpha_beta)


def _text(capsys, *args) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _sections(out: str) -> dict[str, list[str]]:
    """The lines under each verdict heading (up to the next heading or blank line)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        head = next((g for g in GROUPS if line.startswith(g)), None)
        if head is not None:
            current = head
            found[head] = [line]
        elif not line.strip() or not line.startswith(" "):
            current = None
        elif current is not None:
            found[current].append(line)
    return {k: [" ".join(" ".join(v).split())] for k, v in found.items()}


@pytest.fixture(scope="module")
def npc_text() -> str:
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["assess", MAIN]) == 0
    return buffer.getvalue()


def test_fits_one_screen(npc_text):
    lines = npc_text.splitlines()
    assert len(lines) <= 45, len(lines)
    assert max(len(line) for line in lines) <= 100
    assert "\x1b" not in npc_text  # plain text in a pipe: no colour codes


def test_verdicts_come_first_in_order(npc_text):
    lines = npc_text.splitlines()
    heads = [next(i for i, line in enumerate(lines) if line.startswith(g)) for g in GROUPS]
    assert heads == sorted(heads)
    table = next(i for i, line in enumerate(lines) if line.startswith("structure "))
    assert max(heads) < table
    assert heads[0] <= 4  # right after the case and its two courses


def test_exceeded_limits_of_the_case_report(npc_text):
    exceeded = _sections(npc_text)["EXCEEDED"][0]
    assert "cumulative EQD2" in exceeded and "after recovery" in exceeded
    for name, (imrt, hfrs, limit) in EXCEEDED.items():
        # 'structure' method: each mean converted with its own dose per fraction, a/b 3 Gy;
        # the case report's 50 % recovery of the IMRT course after its interval
        value = 0.5 * _eqd2(imrt, 33, 3.0) + _eqd2(hfrs, 4, 3.0)
        assert value > limit
        assert f"{name} Dmean {value:.2f} Gy, limit < {limit:g}" in exceeded, name
    assert exceeded.startswith("EXCEEDED (3;")


def test_exceeded_with_the_published_table1_totals(capsys):
    exceeded = _sections(_text(capsys, "assess", MAIN, "--method", "none"))["EXCEEDED"][0]
    for name, total in TABLE1_TOTALS.items():
        assert f"{name} Dmean {total:.2f} Gy" in exceeded, name


def test_carotid_dmax_is_not_evaluable(npc_text):
    section = _sections(npc_text)
    assert "Right internal carotid artery Dmax < 119 Gy" in section["NOT EVALUABLE"][0]
    assert "given for course HFRS only" in section["NOT EVALUABLE"][0]
    assert "carotid artery Dmax" not in section["EXCEEDED"][0] + section["MET"][0]


def test_near_the_limit_is_defined_by_the_sensitivity_scenarios(npc_text):
    near = _sections(npc_text)["NEAR THE LIMIT"][0]
    # parotid: 16.04 Gy after recovery, without recovery the sum of both courses' EQD2
    without = _eqd2(29.9, 33, 3.0) + _eqd2(5.1, 4, 3.0)
    assert without > 26 > 0.5 * _eqd2(29.9, 33, 3.0) + _eqd2(5.1, 4, 3.0)
    assert "Right parotid gland Dmean" in near and f"{without:.2f} Gy in the scenarios" in near
    mark = re.search(r"NEAR THE LIMIT (\[\d+\])", npc_text).group(1)
    definition = next(line for line in npc_text.splitlines() if line.startswith(mark))
    assert "not in all scenarios" in definition and "recovery x 0/0.5/1" in definition


def test_cumulative_eqd2_column_is_filled(npc_text):
    lines = npc_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("structure ")) + 1
    rows = []
    for line in lines[start:]:
        if not re.search(r"\d+\.\d\d\s+\S+$", line):
            break
        rows.append(line)
    assert len(rows) == 7
    assert all(" Dmean " in row for row in rows)  # a long name is cut, never the statistic
    for row in rows:
        # ... cumulative EQD2, EQD2 without recovery, BED, verdict
        eqd2, no_recovery, bed = (float(x) for x in row.split()[-4:-1])
        assert 0 < eqd2 <= no_recovery and bed > 0
    mucosa = next(r for r in rows if r.startswith("Nasopharyngeal"))
    imrt, hfrs, _ = EXCEEDED["Nasopharyngeal and pharyngeal mucosa"]
    expected = 0.5 * _eqd2(imrt, 33, 3.0) + _eqd2(hfrs, 4, 3.0)
    assert float(mucosa.split()[-4]) == pytest.approx(expected, abs=0.006)
    assert float(mucosa.split()[-3]) == pytest.approx(
        _eqd2(imrt, 33, 3.0) + _eqd2(hfrs, 4, 3.0), abs=0.006
    )


def test_notes_and_sources_said_once(npc_text):
    assert npc_text.count("EQD2 of a mean dose") == 1
    assert npc_text.count("Hypofractionated Radiosurgery Re-irradiation") == 1
    assert npc_text.count("Warning: Dmax given for course HFRS only") == 1
    assert "note: approximate" not in npc_text  # the old per-structure repetition


def test_csv_and_markdown_fill_the_cumulative_eqd2(capsys):
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(_text(capsys, "assess", MAIN, "--format", "csv"))))
    cumulative = [r for r in rows if r["course"] == "cumulative"]
    assert cumulative and all(r["eqd2_gy"] for r in cumulative)
    mucosa = next(r for r in cumulative if r["structure"].startswith("Nasopharyngeal"))
    imrt, hfrs, _ = EXCEEDED["Nasopharyngeal and pharyngeal mucosa"]
    assert float(mucosa["eqd2_gy"]) == pytest.approx(
        0.5 * _eqd2(imrt, 33, 3.0) + _eqd2(hfrs, 4, 3.0), abs=1e-3
    )
    markdown = _text(capsys, "assess", MAIN, "--format", "markdown")
    assert markdown.index("## Verdicts") < markdown.index("| Structure")
    assert "embring2021-carotid-cumulative-dmax" in markdown.split("**MET**")[0]


@pytest.fixture
def short_interval_phantom(phantom_case_3, copy_case) -> Path:
    """The 3-course phantom with course C2 moved to 81 days before C3: outside the 6-97
    months the nieder-step recovery model's source supports (Doi et al. 2021)."""
    path = copy_case(phantom_case_3)
    data = yaml.safe_load(path.read_text())
    data["courses"][1]["start"], data["courses"][1]["end"] = "2023-06-01", "2023-06-12"
    path.write_text(yaml.safe_dump(data))
    return path


def test_all_dicom_assess_is_verdicts_first_and_warns_once(capsys, short_interval_phantom):
    out = _text(capsys, "assess", str(short_interval_phantom))
    lines = out.splitlines()
    assert lines[0].startswith("Voxel-wise cumulative EQD2")
    assert max(len(line) for line in lines) <= 100
    heads = [next(i for i, line in enumerate(lines) if line.startswith(g)) for g in GROUPS]
    table = next(i for i, line in enumerate(lines) if line.startswith("structure "))
    assert heads == sorted(heads) and max(heads) < table
    assert out.count("applied at an interval of 81 days") == 1
    # Nieder 2006's cord limits are validated for intervals of 6 months or more only: reported
    # as exceeded, with the reason in a footnote
    exceeded = _sections(out)["EXCEEDED"][0]
    assert "SpinalCanal Dmax" in exceeded and "(see [" in exceeded
    assert "limit not validated for intervals" in out
    assert len(lines) < 100  # was 243 lines before the compact layout


def test_accumulate_text_is_verdicts_first(capsys, phantom_case_3):
    out = _text(capsys, "accumulate", str(phantom_case_3))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    heads = [next(i for i, line in enumerate(lines) if line.startswith(g)) for g in GROUPS]
    table = next(i for i, line in enumerate(lines) if line.startswith("structure "))
    assert heads == sorted(heads) and max(heads) < table
    assert "Assumptions:" in out and "tissue model on the reference grid" in out
    assert "mapped by reg" in out and "recovery over 2700 days" in out
    assert "SpinalCanal Dmax" in _sections(out)["MET"][0]


def test_lq_with_overall_time_names_the_repopulation_model(capsys):
    args = ["lq", "--alpha-beta", "10", "--dose", "70", "--fractions", "35"]
    out = _text(capsys, *args, "--overall-time", "46")
    assert "(LQ)" not in out and "LQ with repopulation" in out and "Tk 19.2 d" in out
    assert "Pedicini P et al., Clin Transl Oncol 2015;17(6):469-476" in out
    # Pedicini 2015: BED loss = Dprolif (T - Tk) (1 + 2/(a/b)) after the kick-off time
    bed = 70 * (1 + 2 / 10) - 0.69 * (46 - 19.2) * (1 + 2 / 10)
    assert f"BED {bed:.2f} Gy" in out
    assert "(LQ)" in _text(capsys, *args)
