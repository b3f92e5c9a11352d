"""`reirrad explore` on the published case: the explorer's answer checked by hand."""

import json
import math
from pathlib import Path

import pytest

from reirrad.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAIN = str(EXAMPLES / "npc-reirradiation-2026.yaml")
TABLE2 = str(EXAMPLES / "npc-reirradiation-2026-table2.yaml")
KEEP_CAROTID = [
    "--exclude", "marinova2026-submandibular-dmean",
    "--exclude", "marinova2026-pharyngeal-mucosa-dmean",
    "--exclude", "marinova2026-constrictors-dmean",
]  # fmt: skip


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_history_already_exceeds_a_limit(capsys):
    # IMRT alone gives the submandibular gland 0.5 x 63.7 (63.7/33 + 3)/5 = 31.4 Gy EQD2 > 26:
    # no re-irradiation dose keeps that limit.
    code, out, _ = run(capsys, "explore", MAIN, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert not any(row["feasible"] for row in doc["schemes"])
    code, out, _ = run(capsys, "explore", MAIN)
    assert "Already exceeded by the history: Right submandibular gland" in out


@pytest.mark.parametrize("n", [1, 4, 30])
def test_carotid_binds_with_the_lq_inverse(capsys, tmp_path, n):
    code, out, _ = run(
        capsys, "explore", MAIN, *KEEP_CAROTID, "--fractions", str(n), "--format", "json",
        "--plot", str(tmp_path / "region.png"),
    )  # fmt: skip
    assert code == 0 and (tmp_path / "region.png").stat().st_size > 0
    row = json.loads(out)["schemes"][0]
    # Carotid: residual 0.5 x EQD2(65.36 Gy / 33 fx, a/b 3); new-course share r = 4.47/24.
    residual = 0.5 * 65.36 * (65.36 / 33 + 3) / 5
    budget_bed = (40 - residual) * (1 + 2 / 3)
    x = 1.5 * (-1 + math.sqrt(1 + 4 * (budget_bed / n) / 3))  # carotid dose per fraction
    assert row["dose_per_fraction_gy"] == pytest.approx(x / (4.47 / 24), rel=1e-9)
    assert "internal carotid" in row["binding"]
    # Tumour: prescription dose per fraction, a/b 15, plus its residual 0.5 x 70.50 Gy.
    d = row["dose_per_fraction_gy"]
    assert row["eqd2_new_gy"] == pytest.approx(n * d * (d + 15) / 17)
    assert row["eqd2_cumulative_gy"] == pytest.approx(
        n * d * (d + 15) / 17 + 0.5 * 70 * (70 / 33 + 15) / 17
    )


def test_bad_explorer_input(capsys):
    code, _, err = run(capsys, "explore", TABLE2)
    assert code == 2 and "no 'exploration' section" in err
    code, _, err = run(capsys, "explore", MAIN, "--exclude", "nope")
    assert code == 2 and "unknown constraint id" in err
    code, _, err = run(capsys, "explore", MAIN, "--fractions", "a-b")
    assert code == 2 and "fraction numbers" in err


def test_voxel_wise_explorer_on_the_phantom(tmp_path, capsys):
    """The DICOM phantom: residual and relative dose per voxel, checked against the analytic
    dose fields at the same voxel centres (Nieder's cumulative cord BED of 135.5 Gy2 binds)."""
    import numpy as np

    from reirrad import dose_for_eqd2, eqd2
    from reirrad.io.phantom import default_phantom, write_example_case
    from reirrad.pipelines.accumulate import accumulate_case

    case = write_example_case(tmp_path / "phantom")
    code, out, _ = run(capsys, "explore", str(case), "--fractions", "1,5", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["level"] == "voxel"
    maps = accumulate_case(case, keep_maps=True)
    box, occupancy = maps.maps.occupancy["SpinalCanal"]
    kk, jj, ii = np.nonzero(occupancy > 0)
    ijk = np.stack([ii + box[2].start, jj + box[1].start, kk + box[0].start], axis=-1)
    xyz = maps.grid.index_to_patient(ijk)
    phantom = default_phantom(3)
    c1, c2, c3 = phantom.courses
    residual = eqd2(phantom.physical_dose(0, xyz), c1.fractions, 2.0) + eqd2(
        phantom.physical_dose(1, xyz), c2.fractions, 2.0
    )
    relative = phantom.physical_dose(2, xyz) / c3.prescription_gy
    limit = 135.5 / (1 + 2 / 2)  # Nieder: BED 135.5 Gy2 = EQD2 67.75 Gy at alpha/beta 2
    for row in doc["schemes"]:
        n = row["fractions"]
        per_voxel = dose_for_eqd2(np.maximum(limit - residual, 0), n, 2.0) / (n * relative)
        assert "nieder2006-cord-cumulative-bed" in row["binding"]
        assert row["dose_per_fraction_gy"] == pytest.approx(per_voxel.min(), rel=0.02)
