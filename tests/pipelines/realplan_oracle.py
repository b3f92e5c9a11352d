"""Independent voxel-wise cumulative EQD2 of a two-course case built from one real plan.

A helper for ``tests/test_real_plans.py`` and ``benchmarks/real_plan_check.py``; NOT product
code. It deliberately imports nothing from ``reirrad``: it reads the RTSTRUCT and RTDOSE with
pydicom and computes everything itself, so that an error in reirrad's DVH engine, tissue
model or accumulation cannot be reproduced here by construction.

Method (a point-sampling calculation, the classical "voxel-centre" DVH on a refined lattice)

* Lattice: every dose voxel is split into ``inplane x inplane`` sub-cells in-plane and
  ``subslices`` sub-slices along z; one sample at each sub-cell centre, all of equal volume.
  Samples lie within the dose grid's extent (half a voxel beyond the outer voxel centres).
* Geometry: a sample is inside a structure when its z lies between the structure's first and
  last contour planes (no end caps beyond the outer contours) and its (x, y) is inside the
  contours of the *nearest* contour plane by the even-odd rule (all contours of the plane
  together; holes and islands). The even-odd test is an exact scan-line crossing count.
  ``end_cap="half_slice"`` instead extends the outer planes by half the contour spacing,
  the structure model reirrad's accumulation uses (the tests compare with it; ``"none"``,
  Eclipse's convention, shows how much of a difference is the structure's definition).
  :func:`density` picks finer sampling for smaller structures.
* Dose: trilinear interpolation of the physical dose of each course at the sample (constant
  in the outer half voxel, as the grid's edge voxels).
* Tissue per sample: targets (RTROIInterpretedType PTV, CTV, GTV) over organs at risk; among
  structures of the same kind the lowest alpha/beta and, independently, the least recovery;
  the external contour (EXTERNAL) only where the sample is in no other structure; outside
  every structure the default tissue.
* EQD2 of each course with the sample's own dose per fraction,
  ``EQD2 = D (D/n + a/b) / (2 + a/b)``, the linear-quadratic BED ``D (1 + d/(a/b))`` divided
  by that of 2 Gy fractions (Fowler JF, Br J Radiol 1989;62:679-694, verified), the earlier
  course multiplied by ``1 - recovered fraction`` (50 %: the case's fixed-recovery
  convention, a test input, not a recommendation), the courses added.
* Per structure: Dmean and the volume-weighted quantiles D2%, D50%, D95% (``D_x%``: the dose
  that ``x`` % of the covered volume receives at least) of its covered samples.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import yaml
from numpy.typing import NDArray

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TARGET_TYPES = {"PTV", "CTV", "GTV"}
METRICS = ("Dmean", "D50%", "D95%", "D2%")


# --------------------------------------------------------------------------------------
# The two plans used as two-course cases
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanCase:
    """One real plan used as two courses in one frame (identity mapping).

    Course 1 is the plan's dose scaled to ``c1_dose_gy`` in ``c1_fractions`` at the
    prescription ``prescription_gy``; course 2 the same dose scaled to ``c2_dose_gy`` in
    ``c2_fractions`` at the prescription.
    """

    name: str
    folder: str
    rtdose: str
    rtstruct: str
    prescription_gy: float
    c1_dose_gy: float
    c1_fractions: int
    c2_dose_gy: float = 24.0
    c2_fractions: int = 4
    target_ab: float = 10.0
    organ_ab: float = 3.0
    recovered: float = 0.5


PROSTATE = PlanCase(
    "eclipse-prostate", "eclipse-prostate", "RD.dcm", "RS.dcm",
    prescription_gy=46.0, c1_dose_gy=46.0, c1_fractions=23,
)  # fmt: skip
BREAST = PlanCase(
    "eclipse-breast", "dicompyler-core-example", "rtdose.dcm", "rtss.dcm",
    prescription_gy=14.0, c1_dose_gy=50.0, c1_fractions=25,
)  # fmt: skip
PLANS = (PROSTATE, BREAST)


@dataclass(frozen=True)
class RoiInfo:
    name: str
    interpreted_type: str
    contours: dict[float, list[NDArray[np.float64]]] = field(repr=False)

    @property
    def kind(self) -> str:
        if self.interpreted_type == "EXTERNAL":
            return "external"
        return "target" if self.interpreted_type in TARGET_TYPES else "organ_at_risk"


def read_rois(path: Path) -> dict[str, RoiInfo]:
    """Non-empty ROIs of an RTSTRUCT: name, interpreted type, contours by plane z (mm)."""
    return dict(_read_rois(str(path)))


@functools.lru_cache(maxsize=4)
def _read_rois(path: str) -> dict[str, RoiInfo]:
    ds = pydicom.dcmread(path)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    types = {
        int(o.ReferencedROINumber): str(getattr(o, "RTROIInterpretedType", "") or "")
        for o in ds.RTROIObservationsSequence
    }
    out = {}
    for rc in ds.ROIContourSequence:
        number = int(rc.ReferencedROINumber)
        planes: dict[float, list[NDArray[np.float64]]] = {}
        for c in getattr(rc, "ContourSequence", []) or []:
            raw = c.get_item("ContourData").value  # raw DS text: much faster than DSfloat
            text = raw.decode("ascii") if isinstance(raw, bytes) else "\\".join(map(str, raw))
            xyz = np.array(text.split("\\"), dtype=float).reshape(-1, 3)
            planes.setdefault(round(float(xyz[0, 2]), 3), []).append(xyz[:, :2])
        if planes:
            out[names[number]] = RoiInfo(names[number], types.get(number, ""), planes)
    return out


def write_case(
    plan: PlanCase,
    root: Path,
    gap_days: int = 730,
    crop_columns: int = 0,
    body_constraint: bool = False,
) -> Path:
    """Write the two rescaled RTDOSEs and the case file under ``root``; return the case path.

    Each RTDOSE is the plan's file with only DoseGridScaling changed (course dose /
    prescription times the original scaling); everything else is kept. ``crop_columns`` > 0
    drops that many leading columns (lowest x) of both grids, to test partial coverage.
    ``body_constraint``: a cumulative EQD2 Dmax constraint on the external contour (limit
    1000 Gy, never reached, not a clinical limit) so that its verdict flags can be checked.
    """
    src = DATA / plan.folder
    root.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(str(src / plan.rtdose))
    if crop_columns:
        ds = _crop_columns(ds, crop_columns)
    scale0 = float(ds.DoseGridScaling)
    for number, dose in ((1, plan.c1_dose_gy), (2, plan.c2_dose_gy)):
        out = copy.deepcopy(ds)
        out.DoseGridScaling = f"{scale0 * dose / plan.prescription_gy:.10g}"
        out.save_as(str(root / f"RD_course{number}.dcm"))
    rois = read_rois(src / plan.rtstruct)
    structures = []
    for roi in rois.values():
        if roi.kind == "target":
            spec = {"name": roi.name, "role": "target", "alpha_beta": plan.target_ab}
            spec["recovery"] = "none"
        else:  # organs and the external contour (EXTERNAL: reirrad lets it override nothing)
            spec = {"name": roi.name, "role": "organ_at_risk", "alpha_beta": plan.organ_ab}
            spec["recovery"] = "marinova2026-fixed-50"
        structures.append(spec)
    start1 = _dt.date(2020, 1, 6)
    end1 = start1 + _dt.timedelta(days=7 * (plan.c1_fractions // 5) + 4)
    start2 = end1 + _dt.timedelta(days=gap_days)
    end2 = start2 + _dt.timedelta(days=plan.c2_fractions - 1)
    rtstruct = str(src / plan.rtstruct)
    case = {
        "reirrad_case": 1,
        "patient": {"id": f"REALPLAN-{plan.name}"},
        "tissue_defaults": {
            "target": {"alpha_beta": plan.target_ab, "recovery": "none"},
            "organ_at_risk": {"alpha_beta": plan.organ_ab, "recovery": "marinova2026-fixed-50"},
        },
        "structures": structures,
        "courses": [
            {
                "id": "C1",
                "start": start1.isoformat(),
                "end": end1.isoformat(),
                "fractions": plan.c1_fractions,
                "dicom": {"rtdose": "RD_course1.dcm", "rtstruct": rtstruct},
            },
            {
                "id": "C2",
                "start": start2.isoformat(),
                "end": end2.isoformat(),
                "fractions": plan.c2_fractions,
                "dicom": {"rtdose": "RD_course2.dcm", "rtstruct": rtstruct},
            },
        ],  # fmt: skip
        "analysis": {
            "default_tissue": {"alpha_beta": plan.organ_ab, "recovery": "marinova2026-fixed-50"}
        },
        "constraints": {"sets": [], "custom": []},
    }
    if body_constraint:
        case["constraints"]["custom"] = [
            {
                "id": f"scaffold-{roi.name}",
                "structure": roi.name,
                "metric": "Dmax",
                "quantity": "eqd2",
                "scope": "cumulative",
                "comparator": "<=",
                "limit": 1000,
                "source": "test scaffold, not a clinical limit",
                "evidence": "none",
            }  # fmt: skip
            for roi in rois.values()
            if roi.kind == "external"
        ]
    path = root / "case.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


def _crop_columns(ds: pydicom.Dataset, count: int) -> pydicom.Dataset:
    """The RTDOSE without its first ``count`` columns (the grid starts further along x)."""
    out = copy.deepcopy(ds)
    pixels = ds.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    kept = np.ascontiguousarray(pixels[:, :, count:])
    orient = np.asarray(ds.ImageOrientationPatient, dtype=float)
    position = np.asarray(ds.ImagePositionPatient, dtype=float)
    position = position + orient[:3] * float(ds.PixelSpacing[1]) * count
    out.ImagePositionPatient = [f"{v:.7g}" for v in position]
    out.Columns = kept.shape[2]
    out.PixelData = kept.astype(pixels.dtype).tobytes()
    return out


# --------------------------------------------------------------------------------------
# Dose grid and sampling lattice
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoseGrid:
    """An axial RTDOSE: values ``[k, j, i]`` in Gy, origin (x, y, z) of voxel 0, spacings."""

    values: NDArray[np.float32] = field(repr=False)
    origin: NDArray[np.float64]
    spacing: NDArray[np.float64]  # (dx, dy, dz)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.values.shape)


def read_dose(path: Path, scale: float = 1.0) -> DoseGrid:
    """Physical dose of an axial RTDOSE times ``scale`` (no checks beyond axial and even z)."""
    ds = pydicom.dcmread(str(path))
    orient = np.asarray(ds.ImageOrientationPatient, dtype=float)
    assert np.allclose(orient, [1, 0, 0, 0, 1, 0]), "oracle handles axial HFS grids only"
    offsets = np.asarray(ds.GridFrameOffsetVector, dtype=float)
    dz = np.diff(offsets)
    assert np.allclose(dz, dz[0]), "oracle needs evenly spaced dose planes"
    values = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling) * scale
    if values.ndim == 2:
        values = values[None]
    origin = np.asarray(ds.ImagePositionPatient, dtype=float)
    if offsets[0] != 0:  # absolute z offsets
        origin[2] = offsets[0]
    dy, dx = (float(v) for v in ds.PixelSpacing)
    return DoseGrid(values.astype(np.float32), origin, np.array([dx, dy, float(dz[0])]))


def _subcentres(n_voxels: int, split: int) -> NDArray[np.float64]:
    """Sub-cell centres in index units: each voxel [i - 1/2, i + 1/2] split in ``split``."""
    offsets = (np.arange(split) + 0.5) / split - 0.5
    return (np.arange(n_voxels)[:, None] + offsets[None, :]).ravel()


# --------------------------------------------------------------------------------------
# Even-odd point-in-polygon on a lattice plane (scan-line crossing count)
# --------------------------------------------------------------------------------------


def even_odd_mask(
    polygons: list[NDArray[np.float64]], xs: NDArray[np.float64], ys: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Inside test of the points (ys[:, None], xs[None, :]) by the even-odd rule over all
    polygons together: a point is inside when a ray towards +x crosses an odd number of
    edges. Exact crossings (half-open in y, so a vertex on the scan line counts once)."""
    starts = np.concatenate(polygons)
    ends = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    x0, y0, x1, y1 = starts[:, 0], starts[:, 1], ends[:, 0], ends[:, 1]
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    mask = np.zeros((ys.size, xs.size), dtype=bool)
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    rows = np.nonzero((ys >= lo.min()) & (ys < hi.max()))[0]
    if rows.size == 0:
        return mask
    y = ys[rows][:, None]
    crosses = (y >= lo[None, :]) & (y < hi[None, :])
    r, e = np.nonzero(crosses)
    xc = x0[e] + (ys[rows][r] - y0[e]) * (x1[e] - x0[e]) / (y1[e] - y0[e])
    # the points of a row strictly left of a crossing are one crossing more "inside"
    col = np.searchsorted(xs, xc, side="left")  # first column with x >= xc
    flips = np.zeros((rows.size, xs.size + 1), dtype=np.int32)
    np.add.at(flips, (r, col), 1)
    # number of crossings with xc > x  ==  total - crossings with xc <= x
    left = np.cumsum(flips, axis=1)[:, :-1]  # crossings with xc <= x (col <= column index)
    total = flips.sum(axis=1)[:, None]
    mask[rows] = ((total - left) % 2) == 1
    return mask


