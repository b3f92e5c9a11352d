"""Plain data classes for delineated structures (ROIs): contours in patient coordinates.

No I/O here: :mod:`reirrad.io.dicom` builds these from an RTSTRUCT, the DVH engine consumes
them.

Contour convention (DICOM PS3.3 C.8.8.6, ROI Contour Module): each contour is one closed
planar polygon (``CLOSED_PLANAR``), its vertices given in patient coordinates (mm), the
last vertex implicitly joined to the first.  A structure may have several polygons on the
same plane (islands, and holes drawn as further polygons); when rasterising, the even-odd
rule decides which areas are inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from reirrad.errors import InputError

__all__ = ["Structure", "StructureSet"]


# eq=False: the contours are numpy arrays, for which the generated ``__eq__``/``__hash__``
# would be ill-defined; two structures are the same object or different ones.
@dataclass(frozen=True, eq=False)
class Structure:
    """One region of interest (ROI) of a structure set.

    Attributes
    ----------
    name
        ROI name as written in the file (ROI Name, 3006,0026).
    number
        ROI Number (3006,0022), unique within the structure set.
    contours
        Closed planar polygons, each an ``(N, 3)`` float array of patient coordinates in
        mm (read-only).  Empty for an ROI without contour data (see :attr:`is_empty`).
    color
        ROI Display Color as ``(r, g, b)`` 0-255, if given.
    roi_type
        RT ROI Interpreted Type (3006,00A4), e.g. ``"ORGAN"``, ``"PTV"``, ``"EXTERNAL"``.
    frame_of_reference_uid
        Frame of reference the coordinates refer to.
    """

    name: str
    number: int
    contours: tuple[NDArray[np.float64], ...] = ()
    color: tuple[int, int, int] | None = None
    roi_type: str | None = None
    frame_of_reference_uid: str | None = None

    def __post_init__(self) -> None:
        checked = []
        for index, contour in enumerate(self.contours):
            points = np.array(contour, dtype=float)  # copy: the caller keeps their array
            if points.ndim != 2 or points.shape[1] != 3:
                raise ValueError(
                    f"contour {index} of structure {self.name!r} must be an (N, 3) array, "
                    f"got shape {points.shape}"
                )
            points.setflags(write=False)
            checked.append(points)
        object.__setattr__(self, "contours", tuple(checked))
        object.__setattr__(self, "number", int(self.number))
        if self.color is not None:
            object.__setattr__(self, "color", tuple(int(c) for c in self.color))

    @property
    def is_empty(self) -> bool:
        """True when the ROI has no contour (e.g. defined but never drawn)."""
        return len(self.contours) == 0

    @property
    def bounds(self) -> NDArray[np.float64] | None:
        """``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of all vertices (mm), None if empty."""
        if self.is_empty:
            return None
        points = np.concatenate(self.contours, axis=0)
        return np.stack([points.min(axis=0), points.max(axis=0)])


@dataclass(frozen=True)
class StructureSet:
    """The structures of one RTSTRUCT with the references needed to check consistency.

    Attributes
    ----------
    structures
        Structures keyed by ROI name, in file order (:func:`reirrad.io.dicom.read_rtstruct`
        refuses a file in which a name occurs more than once).
    frame_of_reference_uid
        Frame of reference of the contours (Referenced Frame of Reference Sequence).
    referenced_series_uid
        Series Instance UID of the image series the contours were drawn on, if stated.
    source
        File the structure set was read from.
    warnings
        What was skipped or is doubtful (open or point contours, duplicate names...).
    referenced_image_uids
        SOP Instance UIDs of the images the structure set says it was drawn on.
    """

    structures: dict[str, Structure]
    frame_of_reference_uid: str | None = None
    referenced_series_uid: str | None = None
    source: str | None = None
    warnings: tuple[str, ...] = ()
    referenced_image_uids: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "structures", dict(self.structures))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "referenced_image_uids", tuple(self.referenced_image_uids))

    @property
    def names(self) -> tuple[str, ...]:
        """Keys of :attr:`structures`, in file order."""
        return tuple(self.structures)

    def __contains__(self, name: object) -> bool:
        return name in self.structures

    def __len__(self) -> int:
        return len(self.structures)

    def get(self, name: str) -> Structure:
        """The structure called ``name``.

        An exact match wins; otherwise a case-insensitive match is accepted only when it is
        unique (``"ptv"`` finds ``"PTV"`` but not when both ``"PTV"`` and ``"Ptv"`` exist).

        Raises
        ------
        InputError
            No (unique) match; the message lists the available names.
        """
        if name in self.structures:
            return self.structures[name]
        folded = name.strip().casefold()
        matches = [key for key in self.structures if key.strip().casefold() == folded]
        if len(matches) == 1:
            return self.structures[matches[0]]
        available = ", ".join(repr(key) for key in self.structures) or "(none)"
        if matches:
            problem = (
                f"ROI name {name!r} is ambiguous (matches {', '.join(map(repr, matches))} "
                f"ignoring case); give the exact name. Available ROIs: {available}"
            )
        else:
            problem = f"no ROI named {name!r}. Available ROIs: {available}"
        raise InputError(problem, source=self.source, field="ROI")
