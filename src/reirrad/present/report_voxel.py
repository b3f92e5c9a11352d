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
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from reirrad.core.case import Case
from reirrad.errors import InputError
from reirrad.present.figures import ReportFigure, figure_png, num

__all__ = ["voxel_results", "voxel_sections"]

_KEYS = ("dvh", "images", "ntcp", "sensitivity", "reirradiation_type")


def _fig(title: str, fig: Figure, caption: str = ""):

    return ReportFigure(title, figure_png(fig), caption)


def _n(value: float | None, digits: int = 2) -> str:

    return num(value, digits)


def _colours(names: list[str]) -> dict[str, str]:
    return {name: f"C{i % 10}" for i, name in enumerate(names)}


# --------------------------------------------------------------------------------------
# DVHs: per course and cumulative, all on the reference grid
# --------------------------------------------------------------------------------------


def _dvh_figure(voxel, course_dvhs: Mapping[str, Mapping[str, tuple]]) -> Figure:
    names = [s.name for s in voxel.structures]
    colours = _colours(names)
    courses = [c.course for c in voxel.courses]
    n_rows = len(courses) + 1
    fig = Figure(figsize=(7.4, 2.35 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, 2, squeeze=False)
    for row, course in enumerate(courses):
        for col, label in enumerate(("physical dose (Gy)", "EQD2 (Gy)")):
            ax = axes[row][col]
            for name, pair in course_dvhs.get(course, {}).items():
                dvh = pair[col]
                ax.plot(dvh.edges, dvh.cumulative_percent, color=colours.get(name, "k"), lw=1.2)
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
            ax.plot(dvh.edges, dvh.cumulative_percent, color=colours[s.name], lw=1.4, label=s.name)
        ax.set_title(title, fontsize=8.5, loc="left")
        ax.set_xlabel("EQD2 (Gy)", fontsize=7.5)
    for ax in axes.ravel():
        ax.set_ylabel("volume (%)", fontsize=7.5)
        ax.set_ylim(0, 102)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3, lw=0.5)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    handles, labels = axes[-1][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=7.5)
    return fig


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


def _ct_plane(ct: tuple[np.ndarray, Any], grid, k, j, i) -> np.ndarray:
    """CT sampled (trilinear, air outside) at the dose-grid voxel centres of one plane."""
    from scipy.ndimage import map_coordinates

    values, ct_grid = ct
    kk, jj, ii = np.meshgrid(*(np.atleast_1d(v) for v in (k, j, i)), indexing="ij")
    xyz = grid.index_to_patient(np.stack([ii, jj, kk], axis=-1).astype(float))
    idx = ct_grid.patient_to_index(xyz)  # (..., 3) as i, j, k
    sampled = map_coordinates(
        values, [idx[..., 2], idx[..., 1], idx[..., 0]], order=1, mode="constant", cval=-1000.0
    )
    return np.squeeze(sampled)


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


