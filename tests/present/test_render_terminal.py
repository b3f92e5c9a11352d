"""Layout of the terminal text (``reirrad.present.terminal``) beyond the bundled example:
three courses, long structure names, mixed statistics, and the Markdown verdicts."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from reirrad.pipelines.assess import assess_case
from reirrad.present import render
from reirrad.present.terminal import WIDTH, verdict_groups

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _three_courses(tmp_path: Path) -> Path:
    """The bundled case with a third course (the HFRS doses again, a year later)."""
    data = yaml.safe_load((EXAMPLES / "npc-reirradiation-2026.yaml").read_text())
    third = copy.deepcopy(data["courses"][1])
    third.update(id="SBRT2", start="2026-06-01", end="2026-06-05")
    data["courses"].append(third)
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_three_courses_fit_the_width(tmp_path):
    text = render.to_text(assess_case(_three_courses(tmp_path)))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    header = next(line for line in lines if line.startswith("structure "))
    assert header.count("phys") == 3 and header.count("EQD2") == 4  # 3 courses + cumulative
    # every full structure name is still said somewhere (cut names are only in the table)
    for name in ("Levator and tensor veli palatini / pharyngeal constrictor muscles",):
        assert " ".join(text.split()).count(name) >= 1


def test_mixed_statistics_keep_the_structure_name_whole():
    text = render.to_text(assess_case(EXAMPLES / "npc-reirradiation-2026-table2.yaml"))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    for name in ("Right parotid gland", "Nasopharyngeal and pharyngeal mucosa"):
        index = lines.index(name)  # the name on its own line, its row below it
        assert lines[index + 1].lstrip().startswith("IMRT:Dmean + HFRS:Dmax (mixed)")
    assert not re.search(r"\.\.\.\s+IMRT:", text)  # no name cut before its statistic


def test_verdict_groups_for_markdown_name_the_limit_ids():
    groups = verdict_groups(assess_case(EXAMPLES / "npc-reirradiation-2026.yaml"))
    assert list(groups) == ["EXCEEDED", "NEAR THE LIMIT", "NOT EVALUABLE", "MET"]
    assert any("[marinova2026-pharyngeal-mucosa-dmean]" in item for item in groups["EXCEEDED"])
    assert groups["NOT EVALUABLE"] == [
        "Right internal carotid artery Dmax < 119 Gy: Dmax given for course HFRS only, no "
        "cumulative value [embring2021-carotid-cumulative-dmax]"
    ]