# --------------------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleStructure:
    name: str
    kind: str
    volume_cc: float  # inside the structure (whole, with and without dose)
    covered_fraction: float  # share of the structure inside the dose grid's extent
    samples: int  # covered samples
    metrics: dict[str, float]
    values: NDArray[np.float64] | None = field(default=None, repr=False)

    def volume_fraction_at_least(self, dose: float) -> float:
        """Share of the covered samples with a cumulative EQD2 >= ``dose``."""
        return float(np.mean(self.values >= dose))


def _eqd2(d: NDArray, n: int, ab: NDArray | float) -> NDArray:
    return d * (d / n + ab) / (2.0 + ab)


def _plane_lookup(roi: RoiInfo, end_cap: str):
    zs = np.array(sorted(roi.contours))
    spacing = float(np.median(np.diff(zs))) if zs.size > 1 else 0.0
    cap = 0.5 * spacing if end_cap == "half_slice" else 0.0
    return zs, spacing, zs[0] - cap, zs[-1] + cap


def _trilinear_points(
    volumes: list[NDArray], k: float, j: NDArray, i: NDArray
) -> list[NDArray[np.float64]]:
    """Trilinear values of each volume (same shape) at index points (k scalar, j and i
    arrays); beyond the outer voxel centres the edge value (constant in the outer half
    voxel)."""
    nk, nj, ni = volumes[0].shape

    def split(c, n):
        c = np.clip(c, 0.0, n - 1.0)
        lo = np.minimum(np.floor(c).astype(np.int64), max(n - 2, 0))
        return lo, np.minimum(lo + 1, n - 1), c - lo

    k0, k1, tk = split(np.float64(k), nk)
    j0, j1, tj = split(j, nj)
    i0, i1, ti = split(i, ni)
    corners = [
        (j0 * ni + i0, (1 - tj) * (1 - ti)),
        (j0 * ni + i1, (1 - tj) * ti),
        (j1 * ni + i0, tj * (1 - ti)),
        (j1 * ni + i1, tj * ti),
    ]
    out = []
    for values in volumes:
        total = np.zeros(j.shape)
        for kk, wk in ((k0, 1 - tk), (k1, tk)):
            if wk == 0:
                continue
            plane = values[int(kk)].ravel()
            for index, w in corners:
                total += wk * w * plane[index]
        out.append(total)
    return out


