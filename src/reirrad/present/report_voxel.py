"""The DICOM-only sections of the clinical report (presentation of the voxel-wise results).

Filled from a :class:`reirrad.pipelines.run.CaseRun`: its voxel-wise result (cumulative EQD2
on the reference grid, cumulative DVHs, voxel-wise constraints with their sensitivity and
verdict-level flags, ESTRO-EORTC type), its NTCP (:func:`reirrad.core.ntcp.structure_ntcp`)
and, for the per-course DVH curves, the run's own maps on the reference grid
(``CaseRun.course_dvhs``, from :func:`reirrad.pipelines.accumulate.course_dvhs`). The reference CT is read for the image
underlay only.  No formula is evaluated and no dose file is read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from reirrad.core.case import Case
from reirrad.errors import InputError
from reirrad.present.colours import (
    StructureColour,
    StructureColours,
    line_effects,
    line_style,
    of_structures,
)
from reirrad.present.figures import ReportFigure, figure_svg, num
from reirrad.present.planes import PlaneGeometry, plane_geometry, scale_bar_mm

__all__ = ["voxel_results", "voxel_sections"]

_KEYS = ("dvh", "images", "ntcp", "sensitivity", "reirradiation_type")


def _fig(title: str, fig: Figure, caption: str = ""):

    return ReportFigure(title, figure_svg(fig), caption)


def _n(value: float | None, digits: int = 2) -> str:

    return num(value, digits)


def _colours(voxel) -> StructureColours:
    """One colour per structure of the run, the same in every figure (DICOM colour first)."""
    return of_structures(voxel.structures)


# --------------------------------------------------------------------------------------
# DVHs: per course and cumulative, all on the reference grid
# --------------------------------------------------------------------------------------


def _dvh_figure(voxel, course_dvhs: Mapping[str, Mapping[str, tuple]]) -> tuple[Figure, str]:
    """The DVH figure and what its caption must add about the colours."""
    colours = _colours(voxel)
    courses = [c.course for c in voxel.courses]
    n_rows = len(courses) + 1
    fig = Figure(figsize=(7.4, 2.35 * n_rows + 0.5), layout="constrained")
    axes = fig.subplots(n_rows, 2, squeeze=False)
    for row, course in enumerate(courses):
        for col, label in enumerate(("physical dose (Gy)", "EQD2 (Gy)")):
            ax = axes[row][col]
            for name, pair in course_dvhs.get(course, {}).items():
                dvh = pair[col]
                style = line_style(colours[name], 1.2) if name in colours else {"color": "k"}
                ax.plot(dvh.edges, dvh.cumulative_percent, **style)
            ax.set_title(f"{course}: {label.split(' (')[0]}", fontsize=8.5, loc="left")
            ax.set_xlabel(label, fontsize=7.5)
    for col, (title, attr) in enumerate(
        (
            ("cumulative EQD2, with recovery", "dvh"),
            ("cumulative EQD2, without recovery", "dvh_no_recovery"),
        )
    ):
        ax = axes[-1][col]
        for s in voxel.structures:
            dvh = getattr(s, attr)
            ax.plot(dvh.edges, dvh.cumulative_percent, **line_style(colours[s.name], 1.4))
        ax.set_title(title, fontsize=8.5, loc="left")
        ax.set_xlabel("EQD2 (Gy)", fontsize=7.5)
    for ax in axes.ravel():
        ax.set_ylabel("volume (%)", fontsize=7.5)
        ax.set_ylim(0, 102)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3, lw=0.5)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    _structure_legend(fig, colours, [s.name for s in voxel.structures])
    return fig, colours.caption


def _structure_legend(fig: Figure, colours: StructureColours, names: list[str], extra=()) -> None:
    """One legend entry per structure (thick lines, so that the colour reads), below the axes."""
    handles = [matplotlib_line(colours[n]) for n in names] + [h for h, _ in extra]
    labels = list(names) + [label for _, label in extra]
    legend = fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(4, len(handles)) or 1,
        fontsize=7.5,
        handlelength=2.4,
        frameon=False,
    )
    legend.set_gid("structure-legend")


# --------------------------------------------------------------------------------------
# Orthogonal planes of the cumulative EQD2 with structure outlines
# --------------------------------------------------------------------------------------


def _reference_ct(case: Case, voxel, base: Path | None) -> tuple[np.ndarray, Any] | None:
    """The reference course's CT (HU, ``[k, j, i]``) and grid, if the case names it."""
    from reirrad.io.dicom import read_ct_volume

    spec = case.course(voxel.reference_course).dicom.ct
    if spec is None:
        return None
    root = base if base is not None else Path()
    paths = root / spec if isinstance(spec, str) else [root / p for p in spec]
    values, grid, _, _ = read_ct_volume(paths)
    return values, grid


