"""Case files refuse rather than guess: strict YAML, strict numbers, plausible values.

Every refusal is one stderr line ``reirrad: error: FILE: FIELD: problem``, exit code 2, no
traceback. Accepted inputs are checked against numbers computed by hand from the LQ model
(EQD2 = D (d + a/b) / (2 + a/b); Fowler, Br J Radiol 1989;62:679-694).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from reirrad.cli import main
from reirrad.errors import InputError
from reirrad.io.casefile import MAX_FILE_BYTES, load_case

MAIN = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"
TEXT = MAIN.read_text()


def _refused(capsys, path: Path, *fragments: str) -> str:
    """The CLI refuses the case in one line naming the file and the fragments."""
    assert main(["assess", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reirrad: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert str(path) in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def _text_case(tmp_path: Path, old: str, new: str) -> Path:
    assert TEXT.count(old) == 1, old
    path = tmp_path / "case.yaml"
    path.write_text(TEXT.replace(old, new))
    return path


def _data_case(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(TEXT)
    mutate(data)
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- YAML: no YAML 1.1 guesses, no duplicate keys ----------------------------------------

YAML_CASES = [
    ("boolean fractions", "    fractions: 4\n", "    fractions: true\n", "courses[1].fractions"),
    ("octal fractions", "    fractions: 4\n", "    fractions: 04\n", "leading zeros"),
    ("exponent fractions", "    fractions: 4\n", "    fractions: 1e30\n", "valid integer"),
    ("sexagesimal", "    fractions: 4\n", "    fractions: 1:30\n", "courses[1].fractions"),
    (
        "boolean dose",
        "Right parotid gland: {Dmean: 29.9}",
        "Right parotid gland: {Dmean: true}",
        "Dmean",
    ),
    (
        "infinite dose",
        "Right parotid gland: {Dmean: 29.9}",
        "Right parotid gland: {Dmean: .inf}",
        "finite",
    ),
    (
        "yes is not a boolean",
        "prior_grade3_toxicity: false",
        "prior_grade3_toxicity: no",
        "recurrence.prior_grade3_toxicity",
    ),
    ("format version true", "reirrad_case: 1", "reirrad_case: true", "reirrad_case"),
]


@pytest.mark.parametrize("name, old, new, fragment", YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_yaml_1_1_spellings_are_refused(tmp_path, capsys, name, old, new, fragment):
    path = _text_case(tmp_path, old, new)
    _refused(capsys, path, fragment)


def test_duplicate_key_names_key_and_lines(tmp_path, capsys):
    path = _text_case(tmp_path, "    fractions: 4\n", "    fractions: 4\n    fractions: 5\n")
    line = TEXT[: TEXT.index("    fractions: 4\n")].count("\n") + 1
    _refused(capsys, path, "duplicate key 'fractions'", f"first at line {line}", f"line {line + 1}")


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    _refused(capsys, path, "nested more than")


def test_alias_bomb_is_refused(tmp_path, capsys):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(8):
        lines.append(f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]")
    path = tmp_path / "lol.yaml"
    path.write_text("\n".join(lines) + "\n")
    _refused(capsys, path, "expands to more than")


def test_large_file_directory_fifo_and_device_are_refused(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    _refused(capsys, big, "larger than")
    _refused(capsys, tmp_path, "is a directory")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    _refused(capsys, fifo, "not a regular file")
    _refused(capsys, Path("/dev/zero"), "not a regular file")


# --- numbers and plausibility -------------------------------------------------------------


def _dose(course: int, structure: str, **stats):
    return lambda d: d["courses"][course]["doses"].update({structure: stats})


def _set(path, value):
    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


PAROTID = "Right parotid gland"
DICOM = {"rtdose": ["c1/RD.dcm", "./c1/RD.dcm"], "rtstruct": "c1/RS.dcm"}

_RECOVERY = {"model": "fixed", "fraction": True, "citation": "local", "evidence": "opinion"}

PLAUSIBILITY_CASES = [
    (
        "recovery fraction true",
        _set(["tissue_defaults", "organ_at_risk", "recovery"], _RECOVERY),
        ["tissue_defaults.organ_at_risk.recovery", "recovery.fraction", "not a number"],
    ),
    (
        "recovery table point text",
        _set(
            ["tissue_defaults", "organ_at_risk", "recovery"],
            {"model": "table", "points": [[0, 0], [6, "0.5"]], "citation": "c", "evidence": "e"},
        ),
        ["recovery.points"],
    ),
    (
        "Dmax below Dmean",
        _dose(1, PAROTID, Dmean=5.1, Dmax=4.0),
        ["course HFRS", PAROTID, "Dmax", "Dmean"],
    ),
    ("D2% below D98%", _dose(1, PAROTID, **{"D2%": 10.0, "D98%": 12.0}), ["D2%", "D98%"]),
    ("Dmin above Dmean", _dose(1, PAROTID, Dmean=5.1, Dmin=6.0), ["Dmean", "Dmin"]),
    (
        "D1cc above D0.035cc",
        _dose(1, PAROTID, **{"D0.035cc": 10.0, "D1cc": 11.0}),
        ["D0.035cc", "D1cc"],
    ),
    ("D50% above Dmax", _dose(1, PAROTID, Dmax=13.0, **{"D50%": 14.0}), ["Dmax", "D50%"]),
    ("5000 Gy", _dose(0, PAROTID, Dmean=5000), ["courses[0].doses", "less than or equal to 200"]),
    (
        "5000 Gy prescription",
        _set(["courses", 1, "prescriptions", 0, "dose_gy"], 5000),
        ["dose_gy"],
    ),
    ("fractions 1e30", _set(["courses", 1, "fractions"], 1e30), ["courses[1].fractions"]),
    ("a number as a date", _set(["courses", 0, "start"], 0), ["courses[0].start", "not a date"]),
    ("volume 1e30 mL", _set(["recurrence", "volume_ml"], 1e30), ["recurrence.volume_ml"]),
    ("101 fractions", _set(["courses", 0, "fractions"], 101), ["courses[0].fractions", "100"]),
    (
        "33 fractions in one day",
        lambda d: d["courses"][0].update(end=d["courses"][0]["start"]),
        ["courses[0]", "more than 3 a day"],
    ),
    (
        "prescription fractions unlike the course's",
        _set(["courses", 1, "prescriptions", 0, "fractions"], 3),
        ["course HFRS", "primary prescription", "3 fractions", "has 4"],
    ),
    (
        "prescription with more fractions than the course",
        lambda d: d["courses"][1]["prescriptions"].append(
            {"target": "CTV", "dose_gy": 30, "fractions": 5}
        ),
        ["prescriptions[1]", "5 fractions"],
    ),
    (
        "birth date after the first course",
        _set(["patient", "birth_date"], "2024-01-01"),
        ["patient.birth_date", "not before"],
    ),
    (
        "age does not match the birth date",
        _set(["patient", "birth_date"], "1990-01-01"),
        ["age_at_diagnosis 64"],
    ),
    (
        "same RTDOSE twice in a course",
        lambda d: d["courses"][1].update(dicom=DICOM),
        ["course HFRS", "RTDOSE", "listed twice"],
    ),
    (
        "same RTDOSE in two courses",
        lambda d: [
            d["courses"][0].update(dicom={"rtdose": "a/RD.dcm", "rtstruct": "a/RS.dcm"}),
            d["courses"][1].update(dicom={"rtdose": "./a/RD.dcm", "rtstruct": "b/RS.dcm"}),
        ],
        ["courses IMRT and HFRS both list 'a/RD.dcm'"],
    ),
    (
        "unknown structure_map key",
        lambda d: d["courses"][1].update(
            dicom={"rtdose": "b/RD.dcm", "rtstruct": "b/RS.dcm", "structure_map": {"Cord": "SC"}}
        ),
        ["dicom.structure_map", "'Cord'"],
    ),
    (
        "duplicate constraint ids",
        lambda d: d.setdefault("constraints", {}).update(
            custom=[
                {
                    "id": "local",
                    "structure": PAROTID,
                    "metric": "Dmean",
                    "quantity": "eqd2",
                    "limit": limit,
                    "source": "departmental protocol",
                    "evidence": "expert opinion",
                }
                for limit in (26, 30)
            ]
        ),
        ["duplicate constraint id", "'local'"],
    ),
    (
        "organ at risk as the explorer's target",
        _set(["exploration", "target"], PAROTID),
        ["exploration.target", "role organ_at_risk"],
    ),
    (
        "empty reference course",
        _set(["analysis", "reference_course"], ""),
        ["analysis.reference_course"],
    ),
    ("empty course id", _set(["courses", 0, "id"], ""), ["courses[0].id"]),
    (
        "relative dose in cGy",
        lambda d: d["exploration"].update(
            new_course=None, start="2026-09-01", relative_doses={PAROTID: {"Dmax": 5400}}
        ),
        ["relative_doses", "300"],
    ),
    (
        "explorer fractions twice",
        _set(["exploration", "fractions"], [1, 2, 2]),
        ["each number of fractions once"],
    ),
]


@pytest.mark.parametrize(
    "name, mutate, fragments", PLAUSIBILITY_CASES, ids=[c[0] for c in PLAUSIBILITY_CASES]
)
def test_implausible_case_is_refused(tmp_path, capsys, name, mutate, fragments):
    path = _data_case(tmp_path, mutate)
    with pytest.raises(InputError):
        load_case(path)
    _refused(capsys, path, *fragments)


# --- what real cases need still loads ------------------------------------------------------


def _eqd2(total, fractions, ab):
    return total * (total / fractions + ab) / (2 + ab)


def test_zero_dose_is_accepted_and_counts_zero(tmp_path, capsys):
    """docs/case-format.md: enter 0 for a course that did not irradiate the structure."""
    path = _data_case(tmp_path, _dose(1, PAROTID, Dmean=0))
    assert main(["assess", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = next(r for r in doc["results"] if r["structure"] == PAROTID and r["statistic"] == "Dmean")
    assert row["courses"][1]["eqd2_gy"] == 0
    # IMRT 29.9 Gy / 33 fx at a/b 3, 50 % recovered (marinova2026-fixed-50), plus 0.
    assert row["cumulative"]["eqd2_gy"] == pytest.approx(0.5 * _eqd2(29.9, 33, 3), abs=1e-3)


def test_single_fraction_radiosurgery_and_hyperfractionation_load(tmp_path):
    """24 Gy in 1 fraction (RTOG 90-05) and 81.6 Gy in 68 fractions (RTOG 9003) pass."""

    def mutate(d):
        d["courses"][1].update(fractions=1, end=d["courses"][1]["start"])
        d["courses"][1]["prescriptions"] = [
            {"target": "PTV", "dose_gy": 24, "fractions": 1, "primary": True}
        ]
        d["courses"][0].update(fractions=68)
        d["courses"][0]["prescriptions"] = [
            {"target": "PTV", "dose_gy": 81.6, "fractions": 68, "primary": True}
        ]

    case = load_case(_data_case(tmp_path, mutate))
    assert case.courses[1].primary_prescription().dose_per_fraction_gy == 24
    assert case.courses[0].primary_prescription().dose_per_fraction_gy == pytest.approx(1.2)


def test_equal_statistics_and_a_consistent_birth_date_load(tmp_path):
    """The example's Dmean == Dmax (rounded report values) and a matching birth date."""

    def mutate(d):
        d["patient"]["birth_date"] = "1959-06-01"  # 64 at the diagnosis of 2023-11-01
        d["courses"][1]["doses"][PAROTID] = {
            "Dmin": 1,
            "D98%": 1,
            "Dmean": 5.1,
            "D2%": 13,
            "Dmax": 13,
        }

    case = load_case(_data_case(tmp_path, mutate))
    assert case.courses[1].doses[PAROTID]["Dmax"] == 13


