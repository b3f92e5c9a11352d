"""The DICOM-only sections of the clinical report (presentation of the voxel-wise results).

Filled from :func:`reirrad.pipelines.accumulate.accumulate_case` (cumulative EQD2 on the reference
grid, cumulative DVHs, voxel-wise constraints with their sensitivity, ESTRO-EORTC type) and,
for the per-course DVH curves, from each course's own RTDOSE and RTSTRUCT through the public
DVH engine (:func:`reirrad.core.dvh.compute_dvh`) and LQ conversion
(:func:`reirrad.core.accumulate.to_effective`).  No formula is evaluated here.
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

__all__ = ["voxel_sections"]

_KEYS = ("dvh", "images", "ntcp", "sensitivity", "reirradiation_type")


def _fig(title: str, fig: Figure, caption: str = ""):

    return ReportFigure(title, figure_png(fig), caption)


def _n(value: float | None, digits: int = 2) -> str:

    return num(value, digits)


def _colours(names: list[str]) -> dict[str, str]:
    return {name: f"C{i % 10}" for i, name in enumerate(names)}


# --------------------------------------------------------------------------------------
# Per-course DVHs on each course's own grid (as planned)
# --------------------------------------------------------------------------------------


def _course_dvhs(case: Case, base: Path, structures: list[tuple[str, float]]) -> tuple[dict, list]:
    """``{course: {structure: (physical DVH, EQD2 DVH)}}`` and notes."""
    from reirrad.core.accumulate import to_effective
    from reirrad.core.dvh import compute_dvh
    from reirrad.core.geometry import Dose, DoseKind
    from reirrad.io.dicom import read_rtstruct
    from reirrad.io.dicom_case import course_phases, roi_name

    out: dict[str, dict] = {}
    notes: list[str] = []
    for course in case.courses:
        phases = course_phases(course, base=base)
        grid = phases[0].dose.grid
        if any(p.dose.grid != grid for p in phases[1:]):
            notes.append(
                f"course {course.id}: its phases are on different dose grids; no per-course DVH "
                "(see the cumulative DVH)"
            )
            continue
        physical = Dose(
            grid,
            np.sum([p.dose.values for p in phases], axis=0),
            DoseKind.PHYSICAL,
            sum(p.fractions for p in phases),
            "physical",
            {"course": course.id},
        )
        structure_set = read_rtstruct(base / course.dicom.rtstruct)
        available = list(structure_set.structures)
        per: dict[str, tuple] = {}
        for name, alpha_beta in structures:
            try:
                roi = roi_name(course, name, available)
            except InputError:
                continue
            structure = structure_set.structures[roi]
            if structure.is_empty:
                continue
            # each phase converted with its own fractions (voxel's own dose per fraction)
            effective = to_effective(phases[0].dose, phases[0].fractions, alpha_beta)
            for phase in phases[1:]:
                more = to_effective(phase.dose, phase.fractions, alpha_beta)
                effective = Dose(
                    grid,
                    effective.values + more.values,
                    effective.kind,
                    None,
                    effective.quantity,
                    effective.provenance,
                )
            try:
                per[name] = (compute_dvh(physical, structure), compute_dvh(effective, structure))
            except InputError as error:
                notes.append(f"course {course.id}: {name}: no DVH ({error.problem})")
        out[course.id] = per
    return out, notes


def _dvh_figure(case: Case, voxel, course_dvhs: Mapping[str, Mapping[str, tuple]]) -> Figure:
    names = [s.name for s in voxel.structures]
    colours = _colours(names)
    courses = [c.id for c in case.courses]
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


def _reference_ct(case: Case, voxel, base: Path) -> tuple[np.ndarray, Any] | None:
    """The reference course's CT (HU, ``[k, j, i]``) and grid, if the case names it."""
    import pydicom

    from reirrad.io.dicom import read_ct_series

    spec = case.course(voxel.reference_course).dicom.ct
    if spec is None:
        return None
    paths = base / spec if isinstance(spec, str) else [base / p for p in spec]
    series = read_ct_series(paths)
    slices = []
    for source in series.sources:
        ds = pydicom.dcmread(source)
        slope = float(ds.get("RescaleSlope", 1.0))
        intercept = float(ds.get("RescaleIntercept", 0.0))
        slices.append(ds.pixel_array.astype(np.float32) * slope + intercept)
    return np.stack(slices), series.grid


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