def _ct_plane(ct: tuple[np.ndarray, Any], grid, plane: PlaneGeometry) -> np.ndarray:
    """CT sampled (trilinear, air outside) at the dose-grid voxel centres of one plane."""
    from scipy.ndimage import map_coordinates

    values, ct_grid = ct
    xyz = grid.index_to_patient(plane.ijk.astype(float))
    idx = ct_grid.patient_to_index(xyz)  # (..., 3) as i, j, k
    return map_coordinates(
        values, [idx[..., 2], idx[..., 1], idx[..., 0]], order=1, mode="constant", cval=-1000.0
    )


def _occupancy(voxel) -> dict[str, np.ndarray]:
    """Each structure's voxel occupancy on the whole reference grid, from the run's maps
    (the run keeps it only inside the structure's box; outside the box it is 0)."""
    shape = voxel.grid.shape
    out = {}
    for s in voxel.structures:
        if s.name not in voxel.maps.occupancy:
            continue
        box, fraction = voxel.maps.occupancy[s.name]
        full = np.zeros(shape, dtype=np.float32)
        full[box] = fraction
        out[s.name] = full
    return out


@dataclass(frozen=True)
class Isodose:
    """An isodose line drawn at an organ's cumulative limit, converted to EQD2.

    ``recovery``: the line is drawn on the map with recovery (the limit takes recovery
    credit) or without it (the limit is compared with the nominal sum).  ``note``: how the
    level was obtained when the limit is not an EQD2 at the tissue's alpha/beta.
    """

    structure: str
    constraint_id: str
    metric: str
    level_gy: float
    recovery: bool
    note: str = ""


def _isodoses(voxel) -> list[Isodose]:
    """The cumulative upper dose limits of the run's organs, as EQD2 levels."""
    from reirrad.core.metrics import parse_metric

    out: dict[tuple[str, float, bool], Isodose] = {}
    for item in voxel.constraints:
        c = item.result.constraint
        if item.course is not None or c.quantity == "physical" or c.comparator not in ("<", "<="):
            continue
        if not parse_metric(c.metric).is_dose:
            continue
        tissue_ab = voxel.structure(item.structure).alpha_beta
        ab = tissue_ab if c.alpha_beta_gy is None else c.alpha_beta_gy
        # BED -> EQD2 at the same alpha/beta: EQD2 = BED / (1 + 2/ab) (Bentzen et al. 2012)
        level = c.limit if c.quantity == "eqd2" else c.limit / (1.0 + 2.0 / ab)
        notes = []
        if c.quantity == "bed":
            notes.append(f"BED {c.limit:g} Gy at alpha/beta {ab:g} Gy")
        if abs(ab - tissue_ab) > 1e-9:
            notes.append(f"approximate: the map is at the tissue's alpha/beta {tissue_ab:g} Gy")
        note = "; ".join(notes)
        recovery = bool(c.recovery_credit)
        key = (item.structure, round(level, 6), recovery)
        out.setdefault(key, Isodose(item.structure, c.id, c.metric, level, recovery, note))
    return list(out.values())


def _planes_centre(voxel, values: np.ndarray, occupancy) -> tuple[tuple[int, int, int], str]:
    """The voxel ``(i, j, k)`` the planes pass through: the hottest in any target (the target
    named), else the hottest of the grid."""
    best, where = None, "through the maximum cumulative EQD2"
    for s in voxel.structures:
        if s.role != "target" or s.name not in occupancy or not occupancy[s.name].any():
            continue
        masked = np.where(occupancy[s.name] > 0, values, -np.inf)
        index = int(np.argmax(masked))
        if best is None or masked.flat[index] > values.flat[best]:
            best, where = index, f"through the maximum cumulative EQD2 in {s.name}"
    if best is None:
        best = int(np.argmax(values))
    k, j, i = np.unravel_index(best, values.shape)
    return (int(i), int(j), int(k)), where


