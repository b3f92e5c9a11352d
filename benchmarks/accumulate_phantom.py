"""Accuracy and timing of the multi-course accumulation on the written DICOM phantom.

Run: ``.venv/bin/python benchmarks/accumulate_phantom.py [--large]``  (accuracy, small)
     ``.venv/bin/python benchmarks/accumulate_phantom.py --hn``       (speed, issue size)

Default: a *peer* computation, independent of the product engine, maps each course with
``reirrad.core.registration.resample_dose`` and converts it with the LQ formula written out
here in numpy (``EQD2 = D (D/n + a/b) / (2 + a/b)``, alpha/beta 3 Gy, Fowler JF, Br J Radiol
1989;62:679-694). For the REG, computed-rigid and max-footprint paths it prints the largest
relative error of that cumulative EQD2 against the analytic value at points above 10 % of
the maximum with dose gradients <= 2 Gy/mm, DVH metric errors against the analytic
cumulative EQD2 sampled on a 0.5 mm lattice, and the time of each step. Then the product
pipeline (``reirrad.pipelines.accumulate.accumulate_case``) runs on that small case with
every tissue at alpha/beta 3 Gy and no recovery, so that its cumulative map must equal the
peer's (REG path): the last line gives the pipeline's time, memory and CPU time, the time of
its steps up to the cumulative map (``map_s``), the peer's time, their ratio and the largest
difference of the two maps.

``--hn``: a head-and-neck-sized three-course phantom (reference dose grid 256 x 256 x 160
voxels of 2 mm, 30 structures, courses on different grids, course 1 in its own frame with a
REG object) is written by a child process, then the whole pipeline (read, register with
REG, resample, tissue model, convert, accumulate, DVHs, constraints with sensitivity) runs
here. No peer runs in this mode (a second computation in the same process would change the
peak memory); the last line compares with the timing of the engine before "One voxel
engine" (commit 35d039c), measured on the same machine and written here as constants with
their date. Target: no slower than that, under 1 GB peak memory.

Every mode prints the time of each stage; the last line starts with
``total_s=<x> peak_rss_mb=<y>`` (peak resident memory of this process, which in ``--hn``
mode does not write the case).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom

from reirrad.core.dvh import compute_dvh
from reirrad.core.geometry import Dose, DoseKind
from reirrad.core.radiobiology import eqd2
from reirrad.core.registration import Transform, register_rigid, resample_dose, rigid_matrix
from reirrad.io.dicom import read_ct_geometry, read_rtdose, read_rtplan, read_rtstruct
from reirrad.io.phantom import (
    Cylinder,
    GaussianBlob,
    Phantom,
    PhantomCourse,
    Sphere,
    default_phantom,
    write_phantom_case,
)
from reirrad.io.registration_io import read_spatial_registration

AB = 3.0

#: ``--hn`` before the voxel engine was replaced (commit 35d039c, engine of
#: ``reirrad.core.accumulate.accumulate``), measured with this script's ``--hn --cache`` on
#: the same written case, interleaved with runs of the new engine, on 2026-11-30 on a shared
#: 2-core machine. At load average ~3.8 (the figures below): wall 9.4, 13.5, 14.0 s, CPU time
#: of the pipeline (user + system) 13.3, 13.7, 14.8 s, peak memory 803 to 826 MB; the new
#: engine in between: wall 9.3, 10.6, 15.4 s, CPU 13.7, 14.4, 14.7 s, peak 853 MB. At load
#: 4-8 both engines took 20 to 47 s wall with the same CPU time: compare ``cpu_s`` on a
#: shared machine.
PRE_CHANGE_HN = {
    "total_s": 13.5,
    "cpu_s": 13.7,
    "peak_rss_mb": 826.0,
    "date": "2026-11-30",
    "commit": "35d039c",
}


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


def accuracy(large: bool) -> None:
    phantom = default_phantom(3, small=not large)
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
        peer_reg = None
        for label, first, mode in (
            ("REG", read_spatial_registration(moving.registration), "trilinear"),
            ("rigid", rigid, "trilinear"),
            ("REG max_footprint", read_spatial_registration(moving.registration), "max_footprint"),
        ):
            t = time.perf_counter()
            total, coverage = peer_cumulative(
                case, reference_grid, [first, Transform.identity(), Transform.identity()], mode
            )
            elapsed = time.perf_counter() - t
            if peer_reg is None:
                peer_reg = (total, coverage, elapsed)
            check = coverage & (exact >= 0.1 * exact.max()) & (gradient <= 2.0)
            rel = (total - exact)[check] / exact[check]
            print(
                f"{label}: peer read+map+EQD2+sum {elapsed:.2f} s; point error max "
                f"{np.abs(rel).max() * 100:.2f} %, mean {np.abs(rel).mean() * 100:.3f} %, signed "
                f"min/max {rel.min() * 100:+.2f}/{rel.max() * 100:+.2f} % over {check.sum()} voxels"
            )
            dose = Dose(reference_grid, total, DoseKind.EFFECTIVE, None, "EQD2", {})
            for name in ("PTV_reirr", "SpinalCanal", "OAR_sphere", "OAR_tilted"):
                shape = phantom.structure(name)
                lo, hi = shape.bounds()
                axes = [np.arange(a + 0.25, b, 0.5) for a, b in zip(lo, hi, strict=True)]
                pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
                values = exact_eqd2(phantom, pts[shape.contains(pts)])
                dvh = compute_dvh(dose, structures.get(name))
                errors = []
                for metric, expected in (
                    ("Dmean", values.mean()),
                    ("D95%", np.percentile(values, 5)),
                    ("D2%", np.percentile(values, 98)),
                ):
                    errors.append(f"{metric} {(dvh.metric(metric) / expected - 1) * 100:+.2f} %")
                print(f"    {name}: " + ", ".join(errors))
        pipeline(Path(tmp), ORGANS_SMALL, (30, 8, 5), peer=peer_reg)


def peer_cumulative(case, reference_grid, transforms, mode="trilinear"):
    """The peer: each course mapped by ``resample_dose``, converted voxel by voxel with the
    LQ formula written out here (alpha/beta ``AB``, no recovery), summed; and where every
    course's grid covers the reference grid."""
    total = np.zeros(reference_grid.shape)
    coverage = np.ones(reference_grid.shape, dtype=bool)
    for files, transform in zip(case.courses, transforms, strict=True):
        n = float(read_rtplan(files.rtplan).fractions_planned)
        mapped = resample_dose(read_rtdose(files.rtdose), reference_grid, transform, mode)
        d = np.asarray(mapped.dose.values, dtype=float)
        total += d * (d / n + AB) / (2.0 + AB)
        coverage &= mapped.coverage
    return total, coverage