def _planes_figure(voxel, ct=None) -> tuple[Figure, str]:
    grid = voxel.grid
    values = np.asarray(voxel.total.values, dtype=float)
    target = next((s for s in voxel.structures if s.role == "target"), None)
    occupancy = _occupancy(voxel)
    # the planes through the hottest voxel of the target (else of the whole grid)
    if target is not None and target.name in occupancy and occupancy[target.name].any():
        masked = np.where(occupancy[target.name] > 0, values, -np.inf)
        k, j, i = np.unravel_index(int(np.argmax(masked)), values.shape)
        where = f"through the maximum cumulative EQD2 in {target.name}"
    else:
        k, j, i = np.unravel_index(int(np.argmax(values)), values.shape)
        where = "through the maximum cumulative EQD2"
    sx, sy, sz = (float(v) for v in grid.spacing)
    nk, nj, ni = values.shape
    centre = grid.index_to_patient(np.array([i, j, k], dtype=float))
    vmax = float(np.nanmax(values)) or 1.0
    colours = _colours([s.name for s in voxel.structures])
    fig = Figure(figsize=(7.4, 3.0), layout="constrained")
    axes = fig.subplots(1, 3)
    # axis-aligned grids (the reference dose grid): extents in mm from the grid spacing
    all_k, all_j, all_i = np.arange(nk), np.arange(nj), np.arange(ni)
    views = (
        (
            "axial",
            values[k],
            {n: o[k] for n, o in occupancy.items()},
            (ni * sx, nj * sy),
            (k, all_j, all_i),
        ),
        (
            "coronal",
            values[:, j, :],
            {n: o[:, j, :] for n, o in occupancy.items()},
            (ni * sx, nk * sz),
            (all_k, j, all_i),
        ),
        (
            "sagittal",
            values[:, :, i],
            {n: o[:, :, i] for n, o in occupancy.items()},
            (nj * sy, nk * sz),
            (all_k, all_j, i),
        ),
    )
    image = None
    for ax, (name, plane, outlines, (w, h), where_ijk) in zip(axes, views, strict=True):
        origin = "upper" if name == "axial" else "lower"
        extent = (0, w, h, 0) if origin == "upper" else (0, w, 0, h)
        dose_alpha = 1.0
        if ct is not None:
            # soft-tissue window (W 400, L 40 HU) under a translucent dose wash
            ax.imshow(
                _ct_plane(ct, grid, *where_ijk),
                cmap="gray",
                vmin=-160,
                vmax=240,
                extent=extent,
                origin=origin,
                interpolation="bilinear",
            )
            plane = np.ma.masked_less(plane, 0.1 * vmax)
            dose_alpha = 0.55
        image = ax.imshow(
            plane,
            cmap="jet",
            vmin=0,
            vmax=vmax,
            extent=extent,
            origin=origin,
            interpolation="bilinear",
            alpha=dose_alpha,
        )
        rows, cols = plane.shape
        xs = (np.arange(cols) + 0.5) * w / cols
        ys = (np.arange(rows) + 0.5) * h / rows
        for structure, mask in outlines.items():
            if np.any(mask >= 0.5) and np.any(mask < 0.5):
                ax.contour(xs, ys, mask, levels=[0.5], colors=[colours[structure]], linewidths=1.2)
        ax.set_title(name, fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    colorbar = fig.colorbar(image, ax=axes, shrink=0.85, pad=0.01)
    colorbar.set_label("cumulative EQD2 (Gy)", fontsize=7.5)
    colorbar.ax.tick_params(labelsize=7)
    handles = [matplotlib_line(colours[n]) for n in colours if n in occupancy]
    fig.legend(
        handles,
        [n for n in colours if n in occupancy],
        loc="outside lower center",
        ncols=min(4, len(handles)) or 1,
        fontsize=7,
    )
    underlay = (
        "over the reference CT (soft-tissue window; dose above 10 % of its maximum)"
        if ct is not None
        else "(no CT in the case file)"
    )
    caption = (
        f"Planes {where} {underlay} (x {centre[0]:.1f}, y {centre[1]:.1f}, z {centre[2]:.1f} mm, patient "
        f"coordinates), on the reference dose grid ({nk} x {nj} x {ni} voxels of "
        f"{sz:g} x {sy:g} x {sx:g} mm); outlines at 50 % voxel occupancy of the reference RTSTRUCT."
    )
    return fig, caption


def matplotlib_line(colour: str):
    from matplotlib.lines import Line2D

    return Line2D([0], [0], color=colour, lw=1.5)


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
    figure = _fig(
        "Dose-volume histograms",
        _dvh_figure(voxel, course_dvhs),
        "Rows: each course (physical dose and EQD2), then the cumulative EQD2 with and "
        "without recovery.",
    )
    return section, [figure]


def _images_section(case: Case, voxel, base: Path | None) -> tuple[dict[str, Any], list]:
    if not voxel.grid.is_axis_aligned:
        return {"unavailable": "not available: the reference dose grid is not axis-aligned"}, []
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
