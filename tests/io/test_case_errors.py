"""Bad case files: one line naming the file, the field and the problem; exit code 2."""

from pathlib import Path

import pytest
import yaml

from reirrad.cli import main
from reirrad.errors import InputError
from reirrad.io.casefile import load_case

MAIN = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


def _write(tmp_path, mutate) -> Path:
    data = yaml.safe_load(MAIN.read_text())
    mutate(data)
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _set(path, value):
    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


CASES = [
    ("missing field", _delete(["courses", 0, "fractions"]), "courses[0].fractions", "required"),
    (
        "misspelt field",
        lambda d: d["courses"][0].update(fractons=33),
        "courses[0].fractons",
        "unknown field",
    ),
    (
        "zero fractions",
        _set(["courses", 1, "fractions"], 0),
        "courses[1].fractions",
        "greater than 0",
    ),
    (
        "negative dose",
        lambda d: d["courses"][0]["doses"]["Right parotid gland"].update(Dmean=-3),
        "Dmean",
        "greater than or equal to 0",
    ),
    (
        "alpha/beta <= 0",
        _set(["tissue_defaults", "organ_at_risk", "alpha_beta"], 0),
        "tissue_defaults.organ_at_risk.alpha_beta",
        "greater than 0",
    ),
    ("end before start", _set(["courses", 1, "end"], "2025-05-01"), "courses[1]", "before start"),
    ("overlapping courses", _set(["courses", 1, "start"], "2024-02-01"), "", "overlap"),
    (
        "no tissue parameters",
        lambda d: d["tissue_defaults"].pop("organ_at_risk"),
        "",
        "has no alpha_beta",
    ),
    (
        "unknown structure in a course",
        lambda d: d["courses"][0]["doses"].update({"Brain stem": {"Dmax": 40}}),
        "",
        "undeclared structure",
    ),
    (
        "bad metric",
        lambda d: d["courses"][0]["doses"]["Right parotid gland"].update({"Dfoo": 3}),
        "",
        "not a metric",
    ),
    (
        "constraint on a structure without dose",
        lambda d: (
            d["structures"].append({"name": "Spinal cord", "role": "organ_at_risk"}),
            d.setdefault("constraints", {})
            .setdefault("custom", [])
            .append(
                {
                    "id": "cord",
                    "structure": "Spinal cord",
                    "metric": "Dmax",
                    "quantity": "eqd2",
                    "limit": 50,
                    "source": "local",
                    "evidence": "opinion",
                }
            ),
        ),
        "",
        "has no dose in any course",
    ),
    (
        "unknown recovery model",
        _set(["tissue_defaults", "organ_at_risk", "recovery"], "magic"),
        "",
        "unknown recovery model",
    ),
]


@pytest.mark.parametrize("name, mutate, field, message", CASES, ids=[c[0] for c in CASES])
def test_bad_case(tmp_path, capsys, name, mutate, field, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(InputError) as error:
        load_case(path)
    text = str(error.value)
    assert str(path) in text
    assert field in text
    assert message in text
    assert main(["assess", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reirrad: error: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_not_yaml_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("patient: [unclosed\n")
    assert main(["assess", str(bad)]) == 2
    assert "not valid YAML: line" in capsys.readouterr().err
    assert main(["assess", str(tmp_path / "nope.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_bad_method_option(capsys):
    assert main(["assess", str(MAIN), "--method", "quadratic"]) == 2
    assert "unknown method 'quadratic'" in capsys.readouterr().err
    assert main(["assess", str(MAIN), "--method", "XX=none"]) == 2
    assert "unknown course 'XX'" in capsys.readouterr().err


def test_prescription_method_needs_a_primary(tmp_path, capsys):
    path = _write(
        tmp_path, lambda d: [p.update(primary=False) for p in d["courses"][0]["prescriptions"]]
    )
    assert main(["assess", str(path), "--method", "prescription"]) == 2
    assert "none marked 'primary: true'" in capsys.readouterr().err