def oracle(
    case_dir: Path,
    plan: PlanCase,
    inplane: int = 3,
    subslices: int = 4,
    end_cap: str = "none",
    names: list[str] | None = None,
    kinds: dict[str, str] | None = None,
    keep_samples: bool = False,
) -> dict[str, OracleStructure]:
    """Cumulative EQD2 metrics of the structures ``names`` (default all) of the case that
    :func:`write_case` wrote in ``case_dir`` (its two RTDOSE files, on one grid).

    The lattice covers the selected structures' bounding box; the tissue of each sample
    still comes from every structure of the RTSTRUCT. ``kinds`` overrides the kind
    (target / organ_at_risk / external) of named ROIs, for diagnosis only.
    ``keep_samples`` keeps each structure's sample values (``OracleStructure.values``).
    """
    rois = read_rois(DATA / plan.folder / plan.rtstruct)
    for name, kind in (kinds or {}).items():
        roi = rois[name]
        rois[name] = RoiInfo(
            roi.name, {"target": "PTV", "external": "EXTERNAL"}.get(kind, ""), roi.contours
        )
    doses = [read_dose(case_dir / f"RD_course{n}.dcm") for n in (1, 2)]
    grid = doses[1]
    for other in doses[:1]:
        assert other.shape == grid.shape and np.allclose(other.origin, grid.origin)
    nk, nj, ni = grid.shape
    fractions = (plan.c1_fractions, plan.c2_fractions)
    lookups = {name: _plane_lookup(roi, end_cap) for name, roi in rois.items()}
    selected = list(rois) if names is None else list(names)
    sx, sy, sz = grid.spacing
    xy = np.concatenate([np.concatenate(p) for n in selected for p in rois[n].contours.values()])
    zmin = min(lookups[n][2] for n in selected)
    zmax = max(lookups[n][3] for n in selected)

    def axis(lo: float, hi: float, origin: float, step: float, split: int):
        first = int(np.floor((lo - origin) / step)) - 1
        last = int(np.ceil((hi - origin) / step)) + 1
        return _subcentres(last - first + 1, split) + first

    ii = axis(xy[:, 0].min(), xy[:, 0].max(), grid.origin[0], sx, inplane)
    jj = axis(xy[:, 1].min(), xy[:, 1].max(), grid.origin[1], sy, inplane)
    kk = axis(zmin, zmax, grid.origin[2], sz, subslices)
    xs = grid.origin[0] + ii * sx
    ys = grid.origin[1] + jj * sy
    in_grid_xy = ((jj >= -0.5) & (jj <= nj - 0.5))[:, None] & ((ii >= -0.5) & (ii <= ni - 0.5))
    cell_cc = sx * sy * sz / (inplane * inplane * subslices) / 1000.0
    values: dict[str, list[NDArray]] = {n: [] for n in selected}
    counts = dict.fromkeys(selected, 0)
    cache: dict[tuple[str, float], NDArray[np.bool_]] = {}
    for k in kk:
        z = grid.origin[2] + k * sz
        inside = {}
        for name, roi in rois.items():
            zs, spacing, z_lo, z_hi = lookups[name]
            if z < z_lo - 1e-6 or z > z_hi + 1e-6:
                continue
            plane = float(zs[np.argmin(np.abs(zs - z))])
            if zs.size > 1 and abs(plane - z) > 0.5 * spacing + 1e-6 and z_lo < z < z_hi:
                continue  # a gap between separate pieces of one ROI
            key = (name, plane)
            if key not in cache:
                cache[key] = even_odd_mask(roi.contours[plane], xs, ys)
            if cache[key].any():
                inside[name] = cache[key]
        wanted = [n for n in selected if n in inside]
        if not wanted:
            continue
        for name in wanted:
            counts[name] += int(inside[name].sum())
        if not -0.5 <= k <= nk - 0.5:
            continue
        need = np.logical_or.reduce([inside[n] for n in wanted]) & in_grid_xy
        rows, cols = np.nonzero(need)
        if rows.size == 0:
            continue
        flat = {name: m[rows, cols] for name, m in inside.items()}
        ab, rec = _tissue(rois, flat, plan, rows.shape)
        physical = _trilinear_points([g.values for g in doses], k, jj[rows], ii[cols])
        total = np.zeros(rows.shape)
        for course, (d, n) in enumerate(zip(physical, fractions, strict=True)):
            part = _eqd2(d, n, ab)
            total += part * (1.0 - rec) if course == 0 else part
        for name in wanted:
            values[name].append(total[flat[name]])
    out = {}
    for name in selected:
        v = np.concatenate(values[name]) if values[name] else np.zeros(0)
        metrics = {
            "Dmean": float(v.mean()),
            "D50%": float(np.quantile(v, 0.50)),
            "D95%": float(np.quantile(v, 0.05)),
            "D2%": float(np.quantile(v, 0.98)),
        }
        covered = v.size / counts[name] if counts[name] else 0.0
        out[name] = OracleStructure(
            name, rois[name].kind, counts[name] * cell_cc, covered, v.size, metrics,
            v if keep_samples else None,
        )  # fmt: skip
    return out


