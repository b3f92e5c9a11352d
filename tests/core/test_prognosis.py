"""Li et al. 2018 prognostic index and AJCC/UICC 9th version NPC stage groups.

Expected values: the case report (Marinova et al. 2026: index 224.8, low risk; cT4 cN1 M0
stage III), the hazard ratios of the Li 2018 abstract (index terms are 100 ln HR, exact),
and the 9th-version grouping table as documented in reirrad.core.prognosis.
"""

from __future__ import annotations

import json
import math

import pytest

from reirrad.cli import main
from reirrad.core.prognosis import (
    LI2018_CUTOFF,
    li2018_index,
    normalize_rt_category,
    stage_group_ajcc9_npc,
)
from reirrad.errors import InputError


def test_li2018_case_report_value():
    # Marinova et al. 2026: "our patient appears to be at low risk with a score of 224.8".
    result = li2018_index(
        rgtv_ml=27,
        age_years=66,
        reirradiation_eqd2_gy=29.6,
        prior_grade3_toxicity=False,
        rt_category="rT3-4",
    )
    assert result.index == pytest.approx(224.8, abs=0.1)
    assert result.group == "low"
    assert "reconstructed" in result.note.lower()
    assert result.assumptions == ()


def test_li2018_each_term_is_100_ln_hr():
    base = li2018_index(0, 0, 0, False, "rT1")
    assert base.index == 0.0
    assert li2018_index(0, 0, 68, False, "rT1").index == pytest.approx(100 * math.log(1.42))
    assert li2018_index(0, 0, 67.99, False, "rT1").index == 0.0
    assert li2018_index(0, 0, 0, True, "rT1").index == pytest.approx(100 * math.log(1.90))
    assert li2018_index(0, 0, 0, False, "rT4").index == pytest.approx(100 * math.log(1.96))
    assert li2018_index(10, 0, 0, False, "rT2").index == pytest.approx(1000 * math.log(1.01))
    assert li2018_index(0, 10, 0, False, "rT2").index == pytest.approx(1000 * math.log(1.02))


def test_li2018_cutoff_boundary_is_high():
    # Age chosen so that the index is exactly the cut-off: 100*ln(1.02)*age = 252.
    age = LI2018_CUTOFF / (100 * math.log(1.02))
    at_cutoff = li2018_index(0, age, 0, False, "rT1")
    assert at_cutoff.index == pytest.approx(LI2018_CUTOFF)
    assert li2018_index(0, age * 1.0001, 0, False, "rT1").group == "high"
    assert li2018_index(0, age * 0.9999, 0, False, "rT1").group == "low"


def test_li2018_unknown_eqd2_records_assumption():
    result = li2018_index(27, 66, None, False, "rT3-4")
    assert result.index == pytest.approx(224.86, abs=0.01)
    assert len(result.assumptions) == 1
    alternative = 224.8577 + 100 * math.log(1.42)
    assert f"{alternative:.1f}" in result.assumptions[0]
    assert "high risk" in result.assumptions[0]


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("rT1", "rT1-2"),
        ("rt2", "rT1-2"),
        ("T2", "rT1-2"),
        ("rT1-2", "rT1-2"),
        ("rT3", "rT3-4"),
        ("RT4", "rT3-4"),
        ("rT3-4", "rT3-4"),
        (" rT 4 ", "rT3-4"),
    ],
)
def test_rt_category_accepted(text, group):
    assert normalize_rt_category(text) == group


@pytest.mark.parametrize("text", ["rT0", "rT5", "rT2-3", "rT4a", "", "III"])
def test_rt_category_rejected(text):
    with pytest.raises(InputError):
        normalize_rt_category(text)


@pytest.mark.parametrize(
    "bad", [{"rgtv_ml": -1}, {"age_years": float("nan")}, {"reirradiation_eqd2_gy": -5}]
)
def test_li2018_rejects_bad_numbers(bad):
    args = {
        "rgtv_ml": 27,
        "age_years": 66,
        "reirradiation_eqd2_gy": 29.6,
        "prior_grade3_toxicity": False,
        "rt_category": "rT3",
    }
    args.update(bad)
    with pytest.raises(InputError):
        li2018_index(**args)


