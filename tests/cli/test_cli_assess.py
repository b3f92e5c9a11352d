"""`reirrad assess` and `reirrad lq` from the command line, all output formats."""

import csv
import io
import json
from pathlib import Path

import pytest

from reirrad.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAIN = str(EXAMPLES / "npc-reirradiation-2026.yaml")


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_document(capsys):
    code, out, _ = run(capsys, "assess", MAIN, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [c["id"] for c in doc["courses"]] == ["IMRT", "HFRS"]
    assert {c["fractions"] for c in doc["courses"]} == {33, 4}
    assert doc["courses"][0]["start"] == "2023-12-13" and doc["courses"][1]["end"] == "2025-05-30"
    row = next(r for r in doc["results"] if r["structure"] == "Recurrence")
    assert set(row) >= {
        "structure",
        "role",
        "statistic",
        "alpha_beta",
        "method",
        "courses",
        "cumulative",
        "constraints",
    }
    assert set(row["courses"][0]) >= {
        "course",
        "physical_gy",
        "eqd2_gy",
        "bed_gy",
        "recovered_fraction",
        "effective_eqd2_gy",
    }
    assert set(row["cumulative"]) >= {"physical_gy", "eqd2_gy", "eqd2_no_recovery_gy", "bed_gy"}
    assert row["courses"][1]["bed_gy"] == pytest.approx(33.6)
    parotid = next(r for r in doc["results"] if r["structure"] == "Right parotid gland")
    limit = parotid["constraints"][0]
    assert set(limit) >= {"limit", "value", "status", "margin", "source"}
    assert limit["status"] in ("pass", "fail")
    assert limit["margin"] == pytest.approx(26 - limit["value"], abs=1e-3)
    li = doc["prognosis"]["li2018"]
    assert li["index"] == pytest.approx(224.8, abs=0.1) and li["group"] == "low"
    assert doc["prognosis"]["stage"]["group"] == "III"
    assert any("method 'structure'" in a for a in doc["assumptions"])


def test_method_table1_per_course(capsys):
    code, out, _ = run(
        capsys, "assess", MAIN, "--method", "IMRT=none", "--method", "HFRS=none", "--format", "json"
    )
    assert code == 0
    doc = json.loads(out)
    parotid = next(r for r in doc["results"] if r["structure"] == "Right parotid gland")
    assert parotid["method"] == "none"
    assert parotid["cumulative"]["eqd2_gy"] == pytest.approx(20.05)


def test_csv_and_markdown(capsys):
    code, out, _ = run(capsys, "assess", MAIN, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    cumulative = [r for r in rows if r["structure"] == "Recurrence" and r["course"] == "cumulative"]
    assert float(cumulative[0]["bed_gy"]) == pytest.approx(73.55, abs=0.01)
    code, out, _ = run(capsys, "assess", MAIN, "--format", "markdown")
    assert code == 0 and "| Structure" in out and "Li 2018" in out


def test_text_output_names_methods_and_assumptions(capsys):
    code, out, _ = run(capsys, "assess", MAIN)
    assert code == 0
    assert "method structure" in out and "Assumptions:" in out and "Li 2018 prognostic index" in out
    assert "method 'structure' for every course" in out
    # the tissue parameters and the recovery model with its source stay in the output
    assert "recovery marinova2026-fixed-50 (50 % recovered)" in out and "a/b" in out
    assert "Med Clin Res 2026;11(3):1-12" in out


def test_lq_calculator(capsys):
    code, out, _ = run(
        capsys, "lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "15", "--format", "json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["bed_gy"] == pytest.approx(33.6)
    assert doc["eqd2_gy"] == pytest.approx(24 * (6 + 15) / 17)
    # Inverse: the 4-fraction dose that spends an EQD2 budget of 40 Gy at alpha/beta 3.
    code, out, _ = run(
        capsys, "lq", "--eqd2", "40", "--fractions", "4", "--alpha-beta", "3", "--format", "json"
    )
    doc = json.loads(out)
    d = doc["dose_per_fraction_gy"]
    assert 4 * d * (1 + d / 3) / (1 + 2 / 3) == pytest.approx(40, abs=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["lq", "--dose", "24", "--fractions", "0", "--alpha-beta", "15"], "fractions"),
        (["lq", "--dose", "24", "--fractions", "4", "--alpha-beta", "-1"], "--alpha-beta"),
        (["lq", "--fractions", "4", "--alpha-beta", "3"], "exactly one of"),
    ],
)
def test_lq_bad_input(capsys, args, message):
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_python_api_gives_the_cli_numbers(capsys):
    import reirrad
    from reirrad.present.render import assessment_to_dict

    code, out, _ = run(capsys, "assess", MAIN, "--format", "json")
    assert code == 0
    assert assessment_to_dict(reirrad.assess_case(MAIN)) == json.loads(out)