def _tissue(rois, inside, plan: PlanCase, shape) -> tuple[NDArray, NDArray]:
    """alpha/beta and recovered fraction of course 1 per sample of one plane.

    Targets over organs at risk; among the structures of the winning kind the lowest
    alpha/beta and, independently, the least recovery; the external contour only where no
    other structure is; outside every structure the organ tissue (the case's default)."""
    tissue = {
        "target": (plan.target_ab, 0.0),
        "organ_at_risk": (plan.organ_ab, plan.recovered),
        "external": (plan.organ_ab, plan.recovered),
    }
    ab = np.full(shape, plan.organ_ab)
    rec = np.full(shape, plan.recovered)
    claimed = np.zeros(shape, dtype=bool)
    for kind in ("target", "organ_at_risk", "external"):
        here = [m for name, m in inside.items() if rois[name].kind == kind]
        if not here:
            continue
        member = np.logical_or.reduce(here) & ~claimed
        kind_ab = np.full(shape, np.inf)
        kind_rec = np.full(shape, np.inf)
        for name, m in inside.items():
            if rois[name].kind == kind:
                a, f = tissue[kind]
                kind_ab[m] = np.minimum(kind_ab[m], a)
                kind_rec[m] = np.minimum(kind_rec[m], f)
        ab[member] = kind_ab[member]
        rec[member] = kind_rec[member]
        claimed |= member
    return ab, rec


