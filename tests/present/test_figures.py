"""The report's figures: structure colours, dose-plane orientation, scale bar and isodose lines,
and the explorer figure without a feasible scheme.

Reference values are analytic or published, not the code's output: CIEDE2000 distances are
computed here with scikit-image from the sRGB values (Sharma et al., Color Res Appl
2005;30(1):21-30); the RTSTRUCT colours are read from the file with pydicom; orientation
follows the DICOM patient coordinate system (+x patient left, +y posterior, +z superior,
PS3.3 C.7.6.2.1.1); the cord limits are the published ones (Nieder C et al., Int J Radiat
Oncol Biol Phys 2006;66(5):1446-1449: cumulative BED 135.5 Gy at alpha/beta 2 Gy, i.e. EQD2
135.5 / (1 + 2/2) = 67.75 Gy; Sahgal A et al., Int J Radiat Oncol Biol Phys
2012;82(1):107-116: cumulative Pmax EQD2 70 Gy at alpha/beta 2 Gy).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pydicom
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from skimage.color import deltaE_ciede2000, rgb2lab

from reirrad.core.explore import CumulativeConstraint, OrganAtRisk, Target, explore
from reirrad.core.geometry import Grid
from reirrad.present.colours import MIN_DELTA_E, assign_colours
from reirrad.present.planes import orientation_letters, plane_geometry
from reirrad.present.plots import NO_FEASIBLE_SCHEME, plot_feasible_region


def _de(a, b) -> float:
    lab = rgb2lab(np.array([[a, b]], dtype=float))[0]
    return float(deltaE_ciede2000(lab[0], lab[1]))


def _pairwise_min(rgbs) -> float:
    return min(_de(a, b) for a, b in itertools.combinations(rgbs, 2))


def _rtstruct_colours(path) -> dict[str, tuple[int, int, int]]:
    ds = pydicom.dcmread(str(path))
    names = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    return {
        names[c.ReferencedROINumber]: tuple(int(v) for v in c.ROIDisplayColor)
        for c in ds.ROIContourSequence
    }


# --------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [16, 19])
def test_palette_colours_are_pairwise_distinct_for_a_head_and_neck_plan(count):
    names = [f"OAR_{i:02d}" for i in range(count)]
    colours = assign_colours((n, None) for n in names)
    rgbs = [c.rgb for c in colours.colours]
    assert len(set(rgbs)) == count
    assert _pairwise_min(rgbs) >= MIN_DELTA_E
    assert not colours.notes  # nothing to confess: all distinct
    # light on white: every palette colour is at most L* 75
    assert max(rgb2lab(np.array([rgbs]))[0][:, 0]) <= 75.0 + 1e-9


def test_colours_do_not_depend_on_declaration_order():
    names = [f"S{i}" for i in range(17)]
    first = assign_colours((n, None) for n in names)
    shuffled = names[:]
    random.Random(3).shuffle(shuffled)
    second = assign_colours((n, None) for n in shuffled)
    assert all(first[n].rgb == second[n].rgb for n in names)


def test_dicom_colours_used_and_identical_ones_resolved(eclipse_prostate):
    dicom = _rtstruct_colours(eclipse_prostate / "RS.dcm")
    # the file gives CTV and PTV both RGB (0, 0, 220), Bladder (192, 192, 254)
    assert dicom["CTV"] == dicom["PTV"] == (0, 0, 220)
    colours = assign_colours(dicom.items())
    # distinct DICOM colours are kept exactly (0-255 -> 0-1)
    for name in ("BODY", "Bladder", "CTV", "Femoral Head Lt", "Femoral Head RT"):
        assert colours[name].rgb == tuple(v / 255 for v in dicom[name]), name
        assert colours[name].source == "dicom"
    # of the identical pair the first by name (CTV) keeps it; PTV gets a palette colour,
    # far enough from every other colour, and the caption says so
    assert colours["PTV"].source == "palette"
    assert colours["PTV"].dicom_rgb == (0, 0, 220)
    assert "PTV" in colours.caption and "too close" in colours.caption
    assert _pairwise_min([c.rgb for c in colours.colours]) >= MIN_DELTA_E
    # light DICOM colours are kept but outlined: pale cyan (128, 255, 255) has L* ~ 93
    assert colours["Femoral Head Lt"].outlined
    assert not colours["CTV"].outlined


def test_nearby_dicom_colours_are_resolved(eclipse_breast):
    dicom = _rtstruct_colours(eclipse_breast / "rtss.dcm")
    # Lt Lung and Nodes share (128, 128, 255); Areola (255, 204, 255) and Tumor Bed Block
    # (255, 196, 255) differ by a few CIEDE2000 units
    assert dicom["Lt Lung"] == dicom["Nodes"]
    assert _de(np.array(dicom["Areola"]) / 255, np.array(dicom["Tumor Bed Block"]) / 255) < 5
    colours = assign_colours(dicom.items())
    assert colours["Lt Lung"].source == "dicom" and colours["Nodes"].source == "palette"
    assert colours["Areola"].source == "dicom" and colours["Tumor Bed Block"].source == "palette"
    assert _pairwise_min([c.rgb for c in colours.colours]) >= MIN_DELTA_E
    assert colours["Borders"].rgb == (1.0, 1.0, 1.0) and colours["Borders"].outlined


# --------------------------------------------------------------------------------------
# Orientation of the planes (synthetic grids of the four axis-aligned patient positions)
# --------------------------------------------------------------------------------------

# ImageOrientationPatient (row, column cosines) and the slice direction of each position;
# the grid's direction matrix has the columns i (row direction), j (column direction), k.
POSITIONS = {
    "HFS": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "FFS": ((-1, 0, 0), (0, 1, 0), (0, 0, -1)),
    "HFP": ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "FFP": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
}


@pytest.mark.parametrize("position", sorted(POSITIONS))
def test_planes_are_shown_in_viewing_orientation_with_correct_letters(position):
    direction = np.array(POSITIONS[position], dtype=float).T
    shape = (20, 30, 40)  # nk, nj, ni
    grid = Grid.from_axes(origin=(0, 0, 0), spacing=(2.0, 3.0, 4.0), shape=shape,
                          direction=direction)  # fmt: skip
    volume = np.zeros(shape)
    # a marker voxel in the patient's left, anterior, superior corner region
    xyz = np.array([[i, j, k] for k in range(shape[0]) for j in range(shape[1])
                    for i in range(shape[2])], dtype=float)  # fmt: skip
    patient = grid.index_to_patient(xyz)
    centre = patient.mean(axis=0)
    target = centre + np.array([+20.0, -20.0, +20.0])  # L, A, S of the centre
    nearest = xyz[np.argmin(np.linalg.norm(patient - target, axis=1))].astype(int)
    i, j, k = nearest
    volume[k, j, i] = 1.0
    expected_edges = {
        "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
        "coronal": {"left": "R", "right": "L", "top": "S", "bottom": "I"},
        "sagittal": {"left": "A", "right": "P", "top": "S", "bottom": "I"},
    }
    # where the marker must appear (column half, row half) in each view
    expected_place = {"axial": ("right", "top"), "coronal": ("right", "top"),
                      "sagittal": ("left", "top")}  # fmt: skip
    for view in ("axial", "coronal", "sagittal"):
        plane = plane_geometry(grid, view, (int(i), int(j), int(k)))
        assert plane.edges == expected_edges[view], (position, view)
        image = plane.take(volume)
        rows, cols = np.argwhere(image == 1.0)[0]
        h, w = image.shape
        assert ("right" if cols >= w / 2 else "left", "top" if rows < h / 2 else "bottom") == (
            expected_place[view]
        ), (position, view)


def test_orientation_letters_of_oblique_directions():
    assert orientation_letters((1, 0, 0)) == "L"
    assert orientation_letters((0, -1, 0)) == "A"
    assert orientation_letters((0, 0, -1)) == "I"
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    assert orientation_letters((c, -s, 0)) == "LA"  # 30 degrees towards anterior
    assert orientation_letters((-s, 0, c)) == "SR"
    assert orientation_letters((np.cos(np.radians(5)), np.sin(np.radians(5)), 0)) == "L"


# --------------------------------------------------------------------------------------
# The planes figure of a real run (the two-course DICOM phantom)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantom_voxel(phantom_case_2):
    from reirrad.pipelines.run import run_case
    from reirrad.present.report_voxel import _reference_ct

    run = run_case(phantom_case_2, explore=False)
    return run.voxel, _reference_ct(run.case, run.voxel, run.base), run


def _texts(fig):
    return [t for ax in fig.axes for t in ax.texts]


def test_planes_carry_orientation_letters_and_a_true_scale_bar(phantom_voxel):
    from reirrad.present.report_voxel import planes_figure

    voxel, ct, _ = phantom_voxel
    fig, caption, _ = planes_figure(voxel, ct)
    FigureCanvasAgg(fig).draw()
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(axes) == {"axial", "coronal", "sagittal"}
    spacing = voxel.grid.spacing  # (i, j, k) in mm; the phantom grid is HFS, axis-aligned
    for name, ax in axes.items():
        letters = {
            t.get_gid(): t.get_text()
            for t in ax.texts
            if (t.get_gid() or "").startswith("orientation")
        }
        assert sorted(letters.values()) == sorted(
            {"axial": "ALPR", "coronal": "ILRS", "sagittal": "AIPS"}[name]
        ), name
        # the scale bar: its drawn length in pixels equals (length / voxel size) image pixels
        bar = next(line for line in ax.lines if (line.get_gid() or "").startswith("scale-bar"))
        length_mm = float(bar.get_gid().split(":")[1])
        (x0, _), (x1, _) = ax.transData.transform(np.column_stack(bar.get_data()))
        image = ax.get_images()[-1]
        cols = image.get_array().shape[1]
        extent = image.get_window_extent()
        col_mm = spacing[1] if name == "sagittal" else spacing[0]
        assert abs(x1 - x0) == pytest.approx(length_mm / col_mm * extent.width / cols, rel=1e-6)
        label = next(t for t in ax.texts if t.get_gid() == "scale-bar-label")
        assert label.get_text() == f"{length_mm / 10:g} cm"
    assert "right/left" in caption


def test_isodose_levels_are_the_organ_limits(phantom_voxel):
    from reirrad.present.report_voxel import planes_figure

    voxel, ct, _ = phantom_voxel
    fig, caption, isodoses = planes_figure(voxel, ct)
    levels = sorted({iso.level_gy for iso in isodoses if iso.structure == "SpinalCanal"})
    assert levels == pytest.approx([135.5 / (1 + 2 / 2), 70.0])
    drawn = sorted(
        {
            float(level)
            for ax in fig.axes
            for artist in ax.get_children()
            if (artist.get_gid() or "").startswith("isodose:SpinalCanal")
            for level in artist.levels
        }
    )
    assert drawn == pytest.approx([67.75, 70.0])
    assert "67.75 Gy" in caption and "70 Gy" in caption
    labels = {t.get_text() for t in _texts(fig)}
    assert {"SpinalCanal 67.75 Gy", "SpinalCanal 70 Gy"} <= labels


def _rendered(fig) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3] / 255.0


def test_legend_pixels_show_each_structure_colour(phantom_voxel):
    from reirrad.present.colours import of_structures
    from reirrad.present.report_voxel import _dvh_figure

    voxel, _, run = phantom_voxel
    fig, _ = _dvh_figure(voxel, run.course_dvhs)
    pixels = _rendered(fig)
    height = pixels.shape[0]
    legend = fig.legends[0]
    expected = of_structures(voxel.structures)
    # the phantom's RTSTRUCT colours, read from the file
    dicom = _rtstruct_colours(run.base / "course2" / "RS.dcm")
    seen = []
    for line, text in zip(legend.get_lines(), legend.get_texts(), strict=True):
        name = text.get_text()
        x, y = line.get_transform().transform(np.column_stack(line.get_data())).mean(axis=0)
        sample = pixels[height - int(round(y)), int(round(x))]
        want = np.array(dicom[name]) / 255 if expected[name].source == "dicom" else None
        if want is not None:
            assert np.allclose(sample, want, atol=2 / 255), name
        seen.append(sample)
    assert _pairwise_min(seen) >= MIN_DELTA_E


# --------------------------------------------------------------------------------------
# Explorer figure
# --------------------------------------------------------------------------------------


def _cord(residual_max: float) -> OrganAtRisk:
    return OrganAtRisk("SpinalCanal", 2.0, np.linspace(0.1, 0.4, 20),
                       np.linspace(10.0, residual_max, 20),
                       (CumulativeConstraint("Dmax", 67.75, "Nieder 2006"),))  # fmt: skip


def test_no_feasible_scheme_is_said_with_the_reason_and_no_empty_legend():
    result = explore([_cord(72.0)], Target(10.0))
    assert not result.column("feasible").any()
    fig = plot_feasible_region(result)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert NO_FEASIBLE_SCHEME in texts
    reason = next(t for t in texts if "already exceeds" in t).replace("\u00a0", " ")
    assert "SpinalCanal Dmax" in reason and "72.0 Gy" in reason and "67.75 Gy" in reason
    assert ax.get_legend() is None and not fig.legends
    assert not ax.containers  # no bars
    assert not [p for p in ax.patches if (p.get_label() or "").startswith("published window")]
    pixels = _rendered(fig)
    # no bar colour anywhere: only white, black/grey text and the red headline
    saturated = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.3
    reddish = saturated & (pixels[..., 0] > pixels[..., 2] + 0.3)
    assert saturated.sum() == reddish.sum()


def test_feasible_schemes_keep_legend_window_and_axis_break():
    result = explore([_cord(40.0)], Target(10.0))
    fig = plot_feasible_region(result)
    ax = fig.axes[0]
    assert ax.get_legend() is not None
    assert NO_FEASIBLE_SCHEME not in [t.get_text() for t in ax.texts]
    ticks = {
        t.get_text(): pos for t, pos in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
    }
    # 1-10 and 25-35: unit steps, and a wider gap with a break mark between 10 and 25
    assert ticks["2"] - ticks["1"] == pytest.approx(1.0)
    assert ticks["25"] - ticks["10"] > 1.5
    marks = [a for a in ax.get_children() if a.get_gid() == "axis-break"]
    assert marks
    for mark in marks:
        if hasattr(mark, "get_xdata"):
            assert ticks["10"] < float(np.mean(mark.get_xdata())) < ticks["25"]
    assert "axis broken between 10 and 25" in ax.get_xlabel()


def test_unlimited_schemes_are_not_called_infeasible():
    # an organ the new course does not reach (relative dose 0) limits nothing: d is unlimited
    spared = OrganAtRisk("Lens", 1.0, [0.0], 5.0, (CumulativeConstraint("Dmax", 10.0, "x"),))
    result = explore([spared], Target(10.0))
    assert np.isinf(result.column("dose_per_fraction_gy")).all()
    fig = plot_feasible_region(result)
    assert NO_FEASIBLE_SCHEME not in [t.get_text() for t in fig.axes[0].texts]


def test_oblique_grid_is_resampled_along_the_patient_axes():
    # a grid rotated 25 degrees about z and 10 degrees about x: the planes follow the patient
    a, b = np.radians(25), np.radians(10)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    shape = (30, 30, 30)
    grid = Grid.from_axes(origin=(-45, -45, -45), spacing=(3.0, 3.0, 3.0), shape=shape,
                          direction=rz @ rx)  # fmt: skip
    assert not grid.is_axis_aligned
    kk, jj, ii = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    patient = grid.index_to_patient(np.stack([ii, jj, kk], axis=-1).astype(float))
    centre_ijk = (15, 15, 15)
    centre = grid.index_to_patient(np.array(centre_ijk, dtype=float))
    target = centre + np.array([+15.0, -15.0, +15.0])  # L, A, S of the centre
    blob = np.exp(-np.sum((patient - target) ** 2, axis=-1) / (2 * 6.0**2))
    expected = {"axial": ("right", "top"), "coronal": ("right", "top"),
                "sagittal": ("left", "top")}  # fmt: skip
    for view, place in expected.items():
        plane = plane_geometry(grid, view, centre_ijk)
        assert plane.resampled
        image = plane.take(blob)
        rows, cols = np.unravel_index(np.nanargmax(image), image.shape)
        h, w = image.shape
        assert ("right" if cols >= w / 2 else "left", "top" if rows < h / 2 else "bottom") == place
        # the pixel at the image's brightest point lies at the blob's in-plane projection
        xyz = grid.index_to_patient(plane.ijk[rows, cols])
        normal = {"axial": 2, "coronal": 1, "sagittal": 0}[view]
        keep = [axis for axis in range(3) if axis != normal]
        assert np.allclose(xyz[keep], target[keep], atol=3.0), view
        assert xyz[normal] == pytest.approx(centre[normal], abs=1e-9)
    assert plane_geometry(grid, "axial", centre_ijk).edges == {
        "left": "R", "right": "L", "top": "A", "bottom": "P"
    }  # fmt: skip
