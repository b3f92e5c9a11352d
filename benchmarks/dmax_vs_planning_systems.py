"""Dmax and Dmin of reirrad against the planning systems' own DVHs.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/dmax_vs_planning_systems.py

Two real Eclipse plans of the shared test data (``../shared/data``, see its README):

* ``dicompyler-core-example``: breast boost, 9 Eclipse DVHs in the RTDOSE DVHSequence.
  Their DVHMaximumDose / DVHMinimumDose are in % of the 14 Gy prescription although
  DoseUnits says GY (BODY's 104.86 % x 14 Gy = 14.681 Gy, the dose grid's maximum), while
  the DVHData dose axis is in Gy (1470 bins of 0.01 Gy up to 14.70 Gy).
* ``eclipse-prostate``: four-field prostate, Eclipse and CERR cumulative DVH tables
  (``reference/``).  Their Dmax is the last dose label with volume > 0: Eclipse labels are
  the bins' lower edges (0.046 Gy bins), CERR's are bin centres of 0.2 Gy bins whose value
  belongs to the upper edge (label + 0.1 Gy), per ``verification/dvh_vs_eclipse_cerr.md``.

Per structure: reirrad with its defaults (half-slice end caps for the volume, extremes
within the contoured planes) and with ``extremes="end_cap"``, and ``half-vox``: half the
largest dose step between adjacent voxels around the structure (its contours' bounding
box plus one voxel), the dose change a planning system's sampling can miss.

The last line is ``structures=<n> default_within_half_voxel=<k> end_cap_within_half_voxel=<m>
max_default_minus_eclipse_gy=<x>``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom

from reirrad.core.dvh import compute_dvh
from reirrad.core.geometry import Dose
from reirrad.io.dicom import read_rtdose, read_rtstruct

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BREAST = DATA / "dicompyler-core-example"
PROSTATE = DATA / "eclipse-prostate"
#: Eclipse reports the breast plan's DVH to 0.01 Gy bins: agreement below that is exact.
EPSILON_GY = 0.01


def half_voxel_change(dose: Dose, contours) -> float:
    """Half the largest dose step between neighbouring voxels around the contours."""
    ijk = dose.grid.patient_to_index(np.concatenate(contours))
    shape = np.array(dose.grid.shape[::-1])  # (ni, nj, nk)
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, shape - 1)
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 0, shape - 1)
    box = np.asarray(dose.values, dtype=float)[
        lo[2] : hi[2] + 1, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1
    ]
    steps = [np.abs(np.diff(box, axis=a)).max() for a in range(3) if box.shape[a] > 1]
    return 0.5 * float(max(steps))


def breast_reference() -> dict[int, tuple[float, float]]:
    """Eclipse (Dmax, Dmin) in Gy by ROI number (DVHSequence, % of the prescription)."""
    ds = pydicom.dcmread(BREAST / "rtdose.dcm")
    plan = pydicom.dcmread(BREAST / "rtplan.dcm")
    gy_per_percent = float(plan.DoseReferenceSequence[0].TargetPrescriptionDose) / 100.0
    out = {}
    for item in ds.DVHSequence:
        number = int(item.DVHReferencedROISequence[0].ReferencedROINumber)
        out[number] = (
            float(item.DVHMaximumDose) * gy_per_percent,
            float(item.DVHMinimumDose) * gy_per_percent,
        )
    return out


def table_dmax(path: Path, label_shift: float) -> dict[str, tuple[float, float]]:
    """(lowest, highest) possible Dmax in Gy by ROI name (spaces removed) of a DVH table.

    A label off the regular step is rebuilt from its predecessor (one Eclipse row has the
    label 0.00035604 for 35.604).
    """
    rows = list(csv.reader(open(path)))
    header, body = rows[0], [r for r in rows[1:] if r and r[0]]
    out = {}
    for c in range(0, len(header) - 1, 2):
        roi = header[c].split("_DvhArray")[0]
        labels = np.array([float(r[c]) for r in body])
        values = np.array([float(r[c + 1]) for r in body])
        step = float(np.median(np.diff(labels)))
        for i in range(1, labels.size):
            if abs(labels[i] - labels[i - 1] - step) > 0.6 * step:
                labels[i] = labels[i - 1] + step
        low = float(labels[np.flatnonzero(values > 0)[-1]]) + label_shift
        out[roi] = (low, low + step)
    return out


def rows():
    """One row per structure: plan, name, reference (Dmax, Dmin), CERR Dmax, reirrad."""
    dose = read_rtdose(BREAST / "rtdose.dcm")
    reference = breast_reference()
    for s in read_rtstruct(BREAST / "rtss.dcm").structures.values():
        if s.number in reference:
            dmax, dmin = reference[s.number]
            yield "breast", s, dose, (dmax, dmax), dmin, None
    dose = read_rtdose(PROSTATE / "RD.dcm")
    eclipse = table_dmax(PROSTATE / "reference" / "EclipseProstate_DvhTable_Eclipse.csv", 0.0)
    cerr = table_dmax(PROSTATE / "reference" / "EclipseProstate_DvhTable_CERR.csv", 0.1)
    for s in read_rtstruct(PROSTATE / "RS.dcm").structures.values():
        key = s.name.replace(" ", "")
        if key in eclipse:
            yield "prostate", s, dose, eclipse[key], None, cerr[key][0]


def main() -> None:
    print(
        f"{'plan':<9}{'structure':<17}{'Eclipse':>9}{'CERR':>8}{'default':>9}{'end_cap':>9}"
        f"{'half-vox':>9} |{'Ecl Dmin':>9}{'default':>9}{'end_cap':>9}"
    )
    n = inside_default = inside_cap = 0
    worst = 0.0
    for plan, s, dose, (ref_lo, ref_hi), ref_min, cerr in rows():
        default = compute_dvh(dose, s)
        capped = compute_dvh(dose, s, extremes="end_cap")
        tol = half_voxel_change(dose, s.contours)
        n += 1
        for dvh, counter in ((default, "d"), (capped, "c")):
            ok = ref_lo - EPSILON_GY <= dvh.dmax <= ref_hi + tol
            if ref_min is not None:
                ok &= ref_min - tol <= dvh.dmin <= ref_min + EPSILON_GY
            if counter == "d":
                inside_default += ok
            else:
                inside_cap += ok
        worst = max(worst, default.dmax - ref_lo)
        eclipse = f"{ref_lo:9.3f}" if plan == "breast" else f"{ref_lo:8.2f}+"
        cerr_text = f"{cerr:8.2f}" if cerr is not None else f"{'':>8}"
        line = (
            f"{plan:<9}{s.name:<17}{eclipse}{cerr_text}{default.dmax:9.3f}{capped.dmax:9.3f}"
            f"{tol:9.3f} |"
        )
        if ref_min is not None:
            line += f"{ref_min:9.3f}{default.dmin:9.3f}{capped.dmin:9.3f}"
        print(line)
    print(
        f"structures={n} default_within_half_voxel={inside_default} "
        f"end_cap_within_half_voxel={inside_cap} max_default_minus_eclipse_gy={worst:.3f}"
    )


if __name__ == "__main__":
    main()