def _planes_figure(voxel, structure_set, roi_of: Mapping[str, str], ct=None) -> tuple[Figure, str]:
    from reirrad.core.dvh import structure_occupancy

    grid = voxel.grid
    values = np.asarray(voxel.total.values, dtype=float)
    target = next((s for s in voxel.structures if s.role == "target"), None)
    occupancy = {}
    for s in voxel.structures:
        roi = roi_of.get(s.name)
        if roi is None or roi not in structure_set.structures:
            continue
        occupancy[s.name] = structure_occupancy(structure_set.structures[roi], grid)
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
# NTCP
# --------------------------------------------------------------------------------------


def _organ_matches(parameter_organ: str, organ: str | None, name: str) -> bool:
    target = parameter_organ.lower().strip()
    for text in (organ, name):
        if not text:
            continue
        key = text.lower().replace("_", " ").strip()
        if target == key or target.startswith(key + " "):
            return True
    return False


def _ntcp_section(voxel) -> dict[str, Any]:
    from reirrad.core.ntcp import ntcp_from_parameter_set
    from reirrad.io.ntcp_data import load_ntcp_parameter_sets

    sets = load_ntcp_parameter_sets()
    rows, notes, sources = [], [], []
    for s in voxel.structures:
        for pset in sets.values():
            if pset.model != "lkb" or not _organ_matches(pset.organ, s.organ, s.name):
                continue
            for label, dvh in (("with recovery", s.dvh), ("without recovery", s.dvh_no_recovery)):
                centres, volumes = dvh.differential
                keep = volumes > 0
                result = ntcp_from_parameter_set(pset, centres[keep], volumes[keep])
                p = pset.parameters
                rows.append(
                    [
                        s.name,
                        pset.endpoint,
                        f"TD50 {p['td50_gy']:g} Gy, m {p['m']:g}, n {p['n']:g}",
                        label,
                        _n(result.geud_gy),
                        f"{100 * result.probability:.1f}",
                    ]
                )
            if pset.alpha_beta_gy is not None and abs(pset.alpha_beta_gy - s.alpha_beta) > 1e-9:
                notes.append(
                    f"{s.name}: the EQD2 uses alpha/beta {s.alpha_beta:g} Gy; the parameter source "
                    f"states {pset.alpha_beta_gy:g} Gy"
                )
            sources.append(f"{pset.key}: {pset.citation} Evidence: {pset.evidence}")
    if not rows:
        return {
            "unavailable": "no packaged NTCP parameter set matches the organs of this case "
            f"(sets: {', '.join(sorted(sets))})"
        }
    from reirrad.core.ntcp import EQD2_ASSUMPTION

    return {
        "tables": [
            {
                "title": "LKB NTCP of the cumulative EQD2 DVH",
                "columns": ["Structure", "End point", "Parameters", "Sum", "gEUD (Gy)", "NTCP (%)"],
                "rows": rows,
            }
        ],
        "notes": [EQD2_ASSUMPTION, *notes, *sources],
    }


# --------------------------------------------------------------------------------------
# The sections
# --------------------------------------------------------------------------------------


