"""DVHs of the structures of an RTSTRUCT in an RTDOSE (``reirrad dvh``).

One step: read both files, check that they share a frame of reference, select the ROIs and
compute each DVH with :func:`reirrad.core.dvh.compute_dvh` (the engine every command uses).
A selected ROI wholly outside the dose grid is refused: a structure of the plan outside its
own dose grid means the two files do not belong together (or the grid is misplaced).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reirrad.core.dvh import DVH, compute_dvh
from reirrad.errors import InputError
from reirrad.io.dicom import check_frame_of_reference, read_rtdose, read_rtstruct
from reirrad.io.dicom_case import structure_outside_grid

__all__ = ["FileDVHs", "dvhs_from_files"]


@dataclass(frozen=True)
class FileDVHs:
    """The DVHs of one dose and structure set.

    Attributes
    ----------
    dvhs
        One per selected ROI, in the order asked (default: the structure set's order).
    warnings
        What the reader and the DVH engine noticed (structure set first).
    display_colors
        ROI Display Color of each ROI, ``None`` where the file has none.
    """

    dvhs: tuple[DVH, ...]
    warnings: tuple[str, ...]
    display_colors: dict[str, tuple[int, int, int] | None]


def dvhs_from_files(
    dose_path: str | Path,
    structures_path: str | Path,
    *,
    rois: Sequence[str] | None = None,
    end_cap: str | float = "half_slice",
    relative_scale_gy: float | None = None,
) -> FileDVHs:
    """DVHs of ``rois`` (default: every non-empty ROI) of an RTSTRUCT in an RTDOSE."""
    dose = read_rtdose(dose_path, relative_scale_gy=relative_scale_gy)
    structure_set = read_rtstruct(structures_path)
    check_frame_of_reference(dose, structure_set)
    warnings = list(structure_set.warnings)
    if rois:
        missing = [r for r in rois if r not in structure_set.structures]
        if missing:
            raise InputError(
                f"no ROI named {', '.join(repr(m) for m in missing)}; available: "
                + ", ".join(structure_set.structures),
                source=str(structures_path),
            )
        selected = list(rois)
    else:
        selected = [n for n, s in structure_set.structures.items() if not s.is_empty]
    dvhs = []
    for name in selected:
        structure = structure_set.structures[name]
        if structure_outside_grid(structure, dose.grid):
            raise InputError(
                f"ROI {name!r} lies entirely outside the dose grid; check that the dose "
                "belongs to these structures, extend the dose grid, or select ROIs with --roi",
                source=str(dose_path),
            )
        try:
            result = compute_dvh(dose, structure, end_cap=end_cap)
        except InputError as error:
            raise error.located(source=str(structures_path), field=f"ROI {name!r}") from None
        warnings.extend(result.provenance.get("warnings", []))
        dvhs.append(result)
    colours = {n: structure_set.structures[n].color for n in selected}
    return FileDVHs(tuple(dvhs), tuple(warnings), colours)
