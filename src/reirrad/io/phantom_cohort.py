"""A synthetic cohort of phantom patients with exactly known cumulative EQD2.

A test and benchmark tool (it writes files). Patient ``i`` of a cohort is the phantom of
:mod:`reirrad.io.phantom` with its structures and dose blobs moved by an anatomy offset of a
few millimetres, its dose amplitudes scaled, two or three courses and its own intervals
between them, all drawn from ``numpy.random.default_rng([seed, i])`` so a cohort is
reproducible. Every course's physical dose is a sum of Gaussians in the reference frame, so
the cumulative EQD2 at any point is ``sum_c EQD2(D_c(x), n_c, alpha/beta)``
(:func:`reirrad.core.radiobiology.eqd2` on the analytic values; no recovery is credited in
these cases, so no recovery model enters the answer).

Written layout: ``root/<patient>/case.yaml`` with the DICOM folders beside it,
``root/manifest.csv`` (``patient,case``) and ``root/answers.json``: per patient and
structure the exact cumulative EQD2 statistics (``Dmean``, ``D2%``) of the
analytic dose sampled on a lattice of at most 0.5 mm (``np.percentile`` of the samples,
as the phantom tests do).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reirrad.core.radiobiology import eqd2
from reirrad.io.phantom import (
    Phantom,
    course_dicom_entry,
    default_phantom,
    write_phantom_case,
)

__all__ = [
    "CohortPatientSpec",
    "cohort_specs",
    "exact_answers",
    "write_cohort_patient",
    "write_phantom_cohort",
]

#: Alpha/beta (Gy) of the roles in the cohort's case files (the answers use the same).
ALPHA_BETA = {"target": 10.0, "organ_at_risk": 3.0}
ROLES = {"PTV_reirr": "target"}
#: Exact statistics written to answers.json: name -> percentile of the sampled EQD2
#: (``D2%`` is the dose to the hottest 2 %, i.e. the 98th percentile of the samples).
STATISTICS = {"Dmean": None, "D2%": 98.0}
#: Contour raster (mm) of the cohort's RTSTRUCTs: coarser than the single phantom's 0.5 mm
#: (half the contour points, a quarter of the raster) so that a patient writes in about a
#: second; the DVH tolerance of the tests (2 %) holds.
CONTOUR_RASTER_MM = 1.0


@dataclass(frozen=True)
class CohortPatientSpec:
    """How patient ``index`` differs from the default phantom."""

    patient: str
    n_courses: int
    offset_mm: tuple[float, float, float]
    dose_scale: float
    intervals_days: tuple[int, ...]  # between consecutive course starts, oldest first
    first_start: str  # ISO date of the first course


def cohort_specs(n: int, seed: int = 0) -> list[CohortPatientSpec]:
    """``n`` reproducible patient variations (2-3 courses, offsets, dose levels, intervals)."""
    specs = []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        n_courses = int(rng.integers(2, 4))
        # small offsets keep every structure inside every dose grid (z has the least room)
        offset = tuple(round(float(v), 2) for v in rng.uniform([-5, -5, -3], [5, 5, 3]))
        scale = round(float(rng.uniform(0.8, 1.2)), 3)
        intervals = tuple(int(v) for v in rng.integers(200, 1800, n_courses - 1))
        start = dt.date(2010, 1, 4) + dt.timedelta(days=int(rng.integers(0, 1500)))
        specs.append(
            CohortPatientSpec(
                f"P{index + 1:04d}", n_courses, offset, scale, intervals, start.isoformat()
            )
        )
    return specs


def cohort_phantom(spec: CohortPatientSpec) -> Phantom:
    """The default phantom moved by ``spec.offset_mm`` with doses scaled by ``dose_scale``."""
    base = default_phantom(spec.n_courses)
    off = np.asarray(spec.offset_mm, dtype=float)

    def moved(point) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.asarray(point, dtype=float) + off)

    courses = tuple(
        dataclasses.replace(
            course,
            blobs=tuple(
                dataclasses.replace(
                    b, center=moved(b.center), amplitude=b.amplitude * spec.dose_scale
                )
                for b in course.blobs
            ),
            prescription_gy=round(course.prescription_gy * spec.dose_scale, 2),
            dose_center=moved(course.dose_center),
        )
        for course in base.courses
    )
    structures = tuple(dataclasses.replace(s, center=moved(s.center)) for s in base.structures)
    return dataclasses.replace(
        base, courses=courses, structures=structures, patient_id=spec.patient
    )


def exact_answers(phantom: Phantom, max_points: float = 2e6) -> dict[str, dict[str, float]]:
    """Exact cumulative EQD2 statistics per structure (no recovery), from the analytic dose."""
    out: dict[str, dict[str, float]] = {}
    for shape in phantom.structures:
        lo, hi = shape.bounds()
        # 0.5 mm lattice unless the bounding box would need more than max_points samples
        step = max(0.5, float(np.prod(hi - lo) / max_points) ** (1.0 / 3.0))
        axes = [np.arange(a + step / 2, b, step) for a, b in zip(lo, hi, strict=True)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        pts = pts[shape.contains(pts)]
        ab = ALPHA_BETA[ROLES.get(shape.name, "organ_at_risk")]
        values = sum(
            eqd2(phantom.physical_dose(c, pts), course.fractions, ab)
            for c, course in enumerate(phantom.courses)
        )
        out[shape.name] = {
            name: float(values.mean() if q is None else np.percentile(values, q))
            for name, q in STATISTICS.items()
        }
        out[shape.name]["alpha_beta"] = ab
    return out


def _course_dates(spec: CohortPatientSpec, fractions: list[int]) -> list[tuple[str, str]]:
    start = dt.date.fromisoformat(spec.first_start)
    dates = []
    for number, n in enumerate(fractions):
        if number:
            start = start + dt.timedelta(days=spec.intervals_days[number - 1])
        # five fractions a week
        end = start + dt.timedelta(days=max(0, (n - 1) // 5 * 7 + (n - 1) % 5))
        dates.append((start.isoformat(), end.isoformat()))
    return dates


def write_cohort_patient(spec: CohortPatientSpec, root: str | Path) -> dict:
    """Write one patient's DICOM files and case file under ``root/<patient>``.

    Returns the patient's manifest row and exact answers (``{"patient", "case", "answers",
    "spec"}``).
    """
    import yaml

    phantom = cohort_phantom(spec)
    folder = Path(root) / spec.patient
    written = write_phantom_case(phantom, folder, contour_raster_mm=CONTOUR_RASTER_MM)
    dates = _course_dates(spec, [c.fractions for c in phantom.courses])
    courses = []
    for number, (files, course, (start, end)) in enumerate(
        zip(written.courses, phantom.courses, dates, strict=True), start=1
    ):
        dicom = course_dicom_entry(files, folder)
        courses.append(
            {"id": f"C{number}", "start": start, "end": end, "fractions": course.fractions,
             "prescriptions": [{"target": "PTV_reirr", "dose_gy": course.prescription_gy,
                                "fractions": course.fractions}],
             "dicom": dicom}
        )  # fmt: skip
    case = {
        "reirrad_case": 1,
        "patient": {"id": spec.patient, "sex": "unknown"},
        "tissue_defaults": {
            role: {"alpha_beta": ab, "recovery": "none"} for role, ab in ALPHA_BETA.items()
        },
        "structures": [
            {"name": "PTV_reirr", "role": "target"},
            {"name": "SpinalCanal", "role": "organ_at_risk", "organ": "spinal_cord"},
            {"name": "OAR_sphere", "role": "organ_at_risk"},
            {"name": "OAR_tilted", "role": "organ_at_risk"},
        ],
        "courses": courses,
        "analysis": {"reirradiation_type_threshold_gy": 10},
        "constraints": {"sets": ["reirradiation"]},
    }
    path = folder / "case.yaml"
    header = "# Synthetic cohort patient written by `reirrad phantom --cohort`: not patient data.\n"
    path.write_text(header + yaml.safe_dump(case, sort_keys=False))
    return {
        "patient": spec.patient,
        "case": f"{spec.patient}/case.yaml",
        "answers": exact_answers(phantom),
        "spec": dataclasses.asdict(spec),
    }


def write_cohort_index(root: str | Path, written: list[dict]) -> Path:
    """Write ``manifest.csv`` and ``answers.json`` for written patients; return the manifest."""
    root = Path(root)
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient", "case"])
        for row in written:
            writer.writerow([row["patient"], row["case"]])
    answers = {row["patient"]: {"answers": row["answers"], "spec": row["spec"]} for row in written}
    note = (
        "Exact cumulative EQD2 (Gy, no recovery) of the analytic phantom doses per structure; "
        "Dmean is the mean and D2% the 98th percentile of lattice samples."
    )
    (root / "answers.json").write_text(json.dumps({"note": note, "patients": answers}, indent=1))
    return manifest


def write_phantom_cohort(n: int, root: str | Path, *, seed: int = 0) -> Path:
    """Write ``n`` phantom patients, the manifest and the exact answers; return the manifest."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written = [write_cohort_patient(spec, root) for spec in cohort_specs(n, seed)]
    return write_cohort_index(root, written)