def voxel_sections(case: Case, case_path: Path) -> tuple[dict[str, Any], dict[str, list]]:
    """Sections ``dvh``, ``images``, ``ntcp``, ``sensitivity``, ``reirradiation_type`` and the
    ``registration`` text of a DICOM case, with their figures."""
    from reirrad.pipelines.accumulate import accumulate_case

    base = case_path.resolve().parent
    try:
        voxel = accumulate_case(case_path)
    except InputError as error:
        reason = f"not available: the voxel-wise accumulation could not run ({error})"
        sections = {key: {"unavailable": reason} for key in _KEYS}
        sections["voxel_warnings"] = [reason]
        return sections, {}

    sections: dict[str, Any] = {}
    figures: dict[str, list] = {}

    # registration / summation (for the assumptions)
    parts = [f"{m.course}: {m.mapping_description}" for m in voxel.courses]
    text = f"voxel-wise EQD2 sum on the dose grid of course {voxel.reference_course}; " + "; ".join(
        parts
    )
    if voxel.uncertain:
        text += " — DEFORMABLE REGISTRATION: UNCERTAIN"
    sections["registration"] = text

    # DVHs
    course_dvhs, dvh_notes = _course_dvhs(
        case, base, [(s.name, s.alpha_beta) for s in voxel.structures]
    )
    metric_rows = []
    for s in voxel.structures:
        for m in s.metrics:
            metric_rows.append(
                [
                    s.name,
                    m.metric,
                    _n(m.eqd2_gy),
                    _n(m.eqd2_no_recovery_gy),
                    _n(m.structure_level.get("structure")),
                    _n(m.structure_level.get("prescription")),
                ]
            )
    sections["dvh"] = {
        "tables": [
            {
                "title": "Voxel-wise cumulative EQD2 statistics",
                "columns": [
                    "Structure",
                    "Statistic",
                    "Voxel-wise, with recovery (Gy)",
                    "Voxel-wise, without recovery (Gy)",
                    "Structure method (Gy)",
                    "Prescription method (Gy)",
                ],
                "rows": metric_rows,
            }
        ],
        "notes": [
            "Per-course curves: each course on its own dose grid with its own RTSTRUCT (as "
            "planned); EQD2 with the structure's alpha/beta and each voxel's own dose per "
            "fraction. Cumulative curves: the voxel-wise sum on the reference grid.",
            *dvh_notes,
        ],
    }
    figures["dvh"] = [
        _fig(
            "Dose-volume histograms",
            _dvh_figure(case, voxel, course_dvhs),
            "Rows: each course (physical dose and EQD2), then the cumulative EQD2 with and "
            "without recovery.",
        )
    ]

    # orthogonal images
    from reirrad.io.dicom import read_rtstruct
    from reirrad.io.dicom_case import roi_name

    reference = case.course(voxel.reference_course)
    structure_set = read_rtstruct(base / reference.dicom.rtstruct)
    roi_of = {}
    for s in voxel.structures:
        try:
            roi_of[s.name] = roi_name(reference, s.name, list(structure_set.structures))
        except InputError:
            continue
    if voxel.grid.is_axis_aligned:
        notes: list[str] = []
        try:
            ct = _reference_ct(case, voxel, base)
        except InputError as error:
            ct = None
            notes.append(f"reference CT not shown: {error}")
        fig, caption = _planes_figure(voxel, structure_set, roi_of, ct)
        figures["images"] = [_fig("Cumulative EQD2 (with recovery)", fig, caption)]
        sections["images"] = {"notes": notes}
    else:
        sections["images"] = {
            "unavailable": "not available: the reference dose grid is not axis-aligned"
        }

    sections["ntcp"] = _ntcp_section(voxel)

    # sensitivity
    rows, course_rows = [], []
    for item in voxel.constraints:
        c = item.result.constraint
        limit = f"{c.metric} {c.comparator} {c.limit:g} Gy ({c.id})"
        if item.sensitivity is None:
            course_rows.append(
                [
                    item.structure,
                    limit,
                    item.quantity_text,
                    _n(item.result.value),
                    item.result.status.upper(),
                ]
            )
            continue
        sens = item.sensitivity
        failing = ", ".join(s.label for s in sens.failing) or "none"
        rows.append(
            [
                item.structure,
                limit,
                _n(item.result.value),
                item.result.status.upper(),
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
    sections["sensitivity"] = (
        {
            "tables": tables,
            "notes": [
                f"Scenarios: organ-at-risk alpha/beta shifted by -{shift:g}, 0, +{shift:g} Gy and "
                f"recovery scaled by {scales} (0 = no recovery, 1 = the model's value); a limit "
                "stated at its own alpha/beta keeps it.",
            ],
        }
        if tables
        else {"unavailable": "no constraint applies to the structures of this case"}
    )

    # re-irradiation type
    reirr = voxel.reirradiation
    if reirr is None:
        note = next((w for w in voxel.warnings if "re-irradiation type" in w), None)
        sections["reirradiation_type"] = {"unavailable": note or "re-irradiation type not assessed"}
    else:
        sections["reirradiation_type"] = {"text": reirr.statement, "citation": reirr.citation}
    cumulative = [item for item in voxel.constraints if item.course is None]
    sections["voxel_overview"] = {
        "passing": sum(item.result.status == "pass" for item in voxel.constraints),
        "failing": sum(item.result.status == "fail" for item in voxel.constraints),
        "depends": sum(
            item.sensitivity is not None and item.sensitivity.status == "depends"
            for item in cumulative
        ),
        "failing_list": [
            f"{item.structure}: {item.result.constraint.id}"
            for item in voxel.constraints
            if item.result.status == "fail"
        ],
    }
    sections["voxel_assumptions"] = list(voxel.assumptions)
    sections["voxel_warnings"] = list(voxel.warnings)
    return sections, figures