@pytest.mark.parametrize(
    "name", ["npc-reirradiation-2026.yaml", "npc-reirradiation-2026-table2.yaml"]
)
def test_bundled_examples_load_unchanged(name):
    """The strict loader reads the examples exactly as PyYAML's safe_load does."""
    path = MAIN.parent / name
    case = load_case(path)
    data = yaml.safe_load(path.read_text())
    assert [c.id for c in case.courses] == [c["id"] for c in data["courses"]]
    assert {s: dict(v) for s, v in case.courses[0].doses.items()} == data["courses"][0]["doses"]


# --- the same loader for constraint sets and NTCP parameters --------------------------------


def test_constraint_set_file_uses_the_strict_loader(tmp_path, capsys):
    from importlib import resources

    text = resources.files("reirrad").joinpath("data/constraints/reirradiation.yaml").read_text()
    path = tmp_path / "set.yaml"
    path.write_text(text.replace("limits:\n", "title: again\nlimits:\n", 1))
    assert main(["constraints", "list", "--set", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "duplicate key 'title'" in err


@pytest.mark.parametrize("value", ["true", "033", ".inf"])
def test_ntcp_parameters_must_be_finite_numbers(value):
    from importlib import resources

    from reirrad.io.ntcp_data import load_ntcp_parameter_sets

    text = resources.files("reirrad").joinpath("data/ntcp/parameters.yaml").read_text()
    assert "td50_gy: 107.84" in text
    with pytest.raises(InputError, match="parameters.td50_gy"):
        load_ntcp_parameter_sets(text.replace("td50_gy: 107.84", f"td50_gy: {value}"))


@pytest.mark.parametrize(
    "old, new, field",
    [
        ("limit: 135.5", "limit: true", "limit"),
        ("recovery_credit: false", "recovery_credit: no", "recovery_credit"),
    ],
)
def test_constraint_set_numbers_and_booleans_are_strict(tmp_path, capsys, old, new, field):
    from importlib import resources

    text = resources.files("reirrad").joinpath("data/constraints/reirradiation.yaml").read_text()
    assert old in text
    path = tmp_path / "set.yaml"
    path.write_text(text.replace(old, new, 1))
    assert main(["constraints", "list", "--set", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and f".{field}" in err
