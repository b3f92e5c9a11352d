"""One grid model for every volume (CT, dose, masks): a shape and a voxel-to-patient affine.

Conventions (shared by every module):

* Arrays are indexed ``[k, j, i]`` = ``[frame/slice, row, column]``, as pydicom returns
  multi-frame pixel data.
* ``Grid.affine`` is a 4x4 matrix mapping the homogeneous index vector ``(i, j, k, 1)``
  (column, row, slice) to DICOM patient coordinates ``(x, y, z, 1)`` in mm.
* A dose value belongs to the voxel centre; the voxel extends half a spacing either side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Dose", "DoseKind", "Grid"]


@dataclass(frozen=True, eq=False)
class Grid:
    """A regular voxel grid: ``shape`` as ``(nk, nj, ni)`` and the index-to-patient affine.

    Two grids are equal when their shapes match and their affines agree to 1e-6 mm.
    """

    shape: tuple[int, int, int]
    affine: NDArray[np.float64] = field(repr=False)

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=float)
        if affine.shape != (4, 4):
            raise ValueError("Grid.affine must be 4x4")
        affine.setflags(write=False)
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, rtol=0.0, atol=1e-6)
        )

    def __hash__(self) -> int:
        return hash((self.shape, tuple(np.round(self.affine, 6).ravel())))

    @classmethod
    def from_axes(
        cls,
        origin: ArrayLike,
        spacing: ArrayLike,
        shape: tuple[int, int, int],
        direction: ArrayLike | None = None,
    ) -> Grid:
        """Grid from origin (patient mm of voxel [0,0,0]), spacing (di, dj, dk) and direction.

        ``direction`` is a 3x3 matrix whose columns are the unit vectors of the i, j and k
        axes in patient space (identity for an axial head-first-supine grid).
        """
        direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
        affine = np.eye(4)
        affine[:3, :3] = direction * np.asarray(spacing, dtype=float)[None, :]
        affine[:3, 3] = np.asarray(origin, dtype=float)
        return cls(shape=shape, affine=affine)

    @property
    def spacing(self) -> NDArray[np.float64]:
        """Voxel size along i, j, k in mm."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def direction(self) -> NDArray[np.float64]:
        """3x3 matrix of unit axis vectors (columns i, j, k) in patient space."""
        return self.affine[:3, :3] / self.spacing[None, :]

    @property
    def origin(self) -> NDArray[np.float64]:
        """Patient coordinates (mm) of the centre of voxel [0, 0, 0]."""
        return self.affine[:3, 3].copy()

    @property
    def voxel_volume_cc(self) -> float:
        """Volume of one voxel in cm^3."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    @property
    def is_axis_aligned(self) -> bool:
        """True when every axis is parallel to a patient axis (the 48 signed permutations)."""
        d = np.abs(self.direction)
        return bool(np.allclose(np.sort(d, axis=0)[:2], 0.0, atol=1e-6))

    def index_to_patient(self, ijk: ArrayLike) -> NDArray[np.float64]:
        """Patient coordinates (..., 3) of continuous indices (..., 3) given as (i, j, k)."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def patient_to_index(self, xyz: ArrayLike) -> NDArray[np.float64]:
        """Continuous (i, j, k) indices (..., 3) of patient points (..., 3)."""
        inverse = np.linalg.inv(self.affine)
        xyz = np.asarray(xyz, dtype=float)
        return xyz @ inverse[:3, :3].T + inverse[:3, 3]

    def axis_coordinates(self) -> tuple[NDArray, NDArray, NDArray]:
        """Patient coordinate of voxel centres along each axis (axis-aligned grids only).

        Returns the coordinate that varies along i, j and k respectively.
        """
        if not self.is_axis_aligned:
            raise ValueError("axis coordinates are defined for axis-aligned grids only")
        out = []
        for axis in range(3):
            patient_axis = int(np.argmax(np.abs(self.direction[:, axis])))
            n = self.shape[2 - axis]
            out.append(
                self.affine[patient_axis, 3] + self.affine[patient_axis, axis] * np.arange(n)
            )
        return tuple(out)


class DoseKind(StrEnum):
    """What a dose array holds (DICOM DoseType): physical dose, or an effective dose."""

    PHYSICAL = "PHYSICAL"
    EFFECTIVE = "EFFECTIVE"


@dataclass(frozen=True)
class Dose:
    """A dose distribution on a grid, in Gy, with what is known of where it came from.

    Attributes
    ----------
    grid
        Geometry of ``values``.
    values
        Dose in Gy, indexed ``[k, j, i]``.
    kind
        PHYSICAL, or EFFECTIVE once converted to EQD2/BED (converting again is refused).
    fractions
        Number of fractions the dose was delivered in (``None`` when not known).
    quantity
        ``"physical"``, ``"EQD2"``, ``"BED"`` or ``"EQDx"``.
    provenance
        Free-form facts: source file, summation type, alpha/beta map used, registration...
    """

    grid: Grid
    values: NDArray[np.float64] = field(repr=False)
    kind: DoseKind = DoseKind.PHYSICAL
    fractions: float | None = None
    quantity: str = "physical"
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        if values.shape != tuple(self.grid.shape):
            raise ValueError(f"dose values {values.shape} do not match grid {self.grid.shape}")
        object.__setattr__(self, "values", values)

    @classmethod
    def physical(
        cls,
        grid: Grid,
        values: ArrayLike,
        *,
        fractions: float | None = None,
        provenance: dict | None = None,
    ) -> Dose:
        """A physical dose (Gy) on ``grid``."""
        return cls(grid, values, DoseKind.PHYSICAL, fractions, "physical", dict(provenance or {}))

    @classmethod
    def effective(
        cls,
        grid: Grid,
        values: ArrayLike,
        quantity: str,
        *,
        fractions: float | None = None,
        provenance: dict | None = None,
    ) -> Dose:
        """An effective dose (``"EQD2"``, ``"BED"`` or ``"EQDx"``, Gy) on ``grid``."""
        return cls(grid, values, DoseKind.EFFECTIVE, fractions, quantity, dict(provenance or {}))