def _planes_figure(voxel, ct=None) -> tuple[Figure, str]:
    fig, caption, _ = planes_figure(voxel, ct)
    return fig, caption


def planes_figure(voxel, ct=None) -> tuple[Figure, str, list[Isodose]]:
    """Axial (large), coronal and sagittal planes of the cumulative EQD2 with recovery, with
    structure outlines, isodose lines at the organs' cumulative limits, orientation letters
    and a scale bar; the caption; the isodose lines drawn."""
    grid = voxel.grid
    values = np.asarray(voxel.total.values, dtype=float)
    nominal = np.asarray(voxel.total_no_recovery.values, dtype=float)
    occupancy = _occupancy(voxel)
    centre, where = _planes_centre(voxel, values, occupancy)
    vmax = float(np.nanmax(values)) or 1.0
    colours = _colours(voxel)
    isodoses = _isodoses(voxel)
    fig = Figure(figsize=(7.4, 9.2), layout="constrained")
    spec = fig.add_gridspec(2, 2, height_ratios=(1.45, 1.0))
    axes = [fig.add_subplot(spec[0, :]), fig.add_subplot(spec[1, 0]), fig.add_subplot(spec[1, 1])]
    drawn: dict[Isodose, list[str]] = {iso: [] for iso in isodoses}
    organ_shown: set[Isodose] = set()
    image = None
    for ax, view in zip(axes, ("axial", "coronal", "sagittal"), strict=True):
        plane = plane_geometry(grid, view, centre)
        image = _draw_plane(ax, plane, values, ct, grid, vmax)
        shown = _draw_outlines(ax, plane, occupancy, colours)
        for iso in isodoses:
            if iso.structure not in shown:
                continue
            organ_shown.add(iso)
            volume = values if iso.recovery else nominal
            slot = sum(len(v) > 0 and v[-1] == view for v in drawn.values())
            if _draw_isodose(ax, plane, volume, iso, colours[iso.structure], slot):
                drawn[iso].append(view)
        _orientation(ax, plane)
        _scale_bar(ax, plane)
        ax.set_title(view, fontsize=9)
    colorbar = fig.colorbar(image, ax=axes, shrink=0.6, pad=0.01)
    colorbar.set_label("cumulative EQD2 with recovery (Gy)", fontsize=7.5)
    colorbar.ax.tick_params(labelsize=7)
    extra = []
    if isodoses:
        from matplotlib.lines import Line2D

        extra.append(
            (Line2D([0], [0], color="0.3", lw=1.4, ls="--"), "isodose: organ's cumulative limit")
        )
    _structure_legend(fig, colours, [n for n in occupancy if n in colours], extra)
    caption = _planes_caption(voxel, where, centre, ct, drawn, organ_shown, colours)
    return fig, caption, isodoses