# --- AJCC/UICC 9th version, every cell of the grouping table ------------------------------

GRID_M0 = {
    # N0     N1     N2    N3
    "T1": ("IA", "IB", "II", "III"),
    "T2": ("IA", "IB", "II", "III"),
    "T3": ("II", "II", "II", "III"),
    "T4": ("III", "III", "III", "III"),
}


@pytest.mark.parametrize("t", sorted(GRID_M0))
@pytest.mark.parametrize("n_index", range(4))
def test_stage_grid_m0(t, n_index):
    assert stage_group_ajcc9_npc(t, f"N{n_index}", "M0") == GRID_M0[t][n_index]


@pytest.mark.parametrize("t", sorted(GRID_M0))
@pytest.mark.parametrize("n", ["N0", "N1", "N2", "N3"])
def test_stage_metastatic(t, n):
    assert stage_group_ajcc9_npc(t, n, "M1a") == "IVA"
    assert stage_group_ajcc9_npc(t, n, "M1b") == "IVB"


def test_stage_case_report():
    # The report stages the patient cT4cN1M0 by the 9th version; T4N1M0 is stage III.
    assert stage_group_ajcc9_npc("cT4", "cN1", "M0") == "III"
    assert stage_group_ajcc9_npc("t4", "n1", "m0") == "III"


@pytest.mark.parametrize(
    ("t", "n", "m"),
    [
        ("T0", "N1", "M0"),
        ("Tis", "N0", "M0"),
        ("TX", "N0", "M0"),
        ("T5", "N0", "M0"),
        ("T1", "NX", "M0"),
        ("T1", "N3b", "M0"),
        ("T1", "N0", "M1"),
        ("T1", "N0", "MX"),
        ("T1", "N0", "M1c"),
    ],
)
def test_stage_rejects_unverified_categories(t, n, m):
    with pytest.raises(InputError):
        stage_group_ajcc9_npc(t, n, m)


def test_m1_error_explains_subclassification():
    with pytest.raises(InputError, match="M1a"):
        stage_group_ajcc9_npc("T1", "N0", "M1")


# --- CLI ----------------------------------------------------------------------------------


def test_cli_li2018_json(capsys):
    code = main(
        [
            "li2018",
            "--rgtv",
            "27",
            "--age",
            "66",
            "--rt",
            "rT3-4",
            "--reirradiation-eqd2",
            "29.6",
            "--format",
            "json",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["index"] == pytest.approx(224.8, abs=0.1)
    assert payload["group"] == "low"
    assert set(payload) >= {"index", "group", "covariates", "note"}
    assert payload["covariates"]["rt3_4"] == 1.0


def test_cli_li2018_table_with_toxicity(capsys):
    code = main(
        [
            "li2018",
            "--rgtv",
            "27",
            "--age",
            "66",
            "--rt",
            "rT3",
            "--prior-g3-toxicity",
            "--reirradiation-eqd2",
            "70",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    expected = 224.8577 + 100 * math.log(1.90) + 100 * math.log(1.42)
    assert f"{expected:.1f}" in out
    assert "high risk" in out


def test_cli_stage(capsys):
    assert main(["stage", "--t", "T4", "--n", "N1", "--m", "M0"]) == 0
    assert "stage III" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["li2018", "--rgtv", "27", "--age", "66", "--rt", "rT5"],
        ["li2018", "--rgtv", "-1", "--age", "66", "--rt", "rT3"],
        ["li2018", "--rgtv", "27", "--age", "66", "--rt", "rT3", "--format", "xml"],
        ["stage", "--t", "T4", "--n", "N1", "--m", "M1"],
        ["stage", "--t", "T9", "--n", "N1"],
    ],
)
def test_cli_bad_input_exit_2_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("reirrad: error: ")
    assert "\n" not in err
