"""DVH speed and accuracy: reirrad against dicompyler-core 0.5.6.

Run from the repository root::

    .venv/bin/python benchmarks/dvh_vs_dicompyler.py            # full (a few minutes)
    .venv/bin/python benchmarks/dvh_vs_dicompyler.py --quick    # skip dicompyler on Nelms

1. Speed: the DVHs of all structures of the Eclipse example (dicompyler-core test data),
   reading RTDOSE + RTSTRUCT included, with each tool's default settings; best of
   ``--repeat`` runs (default 5; the machine may be shared).  Peak memory: tracemalloc
   peak of the reirrad run (numpy buffers included) and the process's maximum RSS after
   it.
2. Accuracy: errors on the Nelms analytical benchmark (Med Phys 42(8):4435, 2015) for
   reirrad (defaults but ``extremes="end_cap"``: the analytical Dmin/Dmax include the
   half-slice end caps), dicompyler-core (defaults) and dicompyler-core with interpolation
   (0.25 mm in-plane, 2 segments between planes, structure extents).

The last line is ``reirrad_s=<x> dicompyler_s=<y> speedup=<z>``.
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pydicom.dicomio

from reirrad.core.dvh import compute_dvh
from reirrad.io.dicom import read_rtdose, read_rtstruct

# dicompyler-core 0.5.6 imports ``read_file``, which pydicom 3 no longer has
pydicom.dicomio.read_file = pydicom.dcmread  # type: ignore[attr-defined]
from dicompylercore import dicomparser, dvhcalc  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ECLIPSE = DATA / "dicompyler-core-example"
NELMS = DATA / "nelms-dvh-analytical"
COLUMNS = [
    ("volume_cc", "volume"),
    ("dmin_gy", "Dmin"),
    ("dmax_gy", "Dmax"),
    ("dmean_gy", "Dmean"),
    ("d99_gy", "D99%"),
    ("d95_gy", "D95%"),
    ("d5_gy", "D5%"),
    ("d1_gy", "D1%"),
    ("d0_03cc_gy", "D0.03cc"),
]


def reirrad_eclipse() -> dict[str, float]:
    dose = read_rtdose(ECLIPSE / "rtdose.dcm")
    structures = read_rtstruct(ECLIPSE / "rtss.dcm").structures
    return {name: compute_dvh(dose, s).dmean for name, s in structures.items() if not s.is_empty}


def dicompyler_eclipse() -> dict[str, float]:
    rtss = dicomparser.DicomParser(str(ECLIPSE / "rtss.dcm"))
    rtdose = dicomparser.DicomParser(str(ECLIPSE / "rtdose.dcm"))
    out = {}
    for number, info in rtss.GetStructures().items():
        dvh = dvhcalc.get_dvh(rtss.ds, rtdose.ds, number)
        out[info["name"]] = dvh.mean
    return out


def best_of(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def reirrad_nelms_row(row) -> dict[str, float]:
    dose = read_rtdose(NELMS / row["dose_file"])
    structures = read_rtstruct(NELMS / row["structure_file"]).structures
    (s,) = [s for s in structures.values() if not s.is_empty and not s.name.startswith("POI")]
    # the analytical shapes extend half a slice beyond their outer contours: their exact
    # Dmin/Dmax lie on the end-cap faces (reirrad's default reads within the contours)
    dvh = compute_dvh(dose, s, extremes="end_cap")
    out = {"volume_cc": dvh.volume_cc}
    for column, metric in COLUMNS[1:]:
        out[column] = dvh.metric(metric)
    return out


def dicompyler_nelms_row(row, **options) -> dict[str, float]:
    rtss = dicomparser.DicomParser(str(NELMS / row["structure_file"]))
    rtdose = dicomparser.DicomParser(str(NELMS / row["dose_file"]))
    number = [n for n, s in rtss.GetStructures().items() if s["type"] != "POINT"]
    number = [n for n in number if not rtss.GetStructures()[n]["name"].startswith("POI")][0]
    dvh = dvhcalc.get_dvh(rtss.ds, rtdose.ds, number, **options)
    return {
        "volume_cc": dvh.volume,
        "dmin_gy": dvh.min,
        "dmax_gy": dvh.max,
        "dmean_gy": dvh.mean,
        "d99_gy": dvh.statistic("D99").value,
        "d95_gy": dvh.statistic("D95").value,
        "d5_gy": dvh.statistic("D5").value,
        "d1_gy": dvh.statistic("D1").value,
        "d0_03cc_gy": dvh.statistic("D0.03cc").value,
    }


def nelms_summary(label: str, compute) -> None:
    rows = list(csv.DictReader(open(NELMS / "analytical_expected.csv")))
    errors = {c: [] for c, _ in COLUMNS}
    start = time.perf_counter()
    for row in rows:
        got = compute(row)
        for column, _ in COLUMNS:
            expected = float(row[column])
            errors[column].append(100.0 * (got[column] - expected) / expected)
    elapsed = time.perf_counter() - start
    print(f"\nNelms benchmark, {label} ({len(rows)} pairs, {elapsed:.1f} s): |error| in %")
    print(f"{'metric':<10}{'max':>8}{'95th pct':>10}{'median':>8}{'<=1%':>8}{'<=3%':>8}")
    for column, name in COLUMNS:
        a = np.abs(errors[column])
        print(
            f"{name:<10}{a.max():>8.2f}{np.percentile(a, 95):>10.2f}{np.median(a):>8.2f}"
            f"{np.mean(a <= 1) * 100:>7.0f}%{np.mean(a <= 3) * 100:>7.0f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip dicompyler on Nelms")
    options = parser.parse_args()

    reirrad_eclipse()  # warm-up: imports, first-call costs
    tracemalloc.start()
    reirrad_eclipse()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    reirrad_s = best_of(reirrad_eclipse, options.repeat)
    dicompyler_eclipse()
    dicompyler_s = best_of(dicompyler_eclipse, options.repeat)

    ours, theirs = reirrad_eclipse(), dicompyler_eclipse()
    print("Eclipse example, mean dose per structure (Gy):")
    for name in ours:
        print(
            f"  {name:<18}reirrad {ours[name]:8.4f}   dicompyler-core {theirs.get(name, float('nan')):8.4f}"
        )
    print(
        f"\nAll {len(ours)} DVHs of the Eclipse example (read + compute, best of "
        f"{options.repeat}): reirrad {reirrad_s:.3f} s, dicompyler-core {dicompyler_s:.3f} s, "
        f"speedup {dicompyler_s / reirrad_s:.1f}x"
    )
    print(
        f"Peak memory of the reirrad run: {peak / 2**20:.0f} MB (tracemalloc), process max "
        f"RSS after it {rss_mb:.0f} MB"
    )

    nelms_summary("reirrad defaults, extremes=end_cap", reirrad_nelms_row)
    if not options.quick:
        nelms_summary("dicompyler-core defaults", dicompyler_nelms_row)
        nelms_summary(
            "dicompyler-core interpolated (0.25 mm, 2 segments between planes)",
            lambda row: dicompyler_nelms_row(
                row,
                interpolation_resolution=0.25,
                interpolation_segments_between_planes=2,
                use_structure_extents=True,
            ),
        )
    sys.stdout.flush()
    print(
        f"reirrad_s={reirrad_s:.3f} dicompyler_s={dicompyler_s:.3f} "
        f"speedup={dicompyler_s / reirrad_s:.1f}"
    )


if __name__ == "__main__":
    main()
