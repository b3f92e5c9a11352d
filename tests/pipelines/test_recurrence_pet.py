"""A PET threshold volume as the recurrence volume of the Li 2018 index."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from reirrad.cli import main
from reirrad.core.geometry import Grid
from reirrad.errors import InputError
from reirrad.io.pet_writer import write_pet_series
from reirrad.pipelines.assess import assess_case

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


@pytest.fixture(scope="module")
def pet_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("recurrence_pet")
    grid = Grid.from_axes(origin=(-40.0, -40.0, -40.0), spacing=(4.0, 4.0, 4.0), shape=(21, 21, 21))
    k, j, i = np.indices(grid.shape)
    hot = (abs(i - 10) <= 2) & (abs(j - 10) <= 2) & (abs(k - 10) <= 2)  # 125 voxels, 8 ml
    per_suv = 3.7e8 * 2 ** (-3600 / 6586.2) / 70000.0
    write_pet_series(root / "pet", per_suv * np.where(hot, 12.0, 1.0), grid)
    text = EXAMPLE.read_text().replace(
        "  volume_ml: 27 ",
        '  pet: {series: pet, box: "-30:30,-30:30,-30:30", threshold: "40%"}\n  #',
    )
    (root / "case.yaml").write_text(text)
    return root / "case.yaml"


def test_li2018_uses_the_pet_volume(pet_case):
    result = assess_case(pet_case)
    li = result.prognosis["li2018"]
    # index = 100 (ln 1.01 x 8 ml + ln 1.02 x 66 years + ln 1.96 x rT3-4), EQD2 < 68 Gy
    expected = 100 * (math.log(1.01) * 8.0 + math.log(1.02) * 66 + math.log(1.96))
    assert li.index == pytest.approx(expected, rel=1e-9)
    volume = result.prognosis["li2018_volume"]
    assert volume["volume_ml"] == pytest.approx(8.0)
    assert "40 %" in volume["source"]
    assert any("from PET" in a for a in result.assumptions)


def test_volume_and_pet_together_are_refused(tmp_path, capsys):
    text = EXAMPLE.read_text().replace(
        "  volume_ml: 27 ",
        '  pet: {series: pet, box: "0:1,0:1,0:1", threshold: "2.5"}\n  volume_ml: 27 ',
    )
    path = tmp_path / "case.yaml"
    path.write_text(text)
    assert main(["assess", str(path)]) == 2
    assert "not both" in capsys.readouterr().err


def test_missing_pet_series_is_refused(tmp_path):
    text = EXAMPLE.read_text().replace(
        "  volume_ml: 27 ", '  pet: {series: nowhere, box: "0:1,0:1,0:1", threshold: "2.5"}\n  #'
    )
    path = tmp_path / "case.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="nowhere"):
        assess_case(path)