# --------------------------------------------------------------------------------------
# The whole file-aware pipeline
# --------------------------------------------------------------------------------------

ORGANS_SMALL = {
    "PTV_reirr": ("target", None),
    "SpinalCanal": ("organ_at_risk", "spinal_cord"),
    "OAR_sphere": ("organ_at_risk", "parotid"),
    "OAR_tilted": ("organ_at_risk", "internal_carotid"),
}


def write_case_file(
    root: Path, organs: dict, fractions, registration: bool = True, uniform: bool = False
) -> Path:
    """The case file; ``uniform``: every tissue alpha/beta ``AB`` and no recovery (the
    peer's tissue)."""
    import yaml

    dates = [
        ("2016-03-01", "2016-04-10"),
        ("2019-06-01", "2019-06-12"),
        ("2023-09-01", "2023-09-08"),
    ]
    courses = []
    for number, n in enumerate(fractions, start=1):
        dicom = {
            "rtdose": f"course{number}/RD.dcm",
            "rtstruct": f"course{number}/RS.dcm",
            "rtplan": f"course{number}/RP.dcm",
        }
        if number == 1 and registration:
            dicom["registration"] = {"method": "reg", "file": "course1/REG_to_reference.dcm"}
        start, end = dates[number - 1]
        courses.append(
            {"id": f"C{number}", "start": start, "end": end, "fractions": n, "dicom": dicom}
        )
    if uniform:
        tissue = {"alpha_beta": AB, "recovery": "none"}
        defaults = {"target": tissue, "organ_at_risk": tissue}
    else:
        defaults = {
            "target": {"alpha_beta": 10, "recovery": "none"},
            "organ_at_risk": {"alpha_beta": 3, "recovery": "nieder-step"},
        }
    case = {
        "reirrad_case": 1,
        "patient": {"id": "BENCHMARK"},
        "tissue_defaults": defaults,
        "structures": [
            {"name": name, "role": role, **({"organ": organ} if organ else {})}
            for name, (role, organ) in organs.items()
        ],
        "courses": courses,
        "analysis": {"reirradiation_type_threshold_gy": 10},
        "constraints": {"sets": ["reirradiation", "quantec-head-neck"]},
    }
    path = root / ("case-uniform.yaml" if uniform else "case.yaml")
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pipeline(root: Path, organs: dict, fractions, peer=None) -> None:
    """Run the product pipeline; with ``peer = (map, coverage, seconds)`` (uniform tissue),
    compare its cumulative map and time with the peer's."""
    from reirrad.pipelines.accumulate import accumulate_case

    path = write_case_file(root, organs, fractions, uniform=peer is not None)
    t, cpu = time.perf_counter(), _cpu_s()
    result = accumulate_case(path)
    total, cpu = time.perf_counter() - t, _cpu_s() - cpu
    for stage, seconds in result.timings.items():
        print(f"  {stage}: {seconds:.2f} s")
    grid = result.grid
    print(
        f"pipeline: reference grid {tuple(grid.shape)} at {grid.spacing[0]:g} mm, "
        f"{len(result.structures)} structures, {len(result.constraints)} constraint results, "
        f"{result.reirradiation.type if result.reirradiation else 'type n/a'}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    # cpu_s (user + system, all threads) is less sensitive than total_s to other processes
    # on a shared machine
    line = f"total_s={total:.2f} peak_rss_mb={peak:.0f} cpu_s={cpu:.2f}"
    if peer is not None:
        values, coverage, seconds = peer
        difference = np.abs(result.total.values.astype(float) - values)[coverage]
        # the pipeline's steps up to the cumulative map (the peer does no DVHs)
        steps = ("read", "registration", "structures", "resampling", "tissue model",
                 "conversion and sum")  # fmt: skip
        map_s = sum(result.timings.get(step, 0.0) for step in steps)
        line += (
            f" map_s={map_s:.2f} peer_s={seconds:.2f} ratio_map_to_peer={map_s / seconds:.2f}"
            f" max_abs_diff_gy={difference.max():.2e}"
            f" max_rel_diff={(difference / np.maximum(values[coverage], 1e-9)).max():.2e}"
        )
    elif PRE_CHANGE_HN["total_s"]:
        before = PRE_CHANGE_HN
        line += (
            f" pre_change_total_s={before['total_s']:.2f}"
            f" pre_change_peak_rss_mb={before['peak_rss_mb']:.0f}"
            f" pre_change_cpu_s={before['cpu_s']:.2f}"
            f" ratio_s={total / before['total_s']:.2f}"
            f" ratio_cpu={cpu / before['cpu_s']:.2f}"
            f" ratio_rss={peak / before['peak_rss_mb']:.2f}"
            f" (pre-change: commit {before['commit']}, {before['date']})"
        )
    print(line)


# --------------------------------------------------------------------------------------
# Head-and-neck-sized phantom (issue 4 size)
# --------------------------------------------------------------------------------------


#: 30 structures: name -> (role, organ key for the constraint sets, shape)
def hn_structures() -> tuple[dict, tuple]:
    organs: dict[str, tuple[str, str | None]] = {}
    shapes = []

    def add(shape, role, organ=None):
        organs[shape.name] = (role, organ)
        shapes.append(shape)

    add(Sphere("GTV_recurrence", (0.0, 0.0, 10.0), 18.0, "GTV"), "target")
    add(Sphere("PTV_recurrence", (0.0, 0.0, 10.0), 25.0, "PTV"), "target")
    add(Sphere("PTV_nodes_R", (-45.0, 10.0, -30.0), 20.0, "PTV"), "target")
    add(Cylinder("SpinalCord", (0.0, 45.0, -20.0), 5.0, 90.0), "organ_at_risk", "spinal_cord")
    add(Cylinder("SpinalCord_PRV", (0.0, 45.0, -20.0), 8.0, 90.0), "organ_at_risk", "spinal_cord")
    add(Cylinder("Brainstem", (0.0, 30.0, 95.0), 12.0, 18.0), "organ_at_risk", "brainstem")
    add(Sphere("Parotid_L", (55.0, 15.0, 10.0), 16.0), "organ_at_risk", "parotid")
    add(Sphere("Parotid_R", (-55.0, 15.0, 10.0), 16.0), "organ_at_risk", "parotid")
    add(Sphere("Submandibular_L", (40.0, -25.0, -35.0), 11.0), "organ_at_risk", "submandibular")
    add(Sphere("Submandibular_R", (-40.0, -25.0, -35.0), 11.0), "organ_at_risk", "submandibular")
    add(Cylinder("Larynx", (0.0, -20.0, -70.0), 14.0, 20.0), "organ_at_risk", "larynx")
    add(
        Cylinder("Constrictors", (0.0, 15.0, -20.0), 9.0, 35.0),
        "organ_at_risk",
        "pharyngeal_constrictors",
    )
    add(Cylinder("Mucosa", (0.0, 5.0, 0.0), 12.0, 40.0), "organ_at_risk", "pharyngeal_mucosa")
    add(Sphere("OralCavity", (0.0, -45.0, 0.0), 24.0), "organ_at_risk", "oral_mucosa")
    add(Cylinder("Carotid_L", (25.0, 10.0, -20.0), 4.0, 50.0), "organ_at_risk", "internal_carotid")
    add(Cylinder("Carotid_R", (-25.0, 10.0, -20.0), 4.0, 50.0), "organ_at_risk", "internal_carotid")
    add(Sphere("TemporalLobe_L", (45.0, 10.0, 110.0), 22.0), "organ_at_risk", "temporal_lobe")
    add(Sphere("TemporalLobe_R", (-45.0, 10.0, 110.0), 22.0), "organ_at_risk", "temporal_lobe")
    add(
        Cylinder("OpticNerve_L", (15.0, -35.0, 120.0), 2.5, 14.0, axis=(0.3, 1.0, 0.0)),
        "organ_at_risk",
        "optic_nerve",
    )
    add(
        Cylinder("OpticNerve_R", (-15.0, -35.0, 120.0), 2.5, 14.0, axis=(-0.3, 1.0, 0.0)),
        "organ_at_risk",
        "optic_nerve",
    )
    add(Sphere("Chiasm", (0.0, -20.0, 122.0), 5.0), "organ_at_risk", "optic_chiasm")
    add(Sphere("Cochlea_L", (50.0, 25.0, 85.0), 3.0), "organ_at_risk", "cochlea")
    add(Sphere("Cochlea_R", (-50.0, 25.0, 85.0), 3.0), "organ_at_risk", "cochlea")
    add(Sphere("Lens_L", (30.0, -70.0, 125.0), 4.0), "organ_at_risk", "lens")
    add(Sphere("Lens_R", (-30.0, -70.0, 125.0), 4.0), "organ_at_risk", "lens")
    add(Sphere("Mandible_L", (45.0, -30.0, -10.0), 14.0), "organ_at_risk", "mandible")
    add(Sphere("Mandible_R", (-45.0, -30.0, -10.0), 14.0), "organ_at_risk", "mandible")
    add(Cylinder("Esophagus", (0.0, 30.0, -110.0), 8.0, 30.0), "organ_at_risk")
    add(Sphere("Thyroid", (0.0, -10.0, -105.0), 15.0), "organ_at_risk")
    add(Cylinder("Brain", (0.0, 20.0, 135.0), 60.0, 20.0), "organ_at_risk")
    return organs, tuple(shapes)


def hn_phantom() -> Phantom:
    _, shapes = hn_structures()
    reference = dict(
        ct_spacing=(2.0, 2.0, 2.0),
        ct_shape=(160, 256, 256),
        dose_spacing=(2.0, 2.0, 2.0),
        dose_half_extent=(255.0, 255.0, 159.0),  # 256 x 256 x 160 voxels
    )
    first = PhantomCourse(
        label="course 1 (2016, 70 Gy/35 fx)",
        fractions=35,
        prescription_gy=70.0,
        blobs=(
            GaussianBlob((0.0, 5.0, 0.0), 45.0, 70.0),
            GaussianBlob((-45.0, 10.0, -30.0), 30.0, 20.0),
        ),
        to_reference=rigid_matrix((1.5, -1.0, 3.0), (8.0, -5.0, 10.0)),
        ct_spacing=(2.5, 2.5, 3.0),
        ct_shape=(100, 200, 200),
        dose_spacing=(2.5, 2.5, 3.0),
        dose_half_extent=(240.0, 240.0, 150.0),
        date="20160301",
    )
    middle = PhantomCourse(
        label="course 2 (2019, 24 Gy/8 fx)",
        fractions=8,
        prescription_gy=24.0,
        blobs=(GaussianBlob((0.0, 40.0, 30.0), 30.0, 24.0),),
        shares_reference_frame=True,
        ct_spacing=(3.0, 3.0, 3.0),
        ct_shape=(100, 160, 160),
        dose_spacing=(3.0, 3.0, 3.0),
        dose_half_extent=(200.0, 200.0, 140.0),
        dose_center=(3.0, 5.0, 2.0),
        date="20190601",
    )
    last = PhantomCourse(
        label="course 3 (2023, 30 Gy/5 fx)",
        fractions=5,
        prescription_gy=30.0,
        blobs=(GaussianBlob((0.0, 0.0, 10.0), 28.0, 33.0),),
        shares_reference_frame=True,
        date="20230901",
        **reference,
    )
    return Phantom(
        courses=(first, middle, last),
        structures=shapes,
        body_semi_axes=(150.0, 120.0),
        body_half_length=150.0,
        patient_id="REIRRAD-HN-BENCHMARK",
    )


def hn(cache: Path | None) -> None:
    organs, _ = hn_structures()
    with tempfile.TemporaryDirectory() as tmp:
        root = cache or Path(tmp)
        if not (root / "course3" / "RD.dcm").exists():
            t = time.perf_counter()
            # a child process writes the case, so this process's peak memory is the pipeline's
            subprocess.run([sys.executable, __file__, "--write-hn", str(root)], check=True)
            print(f"write case (child process): {time.perf_counter() - t:.1f} s")
        pipeline(root, organs, (35, 8, 5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="128x128x80 CT at 1.5 mm")
    parser.add_argument("--hn", action="store_true", help="head-and-neck size (issue 4 target)")
    parser.add_argument("--cache", type=Path, help="keep/reuse the written --hn case here")
    parser.add_argument("--write-hn", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_hn:
        write_phantom_case(hn_phantom(), args.write_hn)
    elif args.hn:
        hn(args.cache)
    else:
        accuracy(args.large)


if __name__ == "__main__":
    main()
