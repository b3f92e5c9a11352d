"""Orthogonal planes of a dose map (axis-aligned or oblique grid): orientation, scale bar.

Orientation. DICOM patient coordinates are fixed to the patient whatever the patient
position (PS3.3 C.7.6.2.1.1, Image Position and Image Orientation): +x points to the
patient's left, +y posterior, +z superior. The grid's direction matrix (from the
ImageOrientationPatient of the dose grid and its slice positions) says which patient
direction each voxel index runs along; the planes are put in the usual viewing orientation
(axial and coronal: patient right on the viewer's left; axial: anterior up; coronal and
sagittal: superior up; sagittal: anterior on the left), flipping the index order where the
grid runs the other way (feet-first or prone orientations), and every panel edge is labelled
with the patient direction it faces (R/L, A/P, S/I). The letters are computed from the
direction vectors, not assumed: for an oblique direction two letters are given, the larger
component first (the convention of Patient Orientation, PS3.3 C.7.6.1.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from reirrad.core.geometry import Grid

__all__ = ["PlaneGeometry", "orientation_letters", "plane_geometry", "scale_bar_mm"]

#: Per view: (normal patient axis, horizontal patient axis, sign of +column along it,
#: vertical patient axis, sign of +row (downwards) along it).
VIEWS: dict[str, tuple[int, int, int, int, int]] = {
    "axial": (2, 0, +1, 1, +1),  # L to the right, P at the bottom
    "coronal": (1, 0, +1, 2, -1),  # L to the right, I at the bottom
    "sagittal": (0, 1, +1, 2, -1),  # P to the right, I at the bottom
}

_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))
#: Components of a unit direction smaller than this do not get a letter (about 15 degrees).
_MINOR_COMPONENT = 0.25


def orientation_letters(direction) -> str:
    """Patient direction letters of a vector in DICOM patient coordinates.

    ``(1, 0, 0)`` is ``"L"``, ``(0, -1, 0)`` ``"A"``, ``(0, 0, 1)`` ``"S"``; an oblique
    vector gets up to two letters, the larger component first.
    """
    v = np.asarray(direction, dtype=float)
    v = v / np.linalg.norm(v)
    order = np.argsort(-np.abs(v), kind="stable")
    letters = [_LETTERS[a][int(v[a] > 0)] for a in order[:2] if abs(v[a]) >= _MINOR_COMPONENT]
    return "".join(letters)


@dataclass(frozen=True)
class PlaneGeometry:
    """Where one displayed plane's pixels are in the grid and in the patient.

    Attributes
    ----------
    view
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    ijk
        ``(rows, cols, 3)`` grid indices ``(i, j, k)`` of each displayed pixel, row 0 at the
        top: integers on an axis-aligned grid, continuous indices on an oblique one (the
        plane is then resampled along the patient axes).
    col_direction, row_direction
        Patient unit vectors of increasing column (rightwards) and row (downwards).
    col_mm, row_mm
        Pixel size (mm) along columns and rows.
    edges
        Patient direction letters of the ``left``, ``right``, ``top`` and ``bottom`` edges.
    """

    view: str
    ijk: NDArray[np.intp]
    col_direction: NDArray[np.float64]
    row_direction: NDArray[np.float64]
    col_mm: float
    row_mm: float
    edges: dict[str, str]

    @property
    def extent_mm(self) -> tuple[float, float]:
        """Width and height of the plane (mm)."""
        rows, cols = self.ijk.shape[:2]
        return cols * self.col_mm, rows * self.row_mm

    @property
    def resampled(self) -> bool:
        """True when the plane is resampled (oblique grid), not a slice of voxels."""
        return not np.issubdtype(self.ijk.dtype, np.integer)

    def take(self, volume: NDArray, outside: float = np.nan) -> NDArray:
        """The plane of a ``[k, j, i]`` volume on the grid (trilinear on an oblique grid,
        ``outside`` beyond it)."""
        if not self.resampled:
            return volume[self.ijk[..., 2], self.ijk[..., 1], self.ijk[..., 0]]
        from scipy.ndimage import map_coordinates

        coords = [self.ijk[..., 2], self.ijk[..., 1], self.ijk[..., 0]]
        return map_coordinates(
            np.asarray(volume, dtype=float), coords, order=1, mode="constant", cval=outside
        )


def _index_axis(direction: NDArray[np.float64], patient_axis: int) -> tuple[int, int]:
    """The grid index axis (0 = i, 1 = j, 2 = k) running along a patient axis, and its sign."""
    row = direction[patient_axis]
    axis = int(np.argmax(np.abs(row)))
    return axis, 1 if row[axis] > 0 else -1


def plane_geometry(grid: Grid, view: str, centre_ijk: tuple[int, int, int]) -> PlaneGeometry:
    """The plane ``view`` through the voxel ``centre_ijk`` (``(i, j, k)``), in viewing order.

    On an axis-aligned grid the plane is a slice of voxels; on an oblique grid it is
    resampled on the patient axes through the same point (pixels of the smallest voxel size).
    """
    if not grid.is_axis_aligned:
        return _oblique_plane(grid, view, centre_ijk)
    normal, horizontal, h_sign, vertical, v_sign = VIEWS[view]
    direction = grid.direction
    a_n, _ = _index_axis(direction, normal)
    a_h, s_h = _index_axis(direction, horizontal)
    a_v, s_v = _index_axis(direction, vertical)
    size = (grid.shape[2], grid.shape[1], grid.shape[0])  # along i, j, k
    cols = np.arange(size[a_h])
    rows = np.arange(size[a_v])
    col_step = 1 if s_h == h_sign else -1
    row_step = 1 if s_v == v_sign else -1
    cols, rows = cols[::col_step], rows[::row_step]
    ijk = np.empty((rows.size, cols.size, 3), dtype=np.intp)
    ijk[..., a_h] = cols[None, :]
    ijk[..., a_v] = rows[:, None]
    ijk[..., a_n] = centre_ijk[a_n]
    col_dir = direction[:, a_h] * col_step
    row_dir = direction[:, a_v] * row_step
    edges = _edges(col_dir, row_dir)
    spacing = grid.spacing
    return PlaneGeometry(
        view=view,
        ijk=ijk,
        col_direction=col_dir,
        row_direction=row_dir,
        col_mm=float(spacing[a_h]),
        row_mm=float(spacing[a_v]),
        edges=edges,
    )


def _edges(col_dir: NDArray[np.float64], row_dir: NDArray[np.float64]) -> dict[str, str]:
    return {
        "left": orientation_letters(-col_dir),
        "right": orientation_letters(col_dir),
        "top": orientation_letters(-row_dir),
        "bottom": orientation_letters(row_dir),
    }


def _oblique_plane(grid: Grid, view: str, centre_ijk: tuple[int, int, int]) -> PlaneGeometry:
    """A plane along the patient axes through the voxel ``centre_ijk`` of an oblique grid,
    covering the grid's projection, at the grid's smallest voxel size."""
    normal, horizontal, h_sign, vertical, v_sign = VIEWS[view]
    col_dir, row_dir = np.zeros(3), np.zeros(3)
    col_dir[horizontal], row_dir[vertical] = h_sign, v_sign
    nk, nj, ni = grid.shape
    corners = np.array(
        [[i, j, k] for i in (-0.5, ni - 0.5) for j in (-0.5, nj - 0.5) for k in (-0.5, nk - 0.5)]
    )
    points = grid.index_to_patient(corners)
    centre = grid.index_to_patient(np.asarray(centre_ijk, dtype=float))
    step = float(np.min(grid.spacing))
    h = points @ col_dir
    v = points @ row_dir
    cols = np.arange(h.min() + step / 2, h.max(), step)
    rows = np.arange(v.min() + step / 2, v.max(), step)
    base = centre - (centre @ col_dir) * col_dir - (centre @ row_dir) * row_dir
    xyz = base + cols[None, :, None] * col_dir + rows[:, None, None] * row_dir
    return PlaneGeometry(
        view=view,
        ijk=grid.patient_to_index(xyz),
        col_direction=col_dir,
        row_direction=row_dir,
        col_mm=step,
        row_mm=step,
        edges=_edges(col_dir, row_dir),
    )


def scale_bar_mm(width_mm: float) -> float:
    """Length of a scale bar (mm): the longest of 1, 2, 5, 10, 20 cm within 40 % of the width."""
    fits = [c for c in (10.0, 20.0, 50.0, 100.0, 200.0) if c <= 0.4 * width_mm]
    return fits[-1] if fits else 10.0
