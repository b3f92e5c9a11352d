"""DVH validation against the Nelms analytical benchmark and a real Eclipse plan.

Nelms BE et al., "Methods, software and datasets to verify DVH calculations against
analytical values", Med Phys 42(8):4435 (2015): 60 structure/dose pairs with exact answers
(``analytical_expected.csv``; the analytical volumes include half-slice end caps, so the
engine is called with ``extremes="end_cap"`` here).
The Eclipse example (dicompyler-core test data) stores the planning system's own DVHs in
the RTDOSE DVHSequence.  Run with ``-s`` to see the full error tables.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest

from reirrad.core.dvh import compute_dvh
from reirrad.io.dicom import read_rtdose, read_rtstruct

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
NELMS = DATA / "nelms-dvh-analytical"
ECLIPSE = DATA / "dicompyler-core-example"

COLUMNS = [
    ("volume_cc", None),
    ("dmin_gy", "Dmin"),
    ("dmax_gy", "Dmax"),
    ("dmean_gy", "Dmean"),
    ("d99_gy", "D99%"),
    ("d95_gy", "D95%"),
    ("d5_gy", "D5%"),
    ("d1_gy", "D1%"),
    ("d0_03cc_gy", "D0.03cc"),
]
# The rotated cylinder (axis along y) contoured every 2 mm: between the tangent contour
# (width 0.02 mm) and the next one (13.3 mm) the true cross-section grows like a square
# root, which no contour-stack model reproduces; the stack itself holds 2.53 % less volume
# than the analytical cylinder (sum of 2 sqrt(144 - z^2) * 2 mm * 24 mm over the planes).
STACK_LIMITED = {"RtCylinder_20_0", "RtCylinder_20_X10", "RtCylinder_20_X10Z10"}


@pytest.fixture(scope="module")
def nelms_errors():
    if not NELMS.exists():
        pytest.skip("Nelms benchmark data not available")
    rows = list(csv.DictReader(open(NELMS / "analytical_expected.csv")))
    doses = {}
    table = []
    for row in rows:
        if row["dose_file"] not in doses:
            doses[row["dose_file"]] = read_rtdose(NELMS / row["dose_file"])
        structures = read_rtstruct(NELMS / row["structure_file"]).structures
        (structure,) = [
            s for s in structures.values() if not s.is_empty and not s.name.startswith("POI")
        ]
        # The analytical shapes extend half a contour spacing beyond their outer contours
        # (half-slice end caps), so their exact Dmin/Dmax (and the coldest/hottest 1 %) in
        # the SI gradients lie on the cap faces: read the extremes there.  The default
        # convention (extremes within the contoured planes) is checked against the same
        # data in tests/test_dvh_extremes.py.
        dvh = compute_dvh(doses[row["dose_file"]], structure, extremes="end_cap")
        errors = {}
        for column, metric in COLUMNS:
            got = dvh.volume_cc if metric is None else dvh.metric(metric)
            expected = float(row[column])
            errors[column] = 100.0 * (got - expected) / expected
        table.append((Path(row["structure_file"]).stem, Path(row["dose_file"]).stem, errors))
    # the full error table (pytest -s shows it)
    print("\nNelms analytical benchmark: error in % of the analytical value")
    print(f"{'structure':<22}{'dose grid':<28}" + "".join(f"{c[:9]:>10}" for c, _ in COLUMNS))
    for structure, dose, errors in table:
        cells = "".join(f"{errors[c]:>+10.2f}" for c, _ in COLUMNS)
        print(f"{structure:<22}{dose:<28}{cells}")
    for column, _ in COLUMNS:
        a = np.abs([e[column] for _, _, e in table])
        print(
            f"{column:<12} max |err| {a.max():6.2f} %  95th pct {np.percentile(a, 95):6.2f} %"
            f"  within 3 %: {np.mean(a <= 3) * 100:5.1f} %  within 1 %: {np.mean(a <= 1) * 100:5.1f} %"
        )
    return table


def test_nelms_dmean_within_1_percent_for_every_pair(nelms_errors):
    worst = max(abs(e["dmean_gy"]) for _, _, e in nelms_errors)
    assert worst <= 1.0


def test_nelms_volume_within_1_percent_except_the_contour_stack_limit(nelms_errors):
    for structure, dose, errors in nelms_errors:
        limit = 2.6 if structure in STACK_LIMITED else 1.0
        assert abs(errors["volume_cc"]) <= limit, (structure, dose, errors["volume_cc"])


@pytest.mark.xfail(
    strict=True,
    reason="RtCylinder_20 pairs: the 2 mm contour stack holds 2.53 % less volume than the "
    "analytical cylinder (information not in the contours)",
)
def test_nelms_volume_within_1_percent_for_every_pair(nelms_errors):
    assert max(abs(e["volume_cc"]) for _, _, e in nelms_errors) <= 1.0


@pytest.mark.parametrize("column", ["dmin_gy", "dmax_gy", "d95_gy", "d5_gy", "d1_gy", "d0_03cc_gy"])
def test_nelms_dose_metrics_within_3_percent_for_95_percent_of_pairs(nelms_errors, column):
    errors = np.abs([e[column] for _, _, e in nelms_errors])
    assert np.mean(errors <= 3.0) >= 0.95


def test_nelms_d99_within_3_percent_except_the_rotated_cylinder_in_si_gradient(nelms_errors):
    # 56 of 60 pairs (93 %); the 4 misses are the rotated cylinder in the SI gradient, where
    # the coldest 1 % lies between the tangent contour and the next (see STACK_LIMITED)
    errors = np.abs([e["d99_gy"] for _, _, e in nelms_errors])
    assert np.mean(errors <= 3.0) >= 56 / 60
    for structure, dose, e in nelms_errors:
        if abs(e["d99_gy"]) > 3.0:
            assert structure.startswith("RtCylinder") and "SupInf" in dose


@pytest.mark.xfail(strict=True, reason="4 rotated-cylinder SI pairs miss; 56/60 = 93 % < 95 %")
def test_nelms_d99_within_3_percent_for_95_percent_of_pairs(nelms_errors):
    errors = np.abs([e["d99_gy"] for _, _, e in nelms_errors])
    assert np.mean(errors <= 3.0) >= 0.95


# ---------------------------------------------------------------------------------------
# Eclipse
# ---------------------------------------------------------------------------------------


def eclipse_reference():
    """Volume (cc) and mean dose (Gy) of the planning system's DVHs, by ROI number.

    This plan's DVHSequence doses are in % of the 14 Gy prescription (DVH max 104.9 for a
    ~14.7 Gy dose maximum), although DoseUnits says GY; the prescription comes from the
    RTPLAN (TargetPrescriptionDose).
    """
    ds = pydicom.dcmread(ECLIPSE / "rtdose.dcm")
    plan = pydicom.dcmread(ECLIPSE / "rtplan.dcm")
    rx = float(plan.DoseReferenceSequence[0].TargetPrescriptionDose)
    out = {}
    for item in ds.DVHSequence:
        number = int(item.DVHReferencedROISequence[0].ReferencedROINumber)
        data = np.asarray(item.DVHData, dtype=float)
        out[number] = (data[1], float(item.DVHMeanDose) * rx / 100.0)
    return out


@pytest.fixture(scope="module")
def eclipse_comparison():
    if not ECLIPSE.exists():
        pytest.skip("Eclipse example not available")
    dose = read_rtdose(ECLIPSE / "rtdose.dcm")
    structures = read_rtstruct(ECLIPSE / "rtss.dcm").structures
    reference = eclipse_reference()
    rows = []
    for structure in structures.values():
        if structure.number not in reference:
            continue
        # Eclipse stops a structure at its outer contours (no end caps): with
        # end_cap="none" the volumes of the targets match to 0.6 %, with half-slice caps
        # they are 1.5-2.7 % larger, so compare like with like
        dvh = compute_dvh(dose, structure, end_cap="none")
        ref_volume, ref_mean = reference[structure.number]
        rows.append(
            (
                structure.name,
                ref_volume,
                dvh.covered_volume_cc,
                100 * (dvh.covered_volume_cc / ref_volume - 1),
                ref_mean,
                dvh.dmean,
                100 * (dvh.dmean / ref_mean - 1),
            )
        )
    print("\nEclipse DVHSequence vs reirrad (end_cap='none')")
    print(
        f"{'ROI':<18}{'Eclipse cc':>12}{'reirrad cc':>12}{'err %':>8}"
        f"{'Eclipse Dmean':>15}{'reirrad Dmean':>15}{'err %':>8}"
    )
    for name, rv, v, ev, rm, m, em in rows:
        print(f"{name:<18}{rv:>12.2f}{v:>12.2f}{ev:>+8.2f}{rm:>15.4f}{m:>15.4f}{em:>+8.2f}")
    return rows


def test_eclipse_volume_and_mean_within_2_percent_for_structures_of_10cc(eclipse_comparison):
    checked = 0
    for name, ref_volume, _, volume_err, _, _, mean_err in eclipse_comparison:
        if ref_volume < 10.0 or name == "BODY":
            continue
        assert abs(volume_err) <= 2.0, (name, volume_err)
        assert abs(mean_err) <= 2.0, (name, mean_err)
        checked += 1
    assert checked == 5  # Breast, Heart, Lt Lung, Tumor Bed, Tumor Bed Block


@pytest.mark.xfail(
    strict=True,
    reason="BODY: Eclipse reports 13944 cc; reirrad (14736 cc without caps) and "
    "dicompyler-core (14882 cc) both find ~6 % more; cause not identified",
)
def test_eclipse_body_volume_within_2_percent(eclipse_comparison):
    (body,) = [row for row in eclipse_comparison if row[0] == "BODY"]
    assert abs(body[3]) <= 2.0
