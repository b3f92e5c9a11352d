"""Accuracy and timing of the multi-course accumulation on the written DICOM phantom.

Run: ``.venv/bin/python benchmarks/accumulate_phantom.py [--large]``

Prints, for the REG, computed-rigid and max-footprint paths, the largest relative error of
the cumulative EQD2 (alpha/beta 3 Gy) against the analytic value at points above 10 % of
the maximum with dose gradients <= 2 Gy/mm, DVH metric errors against the analytic
cumulative EQD2 sampled on a 0.5 mm lattice, and the time of each step.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pydicom

from reirrad.core.accumulate import CourseDose, accumulate, to_effective
from reirrad.core.dvh import compute_dvh
from reirrad.core.radiobiology import eqd2
from reirrad.core.registration import Transform, register_rigid, resample_dose
from reirrad.io.dicom import read_ct_geometry, read_rtdose, read_rtplan, read_rtstruct
from reirrad.io.registration_io import read_spatial_registration
from reirrad.phantom import default_phantom, write_phantom_case

AB = 3.0


def centres(grid):
    kk, jj, ii = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    return grid.index_to_patient(np.stack([ii, jj, kk], axis=-1))


def ct(paths):
    slices = sorted(
        (pydicom.dcmread(p) for p in paths), key=lambda d: float(d.ImagePositionPatient[2])
    )
    return np.stack(
        [d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in slices]
    )


def exact_eqd2(phantom, xyz):
    return sum(
        eqd2(phantom.physical_dose(c, xyz), course.fractions, AB)
        for c, course in enumerate(phantom.courses)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="128x128x80 CT at 1.5 mm")
    args = parser.parse_args()
    phantom = default_phantom(3, small=not args.large)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        case = write_phantom_case(phantom, tmp)
        print(f"write case: {time.perf_counter() - t:.2f} s")
        reference_grid = read_rtdose(case.courses[-1].rtdose).grid
        fixed, moving = case.courses[-1], case.courses[0]
        t = time.perf_counter()
        rigid = register_rigid(
            ct(fixed.ct),
            read_ct_geometry(fixed.ct[0].parent),
            ct(moving.ct),
            read_ct_geometry(moving.ct[0].parent),
        )
        print(f"rigid registration: {time.perf_counter() - t:.2f} s ({rigid.description[:60]})")
        truth = phantom.courses[0].to_reference
        fixed_xyz = centres(read_ct_geometry(fixed.ct[0].parent))
        body = fixed_xyz[phantom.hounsfield(fixed_xyz) > -500]
        moved = (body - truth[:3, 3]) @ np.linalg.inv(truth[:3, :3]).T
        err = np.linalg.norm(moved @ rigid.matrix[:3, :3].T + rigid.matrix[:3, 3] - body, axis=1)
        print(f"rigid mapping error in the body: max {err.max():.3f} mm, mean {err.mean():.3f} mm")
        xyz = centres(reference_grid)
        exact = exact_eqd2(phantom, xyz)
        gradient = np.max([phantom.dose_gradient_bound(c, xyz) for c in range(3)], axis=0)
        structures = read_rtstruct(fixed.rtstruct)
        for label, first, mode in (
            ("REG", read_spatial_registration(moving.registration), "trilinear"),
            ("rigid", rigid, "trilinear"),
            ("REG max_footprint", read_spatial_registration(moving.registration), "max_footprint"),
        ):
            t = time.perf_counter()
            courses = []
            for index, (files, transform) in enumerate(
                zip(case.courses, [first, Transform.identity(), Transform.identity()], strict=True)
            ):
                mapped = resample_dose(read_rtdose(files.rtdose), reference_grid, transform, mode)
                effective = to_effective(
                    mapped.dose, read_rtplan(files.rtplan).fractions_planned, AB
                )
                courses.append(
                    CourseDose(f"c{index + 1}", effective, None, mapped.coverage, transform.kind)
                )
            result = accumulate(courses)
            elapsed = time.perf_counter() - t
            check = result.coverage & (exact >= 0.1 * exact.max()) & (gradient <= 2.0)
            rel = (result.total.values - exact)[check] / exact[check]
            print(
                f"{label}: read+map+EQD2+sum {elapsed:.2f} s; point error max {np.abs(rel).max() * 100:.2f} %, "
                f"mean {np.abs(rel).mean() * 100:.3f} %, signed min/max {rel.min() * 100:+.2f}/{rel.max() * 100:+.2f} % "
                f"over {check.sum()} voxels"
            )
            for name in ("PTV_reirr", "SpinalCanal", "OAR_sphere", "OAR_tilted"):
                shape = phantom.structure(name)
                lo, hi = shape.bounds()
                axes = [np.arange(a + 0.25, b, 0.5) for a, b in zip(lo, hi, strict=True)]
                pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
                values = exact_eqd2(phantom, pts[shape.contains(pts)])
                dvh = compute_dvh(result.total, structures.get(name))
                errors = []
                for metric, expected in (
                    ("Dmean", values.mean()),
                    ("D95%", np.percentile(values, 5)),
                    ("D2%", np.percentile(values, 98)),
                ):
                    errors.append(f"{metric} {(dvh.metric(metric) / expected - 1) * 100:+.2f} %")
                print(f"    {name}: " + ", ".join(errors))


if __name__ == "__main__":
    main()