def _draw_plane(ax, plane: PlaneGeometry, values, ct, grid, vmax: float):
    """CT underlay (if any) and the translucent dose wash; axis limits in mm."""
    w, h = plane.extent_mm
    extent = (0, w, h, 0)
    dose = plane.take(values)
    alpha = 1.0
    if ct is not None:
        # soft-tissue window (W 400, L 40 HU) under a translucent dose wash
        ax.imshow(
            _ct_plane(ct, grid, plane),
            cmap="gray",
            vmin=-160,
            vmax=240,
            extent=extent,
            origin="upper",
            interpolation="bilinear",
        )
        dose = np.ma.masked_less(dose, 0.1 * vmax)
        alpha = 0.55
    image = ax.imshow(
        dose,
        cmap="jet",
        vmin=0,
        vmax=vmax,
        extent=extent,
        origin="upper",
        interpolation="bilinear",
        alpha=alpha,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    return image


def _centres(plane: PlaneGeometry) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = plane.ijk.shape[:2]
    return (np.arange(cols) + 0.5) * plane.col_mm, (np.arange(rows) + 0.5) * plane.row_mm


def _draw_outlines(ax, plane: PlaneGeometry, occupancy, colours: StructureColours) -> set[str]:
    """Each structure's outline (50 % occupancy) in its colour; the names drawn."""
    xs, ys = _centres(plane)
    shown = set()
    for name, volume in occupancy.items():
        mask = plane.take(volume, 0.0)
        if name in colours and np.any(mask >= 0.5) and np.any(mask < 0.5):
            colour = colours[name]
            contour = ax.contour(xs, ys, mask, levels=[0.5], colors=[colour.rgb], linewidths=1.3)
            contour.set_path_effects(line_effects(colour, 1.3) or [])
            contour.set_gid(f"outline:{name}")
            shown.add(name)
    return shown


def _draw_isodose(ax, plane: PlaneGeometry, volume, iso: Isodose, colour, slot: int) -> bool:
    """The dashed isodose line of ``iso`` in the organ's colour, labelled with the organ and
    the level; False if the plane does not reach the level. ``slot`` spreads the labels of
    several lines of one panel around them."""
    from matplotlib import patheffects

    dose = plane.take(volume)
    if not (np.nanmin(dose) < iso.level_gy < np.nanmax(dose)):
        return False
    xs, ys = _centres(plane)
    lines = ax.contour(
        xs, ys, dose, levels=[iso.level_gy], colors=[colour.rgb], linewidths=1.5, linestyles="--"
    )
    lines.set_path_effects(
        [patheffects.Stroke(linewidth=3.0, foreground="white"), patheffects.Normal()]
    )
    lines.set_gid(f"isodose:{iso.structure}:{iso.level_gy:g}")
    vertices = np.concatenate([path.vertices for path in lines.get_paths() if len(path.vertices)])
    # the label sits on the line, at a direction from its centre that differs per line
    angle = np.radians(-60.0 + 70.0 * slot)
    offsets = vertices - vertices.mean(axis=0)
    x, y = vertices[int(np.argmax(offsets @ np.array([np.cos(angle), np.sin(angle)])))]
    ax.text(
        x,
        y,
        f"{iso.structure} {iso.level_gy:g} Gy",
        fontsize=6.5,
        ha="center",
        va="center",
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": colour.rgb, "lw": 0.8},
        gid="isodose-label",
        clip_on=True,
    )
    return True


def _halo(text_or_line, width: float = 2.5) -> None:
    """Keep white marks readable on any CT grey or dose colour.

    Lines get a dark stroke; text gets a dark box instead, because a stroked text is drawn
    as outlines and would no longer be text in the SVG and the printed PDF.
    """
    from matplotlib import patheffects
    from matplotlib.text import Text

    if isinstance(text_or_line, Text):
        text_or_line.set_bbox(
            {"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.6, "linewidth": 0}
        )
        return
    text_or_line.set_path_effects(
        [patheffects.Stroke(linewidth=width, foreground="black"), patheffects.Normal()]
    )


def _orientation(ax, plane: PlaneGeometry) -> None:
    """Patient direction letters at the middle of each panel edge (inside the image)."""
    places = {
        "left": (0.02, 0.5, "left", "center"),
        "right": (0.98, 0.5, "right", "center"),
        "top": (0.5, 0.98, "center", "top"),
        "bottom": (0.5, 0.02, "center", "bottom"),
    }
    for edge, (x, y, ha, va) in places.items():
        text = ax.text(
            x,
            y,
            plane.edges[edge],
            transform=ax.transAxes,
            ha=ha,
            va=va,
            fontsize=9,
            fontweight="bold",
            color="white",
            gid=f"orientation:{edge}",
        )
        _halo(text)


def _scale_bar(ax, plane: PlaneGeometry) -> None:
    """A bar of a round length (mm, in data units: the image extent is in mm)."""
    from matplotlib.lines import Line2D

    w, h = plane.extent_mm
    length = scale_bar_mm(w)
    x0, y0 = 0.05 * w, 0.9 * h
    bar = Line2D(
        [x0, x0 + length],
        [y0, y0],
        color="white",
        lw=2.5,
        solid_capstyle="butt",
        gid=f"scale-bar:{length:g}",
    )
    _halo(bar, 4.5)
    ax.add_line(bar)
    label = ax.text(
        x0 + length / 2,
        y0 - 0.025 * h,
        f"{length / 10:g} cm",
        ha="center",
        va="bottom",
        fontsize=7.5,
        color="white",
        gid="scale-bar-label",
    )
    _halo(label)


def _planes_caption(voxel, where, centre, ct, drawn, organ_shown, colours: StructureColours) -> str:
    grid = voxel.grid
    nk, nj, ni = grid.shape
    si, sj, sk = (float(v) for v in grid.spacing)
    xyz = grid.index_to_patient(np.array(centre, dtype=float))
    underlay = (
        "over the reference CT (soft-tissue window; dose above 10 % of its maximum)"
        if ct is not None
        else "(no CT in the case file)"
    )
    text = (
        f"Planes {where} {underlay} (x {xyz[0]:.1f}, y {xyz[1]:.1f}, z {xyz[2]:.1f} mm, patient "
        f"coordinates), on the reference dose grid ({nk} x {nj} x {ni} voxels of "
        f"{sk:g} x {sj:g} x {si:g} mm); outlines at 50 % voxel occupancy of the reference "
        "RTSTRUCT. Letters: patient right/left, anterior/posterior, superior/inferior (DICOM "
        "patient coordinates); bar: length in the patient."
    )
    if not grid.is_axis_aligned:
        text += (
            " The dose grid is oblique: the planes are resampled (trilinear) along the patient "
            "axes through that point."
        )
    if drawn:
        parts = []
        for iso, views in drawn.items():
            details = [iso.constraint_id, *([iso.note] if iso.note else [])]
            if not iso.recovery:
                details.append("on the sum without recovery")
            where_drawn = (
                ", ".join(views)
                if views
                else "not reached in these planes"
                if iso in organ_shown
                else "the organ is not in these planes"
            )
            parts.append(
                f"{iso.structure} {iso.metric} {iso.level_gy:.4g} Gy ({'; '.join(details)}): "
                f"{where_drawn}"
            )
        text += " Dashed: the organs' cumulative limits as EQD2 isodoses, " + "; ".join(parts) + "."
    else:
        text += " No cumulative dose limit applies to the structures shown: no isodose line."
    return f"{text} {colours.caption}".strip()


def matplotlib_line(colour: StructureColour):
    """A legend handle: a thick line in the structure's colour (outlined when light)."""
    from matplotlib.lines import Line2D

    return Line2D([0], [0], color=colour.rgb, lw=3.0, path_effects=line_effects(colour, 3.0))


# --------------------------------------------------------------------------------------
# NTCP (computed by the run: reirrad.core.ntcp.structure_ntcp)
# --------------------------------------------------------------------------------------


def ntcp_section(ntcp: tuple, unavailable: str | None) -> dict[str, Any]:
    """The NTCP table of a run's :class:`reirrad.core.ntcp.StructureNTCP` items."""
    if not ntcp:
        return {"unavailable": unavailable or "no NTCP was computed for this case"}
    from reirrad.core.ntcp import EQD2_ASSUMPTION

    rows = [
        [
            item.structure,
            item.endpoint,
            item.parameters_text
            if item.model == "lkb"
            else f"{item.model}: {item.parameters_text}",
            item.variant,
            _n(item.geud_gy),
            "–" if item.probability is None else f"{100 * item.probability:.1f}",
        ]
        for item in ntcp
    ]
    notes = list(dict.fromkeys(note for item in ntcp for note in item.notes))
    sources = list(
        dict.fromkeys(
            f"{item.parameter_set}: {item.citation} Evidence: {item.evidence}" for item in ntcp
        )
    )
    model = "LKB NTCP" if all(item.model == "lkb" for item in ntcp) else "NTCP"
    return {
        "tables": [
            {
                "title": f"{model} of the cumulative EQD2 DVH",
                "columns": ["Structure", "End point", "Parameters", "Sum", "gEUD (Gy)", "NTCP (%)"],
                "rows": rows,
            }
        ],
        "notes": [EQD2_ASSUMPTION, *notes, *sources],
    }


# --------------------------------------------------------------------------------------
# The sections
# --------------------------------------------------------------------------------------


def _with_flags(verdict: str, flags: tuple[str, ...]) -> str | dict[str, Any]:
    """A verdict cell; with verdict-level flags (partial dose-grid coverage) the template
    shows them in the same cell, under the verdict."""
    return verdict if not flags else {"verdict": verdict, "flags": list(flags)}


def _registration(voxel) -> str:
    parts = [f"{m.course}: {m.mapping_description}" for m in voxel.courses]
    text = f"voxel-wise EQD2 sum on the dose grid of course {voxel.reference_course}; " + "; ".join(
        parts
    )
    if voxel.uncertain:
        text += " — DEFORMABLE REGISTRATION: UNCERTAIN"
    return text


def _dvh_section(voxel, course_dvhs) -> tuple[dict[str, Any], list]:
    courses = [c.course for c in voxel.courses]
    rows = []
    for s in voxel.structures:
        by_course = {c.course: c for c in s.contributions}
        row = [s.name]
        for course in courses:
            item = by_course.get(course)
            row += ["–", "–"] if item is None else [_n(item.mean_gy), _n(item.max_gy)]
        rows.append(row)
    notes = [
        "All curves on the reference dose grid of course "
        f"{voxel.reference_course} with its structures: per course, its physical dose as "
        "mapped onto that grid and its EQD2 with the tissue model (each voxel's "
        "alpha/beta and own dose per fraction), without recovery; cumulative curves: the "
        "voxel-wise sum.",
        "Contributions: each course's EQD2 after its recovery discount, averaged over the "
        "structure (the means add up to the cumulative Dmean) and its maximum in the "
        "structure (maxima of different courses need not fall in the same voxel, so they do "
        "not add up to the cumulative Dmax).",
    ]
    # a partly covered structure's per-course curve counts 0 Gy outside that course's grid
    notes += [flag for s in voxel.structures for flag in s.flags]
    columns = ["Structure"]
    for course in courses:
        columns += [f"{course} mean (Gy)", f"{course} max (Gy)"]
    section = {
        "tables": [
            {
                "title": "Contribution of each course to the voxel-wise cumulative EQD2",
                "columns": columns,
                "rows": rows,
            }
        ],
        "notes": notes,
        # the table fits where the previous section ends; the page-sized figure follows
        "tables_first": True,
    }
    dvh_fig, colour_note = _dvh_figure(voxel, course_dvhs)
    figure = _fig(
        "Dose-volume histograms",
        dvh_fig,
        "Rows: each course (physical dose and EQD2), then the cumulative EQD2 with and "
        f"without recovery. {colour_note}".strip(),
    )
    return section, [figure]


def _images_section(case: Case, voxel, base: Path | None) -> tuple[dict[str, Any], list]:
    notes: list[str] = []
    try:
        ct = _reference_ct(case, voxel, base)
    except InputError as error:
        ct = None
        notes.append(f"reference CT not shown: {error}")
    fig, caption = _planes_figure(voxel, ct)
    return {"notes": notes}, [_fig("Cumulative EQD2 (with recovery)", fig, caption)]


def _sensitivity_section(case: Case, voxel) -> dict[str, Any]:
    rows, course_rows = [], []
    for item in voxel.constraints:
        c = item.result.constraint
        limit = f"{c.metric} {c.comparator} {c.limit:g} Gy ({c.id})"
        verdict = _with_flags(item.result.status.upper(), item.flags)
        if item.sensitivity is None:
            course_rows.append(
                [item.structure, limit, item.quantity_text, _n(item.result.value), verdict]
            )
            continue
        sens = item.sensitivity
        failing = ", ".join(s.label for s in sens.failing) or "none"
        rows.append(
            [
                item.structure,
                limit,
                _n(item.result.value),
                verdict,
                sens.status,
                f"{_n(sens.value_min)}–{_n(sens.value_max)}",
                failing,
            ]
        )
    shift = case.analysis.sensitivity.alpha_beta_shift_gy
    scales = ", ".join(f"{x:g}" for x in case.analysis.sensitivity.recovery_scales)
    tables = []
    if rows:
        tables.append(
            {
                "title": "Cumulative limits on the voxel-wise sum",
                "columns": [
                    "Structure",
                    "Limit",
                    "Nominal (Gy)",
                    "Verdict",
                    "Over all scenarios",
                    "Range (Gy)",
                    "Failing scenarios",
                ],
                "rows": rows,
            }
        )
    if course_rows:
        tables.append(
            {
                "title": "Per-course limits",
                "columns": ["Structure", "Limit", "Compared with", "Value (Gy)", "Verdict"],
                "rows": course_rows,
            }
        )
    if not tables:
        return {"unavailable": "no constraint applies to the structures of this case"}
    return {
        "tables": tables,
        "notes": [
            f"Scenarios: organ-at-risk alpha/beta shifted by -{shift:g}, 0, +{shift:g} Gy and "
            f"recovery scaled by {scales} (0 = no recovery, 1 = the model's value); a limit "
            "stated at its own alpha/beta keeps it.",
        ],
    }


def _limit_row(item) -> dict[str, Any]:
    """One voxel-wise limit as a row of the report's limits table."""
    c = item.result.constraint
    return {
        "structure": item.structure,
        "id": c.id,
        "limit": f"{c.metric} {c.comparator} {c.limit:g} Gy",
        "quantity": item.quantity_text,
        "value": num(item.result.value, unit="Gy"),
        "margin": num(item.result.margin, unit="Gy"),
        "verdict": item.result.status.upper(),
        "flags": list(item.flags),
        "endpoint": c.endpoint or "–",
        "source": c.source,
        "evidence": c.evidence,
        "warnings": list(item.result.warnings),
        "depends": item.sensitivity is not None and item.sensitivity.status == "depends",
    }


def voxel_results(voxel, structure_level: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    """The voxel-wise result as the report's main tables: one row per structure and
    cumulative statistic, and one row per limit checked.

    Parameters
    ----------
    voxel
        The run's :class:`reirrad.core.voxel.VoxelAssessment`.
    structure_level
        ``{(structure, statistic): cumulative EQD2 text}`` of the structure-level assessment,
        shown beside the voxel-wise value for comparison.
    """
    from reirrad.core.metrics import parse_metric

    limits = [_limit_row(item) for item in voxel.constraints]
    rows = []
    for s in voxel.structures:
        for m in s.metrics:
            own = [
                row
                for row, item in zip(limits, voxel.constraints, strict=True)
                if item.structure == s.name
                and item.course is None
                and parse_metric(item.result.constraint.metric).name == m.metric
            ]
            verdicts = {row["verdict"] for row in own}
            rows.append(
                {
                    "structure": s.name,
                    "statistic": m.metric,
                    "role": s.role.replace("_", " "),
                    "alpha_beta": f"{s.alpha_beta:g}",
                    "eqd2": _n(m.eqd2_gy),
                    "eqd2_no_recovery": _n(m.eqd2_no_recovery_gy),
                    "comparison": structure_level.get((s.name, m.metric), "–"),
                    "verdict": "FAIL"
                    if "FAIL" in verdicts
                    else ("PASS" if verdicts else "no limit"),
                    "flags": list(s.flags),
                }
            )
    return {"summary": rows, "limits": limits}


def voxel_sections(run) -> tuple[dict[str, Any], dict[str, list]]:
    """Sections ``dvh``, ``images``, ``ntcp``, ``sensitivity``, ``reirradiation_type`` and the
    ``registration`` text of a run's voxel-wise result, with their figures.

    Parameters
    ----------
    run
        A :class:`reirrad.pipelines.run.CaseRun` whose ``voxel`` is set (with maps).
    """
    voxel = run.voxel
    if voxel.maps is None:
        reason = "not available: the voxel-wise run kept no maps"
        return {key: {"unavailable": reason} for key in _KEYS}, {}
    sections: dict[str, Any] = {"registration": _registration(voxel)}
    figures: dict[str, list] = {}
    sections["dvh"], figures["dvh"] = _dvh_section(voxel, run.course_dvhs)
    sections["images"], images = _images_section(run.case, voxel, run.base)
    if images:
        figures["images"] = images
    sections["ntcp"] = ntcp_section(run.ntcp, run.ntcp_unavailable)
    sections["sensitivity"] = _sensitivity_section(run.case, voxel)
    reirr = voxel.reirradiation
    if reirr is None:
        note = next((w for w in voxel.warnings if "re-irradiation type" in w), None)
        sections["reirradiation_type"] = {"unavailable": note or "re-irradiation type not assessed"}
    else:
        sections["reirradiation_type"] = {"text": reirr.statement, "citation": reirr.citation}
    sections["voxel_assumptions"] = list(voxel.assumptions)
    sections["voxel_warnings"] = list(voxel.warnings)
    return sections, figures
