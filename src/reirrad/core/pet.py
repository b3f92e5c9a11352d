"""Standardised uptake values from PET activity, uptake statistics and threshold volumes.

Pure computation on arrays and grids: :mod:`reirrad.io.pet` reads the series and its
header; this module turns activity concentrations into body-weight SUV, measures a region
(SUVmax, SUVpeak, SUVmean) and segments it by a threshold rule.

References
----------
.. [1] Vacha M, Hofheinz F, Braune A, Loeck S, Zwanenburg A (Image Biomarker
   Standardisation Initiative). SUV computation, reference document
   (oncoray.github.io/suv_computation), introduction: SUVbw = Ac x W / D with Ac the
   activity concentration (Bq/ml), W the body weight (g) and D the injected activity
   decayed to the measurement time.  Evidence: consensus document (draft).
.. [2] QIBA FDG-PET/CT Technical Committee. Vendor-neutral pseudo-code for SUV
   calculation (2013), secondary source: the pseudo-code as reproduced publicly
   (docest.com/doc/550456), and [1]: decayed dose =
   injected dose x 2^(-decay time / half-life), decay time from the radiopharmaceutical
   start time to the series time for DecayCorrection START; Units GML taken as SUVbw.
.. [3] Wahl RL, Jacene H, Kasamon Y, Lodge MA. From RECIST to PERCIST: evolving
   considerations for PET response criteria in solid tumors. J Nucl Med 2009;50 Suppl
   1:122S-150S (SUVpeak: mean in a 1 cm^3 sphere, about 1.2 cm across, placed where it is
   highest); Lodge MA, Chaudhry MA, Wahl RL. J Nucl Med 2012;53(7):1041-1047 (abstract:
   "12-mm-diameter spheric region of interest positioned so as to maximize the enclosed
   average").
.. [4] Threshold rules, secondary sources only (the primary comparisons were not read):
   an absolute threshold of SUV 2.5 and a fixed fraction of the maximum uptake are named
   as the common automatic methods in the introduction of Eur J Nucl Med Mol Imaging 2008
   (doi:10.1007/s00259-008-0875-1); a 40 % of SUVmax threshold, and how a 30 % threshold
   changes the volume, is shown by Bradley JD, Perez CA et al. J Nucl Med 2004;45 Suppl
   1:96S-101S (figure reprinted in Br J Radiol 2005, Supplement 28).  Evidence: imaging
   studies in lung cancer; no threshold is validated for head-and-neck recurrences, so
   the rule is stated with every volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from reirrad.core.geometry import Grid

__all__ = [
    "ThresholdKind",
    "ThresholdRule",
    "UptakeStatistics",
    "decayed_activity",
    "peak_sphere_kernel",
    "suv_body_weight_factor",
    "threshold_volume",
    "uptake_statistics",
]

#: Volume of the SUVpeak sphere, 1 cm^3 (PERCIST [3]).
PEAK_VOLUME_CC = 1.0


def decayed_activity(injected_bq: float, elapsed_s: NDArray | float, half_life_s: float):
    """Activity left ``elapsed_s`` seconds after ``injected_bq`` was measured.

    ``A(t) = A0 * 2**(-t / T_half)``, the radioactive decay law as written in [2].
    """
    return injected_bq * np.power(2.0, -np.asarray(elapsed_s, dtype=float) / half_life_s)


def suv_body_weight_factor(
    weight_kg: float, injected_bq: float, half_life_s: float, elapsed_s: NDArray | float
):
    """Factor turning activity concentration (Bq/ml) into SUVbw (g/ml) [1, 2].

    ``SUVbw = C * W / A(t)`` with the body weight ``W`` in grams and the injected activity
    decayed to the time the image values refer to (``elapsed_s`` after injection; 0 when
    the images are decay-corrected to the administration time).
    """
    return (weight_kg * 1000.0) / decayed_activity(injected_bq, elapsed_s, half_life_s)


def peak_sphere_kernel(
    spacing_mm: tuple[float, float, float], volume_cc: float = PEAK_VOLUME_CC, samples: int = 5
) -> NDArray[np.float64]:
    """Weights of a sphere of ``volume_cc`` on a voxel grid, indexed [k, j, i], summing to 1.

    Each voxel's weight is the fraction of it inside the sphere, estimated on
    ``samples``^3 sub-points, so that a 4 mm grid still gives a sphere of the right volume.
    """
    radius = (3.0 * volume_cc * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)  # mm
    dk, dj, di = spacing_mm
    half = [int(math.ceil(radius / d)) for d in (dk, dj, di)]
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    axes = [
        (np.arange(-h, h + 1)[:, None] + offsets[None, :]) * d
        for h, d in zip(half, (dk, dj, di), strict=True)
    ]
    z = axes[0][:, None, None, :, None, None]
    y = axes[1][None, :, None, None, :, None]
    x = axes[2][None, None, :, None, None, :]
    inside = (z**2 + y**2 + x**2) <= radius**2
    weights = inside.mean(axis=(3, 4, 5))
    return weights / weights.sum()


@dataclass(frozen=True)
class UptakeStatistics:
    """Uptake of a region of a PET image, in SUVbw (g/ml).

    Attributes
    ----------
    suv_max
        Highest voxel value in the region.
    suv_max_position_mm
        Patient coordinates of that voxel.
    suv_peak
        Highest mean over a 1 cm^3 sphere whose centre is a voxel of the region [3]; None
        when the image is too small for the sphere.
    suv_peak_position_mm
        Centre of that sphere.
    suv_mean
        Mean over the region's voxels.
    volume_cc
        Volume of the region's voxels.
    voxels
        Number of voxels in the region.
    """

    suv_max: float
    suv_max_position_mm: tuple[float, float, float]
    suv_peak: float | None
    suv_peak_position_mm: tuple[float, float, float] | None
    suv_mean: float
    volume_cc: float
    voxels: int


def uptake_statistics(suv: NDArray, grid: Grid, region: NDArray[np.bool_]) -> UptakeStatistics:
    """SUVmax, SUVpeak and SUVmean of ``region`` (a voxel mask on ``grid``).

    SUVpeak: the sphere's centre is restricted to the region's voxels while its values may
    come from outside the region, as PERCIST places the sphere on the lesion's hottest
    part [3].  Values outside the image count as missing: the mean uses only the part of
    the sphere inside the image, and a sphere that lies less than half inside is ignored.

    Raises
    ------
    ValueError
        Shapes differ, or the region is empty.
    """
    suv = np.asarray(suv, dtype=np.float64)
    region = np.asarray(region, dtype=bool)
    if suv.shape != grid.shape or region.shape != grid.shape:
        raise ValueError(f"suv {suv.shape} and region {region.shape} must have shape {grid.shape}")
    if not region.any():
        raise ValueError("the region holds no voxel of the image")
    values = suv[region]
    flat_max = int(np.argmax(np.where(region, suv, -np.inf)))
    at_max = np.unravel_index(flat_max, grid.shape)
    peak, peak_at = _suv_peak(suv, grid, region)
    return UptakeStatistics(
        suv_max=float(values.max()),
        suv_max_position_mm=_position(grid, at_max),
        suv_peak=peak,
        suv_peak_position_mm=None if peak_at is None else _position(grid, peak_at),
        suv_mean=float(values.mean()),
        volume_cc=float(region.sum()) * grid.voxel_volume_cc,
        voxels=int(region.sum()),
    )


def _suv_peak(suv: NDArray, grid: Grid, region: NDArray[np.bool_]):
    dk, dj, di = (float(s) for s in grid.spacing[::-1])
    kernel = peak_sphere_kernel((dk, dj, di))
    # Correlate only the region's bounding box grown by the kernel: the whole image is not
    # needed and a whole-body PET is large.
    reach = [s // 2 for s in kernel.shape]
    index = np.nonzero(region)
    lo = [max(int(ix.min()) - r, 0) for ix, r in zip(index, reach, strict=True)]
    hi = [min(int(ix.max()) + r + 1, n) for ix, r, n in zip(index, reach, grid.shape, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    inside = np.ones(suv[box].shape)
    summed = ndimage.correlate(suv[box], kernel, mode="constant", cval=0.0)
    weight = ndimage.correlate(inside, kernel, mode="constant", cval=0.0)
    usable = region[box] & (weight >= 0.5)
    if not usable.any():
        return None, None
    means = np.where(usable, summed / np.where(weight > 0, weight, 1.0), -np.inf)
    at = np.unravel_index(int(np.argmax(means)), means.shape)
    return float(means[at]), tuple(int(a + o) for a, o in zip(at, lo, strict=True))


def _position(grid: Grid, kji) -> tuple[float, float, float]:
    k, j, i = (int(v) for v in kji)
    xyz = grid.index_to_patient(np.array([i, j, k], dtype=float))
    return tuple(float(v) for v in np.ravel(xyz)[:3])


class ThresholdKind(StrEnum):
    """How a threshold is given."""

    #: A fixed SUVbw (e.g. 2.5) [4].
    ABSOLUTE = "suv"
    #: A fraction of the region's SUVmax (e.g. 40 %) [4].
    RELATIVE_TO_MAX = "percent_of_max"


@dataclass(frozen=True)
class ThresholdRule:
    """A threshold segmentation rule, stated with every volume it produces.

    Attributes
    ----------
    kind
        Fixed SUV or a fraction of the region's SUVmax.
    value
        SUVbw (kind ``suv``) or a fraction 0-1 (kind ``percent_of_max``).
    """

    kind: ThresholdKind
    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ThresholdKind(self.kind))
        if not math.isfinite(self.value) or self.value <= 0:
            raise ValueError(f"threshold must be a positive number, not {self.value!r}")
        if self.kind is ThresholdKind.RELATIVE_TO_MAX and self.value >= 1:
            raise ValueError(f"a fraction of SUVmax must be below 1, not {self.value!r}")

    @classmethod
    def parse(cls, text: str) -> ThresholdRule:
        """``"2.5"`` (SUV) or ``"40%"`` (of SUVmax).

        Raises
        ------
        ValueError
            Anything else, or a value out of range.
        """
        text = text.strip()
        if text.endswith("%"):
            return cls(ThresholdKind.RELATIVE_TO_MAX, float(text[:-1]) / 100.0)
        return cls(ThresholdKind.ABSOLUTE, float(text))

    def level(self, suv_max: float) -> float:
        """The SUV level of this rule for a region whose SUVmax is ``suv_max``."""
        if self.kind is ThresholdKind.ABSOLUTE:
            return self.value
        return self.value * suv_max

    def describe(self) -> str:
        if self.kind is ThresholdKind.ABSOLUTE:
            return f"SUVbw >= {self.value:g}"
        return f"SUVbw >= {100 * self.value:g} % of the region's SUVmax"


def threshold_volume(
    suv: NDArray, region: NDArray[np.bool_], rule: ThresholdRule
) -> tuple[NDArray[np.bool_], float]:
    """Voxels of ``region`` at or above the rule's level, and that level.

    Every such voxel counts, connected or not: a recurrence can be multifocal, and a
    reader who wants one lesion draws the region around it.
    """
    suv = np.asarray(suv, dtype=np.float64)
    region = np.asarray(region, dtype=bool)
    if not region.any():
        raise ValueError("the region holds no voxel of the image")
    level = rule.level(float(suv[region].max()))
    return region & (suv >= level), level