def _approximate_volume_cc(roi: RoiInfo) -> float:
    """Shoelace area of each plane (even-odd: contours add) times the contour spacing."""
    zs = sorted(roi.contours)
    spacing = float(np.median(np.diff(zs))) if len(zs) > 1 else 1.0
    area = 0.0
    for polys in roi.contours.values():
        for p in polys:
            x, y = p[:, 0], p[:, 1]
            area += 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return area * spacing / 1000.0


def density(roi: RoiInfo) -> tuple[int, int]:
    """Sampling (in-plane split, sub-slices) by size: finer for small structures.

    Sub-cell sizes on a 2.5 x 2.5 x 3 mm grid: 1.25 x 1.25 x 1.5 mm for BODY and structures
    over 1 l, 0.83 x 0.83 x 1.5 mm over 100 cc, 0.83 x 0.83 x 0.75 mm over 5 cc, 0.42 x 0.42
    x 0.375 mm below (a 0.5 cc structure then has about 7 000 samples).
    """
    volume = _approximate_volume_cc(roi)
    if roi.kind == "external" or volume > 1000:
        return 2, 2
    if volume > 100:
        return 3, 2
    if volume > 5:
        return 3, 4
    return 6, 8


def oracle_all(
    case_dir: Path,
    plan: PlanCase,
    end_cap: str = "none",
    names: list[str] | None = None,
    keep_samples: bool = False,
) -> dict[str, OracleStructure]:
    """:func:`oracle` for every structure (or ``names``), each at its :func:`density`."""
    rois = read_rois(DATA / plan.folder / plan.rtstruct)
    groups: dict[tuple[int, int], list[str]] = {}
    for name in names or list(rois):
        groups.setdefault(density(rois[name]), []).append(name)
    out = {}
    for (inplane, subslices), group in groups.items():
        out.update(
            oracle(
                case_dir,
                plan,
                inplane,
                subslices,
                end_cap=end_cap,
                names=group,
                keep_samples=keep_samples,
            )  # fmt: skip
        )
    return {name: out[name] for name in names or list(rois)}


