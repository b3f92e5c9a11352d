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

Agreement: the planning system's value (or the bin of its table holding it) lies within
half-vox + 0.01 Gy of reirrad's.  The last line counts the structures that agree:
``structures=<n> within_half_voxel_dmax_default=<a> end_cap=<b> dmin_default=<c> end_cap=<d>``.
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


def table_extremes(path: Path, label_shift: float) -> dict[str, tuple[tuple, tuple]]:
    """Intervals (Gy) holding Dmax and Dmin, by ROI name (spaces removed), of a DVH table.

    The value at label ``d`` is the % of volume receiving ``>= d + label_shift``: Dmax lies
    between the last such dose with volume > 0 and the next, Dmin between the last dose
    with 100 % and the next.  A label off the regular step is rebuilt from its predecessor
    (one Eclipse row has the label 0.00035604 for 35.604).
    """
    rows = list(csv.reader(open(path)))
    header, body = rows[0], [r for r in rows[1:] if r and r[0]]
    out = {}
    for c in range(0, len(header) - 1, 2):
        labels = np.array([float(r[c]) for r in body])
        values = np.array([float(r[c + 1]) for r in body])
        step = float(np.median(np.diff(labels)))
        for i in range(1, labels.size):
            if abs(labels[i] - labels[i - 1] - step) > 0.6 * step:
                labels[i] = labels[i - 1] + step
        doses = labels + label_shift
        top = int(np.flatnonzero(values > 0)[-1])
        full = int(np.flatnonzero(values < 100.0 - 1e-6)[0]) - 1
        out[header[c].split("_DvhArray")[0]] = (
            (doses[top], doses[top] + step),
            (doses[full], doses[full + 1]),
        )
    return out


def rows():
    """Per structure: plan, structure, dose, Eclipse (Dmax, Dmin) intervals, CERR Dmax."""
    dose = read_rtdose(BREAST / "rtdose.dcm")
    reference = breast_reference()
    for s in read_rtstruct(BREAST / "rtss.dcm").structures.values():
        if s.number in reference:
            dmax, dmin = reference[s.number]
            yield "breast", s, dose, ((dmax, dmax), (dmin, dmin)), None
    dose = read_rtdose(PROSTATE / "RD.dcm")
    folder = PROSTATE / "reference"
    eclipse = table_extremes(folder / "EclipseProstate_DvhTable_Eclipse.csv", 0.0)
    cerr = table_extremes(folder / "EclipseProstate_DvhTable_CERR.csv", 0.1)
    for s in read_rtstruct(PROSTATE / "RS.dcm").structures.values():
        key = s.name.replace(" ", "")
        if key in eclipse:
            yield "prostate", s, dose, eclipse[key], cerr[key][0][0]


def distance(value: float, interval: tuple[float, float]) -> float:
    """Signed distance of ``value`` from the interval (0 inside)."""
    low, high = interval
    return value - high if value > high else (value - low if value < low else 0.0)


def main() -> None:
    print(
        f"{'plan':<9}{'structure':<17}{'half-vox':>9} |{'Ecl Dmax':>9}{'CERR':>7}"
        f"{'default':>9}{'end_cap':>9} |{'Ecl Dmin':>9}{'default':>9}{'end_cap':>9}   (Gy)"
    )
    within = {"default": [0, 0], "end_cap": [0, 0]}
    n = 0
    for plan, s, dose, (ref_max, ref_min), cerr in rows():
        dvh = {"default": compute_dvh(dose, s), "end_cap": compute_dvh(dose, s, extremes="end_cap")}
        tol = half_voxel_change(dose, s.contours) + EPSILON_GY
        n += 1
        for key, d in dvh.items():
            within[key][0] += abs(distance(d.dmax, ref_max)) <= tol
            within[key][1] += abs(distance(d.dmin, ref_min)) <= tol

        def shown(interval: tuple[float, float]) -> str:
            # a table's bin is shown as its lower edge followed by "+"
            low, high = interval
            return f"{low:9.3f}" if high == low else f"{low:8.2f}+"

        cerr_text = f"{cerr:7.2f}" if cerr is not None else f"{'':>7}"
        print(
            f"{plan:<9}{s.name:<17}{tol:9.3f} |{shown(ref_max)}{cerr_text}"
            f"{dvh['default'].dmax:9.3f}{dvh['end_cap'].dmax:9.3f} |{shown(ref_min)}"
            f"{dvh['default'].dmin:9.3f}{dvh['end_cap'].dmin:9.3f}"
        )
    print(
        f"structures={n} within_half_voxel_dmax_default={within['default'][0]} "
        f"end_cap={within['end_cap'][0]} dmin_default={within['default'][1]} "
        f"end_cap={within['end_cap'][1]}"
    )


if __name__ == "__main__":
    main()
