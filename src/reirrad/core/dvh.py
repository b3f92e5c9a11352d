"""Dose-volume histograms with partial volumes, intra-voxel dose and explicit end caps.

Why not voxel centres
---------------------
Calculators that test voxel centres only (e.g. dicompyler-core) get volumes and the
near-minimum / near-maximum doses of small structures wrong by several percent (Nelms BE et
al., "Methods, software and datasets to verify DVH calculations against analytical values",
Med Phys 42(8):4435, 2015).  This engine integrates the dose over the structure instead:

Geometry (structure model)
    A structure is a stack of closed planar contours.  Between two contiguous contour
    planes the structure is a linear blend of their cross-sections: each plane's weight
    falls linearly from 1 on its own plane to 0 on the neighbouring plane (so the volume
    equals the familiar slab sum, area x spacing, but a shape that shrinks towards its end
    puts its volume where it shrinks).  Beyond the first and last plane of a contiguous run
    the outer contour is extruded by ``end_cap`` (``"half_slice"``: half the contour
    spacing, the convention of the Nelms analytical benchmark whose exact volumes include
    half-slice end caps; ``"none"``: the structure stops at its outer contours, which is
    what the Eclipse DVHs of the example plan match; or a number of mm).  Planes further
    apart than 1.5 nominal spacings start a new capped piece.  Several contours on one plane
    combine by the even-odd rule (holes, islands).  Planes may fall anywhere relative to
    the dose planes.

In-plane coverage (partial volumes)
    All planes are scan-converted at once with ``supersampling`` (n) bands per dose-voxel
    row, each sampled by two scan lines at the 2-point Gauss-Legendre positions.  Along a
    scan line the exact polygon crossings are used, so the covered length of each of the n
    sub-cells per voxel column is exact, not a centre test.  Fully covered voxels are then
    represented by their four quarters instead of n x n sub-cells.  Contours too small to
    meet a scan line (tips of spheres and cones) are kept as one sample at their centroid
    with their exact area.  n is chosen for a sub-cell of about ``resolution_mm`` (0.5 mm)
    within a sample budget.

Dose inside the voxel (sub-voxel method)
    The dose is trilinearly interpolated (constant in the outer half voxel).  Along the
    contour-plane axis it is piecewise linear between dose planes, so each sub-cell is
    split at the dose planes (and at its own plane, where the blend weight bends) into
    segments whose dose and weight both run linearly from one end to the other: a segment
    contributes a distribution with linear density between its end doses, not a point.  The
    in-plane dose variation across the sub-cell (derivatives of the bilinear patch) widens
    it to the same variance.  The cumulative histogram of that mixture is computed exactly
    at every bin edge (sums of ramps and squared ramps, O(samples + bins)), so metrics read
    between bins are linear interpolations of an almost exact curve.  Dmean is the exact
    weighted mean over the modelled structure (end caps included).

Dmin and Dmax (convention: ``extremes``)
    The extremes of the interpolated dose over the contour vertices (on their slab faces,
    their own plane and the dose planes in between) and over the segment end points, taken
    only at points of one of two extents:

    ``"contoured"`` (default)
        Points on the contour planes and between contiguous planes, never beyond the outer
        planes of a run: a Dmax is never read outside the drawn contours.  A hot end-cap
        face half a slice outside an organ (an optic nerve in a steep gradient along the
        axis) no longer sets the Dmax.  Measured on the two Eclipse plans of the test
        data (no published statement on Eclipse's end caps found): its volumes lie
        between those without and with half-slice caps (none to midway), and its Dmax and
        Dmin of all 15 structures agree with this convention within the dose change over
        half a voxel (``benchmarks/dmax_vs_planning_systems.py``, ``docs/dicom.md``).
    ``"end_cap"``
        All points of the modelled structure, end-cap faces included: the exact extremes
        of the Nelms analytical shapes, which extend half a slice beyond their outer
        contours (``tests/test_dvh_validation.py`` uses it).

    The histogram is that of the modelled volume (``end_cap``) with every dose limited to
    [Dmin, Dmax], so ``D0%`` = Dmax and ``D100%`` = Dmin under either convention: with
    ``"contoured"``, end-cap volume hotter than Dmax counts at Dmax (near-maximum metrics
    such as ``D0.035cc`` never exceed Dmax), and the histogram inside [Dmin, Dmax] is the
    same under both conventions.  ``DVH.provenance`` records the convention
    (``"extremes"``), the extremes under both (``"extremes_gy"``) and where the reported
    ones lie (``"dmin_at_mm"``, ``"dmax_at_mm"``, patient coordinates).

Dose bins
    0.01 Gy (finer below 20 Gy Dmax, at least ~2000 bins), but never more than
    ``_MAX_BINS`` (20 000) bins: above 200 Gy the width grows with Dmax (1-2-5 steps), so
    the memory of a DVH does not depend on the dose (e.g. a dose in cGy labelled Gy).

Voxel method (large structures)
    A structure of more than ``voxel_method_above`` dose voxels (default 20 000) uses the
    exact partial-volume occupancy of every voxel and the voxel-centre dose, spread
    uniformly with the variance of a linear dose across the voxel.  The boundary voxels are
    a small part of such a structure; this keeps BODY-size structures fast.

Coverage
    Volume outside the dose grid (whose voxels extend half a spacing beyond the outer voxel
    centres) has no dose.  It is never dropped silently: ``DVH.volume_cc`` is the whole
    structure, ``DVH.covered_fraction`` the part inside the grid, and the histogram (and the
    % of volume metrics) refer to the covered part; a warning is recorded in
    ``DVH.provenance["warnings"]``.  A structure with no volume inside the grid raises
    :class:`~reirrad.errors.InputError`.

Metrics (grammar: :func:`reirrad.core.metrics.parse_metric`)
    ``D<x>%`` / ``D<x>cc`` is the highest dose ``D`` such that the volume receiving at least
    ``D`` is ``>= x`` (so ``D100%`` = Dmin, ``D0%`` = Dmax, ICRU 91 near-maximum
    ``D0.035cc``); a volume larger than the structure gives Dmin.  ``V<x>Gy`` is the volume
    receiving at least ``x`` Gy.  ICRU Report 83 (2010) homogeneity index
    ``HI = (D2% - D98%) / D50%``; Paddick conformity index ``CI = TV_PIV^2 / (TV * PIV)``
    (Paddick I, J Neurosurg 93 Suppl 3:219-222, 2000); Paddick gradient index
    ``GI = PIV_50% / PIV`` (Paddick I, Lippitz B, J Neurosurg 105 Suppl:194-201, 2006).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from reirrad.core.geometry import Dose, Grid
from reirrad.core.metrics import Metric, parse_metric
from reirrad.errors import InputError

__all__ = [
    "DVH",
    "compute_dvh",
    "gradient_index",
    "homogeneity_index",
    "isodose_volume",
    "paddick_ci",
    "structure_occupancy",
]

#: Contours whose plane coordinate (in dose-slice units) differs by less than this are one plane.
_PLANE_TOL = 1e-3
#: A gap between contour planes larger than this many nominal spacings splits the structure
#: into separately capped pieces (e.g. two lesions in one ROI).
_GAP_FACTOR = 1.5
#: Default size of an in-plane sub-cell, mm.  Thanks to the exact covered length along the
#: scan lines the Nelms errors do not change between 0.2 and 1 mm (measured); 0.5 mm leaves
#: a margin.  Bounded by ``max_samples``.
_DEFAULT_RESOLUTION_MM = 0.5
_DEFAULT_MAX_SAMPLES = 300_000
_MAX_SUPERSAMPLING = 15
_VOXEL_METHOD_ABOVE = 20_000
#: Largest numeric end cap (mm): a plausibility bound (the usual caps are half a slice,
#: 0.5-2.5 mm); not a published number.
_MAX_END_CAP_MM = 50.0
#: Upper bound on the number of dose bins: 0.01 Gy bins up to 200 Gy, wider above, so a
#: stored histogram never takes more than ~0.3 MB whatever the dose (e.g. cGy labelled Gy).
_MAX_BINS = 20_000


class ContourSet(Protocol):
    """What the engine needs of a structure (``reirrad.core.structures.Structure`` has it)."""

    name: str
    contours: Sequence[NDArray[np.float64]]


# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DVH:
    """A cumulative dose-volume histogram and the exact summary statistics of a structure.

    Attributes
    ----------
    structure
        Name of the structure.
    edges
        Dose bin edges, Gy, ascending from 0 (``len(edges) = n_bins + 1``).
    cumulative_cc
        Volume (cc) of the covered part of the structure receiving at least ``edges[m]``.
    volume_cc
        Whole structure volume, cc, including any part outside the dose grid.
    covered_fraction
        Fraction of ``volume_cc`` inside the dose grid (the histogram describes that part).
    dmin, dmax, dmean
        Minimum, maximum and mean dose (Gy) over the covered part.
    provenance
        Settings and facts: end cap, supersampling, bin width, sample count, dose source,
        dose quantity, warnings.
    """

    structure: str
    edges: NDArray[np.float64] = field(repr=False)
    cumulative_cc: NDArray[np.float64] = field(repr=False)
    volume_cc: float
    covered_fraction: float
    dmin: float
    dmax: float
    dmean: float
    provenance: dict = field(default_factory=dict, repr=False)

    @property
    def covered_volume_cc(self) -> float:
        """Volume (cc) of the part of the structure inside the dose grid."""
        return float(self.cumulative_cc[0]) if self.cumulative_cc.size else 0.0

    @property
    def bin_width(self) -> float:
        """Width of the dose bins, Gy."""
        return float(self.edges[1] - self.edges[0])

    @property
    def cumulative_percent(self) -> NDArray[np.float64]:
        """Cumulative DVH in % of the covered volume, at ``edges``."""
        total = self.covered_volume_cc
        return 100.0 * self.cumulative_cc / total if total > 0 else self.cumulative_cc * 0.0

    @property
    def differential(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Differential DVH: ``(bin_centres_gy, volume_cc_per_bin)``."""
        centres = 0.5 * (self.edges[:-1] + self.edges[1:])
        return centres, -np.diff(self.cumulative_cc)

    @property
    def differential_percent(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Differential DVH in % of the covered volume per bin."""
        centres, volume = self.differential
        total = self.covered_volume_cc
        return centres, (100.0 * volume / total if total > 0 else volume * 0.0)

    def volume_at_dose(self, dose_gy: float) -> float:
        """Volume (cc) receiving at least ``dose_gy`` (linear between bin edges)."""
        if dose_gy <= self.dmin:
            return self.covered_volume_cc
        if dose_gy > self.dmax:
            return 0.0
        return float(np.interp(dose_gy, self.edges, self.cumulative_cc))

    def dose_at_volume(self, volume_cc: float) -> float:
        """Highest dose ``D`` (Gy) such that at least ``volume_cc`` receives ``>= D``."""
        total = self.covered_volume_cc
        if volume_cc >= total:
            return self.dmin
        if volume_cc <= 0:
            return self.dmax
        cum = self.cumulative_cc
        # first edge whose cumulative volume falls below the target (cum is non-increasing)
        m = int(np.searchsorted(-cum, -volume_cc, side="right"))
        if m <= 0:
            return self.dmin
        if m >= cum.size:
            return self.dmax
        upper, lower = cum[m - 1], cum[m]
        t = (upper - volume_cc) / (upper - lower) if upper > lower else 0.0
        dose = self.edges[m - 1] + t * (self.edges[m] - self.edges[m - 1])
        return float(min(max(dose, self.dmin), self.dmax))

    def dose_at_percent(self, percent: float) -> float:
        """``D<percent>%`` in Gy."""
        return self.dose_at_volume(self.covered_volume_cc * percent / 100.0)

    def metric(self, name: str | Metric, *, reference_dose: float | None = None) -> float:
        """Value of one metric (grammar of :func:`~reirrad.core.metrics.parse_metric`).

        Parameters
        ----------
        name
            e.g. ``"Dmean"``, ``"D95%"``, ``"D0.035cc"``, ``"V20Gy"``, ``"V20Gy[cc]"``,
            ``"V95%"``.
        reference_dose
            Gy; needed by ``V<x>%`` metrics (x % of this dose).

        Returns
        -------
        float
            Gy for dose metrics; % of the covered volume or cc for volume metrics.
        """
        metric = name if isinstance(name, Metric) else parse_metric(name)
        if metric.kind == "mean":
            return self.dmean
        if metric.kind == "max":
            return self.dmax
        if metric.kind == "min":
            return self.dmin
        if metric.kind == "dose_at_volume":
            if metric.unit == "%":
                return self.dose_at_percent(float(metric.value))
            return self.dose_at_volume(float(metric.value))
        # volume at dose
        if metric.unit == "Gy":
            level = float(metric.value)
        else:
            if reference_dose is None or not reference_dose > 0:
                raise InputError(
                    f"metric {metric.name}: a reference (prescription) dose in Gy is needed "
                    "for V<x>% metrics",
                    field="reference_dose",
                )
            level = float(metric.value) / 100.0 * float(reference_dose)
        volume = self.volume_at_dose(level)
        if metric.result_unit == "cc":
            return volume
        total = self.covered_volume_cc
        return 100.0 * volume / total if total > 0 else 0.0

    def metrics(
        self, names: Iterable[str | Metric], *, reference_dose: float | None = None
    ) -> dict[str, float]:
        """Several metrics at once, keyed by the name as given."""
        return {str(n): self.metric(n, reference_dose=reference_dose) for n in names}


# --------------------------------------------------------------------------------------
# Indices
# --------------------------------------------------------------------------------------


def homogeneity_index(dvh: DVH) -> float:
    """ICRU Report 83 (2010) homogeneity index ``(D2% - D98%) / D50%`` (0 = homogeneous)."""
    d50 = dvh.dose_at_percent(50.0)
    if d50 <= 0:
        raise InputError(f"{dvh.structure}: D50% is 0 Gy, the homogeneity index is undefined")
    return (dvh.dose_at_percent(2.0) - dvh.dose_at_percent(98.0)) / d50


def paddick_ci(target: DVH, prescription_dose: float, piv_cc: float) -> float:
    """Paddick conformity index ``TV_PIV^2 / (TV * PIV)``.

    Paddick I, "A simple scoring ratio to index the conformity of radiosurgical treatment
    plans", J Neurosurg 93 (Suppl 3):219-222, 2000.

    Parameters
    ----------
    target
        DVH of the target (TV = its covered volume).
    prescription_dose
        Gy; TV_PIV is the target volume receiving at least this dose.
    piv_cc
        Prescription isodose volume, cc (see :func:`isodose_volume`).
    """
    tv = target.covered_volume_cc
    if tv <= 0 or piv_cc <= 0:
        return 0.0
    tv_piv = target.volume_at_dose(prescription_dose)
    return tv_piv**2 / (tv * piv_cc)


def gradient_index(piv_cc: float, piv_half_cc: float) -> float:
    """Paddick gradient index ``PIV_50% / PIV`` (volume of half the prescription isodose
    over the prescription isodose volume).

    Paddick I, Lippitz B, "A simple dose gradient measurement tool to complement the
    conformity index", J Neurosurg 105 (Suppl):194-201, 2006.
    """
    if piv_cc <= 0:
        raise InputError("gradient index: the prescription isodose volume is 0")
    return piv_half_cc / piv_cc


def isodose_volume(
    dose: Dose,
    level_gy: float,
    within: ContourSet | None = None,
    *,
    supersampling: int | None = None,
) -> float:
    """Volume (cc) where the interpolated dose is at least ``level_gy``.

    Over the whole dose grid, or inside the structure ``within`` (e.g. the body contour).
    The whole modelled volume counts, end caps included (``extremes="end_cap"``: a level
    above the contoured extent's maximum may still be reached in a cap).
    """
    if within is None:
        # one rectangle per dose plane, extruded half a slice: exactly the grid's extent
        dvh = compute_dvh(
            dose,
            _GridBox(dose.grid),
            end_cap=0.5 * _slice_mm(dose.grid),
            supersampling=supersampling,
            extremes="end_cap",
        )
    else:
        dvh = compute_dvh(dose, within, supersampling=supersampling, extremes="end_cap")
    return dvh.volume_at_dose(level_gy)


def _slice_mm(grid: Grid) -> float:
    return float(grid.spacing[2])


@dataclass(frozen=True)
class _GridBox:
    """The whole dose grid as a structure: one rectangle per dose plane."""

    grid: Grid
    name: str = "dose grid"

    @property
    def contours(self) -> list[NDArray[np.float64]]:
        nk, nj, ni = self.grid.shape
        corners = np.array([[-0.5, -0.5], [ni - 0.5, -0.5], [ni - 0.5, nj - 0.5], [-0.5, nj - 0.5]])
        out = []
        for k in range(nk):
            ijk = np.column_stack([corners, np.full(4, float(k))])
            out.append(self.grid.index_to_patient(ijk))
        return out


# --------------------------------------------------------------------------------------
# Geometry: contour planes, slabs and the scan conversion
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planes:
    """Contours of one structure in continuous dose-grid index space."""

    k: NDArray[np.float64]  # plane position (k index), ascending
    lo: NDArray[np.float64]  # start of the plane's support (k index, unclipped)
    hi: NDArray[np.float64]  # end of the support
    ramp_lo: NDArray[np.bool_]  # weight rises linearly from lo to k (else 1: end cap)
    ramp_hi: NDArray[np.bool_]  # weight falls linearly from k to hi (else 1)
    areas: NDArray[np.float64]  # |area| of each contour, pixel units
    contours: list[NDArray[np.float64]]  # (N, 2) i, j per contour
    plane_of: NDArray[np.int64]  # plane index of each contour
    spacing: float  # nominal contour spacing, slices

    def contoured_range(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Part of each plane's support inside the contoured extent (k index).

        Towards a contiguous neighbour the support ends on that neighbour's plane; at an
        outer plane it ends on the plane itself (the end cap beyond is not contoured).
        """
        return (
            np.where(self.ramp_lo, self.lo, self.k),
            np.where(self.ramp_hi, self.hi, self.k),
        )


#: Conventions of Dmin/Dmax (``compute_dvh(extremes=...)``).
EXTREMES = ("contoured", "end_cap")


class _Extremes:
    """Running minimum and maximum of sampled doses, and where, under both conventions.

    ``end_cap`` takes every sample point of the modelled structure (end caps included);
    ``contoured`` only the points within the contoured extent (on or between contour
    planes of a contiguous run).  Positions are continuous (i, j, k) indices.
    """

    def __init__(self) -> None:
        self.low = dict.fromkeys(EXTREMES, math.inf)
        self.high = dict.fromkeys(EXTREMES, -math.inf)
        self.low_at: dict[str, NDArray | None] = dict.fromkeys(EXTREMES)
        self.high_at: dict[str, NDArray | None] = dict.fromkeys(EXTREMES)

    def add(
        self, dose: NDArray, contoured: NDArray[np.bool_], i: NDArray, j: NDArray, k: NDArray
    ) -> None:
        """Samples ``dose`` at (i, j, k); ``contoured`` marks those in the contoured extent."""
        for key, mask in (("end_cap", None), ("contoured", contoured)):
            values = dose if mask is None else np.where(mask, dose, np.nan)
            if values.size == 0 or (mask is not None and not mask.any()):
                continue
            at_low, at_high = int(np.nanargmin(values)), int(np.nanargmax(values))
            if values[at_low] < self.low[key]:
                self.low[key] = float(values[at_low])
                self.low_at[key] = np.array([i[at_low], j[at_low], k[at_low]], dtype=float)
            if values[at_high] > self.high[key]:
                self.high[key] = float(values[at_high])
                self.high_at[key] = np.array([i[at_high], j[at_high], k[at_high]], dtype=float)

    def merge(self, other: _Extremes) -> None:
        for key in EXTREMES:
            if other.low[key] < self.low[key]:
                self.low[key], self.low_at[key] = other.low[key], other.low_at[key]
            if other.high[key] > self.high[key]:
                self.high[key], self.high_at[key] = other.high[key], other.high_at[key]


def _planes(
    structure: ContourSet, grid: Grid, end_cap: str | float, contour_spacing_mm: float | None
) -> _Planes:
    name = getattr(structure, "name", "?")
    contours_ijk = []
    for points in structure.contours:
        pts = np.asarray(points, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 3:
            continue  # points and lines have no volume
        contours_ijk.append(grid.patient_to_index(pts))
    if not contours_ijk:
        raise InputError(f"structure {name!r} has no closed contour (empty or points only)")
    ks = []
    for c in contours_ijk:
        if np.ptp(c[:, 2]) > 1e-2:
            raise InputError(
                f"structure {name!r}: a contour is not parallel to the dose planes; only "
                "contours in planes of constant dose-grid slice are supported (axial dose)"
            )
        ks.append(float(np.mean(c[:, 2])))
    ks_arr = np.asarray(ks)
    order = np.argsort(ks_arr, kind="stable")
    planes: list[float] = []
    plane_of = np.empty(len(ks_arr), dtype=np.int64)
    for idx in order:
        if planes and abs(ks_arr[idx] - planes[-1]) < _PLANE_TOL:
            plane_of[idx] = len(planes) - 1
        else:
            planes.append(float(ks_arr[idx]))
            plane_of[idx] = len(planes) - 1
    k = np.asarray(planes)
    dk = float(grid.spacing[2])
    gaps = np.diff(k)
    if contour_spacing_mm is not None:
        spacing = float(contour_spacing_mm) / dk
    elif gaps.size:
        spacing = float(np.median(gaps))
    else:
        # a single plane: no spacing of its own; assume one dose slice (documented)
        spacing = 1.0
    if isinstance(end_cap, str):
        if end_cap == "half_slice":
            cap = 0.5 * spacing
        elif end_cap == "none":
            cap = 0.0
        else:
            raise InputError(
                f"end_cap {end_cap!r}: use 'half_slice', 'none' or a distance in mm",
                field="end_cap",
            )
    else:
        mm = float(end_cap)
        # an end cap is a fraction of a slice; beyond a few centimetres it is a typing error
        if not (np.isfinite(mm) and 0.0 <= mm <= _MAX_END_CAP_MM):
            raise InputError(
                f"end_cap must be a distance from 0 to {_MAX_END_CAP_MM:g} mm, not {mm!r}",
                field="end_cap",
            )
        cap = mm / dk
    contiguous = gaps <= _GAP_FACTOR * spacing + 1e-9
    # Between two contiguous planes each plane's weight falls linearly from 1 on its own
    # plane to 0 on the neighbour (a linear blend of the two cross-sections); beyond an
    # outer plane it stays 1 over the end cap.
    lo = k - cap
    hi = k + cap
    lo[1:] = np.where(contiguous, k[:-1], lo[1:])
    hi[:-1] = np.where(contiguous, k[1:], hi[:-1])
    ramp_lo = np.zeros(k.size, dtype=bool)
    ramp_hi = np.zeros(k.size, dtype=bool)
    ramp_lo[1:] = contiguous
    ramp_hi[:-1] = contiguous
    return _Planes(
        k=k,
        lo=lo,
        hi=hi,
        ramp_lo=ramp_lo,
        ramp_hi=ramp_hi,
        contours=[c[:, :2] for c in contours_ijk],
        areas=_polygon_areas([c[:, :2] for c in contours_ijk]),
        plane_of=plane_of,
        spacing=spacing,
    )


def _weight(planes: _Planes, p: NDArray, z: NDArray) -> NDArray[np.float64]:
    """Weight of plane ``p`` at slice position ``z`` (1 on the plane, linear ramps)."""
    k, lo, hi = planes.k[p], planes.lo[p], planes.hi[p]
    below = z < k
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(planes.ramp_lo[p], (z - lo) / (k - lo), 1.0)
        down = np.where(planes.ramp_hi[p], (hi - z) / (hi - k), 1.0)
    w = np.where(below, up, down)
    return np.clip(np.nan_to_num(w, nan=1.0), 0.0, 1.0) * ((z >= lo) & (z <= hi))


def _weight_integral(planes: _Planes, p: NDArray, z: NDArray) -> NDArray[np.float64]:
    """Integral of the weight of plane ``p`` from ``lo`` to ``z`` (slices)."""
    k, lo, hi = planes.k[p], planes.lo[p], planes.hi[p]
    z = np.clip(z, lo, hi)
    a = np.minimum(z, k) - lo  # part below the plane
    lower_len = k - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(planes.ramp_lo[p], a * a / (2 * lower_len), a)
        b = np.maximum(z - k, 0.0)
        upper_len = hi - k
        upper = np.where(planes.ramp_hi[p], b - b * b / (2 * upper_len), b)
    return np.nan_to_num(lower) + np.nan_to_num(upper)


@dataclass(frozen=True)
class _Cells:
    """Covered sub-cells of every plane (in-plane geometry, before the slab axis)."""

    plane: NDArray[np.int64]
    i: NDArray[np.float64]  # dose-grid column index of the covered part's centre
    j: NDArray[np.float64]  # dose-grid row index
    area: NDArray[np.float64]  # covered area, in units of one dose-pixel area
    wi: NDArray[np.float64]  # covered extent along i, pixels (for the dose spread)
    wj: NDArray[np.float64]  # extent along j, pixels
    voxel_i: NDArray[np.int64]
    voxel_j: NDArray[np.int64]
    plane_area_total: NDArray[np.float64]  # per plane, pixel units, inside or outside
    plane_area_covered: NDArray[np.float64]  # per plane, inside the grid in-plane


def _polygon_areas(contours: list[NDArray]) -> NDArray[np.float64]:
    """Absolute shoelace area of each (N, 2) polygon, vectorised over all of them."""
    if not contours:
        return np.zeros(0)
    lengths = np.array([c.shape[0] for c in contours])
    pts = np.concatenate(contours)
    nxt = _next_vertex(lengths)
    cross = pts[:, 0] * pts[nxt, 1] - pts[nxt, 0] * pts[:, 1]
    ids = np.repeat(np.arange(lengths.size), lengths)
    return 0.5 * np.abs(np.bincount(ids, weights=cross, minlength=lengths.size))


def _next_vertex(lengths: NDArray) -> NDArray[np.int64]:
    """Index of the next vertex of every vertex of concatenated closed polygons."""
    start = np.arange(int(lengths.sum()))
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    last = np.repeat(np.cumsum(lengths) - 1, lengths)
    return np.where(start == last, first, start + 1)


@dataclass(frozen=True)
class _Intervals:
    """Covered stretches of the scan lines (sub-units), clipped to the grid."""

    plane: NDArray[np.int64]
    row: NDArray[np.int64]  # sub-row band
    line: NDArray[np.float64]  # offset of the scan line in its band (+-0.5/sqrt 3)
    xa: NDArray[np.float64]
    xb: NDArray[np.float64]
    plane_area_total: NDArray[np.float64]  # per plane, pixel units, inside or outside
    plane_area_covered: NDArray[np.float64]  # per plane, inside the grid in-plane
    tiny_plane: NDArray[np.int64]  # contours too small for any scan line, inside the grid
    tiny_i: NDArray[np.float64]
    tiny_j: NDArray[np.float64]
    tiny_area: NDArray[np.float64]  # pixel units


def _intervals(planes: _Planes, grid: Grid, n: int) -> _Intervals:
    """Scan-convert all planes at once with ``n`` sub-row bands per pixel row.

    Sub-index coordinates ``u = (i + 0.5) n - 0.5`` put sub-cell centres on integers.
    Crossings of every edge with every scan line (half-open rule) are sorted per (plane,
    line) and paired: the even-odd rule across all contours of a plane.
    """
    nk, nj, ni = grid.shape
    n_planes = planes.k.size
    lengths = np.array([c.shape[0] for c in planes.contours])
    pts = np.concatenate(planes.contours) * n + 0.5 * (n - 1)
    contour_id = np.repeat(np.arange(len(planes.contours)), lengths)
    nxt = _next_vertex(lengths)
    u0, v0 = pts[:, 0], pts[:, 1]
    u1, v1 = pts[nxt, 0], pts[nxt, 1]
    edge_plane = planes.plane_of[contour_id]

    # Two scan lines per sub-row band, at the 2-point Gauss-Legendre positions: exact for
    # covered lengths that vary linearly across the band, and no half-band error when a
    # straight boundary lies on the band centre (shapes drawn on round coordinates).
    parts = []
    crossings_per_contour = np.zeros(len(lengths))
    for delta in (-0.5 / math.sqrt(3.0), 0.5 / math.sqrt(3.0)):
        a0, a1 = v0 - delta, v1 - delta
        rlo = np.ceil(np.minimum(a0, a1)).astype(np.int64)
        count = np.ceil(np.maximum(a0, a1)).astype(np.int64) - rlo
        count[count < 0] = 0
        crossings_per_contour += np.bincount(contour_id, weights=count, minlength=len(lengths))
        total = int(count.sum())
        edge = np.repeat(np.arange(count.size), count)
        offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        row = rlo[edge] + offset
        x = u0[edge] + (row - a0[edge]) * (u1[edge] - u0[edge]) / (a1[edge] - a0[edge])
        plane = edge_plane[edge]
        order = np.lexsort((x, row, plane))
        x, row, plane = x[order], row[order], plane[order]
        # every (plane, row) has an even number of crossings: pair them (even-odd rule)
        parts.append((x[0::2], x[1::2], row[0::2], plane[0::2], np.full(total // 2, delta)))
    xa, xb, row, plane, line = (np.concatenate(a) for a in zip(*parts, strict=True))

    plane_area_total = 0.5 * np.bincount(plane, weights=xb - xa, minlength=n_planes) / n**2
    inside_row = (row >= 0) & (row < n * nj)
    xa_c = np.clip(xa, -0.5, n * ni - 0.5)
    xb_c = np.clip(xb, -0.5, n * ni - 0.5)
    keep = inside_row & (xb_c > xa_c)
    xa_c, xb_c, row_k, plane_k, line_k = xa_c[keep], xb_c[keep], row[keep], plane[keep], line[keep]
    plane_area_covered = 0.5 * np.bincount(plane_k, weights=xb_c - xa_c, minlength=n_planes) / n**2

    # contours too small to meet any scan line: one sample at the centroid, exact area
    tiny = np.flatnonzero(crossings_per_contour == 0)
    tiny_plane = np.zeros(0, dtype=np.int64)
    tiny_i = tiny_j = tiny_area = np.zeros(0)
    if tiny.size:
        areas = _polygon_areas([planes.contours[t] for t in tiny])
        cent = np.array([planes.contours[t].mean(axis=0) for t in tiny])
        tp = planes.plane_of[tiny]
        plane_area_total += np.bincount(tp, weights=areas, minlength=n_planes)
        inside = (
            (cent[:, 0] >= -0.5)
            & (cent[:, 0] <= ni - 0.5)
            & (cent[:, 1] >= -0.5)
            & (cent[:, 1] <= nj - 0.5)
            & (areas > 0)
        )
        plane_area_covered += np.bincount(tp[inside], weights=areas[inside], minlength=n_planes)
        tiny_plane, tiny_i, tiny_j, tiny_area = (
            tp[inside],
            cent[inside, 0],
            cent[inside, 1],
            areas[inside],
        )
    return _Intervals(
        plane=plane_k,
        row=row_k,
        line=line_k,
        xa=xa_c,
        xb=xb_c,
        plane_area_total=plane_area_total,
        plane_area_covered=plane_area_covered,
        tiny_plane=tiny_plane,
        tiny_i=tiny_i,
        tiny_j=tiny_j,
        tiny_area=tiny_area,
    )


def _scan(planes: _Planes, grid: Grid, n: int) -> _Cells:
    """Covered sub-cells (n x n per pixel) of every plane, with exact covered lengths."""
    nk, nj, ni = grid.shape
    iv = _intervals(planes, grid, n)
    c0 = np.floor(iv.xa + 0.5).astype(np.int64)
    c1 = np.ceil(iv.xb - 0.5).astype(np.int64)
    ncell = np.maximum(c1 - c0 + 1, 0)
    seg = np.repeat(np.arange(ncell.size), ncell)
    cell = c0[seg] + (np.arange(seg.size) - np.repeat(np.cumsum(ncell) - ncell, ncell))
    left = np.maximum(iv.xa[seg], cell - 0.5)
    right = np.minimum(iv.xb[seg], cell + 0.5)
    cover = right - left
    ok = cover > 1e-12
    seg, left, right, cover = seg[ok], left[ok], right[ok], cover[ok]
    # dose position: centre of the half band the line stands for (the two halves tile
    # the band for the intra-cell spread); the Gauss position only serves the area
    rows = iv.row[seg] + 0.25 * np.sign(iv.line[seg])
    centre_u = 0.5 * (left + right)

    i = np.concatenate([(centre_u + 0.5) / n - 0.5, iv.tiny_i])
    j = np.concatenate([(rows + 0.5) / n - 0.5, iv.tiny_j])
    area = np.concatenate([0.5 * cover / n**2, iv.tiny_area])
    side = np.sqrt(iv.tiny_area)
    wi = np.concatenate([cover / n, side])
    wj = np.concatenate([np.full(cover.shape, 0.5 / n), side])
    p = np.concatenate([iv.plane[seg], iv.tiny_plane])

    voxel_i = np.clip(np.floor(i + 0.5).astype(np.int64), 0, ni - 1)
    voxel_j = np.clip(np.floor(j + 0.5).astype(np.int64), 0, nj - 1)
    if n > 2 and i.size:
        # A fully covered pixel needs no sub-cells for its area; its dose is bilinear on
        # each quarter (a quarter of a pixel centred on a dose node lies in one dose cell),
        # so four quarter cells with their exact derivatives replace the n x n sub-cells.
        coverage = _pixel_coverage(planes, grid, n, iv)
        full = coverage.fraction >= 1.0 - 1e-9
        if full.any():
            _, bj, bi = full.shape
            jj = np.clip(voxel_j - coverage.j0, 0, bj - 1)
            ii = np.clip(voxel_i - coverage.i0, 0, bi - 1)
            keep = ~full[p, jj, ii]
            fp, fj, fi = np.nonzero(full)
            fj = fj + coverage.j0
            fi = fi + coverage.i0
            quarter_i = np.concatenate([fi - 0.25, fi + 0.25, fi - 0.25, fi + 0.25])
            quarter_j = np.concatenate([fj - 0.25, fj - 0.25, fj + 0.25, fj + 0.25])
            count = 4 * fp.size
            p = np.concatenate([p[keep], np.tile(fp, 4)])
            i = np.concatenate([i[keep], quarter_i])
            j = np.concatenate([j[keep], quarter_j])
            area = np.concatenate([area[keep], np.full(count, 0.25)])
            wi = np.concatenate([wi[keep], np.full(count, 0.5)])
            wj = np.concatenate([wj[keep], np.full(count, 0.5)])
            voxel_i = np.concatenate([voxel_i[keep], np.tile(fi, 4)])
            voxel_j = np.concatenate([voxel_j[keep], np.tile(fj, 4)])
    return _Cells(
        plane=p.astype(np.int64),
        i=i,
        j=j,
        area=area,
        wi=wi,
        wj=wj,
        voxel_i=voxel_i,
        voxel_j=voxel_j,
        plane_area_total=iv.plane_area_total,
        plane_area_covered=iv.plane_area_covered,
    )


@dataclass(frozen=True)
class _Coverage:
    """In-plane covered fraction of every pixel of a box, per contour plane."""

    fraction: NDArray[np.float64]  # (n_planes, bj, bi)
    j0: int
    i0: int
    plane_area_total: NDArray[np.float64]
    plane_area_covered: NDArray[np.float64]


def _pixel_coverage(
    planes: _Planes, grid: Grid, n: int = 1, iv: _Intervals | None = None
) -> _Coverage | None:
    """Exact covered length of every pixel along each scan line, summed per pixel.

    A stretch ``[xa, xb]`` covers pixel ``c`` by ``r(c+1-ta) - r(c-ta) - (same for tb)``
    with ``t = x + 0.5`` and ``r`` the ramp; its increments are ``1 - frac(t)`` at
    ``floor(t)`` and ``frac(t)`` after, so two deposits per end and a cumulative sum along
    the row give every pixel at once.
    """
    nk, nj, ni = grid.shape
    iv = iv if iv is not None else _intervals(planes, grid, n)
    n_planes = planes.k.size
    if iv.xa.size == 0 and iv.tiny_area.size == 0:
        return None
    # in pixel units
    ta = (iv.xa + 0.5) / n
    tb = (iv.xb + 0.5) / n
    prow = iv.row // n
    tiny_j = np.clip(np.floor(iv.tiny_j + 0.5).astype(np.int64), 0, nj - 1)
    tiny_i = np.clip(np.floor(iv.tiny_i + 0.5).astype(np.int64), 0, ni - 1)
    rows_all = np.concatenate([prow, tiny_j])
    j0, j1 = int(rows_all.min()), int(rows_all.max())
    cols_lo = np.concatenate([np.floor(ta).astype(np.int64), tiny_i])
    cols_hi = np.concatenate([np.ceil(tb).astype(np.int64) - 1, tiny_i])
    i0, i1 = int(max(cols_lo.min(), 0)), int(min(cols_hi.max(), ni - 1))
    bj, bi = j1 - j0 + 1, i1 - i0 + 1
    width = bi + 2
    n_lines = 2 * n
    # the cumulative sum is linear: deposit every scan line of a pixel row into one buffer
    # row, each weighted by the 1/(2n) of the pixel row it stands for
    base = (iv.plane * bj + (prow - j0)) * width
    fraction = np.zeros(n_planes * bj * bi)
    if ta.size:
        index, weight = [], []
        for t, sign in ((ta - i0, 1.0 / n_lines), (tb - i0, -1.0 / n_lines)):
            q = np.floor(t).astype(np.int64)
            f = t - q
            q = np.clip(q, 0, width - 2)
            index += [base + q, base + q + 1]
            weight += [sign * (1.0 - f), sign * f]
        deposits = np.bincount(
            np.concatenate(index),
            weights=np.concatenate(weight),
            minlength=n_planes * bj * width,
        )
        rows = np.cumsum(deposits.reshape(n_planes, bj, width), axis=2)[..., :bi]
        fraction += rows.reshape(-1)
    if iv.tiny_area.size:
        flat = (iv.tiny_plane * bj + (tiny_j - j0)) * bi + (tiny_i - i0)
        fraction += np.bincount(flat, weights=iv.tiny_area, minlength=fraction.size)
    return _Coverage(
        fraction=fraction.reshape(n_planes, bj, bi),
        j0=j0,
        i0=i0,
        plane_area_total=iv.plane_area_total,
        plane_area_covered=iv.plane_area_covered,
    )


def _choose_supersampling(
    planes: _Planes, grid: Grid, resolution_mm: float, max_samples: int
) -> int:
    """Sub-cells per pixel side: fine enough for ``resolution_mm``, within ``max_samples``."""
    pixel = float(min(grid.spacing[0], grid.spacing[1]))
    n = max(1, min(_MAX_SUPERSAMPLING, math.ceil(pixel / resolution_mm - 1e-9)))
    while n > 1 and _estimated_samples(planes, n) > max_samples:
        n -= 1
    return n


def _estimated_samples(planes: _Planes, n: int) -> float:
    """Segments the sub-voxel method would handle: 2 scan lines x area in sub-cells x
    (z pieces: support length in slices + 2)."""
    area_pixels = float(planes.areas.sum())
    segments = float(np.mean(planes.hi - planes.lo)) + 2.0
    return 2.0 * area_pixels * n * n * segments


# --------------------------------------------------------------------------------------
# Occupancy (for voxel-wise users, e.g. alpha/beta maps)
# --------------------------------------------------------------------------------------


def structure_occupancy(
    structure: ContourSet,
    grid: Grid,
    *,
    end_cap: str | float = "half_slice",
    supersampling: int | None = None,
    contour_spacing_mm: float | None = None,
) -> NDArray[np.float32]:
    """Fraction (0..1) of each voxel of ``grid`` occupied by ``structure``, indexed [k, j, i].

    Same structure model as :func:`compute_dvh` (slabs, end caps, even-odd rule, exact
    covered length along scan lines), so ``occupancy.sum() * grid.voxel_volume_cc`` equals
    the covered volume of the DVH.  ``supersampling`` is the number of scan-line bands per
    voxel row (two Gauss-Legendre lines each; default 1).
    """
    planes = _planes(structure, grid, end_cap, contour_spacing_mm)
    coverage = _pixel_coverage(planes, grid, supersampling or 1)
    out = np.zeros(grid.shape, dtype=np.float32)
    box = _occupancy_box(planes, coverage, grid)
    if box is not None:
        occ, (k0, j0, i0) = box
        out[k0 : k0 + occ.shape[0], j0 : j0 + occ.shape[1], i0 : i0 + occ.shape[2]] = occ
    return out


def _occupancy_box(
    planes: _Planes, coverage: _Coverage | None, grid: Grid
) -> tuple[NDArray[np.float64], tuple[int, int, int]] | None:
    """Occupancy on the bounding box of the covered pixels, and the box origin (k, j, i)."""
    if coverage is None:
        return None
    nk, nj, ni = grid.shape
    lo = np.clip(planes.lo, -0.5, nk - 0.5)
    hi = np.clip(planes.hi, -0.5, nk - 0.5)
    n_planes, bj, bi = coverage.fraction.shape
    j0, i0 = coverage.j0, coverage.i0
    inplane = coverage.fraction.reshape(n_planes, bj * bi)
    # voxel k owns [k - 0.5, k + 0.5]: integrate each plane's weight over the voxels
    k_first = np.floor(lo + 0.5).astype(np.int64)
    k_last = np.ceil(hi - 0.5).astype(np.int64)
    used = k_last >= k_first
    if not used.any():
        return None  # no contour plane reaches a dose plane: nothing of the grid is covered
    k0 = int(np.clip(k_first[used].min(), 0, nk - 1))
    k1 = int(np.clip(k_last[used].max(), 0, nk - 1))
    bk = k1 - k0 + 1
    ks = np.arange(k0, k1 + 1, dtype=float)
    every = np.arange(n_planes)
    upper = np.minimum(hi[None, :], ks[:, None] + 0.5)
    lower = np.maximum(lo[None, :], ks[:, None] - 0.5)
    pp = np.broadcast_to(every, upper.shape)
    overlap = _weight_integral(planes, pp, upper) - _weight_integral(planes, pp, lower)
    overlap = np.where(upper > lower, np.maximum(overlap, 0.0), 0.0)  # (bk, n_planes)
    # banded (a plane reaches ~3 voxels): a sparse product, no multithreaded dense BLAS
    occ = np.asarray(sparse.csr_matrix(overlap) @ inplane)
    return np.clip(occ, 0.0, 1.0).reshape(bk, bj, bi), (k0, j0, i0)


def _subvoxel_parts(
    values: NDArray, planes: _Planes, cells: _Cells, grid: Grid, zlo: NDArray, zhi: NDArray
) -> tuple:
    """Histogram components of the sub-voxel method (segments of every covered sub-cell)."""
    nk = grid.shape[0]
    box = _DoseBox.around(values, cells, grid, zlo, zhi)
    # ----- z pieces: each plane's support, split at the plane and at the dose planes -----
    # dose planes bracketing the support (a sliver of < 0.001 slice beyond a dose plane,
    # e.g. contours 0.0007 mm off the dose planes, is evaluated on that plane)
    k_first = np.floor(zlo + 1e-3).astype(np.int64)
    k_last = np.ceil(zhi - 1e-3).astype(np.int64)
    n_dose_planes = int(np.max(k_last - k_first)) + 1
    kf = k_first[cells.plane]

    # values on the bracketing dose planes (clamped to the grid: nearest beyond the centres)
    values_all = np.empty((n_dose_planes, cells.area.size, 3))
    for step in range(n_dose_planes):
        kk = np.clip(np.clip(kf + step, 0, nk - 1) - box.k0, 0, box.shape[0] - 1)
        values_all[step] = box.plane_values(kk)

    segments = _Segments(cells, grid.voxel_volume_cc, *planes.contoured_range())
    plane_k = planes.k[cells.plane]
    for piece_lo, piece_hi in (
        (zlo[cells.plane], np.minimum(plane_k, zhi[cells.plane])),
        (np.maximum(plane_k, zlo[cells.plane]), zhi[cells.plane]),
    ):
        z_start = piece_lo
        h_start = _weight(planes, cells.plane, z_start)
        for step in range(n_dose_planes):
            z_end = np.minimum(piece_hi, kf + step + 1.0) if step < n_dose_planes - 1 else piece_hi
            z_end = np.maximum(z_end, z_start)
            length = z_end - z_start
            if not np.any(length > 0):
                continue
            h_end = _weight(planes, cells.plane, z_end)
            use = np.flatnonzero((length > 0) & (h_start + h_end > 0))
            if use.size:
                # a non-empty segment lies inside the dose-plane interval of this step (the
                # planes beyond the grid repeat the outer plane: nearest extrapolation)
                base = kf[use] + step
                t0 = np.clip(z_start[use] - base, 0.0, 1.0)[:, None]
                t1 = np.clip(z_end[use] - base, 0.0, 1.0)[:, None]
                below = values_all[step, use]
                above = values_all[min(step + 1, n_dose_planes - 1), use]
                segments.add(
                    use,
                    (z_start[use], below + t0 * (above - below), h_start[use]),
                    (z_end[use], below + t1 * (above - below), h_end[use]),
                    length[use],
                )
            z_start, h_start = z_end, h_end
    return segments.result()


@dataclass(frozen=True)
class _DoseBox:
    """The dose sub-volume around a structure (one voxel of margin in-plane), and where each
    sub-cell centre falls in it: bilinear in-plane interpolation on any of its planes."""

    flat: NDArray[np.float64]
    shape: tuple[int, int, int]
    k0: int
    base: NDArray[np.int64]
    fi: NDArray[np.float64]
    fj: NDArray[np.float64]
    di: int
    dj: int

    @classmethod
    def around(
        cls, values: NDArray, cells: _Cells, grid: Grid, zlo: NDArray, zhi: NDArray
    ) -> _DoseBox:
        nk, nj, ni = grid.shape
        kb0 = int(max(0, math.floor(float(zlo.min()))))
        kb1 = int(min(nk - 1, math.ceil(float(zhi.max()))))
        jb0 = int(max(0, math.floor(float(cells.j.min())) - 1))
        jb1 = int(min(nj - 1, math.ceil(float(cells.j.max())) + 1))
        ib0 = int(max(0, math.floor(float(cells.i.min())) - 1))
        ib1 = int(min(ni - 1, math.ceil(float(cells.i.max())) + 1))
        sub = np.ascontiguousarray(values[kb0 : kb1 + 1, jb0 : jb1 + 1, ib0 : ib1 + 1])
        sk, sj, si = sub.shape
        ci = np.clip(cells.i - ib0, 0.0, si - 1.0)
        cj = np.clip(cells.j - jb0, 0.0, sj - 1.0)
        i0 = np.minimum(np.floor(ci).astype(np.int64), max(si - 2, 0))
        j0 = np.minimum(np.floor(cj).astype(np.int64), max(sj - 2, 0))
        return cls(
            flat=sub.reshape(-1),
            shape=(sk, sj, si),
            k0=kb0,
            base=j0 * si + i0,
            fi=ci - i0,
            fj=cj - j0,
            di=1 if si > 1 else 0,
            dj=si if sj > 1 else 0,
        )

    def plane_values(self, kk: NDArray[np.int64]) -> NDArray[np.float64]:
        """Bilinear value and its derivatives d/di, d/dj at each cell on box plane kk.

        The derivatives are those of the bilinear interpolant itself (the dose across a
        sub-cell inside one dose cell varies exactly so).
        """
        _, sj, si = self.shape
        b = kk * (sj * si) + self.base
        v00 = self.flat[b]
        v01 = self.flat[b + self.di]
        v10 = self.flat[b + self.dj]
        v11 = self.flat[b + self.dj + self.di]
        fi, fj = self.fi, self.fj
        bottom = v00 + fi * (v01 - v00)
        top = v10 + fi * (v11 - v10)
        out = np.empty((b.size, 3))
        out[:, 0] = bottom + fj * (top - bottom)
        out[:, 1] = (1 - fj) * (v01 - v00) + fj * (v11 - v10)
        out[:, 2] = top - bottom
        return out


class _Segments:
    """The histogram components of the z segments of the sub-cells, their exact mean dose
    and the dose extremes at the segment ends inside the contoured range."""

    def __init__(self, cells: _Cells, voxel_cc: float, c_lo: NDArray, c_hi: NDArray) -> None:
        self.cells, self.voxel_cc = cells, voxel_cc
        self.c_lo, self.c_hi = c_lo[cells.plane], c_hi[cells.plane]
        self.parts: dict[str, list] = {k: [] for k in ("lo", "hi", "w", "hl", "hh")}
        self.mean_acc = 0.0
        self.ends = _Extremes()

    def add(self, use: NDArray, start: tuple, end: tuple, length: NDArray) -> None:
        """Segments of the cells ``use`` from ``start`` to ``end``, each ``(z, values with
        in-plane derivatives, weight)``; ``length`` in slices."""
        cells = self.cells
        (z_a, val_start, ha), (z_b, val_end, hb) = start, end
        da, db = val_start[:, 0], val_end[:, 0]
        r_z = 0.5 * np.abs(db - da)
        g_i = 0.5 * (val_start[:, 1] + val_end[:, 1])
        g_j = 0.5 * (val_start[:, 2] + val_end[:, 2])
        r_i = 0.5 * np.abs(g_i) * cells.wi[use]
        r_j = 0.5 * np.abs(g_j) * cells.wj[use]
        # one distribution with the variance of the three uniform ones
        half = np.sqrt(r_z**2 + r_i**2 + r_j**2)
        base_w = cells.area[use] * length * self.voxel_cc
        w = base_w * 0.5 * (ha + hb)
        # exact mean of a linear dose under a linear weight
        self.mean_acc += float(np.dot(base_w, (da * (2 * ha + hb) + db * (ha + 2 * hb)) / 6.0))
        centre = 0.5 * (da + db)
        # density at the low-dose and high-dose ends: the weights there, blended towards
        # uniform by the share of the in-plane spread in the variance
        share = np.divide(r_z**2, half**2, out=np.ones_like(half), where=half > 0)
        low_end = np.where(da <= db, ha, hb)
        high_end = np.where(da <= db, hb, ha)
        mid = 0.5 * (ha + hb)
        self.parts["lo"].append(centre - half)
        self.parts["hi"].append(centre + half)
        self.parts["w"].append(w)
        self.parts["hl"].append(share * low_end + (1 - share) * mid)
        self.parts["hh"].append(share * high_end + (1 - share) * mid)
        for z, d in ((z_a, da), (z_b, db)):
            inside = (z >= self.c_lo[use] - 1e-9) & (z <= self.c_hi[use] + 1e-9)
            self.ends.add(d, inside, cells.i[use], cells.j[use], z)

    def result(self) -> tuple:
        lo_all, hi_all, w_all, hl_all, hh_all = (
            np.concatenate(self.parts[k]) for k in ("lo", "hi", "w", "hl", "hh")
        )
        dmean = self.mean_acc / float(w_all.sum())
        return lo_all, hi_all, w_all, hl_all, hh_all, dmean, self.ends


def _voxel_parts(values: NDArray, planes: _Planes, coverage: _Coverage, grid: Grid) -> tuple:
    """Histogram components of the voxel method (large structures).

    One component per voxel touched by the structure: mass = occupancy x voxel volume, dose
    = the voxel-centre value spread uniformly with the variance of a linear dose across
    the voxel (half-width = |gradient| / 2 in index units), so partial volumes are kept but
    the position of the covered part inside a boundary voxel is not.
    """
    occ, (k0, j0, i0) = _occupancy_box(planes, coverage, grid)
    bk, bj, bi = occ.shape
    nk, nj, ni = grid.shape
    # one voxel of margin for central differences
    ka, kb = max(k0 - 1, 0), min(k0 + bk + 1, nk)
    ja, jb = max(j0 - 1, 0), min(j0 + bj + 1, nj)
    ia, ib = max(i0 - 1, 0), min(i0 + bi + 1, ni)
    big = values[ka:kb, ja:jb, ia:ib]
    # central differences by shifted views of the edge-padded box (sequential memory
    # access), kept at the touched voxels
    padded = np.pad(big, 1, mode="edge")
    ok, oj, oi = k0 - ka + 1, j0 - ja + 1, i0 - ia + 1

    def shifted(dk: int, dj: int, di: int) -> NDArray[np.float64]:
        return padded[ok + dk : ok + dk + bk, oj + dj : oj + dj + bj, oi + di : oi + di + bi]

    mask = occ > 0
    v = shifted(0, 0, 0)[mask]
    g2 = (shifted(1, 0, 0) - shifted(-1, 0, 0)) ** 2
    g2 += (shifted(0, 1, 0) - shifted(0, -1, 0)) ** 2
    g2 += (shifted(0, 0, 1) - shifted(0, 0, -1)) ** 2
    # half-width = |gradient| / 2 with the gradient = half the central difference
    half = 0.25 * np.sqrt(g2[mask])
    occ_t = occ[mask]
    w = occ_t * grid.voxel_volume_cc
    dmean = float(np.dot(w, v) / w.sum())
    interior = occ_t >= 1.0 - 1e-9
    # voxel centres (k index) inside the contoured extent of some plane
    c_lo, c_hi = planes.contoured_range()
    ks = np.arange(k0, k0 + bk, dtype=float)
    k_contoured = ((ks[:, None] >= c_lo - 1e-9) & (ks[:, None] <= c_hi + 1e-9)).any(axis=1)
    contoured = np.broadcast_to(k_contoured[:, None, None], mask.shape)[mask]
    where = np.nonzero(mask)
    vk, vj, vi = (where[a][interior] + origin for a, origin in enumerate((k0, j0, i0)))
    ends = _Extremes()
    ends.add(v[interior], contoured[interior], vi, vj, vk)
    ones = np.ones(v.shape)
    return v - half, v + half, w, ones, ones, dmean, ends


# --------------------------------------------------------------------------------------
# Dose sampling and the histogram
# --------------------------------------------------------------------------------------


def _ramp_sums(t: NDArray, c: NDArray, n_edges: int, power: int) -> NDArray[np.float64]:
    """``R[m] = sum_i c_i * max(m - t_i, 0) ** power`` (power 1 or 2), m = 0..n_edges-1.

    O(N + M): only items with ``floor(t_i) < m`` contribute, so the sum expands into
    cumulative sums of ``c``, ``c t`` (and ``c t^2``) over the bins of ``t``.
    """
    t = np.clip(t, 0.0, n_edges)  # beyond the last edge contributes nothing
    q = np.floor(t).astype(np.int64)
    m = np.arange(n_edges, dtype=float)

    def below(weights: NDArray) -> NDArray:
        summed = np.bincount(q, weights=weights, minlength=n_edges + 1)[:n_edges]
        return np.concatenate([[0.0], np.cumsum(summed)[:-1]])  # sum over q < m

    a = below(c)
    b = below(c * t)
    if power == 1:
        return m * a - b
    return m * m * a - 2.0 * m * b + below(c * t * t)


def _cumulative(
    lo: NDArray, hi: NDArray, w: NDArray, h_lo: NDArray, h_hi: NDArray, edges: NDArray
) -> NDArray[np.float64]:
    """Exact cumulative volume at ``edges`` of a mixture of distributions on [lo, hi].

    Each item has mass ``w`` and a density linear in dose, proportional to ``h_lo`` at
    ``lo`` and ``h_hi`` at ``hi`` (uniform when they are equal).  Its mass below ``e`` is
    ``alpha r1(e-lo) + beta/2 r2(e-lo) - gamma r1(e-hi) - beta/2 r2(e-hi)`` with
    ``r1(x) = max(x, 0)``, ``r2 = r1^2``, alpha/gamma the end densities and beta the slope.
    """
    width = edges[1] - edges[0]
    m = edges.size
    tlo = (lo - edges[0]) / width
    thi = (hi - edges[0]) / width
    span = thi - tlo
    point = span < 1e-3
    below = np.zeros(m)
    if point.any():
        tp = 0.5 * (tlo[point] + thi[point])
        idx = np.clip(np.floor(tp).astype(np.int64) + 1, 0, m)
        below += np.cumsum(np.bincount(idx, weights=w[point], minlength=m + 1)[:m])
    spread = ~point
    if spread.any():
        d = span[spread]
        ws = w[spread]
        hsum = h_lo[spread] + h_hi[spread]
        # narrow items (under two bins): the slope is invisible, keep them uniform
        sloped = (d >= 2.0) & (h_lo[spread] != h_hi[spread])
        frac_lo = np.where(sloped & (hsum > 0), h_lo[spread] / np.where(hsum > 0, hsum, 1), 0.5)
        alpha = 2.0 * ws * frac_lo / d  # density at lo, per bin
        gamma = 2.0 * ws * (1.0 - frac_lo) / d  # density at hi
        half_beta = 0.5 * (gamma - alpha) / d
        below += _ramp_sums(tlo[spread], alpha, m, 1) - _ramp_sums(thi[spread], gamma, m, 1)
        if np.any(sloped):
            s_lo, s_hi, hb = tlo[spread][sloped], thi[spread][sloped], half_beta[sloped]
            below += _ramp_sums(s_lo, hb, m, 2) - _ramp_sums(s_hi, hb, m, 2)
    total = float(w.sum())
    return np.clip(total - below, 0.0, total)


def _auto_bin_width(dmax: float) -> float:
    """0.01 Gy, or finer for low doses (at least ~2000 bins up to Dmax)."""
    if dmax <= 0:
        return 0.01
    return _nice_width(min(0.01, dmax / 2000.0), up=False)


def _nice_width(target: float, *, up: bool) -> float:
    """The 1-2-5 x 10^n value nearest ``target`` from below (``up``: from above)."""
    exponent = math.floor(math.log10(target))
    ladder = [m * 10.0**e for e in (exponent, exponent + 1) for m in (1.0, 2.0, 5.0)]
    if up:
        return min(w for w in ladder if w >= target * (1 - 1e-12))
    return max(w for w in ladder if w <= target * (1 + 1e-12))


def _bins(dmax: float, bin_width: float | None) -> tuple[float, int, str | None]:
    """Bin width, number of edges (0 .. past ``dmax``) and a note when the width was widened.

    The width is the requested one (default :func:`_auto_bin_width`) unless that needs more
    than ``_MAX_BINS`` bins; then it grows with ``dmax`` (next 1-2-5 value), so the memory
    of the histogram does not depend on the dose level (a dose in cGy labelled Gy).
    """
    width = float(bin_width) if bin_width else _auto_bin_width(dmax)
    note = None
    if dmax / width > _MAX_BINS:
        wider = _nice_width(dmax / _MAX_BINS, up=True)
        if bin_width:
            note = (
                f"bin width {width:g} Gy would need more than {_MAX_BINS} bins up to "
                f"Dmax {dmax:g} Gy; {wider:g} Gy used"
            )
        width = wider
    return width, int(math.floor(dmax / width)) + 2, note


def compute_dvh(
    dose: Dose,
    structure: ContourSet,
    *,
    end_cap: str | float = "half_slice",
    supersampling: int | None = None,
    resolution_mm: float = _DEFAULT_RESOLUTION_MM,
    max_samples: int = _DEFAULT_MAX_SAMPLES,
    bin_width: float | None = None,
    contour_spacing_mm: float | None = None,
    voxel_method_above: int = _VOXEL_METHOD_ABOVE,
    extremes: str = "contoured",
) -> DVH:
    """Cumulative DVH of ``structure`` in ``dose`` (see the module docstring for the model).

    Parameters
    ----------
    dose
        Dose on an axial grid (Gy, indexed [k, j, i]).
    structure
        Anything with ``name`` and ``contours`` (closed planar polygons, (N, 3) patient mm).
    end_cap
        ``"half_slice"`` (default, half the contour spacing beyond the outer planes, as in
        the Nelms analytical benchmark), ``"none"``, or a distance in mm.
    supersampling
        Sub-cells per voxel side in-plane; default: enough for ``resolution_mm`` within a
        budget of ``max_samples`` (large structures get fewer).
    resolution_mm, max_samples
        Targets of the automatic choice of ``supersampling``.
    bin_width
        Dose bin width, Gy; default 0.01 Gy (finer when Dmax is below 20 Gy).  A width
        that would need more than 20 000 bins is widened (warning in the provenance).
    contour_spacing_mm
        Contour spacing to use for single-plane structures or to override the median
        spacing of the contour planes.
    extremes
        Where Dmin/Dmax are read: ``"contoured"`` (default: on and between the contour
        planes, never beyond the outer ones) or ``"end_cap"`` (end-cap faces included, as
        in the Nelms analytical benchmark).  The histogram is limited to the extremes (see
        the module docstring).
    voxel_method_above
        Structures of more dose voxels than this (default 20 000, e.g. 375 cc of
        2.5 x 2.5 x 3 mm voxels) use the voxel method: exact partial-volume occupancy and
        the voxel-centre dose with an intra-voxel spread, instead of sub-voxel sampling.
        Their boundary voxels are a small part of their volume.  Ignored when
        ``supersampling`` is given.

    Returns
    -------
    DVH

    Raises
    ------
    InputError
        Empty structure, non-axial contours, or no part of the structure inside the grid.
    """
    grid = dose.grid
    name = str(getattr(structure, "name", "structure"))
    if extremes not in EXTREMES:
        raise InputError(
            f"extremes {extremes!r}: use 'contoured' (default) or 'end_cap'", field="extremes"
        )
    planes = _planes(structure, grid, end_cap, contour_spacing_mm)
    if supersampling is not None and supersampling < 1:
        raise InputError("supersampling must be >= 1", field="supersampling")
    method, n = _sampling_method(
        planes, grid, supersampling, resolution_mm, max_samples, voxel_method_above
    )
    if method == "voxel":
        cells = _pixel_coverage(planes, grid, 1)
    else:
        cells = _scan(planes, grid, n)
    if cells is None:  # no scan line of the dose grid meets the structure
        raise InputError(
            f"structure {name!r} lies entirely outside the dose grid; check that the "
            "RTSTRUCT and RTDOSE share a frame of reference"
        )
    volume_cc, covered_cc, zlo, zhi = _structure_volumes(planes, cells, grid, name)

    values = np.asarray(dose.values, dtype=np.float64)
    if method == "voxel":
        parts = _voxel_parts(values, planes, cells, grid)  # cells: pixel coverage
    else:
        parts = _subvoxel_parts(values, planes, cells, grid, zlo, zhi)
    lo_all, hi_all, w_all, hl_all, hh_all, dmean, ends = parts
    w_sum = float(w_all.sum())

    warnings: list[str] = []
    found, source = _dose_extremes(
        planes, grid, zlo, zhi, values, ends, lo_all, hi_all, extremes, name, warnings
    )
    dmin, dmax = found[source]

    width, n_edges, bin_note = _bins(dmax, bin_width)
    if bin_note:
        warnings.append(bin_note)
    edges = np.arange(n_edges, dtype=float) * width
    # the histogram is bounded by the stated extremes, so that D0% = Dmax and D100% = Dmin:
    # with extremes="contoured", end-cap volume beyond them counts at the extreme
    cumulative = _cumulative(
        np.clip(lo_all, dmin, dmax), np.clip(hi_all, dmin, dmax), w_all, hl_all, hh_all, edges
    )
    # the sampled volume equals the covered volume up to rounding; use the geometric one
    cumulative *= covered_cc / w_sum

    covered_fraction = min(1.0, covered_cc / volume_cc)
    if covered_fraction < 0.999:
        warnings.append(
            f"only {100 * covered_fraction:.1f} % of {name!r} ({volume_cc:.3f} cc) is inside "
            "the dose grid; the DVH describes that part"
        )
    provenance = {
        "method": method,
        "end_cap": end_cap,
        "extremes": extremes,
        "extremes_gy": {key: list(found[key]) for key in found},
        "dmin_at_mm": _position(grid, ends.low_at[source]),
        "dmax_at_mm": _position(grid, ends.high_at[source]),
        "contour_spacing_mm": planes.spacing * float(grid.spacing[2]),
        "supersampling": n,
        "bin_width_gy": width,
        "samples": int(w_all.size),
        "dose_quantity": dose.quantity,
        "dose_kind": getattr(dose.kind, "value", str(dose.kind)),
        "dose": dict(dose.provenance),
        "warnings": warnings,
    }
    return DVH(
        structure=name,
        edges=edges,
        cumulative_cc=cumulative,
        volume_cc=volume_cc,
        covered_fraction=covered_fraction,
        dmin=dmin,
        dmax=dmax,
        dmean=dmean,
        provenance=provenance,
    )


def _sampling_method(
    planes: _Planes,
    grid: Grid,
    supersampling: int | None,
    resolution_mm: float,
    max_samples: int,
    voxel_method_above: int,
) -> tuple[str, int]:
    """``("subvoxel", n)`` with n sub-cells per voxel side, or ``("voxel", 1)``.

    Structures too large for the sub-voxel budget even at one sub-cell per voxel use the
    voxel method (partial-volume occupancy, centre dose with an intra-voxel spread).
    """
    n = supersampling or _choose_supersampling(planes, grid, resolution_mm, max_samples)
    # the support of each plane is two contour spacings long (half of it weighted)
    support = float(planes.areas.sum()) * (float(np.mean(planes.hi - planes.lo)) or 1.0)
    if supersampling is None and support > 2 * voxel_method_above:
        return "voxel", 1
    return "subvoxel", n


def _structure_volumes(
    planes: _Planes, cells: _Cells | _Coverage, grid: Grid, name: str
) -> tuple[float, float, NDArray, NDArray]:
    """The structure's volume and the part of it inside the grid (cc), and each plane's
    slab clipped to the grid (k index units)."""
    nk = grid.shape[0]
    voxel_cc = grid.voxel_volume_cc
    every = np.arange(planes.k.size)
    thickness = _weight_integral(planes, every, planes.hi)
    volume_cc = float(np.sum(cells.plane_area_total * thickness) * voxel_cc)
    zlo = np.clip(planes.lo, -0.5, nk - 0.5)
    zhi = np.clip(planes.hi, -0.5, nk - 0.5)
    covered_thickness = np.maximum(
        _weight_integral(planes, every, zhi) - _weight_integral(planes, every, zlo), 0.0
    )
    covered_cc = float(np.sum(cells.plane_area_covered * covered_thickness) * voxel_cc)
    if volume_cc <= 0:
        raise InputError(f"structure {name!r} has zero volume")
    if covered_cc <= 0:
        raise InputError(
            f"structure {name!r} lies entirely outside the dose grid; check that the "
            "RTSTRUCT and RTDOSE share a frame of reference"
        )
    return volume_cc, covered_cc, zlo, zhi


def _dose_extremes(
    planes: _Planes,
    grid: Grid,
    zlo: NDArray,
    zhi: NDArray,
    values: NDArray,
    ends: _Extremes,
    lo_all: NDArray,
    hi_all: NDArray,
    extremes: str,
    name: str,
    warnings: list[str],
) -> tuple[dict[str, tuple[float, float]], str]:
    """(Dmin, Dmax) for each extent of ``EXTREMES`` found, and the extent used.

    The candidates are the sample end points, the contour vertices on slab faces and the
    dose planes. The end-cap extent always exists; the contoured one may lie outside the
    grid, and then the end caps are used, with a warning.
    """
    ends.merge(_vertex_extremes(planes, grid, zlo, zhi, values))
    found = {
        key: (ends.low[key], ends.high[key])
        for key in EXTREMES
        if math.isfinite(ends.low[key]) and math.isfinite(ends.high[key])
    }
    found.setdefault("end_cap", (float(lo_all.min()), float(hi_all.max())))
    if extremes not in found:
        warnings.append(
            f"no point of the contoured extent of {name!r} lies inside the dose grid; "
            "Dmin/Dmax are read over the end caps"
        )
    return found, extremes if extremes in found else "end_cap"


def _position(grid: Grid, ijk: NDArray | None) -> list[float] | None:
    """Patient coordinates (mm) of a continuous (i, j, k) index, if known."""
    return None if ijk is None else [float(c) for c in grid.index_to_patient(ijk)]


def _trilinear(values: NDArray, ijk: NDArray) -> NDArray[np.float64]:
    """Trilinear interpolation at continuous (i, j, k), clamped to the voxel centres."""
    nk, nj, ni = values.shape
    c = np.empty_like(ijk)
    c[:, 0] = np.clip(ijk[:, 0], 0, ni - 1)
    c[:, 1] = np.clip(ijk[:, 1], 0, nj - 1)
    c[:, 2] = np.clip(ijk[:, 2], 0, nk - 1)
    i0 = np.minimum(np.floor(c[:, 0]).astype(np.int64), max(ni - 2, 0))
    j0 = np.minimum(np.floor(c[:, 1]).astype(np.int64), max(nj - 2, 0))
    k0 = np.minimum(np.floor(c[:, 2]).astype(np.int64), max(nk - 2, 0))
    fi, fj, fk = c[:, 0] - i0, c[:, 1] - j0, c[:, 2] - k0
    i1 = np.minimum(i0 + 1, ni - 1)
    j1 = np.minimum(j0 + 1, nj - 1)
    k1 = np.minimum(k0 + 1, nk - 1)
    flat = values.reshape(-1)
    out = np.zeros(ijk.shape[0])
    for kk, wk in ((k0, 1 - fk), (k1, fk)):
        for jj, wj in ((j0, 1 - fj), (j1, fj)):
            row = (kk * nj + jj) * ni
            out += wk * wj * ((1 - fi) * flat[row + i0] + fi * flat[row + i1])
    return out


def _vertex_extremes(
    planes: _Planes, grid: Grid, zlo: NDArray, zhi: NDArray, values: NDArray
) -> _Extremes:
    """Extremes of the interpolated dose over contour vertices of the covered support.

    Each vertex is evaluated at both ends of its plane's own slab (clipped to the grid), on
    its plane, and on every dose plane in between, where the dose along z may bend; the
    points beyond an outer plane (end-cap faces) count for the ``end_cap`` convention only.
    """
    nk, nj, ni = grid.shape
    out = _Extremes()
    covered = zhi > zlo
    if not covered.any():
        return out
    lengths = np.array([c.shape[0] for c in planes.contours])
    xy = np.concatenate(planes.contours)
    plane = np.repeat(planes.plane_of, lengths)
    keep = covered[plane]
    xy, plane = xy[keep], plane[keep]
    xy = np.column_stack([np.clip(xy[:, 0], -0.5, ni - 0.5), np.clip(xy[:, 1], -0.5, nj - 0.5)])
    # the plane's own slab: half-way to contiguous neighbours (beyond, their contours
    # describe the structure), the end cap otherwise
    k = planes.k
    slab_lo = np.clip(np.where(planes.ramp_lo, 0.5 * (planes.lo + k), planes.lo), zlo, zhi)
    slab_hi = np.clip(np.where(planes.ramp_hi, 0.5 * (planes.hi + k), planes.hi), zlo, zhi)
    first = np.ceil(slab_lo).astype(np.int64)
    inner = np.maximum(np.floor(slab_hi).astype(np.int64) - first + 1, 0)
    n_levels = int(inner.max()) + 3
    levels = np.empty((k.size, n_levels))
    levels[:, 0] = slab_lo
    levels[:, 1] = slab_hi
    levels[:, 2] = np.clip(k, zlo, zhi)
    for step in range(n_levels - 3):
        levels[:, 3 + step] = np.where(step < inner, first + step, slab_lo)
    pts = np.repeat(xy, n_levels, axis=0)
    zs = levels[plane].reshape(-1)
    c_lo, c_hi = planes.contoured_range()
    in_extent = (zs >= np.repeat(c_lo[plane], n_levels) - 1e-9) & (
        zs <= np.repeat(c_hi[plane], n_levels) + 1e-9
    )
    d = _trilinear(np.asarray(values, dtype=np.float64), np.column_stack([pts, zs]))
    out.add(d, in_extent, pts[:, 0], pts[:, 1], zs)
    return out
