"""The follow-up record of the case file: the case report's observations, and refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from reirrad.cli import main
from reirrad.io.casefile import load_case

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


def test_case_report_follow_up_is_entered():
    case = load_case(EXAMPLE)
    follow = case.follow_up
    # the case report: SUVmax 14.2 at recurrence, 9.79 three months after radiosurgery
    local_pet = [r for r in follow.response if r.site == "local" and r.suv_max is not None]
    assert [(r.date, r.suv_max) for r in local_pet] == [
        (dt.date(2025, 3, 1), 14.2),
        (dt.date(2025, 9, 11), 9.79),
    ]
    # Tables 1-2, last column: mucositis III degree, xerostomia and trismus II degree
    grades = {t.structure: (t.term, t.grade) for t in follow.toxicity if t.structure}
    assert grades["Nasopharyngeal and pharyngeal mucosa"] == ("Pharyngeal mucositis", 3)
    assert grades["Right parotid gland"] == ("Dry mouth", 2)
    assert grades["Mandibular joint (masseter muscles)"] == ("Trismus", 2)
    assert grades["Right internal carotid artery"][1] == 0  # "No bleeding and stenosis"
    assert grades["Levator and tensor veli palatini / pharyngeal constrictor muscles"] == (
        "Dysphagia",
        None,  # grade not stated
    )


def _write(tmp_path, mutate) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    mutate(data["follow_up"])
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda f: f["toxicity"][0].update(grade=6), "follow_up.toxicity[0].grade"),
        (lambda f: f["toxicity"][0].update(grade=2.5), "follow_up.toxicity[0].grade"),
        (lambda f: f["toxicity"][0].update(structure="Left lung"), "unknown structure"),
        (lambda f: f["toxicity"][0].update(attribution="likely"), "attribution"),
        (lambda f: f["toxicity"][0].update(date="2020-01-01"), "before the diagnosis"),
        (lambda f: f["response"][0].update(recist="iCR"), "recist"),
        (lambda f: f["response"].append({"date": "2025-12-01", "modality": "CT"}), "at least one"),
        (lambda f: f["response"][1].update(size_mm=[1, 2, 3, 4]), "size_mm"),
        (lambda f: f["response"][0].update(modality="ultrasound"), "modality"),
        (lambda f: f.update(visits=[]), "visits"),
    ],
)
def test_follow_up_refusals(tmp_path, capsys, mutate, fragment):
    path = _write(tmp_path, mutate)
    assert main(["assess", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