@dataclass(frozen=True)
class Row:
    """One structure metric: reirrad's value, the oracle's, their difference in % of the
    oracle, and (quantiles) the oracle's volume share at reirrad's dose."""

    plan: str
    structure: str
    metric: str
    reirrad: float
    oracle: float
    volume_at_reirrad_pct: float | None = None

    @property
    def diff_pct(self) -> float:
        return 100.0 * (self.reirrad - self.oracle) / self.oracle

    @property
    def nominal_pct(self) -> float | None:
        return {"D50%": 50.0, "D95%": 95.0, "D2%": 2.0}.get(self.metric)


def compare(plan_name: str, voxel, results: dict[str, OracleStructure]) -> list[Row]:
    """Rows for every structure of ``results`` in reirrad's ``VoxelAssessment`` ``voxel``
    (duck-typed: ``voxel.structure(name).metric(m).eqd2_gy``)."""
    rows = []
    for name, result in results.items():
        structure = voxel.structure(name)
        for metric in METRICS:
            value = float(structure.metric(metric).eqd2_gy)
            volume = None
            if result.values is not None and metric != "Dmean":
                volume = 100.0 * result.volume_fraction_at_least(value)
            rows.append(Row(plan_name, name, metric, value, result.metrics[metric], volume))
    return rows


def table(rows: list[Row]) -> str:
    """The comparison as a fixed-width text table."""
    lines = [
        f"{'plan':22s} {'structure':16s} {'metric':6s} {'reirrad':>9s} {'oracle':>9s} "
        f"{'diff %':>7s} {'V>=reirrad %':>12s}"
    ]
    for r in rows:
        volume = "" if r.volume_at_reirrad_pct is None else f"{r.volume_at_reirrad_pct:.2f}"
        volume += f" ({r.nominal_pct:g})" if r.nominal_pct is not None and volume else ""
        lines.append(
            f"{r.plan:22s} {r.structure:16s} {r.metric:6s} {r.reirrad:9.3f} {r.oracle:9.3f} "
            f"{r.diff_pct:+7.2f} {volume:>12s}"
        )
    return "\n".join(lines)
