"""End to end on a written three-course DICOM phantom whose answer is known exactly.

Course 1 is in its own frame of reference (known rigid transform, REG object), course 2
shares the reference frame (identity) on its own grids, course 3 is the reference. The
physical dose of every course is a sum of Gaussians in the reference frame, so the exact
cumulative EQD2 at any point is ``sum_c EQD2(D_c(x), n_c, alpha/beta)`` computed here with
reirrad.core.radiobiology on the analytic values.

Tolerances (from the requirement): point doses within 1 % away from steep gradients,
cumulative DVH metrics within 2 %.

The cumulative maps are computed with the core engine (``reirrad.core.accumulate``:
``CoursePhysical``, ``cumulative_maps``) on doses mapped by ``resample_dose``; the
file-aware pipeline is tested on the same phantom in ``tests/test_accumulate_case.py``.
"""

from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from reirrad.core.accumulate import CoursePhysical, cumulative_maps
from reirrad.core.dvh import compute_dvh, structure_occupancy
from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.radiobiology import eqd2
from reirrad.core.registration import Transform, register_deformable, register_rigid, resample_dose
from reirrad.core.tissue import Tissue, TissueRegion, build_tissue_model, membership
from reirrad.io.dicom import read_ct_geometry, read_rtdose, read_rtplan, read_rtstruct
from reirrad.io.export import write_nifti, write_nrrd, write_rtdose
from reirrad.io.phantom import default_phantom, write_phantom_case
from reirrad.io.registration_io import read_spatial_registration

AB = 3.0  # alpha/beta (Gy) used throughout unless a tissue map is tested


def _centres(grid: Grid) -> np.ndarray:
    kk, jj, ii = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    return grid.index_to_patient(np.stack([ii, jj, kk], axis=-1))


def _ct(paths) -> np.ndarray:
    slices = sorted(
        (pydicom.dcmread(p) for p in paths), key=lambda d: float(d.ImagePositionPatient[2])
    )
    return np.stack(
        [d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in slices]
    )


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return write_phantom_case(default_phantom(3), tmp_path_factory.mktemp("phantom"))


@pytest.fixture(scope="module")
def reference_grid(case):
    """The newest course's dose grid is the reference grid."""
    return read_rtdose(case.courses[-1].rtdose).grid


@pytest.fixture(scope="module")
def rigid(case):
    fixed = case.courses[-1]
    moving = case.courses[0]
    return register_rigid(
        _ct(fixed.ct),
        read_ct_geometry(fixed.ct[0].parent),
        _ct(moving.ct),
        read_ct_geometry(moving.ct[0].parent),
        fixed_frame_uid=fixed.frame_of_reference_uid,
        moving_frame_uid=moving.frame_of_reference_uid,
    )


def _transforms(case, path, rigid):
    first = read_spatial_registration(case.courses[0].registration) if path == "reg" else rigid
    return [first, Transform.identity(), Transform.identity()]


@dataclass(frozen=True)
class _Result:
    total: Dose
    total_no_recovery: Dose
    coverage: np.ndarray
    uncertain: bool
    mapped: tuple[Dose, ...]


def _cumulative(case, reference_grid, transforms, alpha_beta=AB, recovered=None):
    """Each course mapped by ``resample_dose``, then the engine's cumulative maps.

    ``recovered``: per earlier course id, its recovered-fraction map (``None``: no recovery).
    """
    courses, coverage, mapped_doses = [], np.ones(reference_grid.shape, dtype=bool), []
    for index, (files, transform) in enumerate(zip(case.courses, transforms, strict=True)):
        plan = read_rtplan(files.rtplan)
        mapped = resample_dose(read_rtdose(files.rtdose), reference_grid, transform)
        courses.append(
            CoursePhysical(f"course {index + 1}", ((plan.fractions_planned, mapped.dose.values),))
        )
        coverage &= mapped.coverage
        mapped_doses.append(mapped.dose)
    ab = np.broadcast_to(np.asarray(alpha_beta, dtype=float), reference_grid.shape)
    total, total_nr = cumulative_maps(courses, ab, recovered or {})
    uncertain = any(t.uncertain for t in transforms)
    provenance = {"courses": [c.course for c in courses], "uncertain": uncertain}

    def dose(values, recovery):
        return Dose(
            reference_grid, values, DoseKind.EFFECTIVE, None, "EQD2",
            {**provenance, "recovery": recovery},
        )  # fmt: skip

    return _Result(dose(total, "applied"), dose(total_nr, "none"), coverage, uncertain,
                   tuple(mapped_doses))  # fmt: skip


def _exact(phantom, xyz, alpha_beta=AB, recovery=None):
    total = 0.0
    for c, course in enumerate(phantom.courses):
        e = eqd2(phantom.physical_dose(c, xyz), course.fractions, alpha_beta)
        if recovery is not None and c < len(phantom.courses) - 1:
            e = (1.0 - recovery) * e
        total = total + e
    return total


def _away_from_steep_gradients(phantom, xyz, exact):
    """Points above 10 % of the maximum where no course's dose changes by > 2 Gy/mm."""
    gradient = np.max(
        [phantom.dose_gradient_bound(c, xyz) for c in range(len(phantom.courses))], axis=0
    )
    return (exact >= 0.1 * exact.max()) & (gradient <= 2.0)


def test_case_reads_back_with_the_project_readers(case):
    phantom = case.phantom
    plans = [read_rtplan(files.rtplan) for files in case.courses]
    assert [p.fractions_planned for p in plans] == [c.fractions for c in phantom.courses]
    assert [p.prescribed_dose_gy for p in plans] == pytest.approx(
        [c.prescription_gy for c in phantom.courses]
    )
    frames = [
        read_rtdose(files.rtdose).provenance["frame_of_reference_uid"] for files in case.courses
    ]
    assert frames[1] == frames[2] != frames[0]
    transform = read_spatial_registration(case.courses[0].registration)
    assert transform.moving_frame_uid == frames[0] and transform.reference_frame_uid == frames[2]
    assert np.allclose(transform.matrix, phantom.courses[0].to_reference, atol=1e-8)
    names = read_rtstruct(case.courses[-1].rtstruct).names
    assert {"BODY", "PTV_reirr", "SpinalCanal", "OAR_sphere", "OAR_tilted"} <= set(names)
    # the RTDOSE holds the analytic dose at its voxel centres (course frame -> reference)
    dose = read_rtdose(case.courses[0].rtdose)
    xyz_ref = phantom.to_reference_points(0, _centres(dose.grid))
    assert np.allclose(dose.values, phantom.physical_dose(0, xyz_ref), atol=1e-6)


@pytest.mark.parametrize("path", ["reg", "rigid"])
def test_cumulative_point_doses_within_1_percent(case, reference_grid, rigid, path):
    result = _cumulative(case, reference_grid, _transforms(case, path, rigid))
    xyz = _centres(reference_grid)
    exact = _exact(case.phantom, xyz)
    check = result.coverage & _away_from_steep_gradients(case.phantom, xyz, exact)
    assert check.sum() > 5000
    relative = np.abs(result.total.values - exact)[check] / exact[check]
    assert relative.max() < 0.01, f"{path}: max relative error {relative.max():.4f}"
    assert not result.uncertain


def test_computed_rigid_registration_recovers_the_known_transform(case, rigid):
    """Within the body (points of the reference CT inside the anatomy), the computed mapping
    differs from the true one by less than 1 mm."""
    fixed_grid = read_ct_geometry(case.courses[-1].ct[0].parent)
    xyz = _centres(fixed_grid)
    inside = case.phantom.hounsfield(xyz) > -500
    points = xyz[inside][::20]
    truth = case.phantom.courses[0].to_reference
    moving_points = (points - truth[:3, 3]) @ np.linalg.inv(truth[:3, :3]).T
    mapped = moving_points @ rigid.matrix[:3, :3].T + rigid.matrix[:3, 3]
    assert np.linalg.norm(mapped - points, axis=1).max() < 1.0
    assert rigid.kind == "rigid" and "Mattes" in rigid.description


@pytest.mark.parametrize("path", ["reg", "rigid"])
def test_cumulative_dvh_metrics_within_2_percent(case, reference_grid, rigid, path):
    """DVH of the RTSTRUCT structures on the cumulative map vs the analytic cumulative EQD2
    sampled on a 0.5 mm lattice inside the exact shapes."""
    result = _cumulative(case, reference_grid, _transforms(case, path, rigid))
    structures = read_rtstruct(case.courses[-1].rtstruct)
    for name in ("PTV_reirr", "SpinalCanal", "OAR_sphere"):
        shape = case.phantom.structure(name)
        lo, hi = _bounds(shape)
        axes = [np.arange(a + 0.25, b, 0.5) for a, b in zip(lo, hi, strict=True)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        pts = pts[shape.contains(pts)]
        exact = _exact(case.phantom, pts)
        assert result.coverage[structure_occupancy(structures.get(name), reference_grid) > 0].all()
        dvh = compute_dvh(result.total, structures.get(name))
        expected = {
            "Dmean": exact.mean(),
            "D95%": np.percentile(exact, 5),
            "D2%": np.percentile(exact, 98),
        }
        for metric, value in expected.items():
            assert dvh.metric(metric) == pytest.approx(value, rel=0.02), f"{path} {name} {metric}"


def _bounds(shape):
    c = np.asarray(shape.center, dtype=float)
    r = shape.radius + getattr(shape, "half_length", 0.0)
    return c - r, c + r


def test_tissue_map_and_recovery_exact_per_voxel(case, reference_grid):
    """SpinalCanal: alpha/beta 2 Gy, 50 % recovery of earlier courses; elsewhere 3 Gy and
    none. The canal owns the voxels at least half inside it (tissue model of
    ``reirrad.core.tissue``). Every voxel must match the exact value for the parameters the
    rule gives it."""
    structures = read_rtstruct(case.courses[-1].rtstruct)
    occupancy = structure_occupancy(structures.get("SpinalCanal"), reference_grid)
    earlier = ["course 1", "course 2"]
    canal = TissueRegion(
        "SpinalCanal",
        "organ_at_risk",
        Tissue(2.0, dict.fromkeys(earlier, 0.5)),
        (slice(None), slice(None), slice(None)),
        membership(occupancy),
    )
    model = build_tissue_model(
        reference_grid.shape, [canal], Tissue(AB, dict.fromkeys(earlier, 0.0)), courses=earlier
    )
    in_cord = occupancy >= 0.5
    np.testing.assert_array_equal(model.alpha_beta, np.where(in_cord, 2.0, AB))
    transforms = [
        read_spatial_registration(case.courses[0].registration),
        Transform.identity(),
        Transform.identity(),
    ]
    result = _cumulative(
        case, reference_grid, transforms, alpha_beta=model.alpha_beta, recovered=model.recovered
    )
    xyz = _centres(reference_grid)
    exact = np.where(
        in_cord,
        _exact(case.phantom, xyz, alpha_beta=2.0, recovery=0.5),
        _exact(case.phantom, xyz, alpha_beta=AB, recovery=0.0),
    )
    check = result.coverage & _away_from_steep_gradients(case.phantom, xyz, exact)
    relative = np.abs(result.total.values - exact)[check] / exact[check]
    assert relative.max() < 0.01
    assert (check & in_cord).sum() > 100
    # without recovery the cord voxels carry the full earlier dose
    exact_nr = np.where(
        in_cord, _exact(case.phantom, xyz, alpha_beta=2.0), _exact(case.phantom, xyz)
    )
    rel_nr = np.abs(result.total_no_recovery.values - exact_nr)[check] / exact_nr[check]
    assert rel_nr.max() < 0.01


def test_export_rtdose_nrrd_nifti_roundtrip(case, reference_grid, tmp_path):
    transforms = [
        read_spatial_registration(case.courses[0].registration),
        Transform.identity(),
        Transform.identity(),
    ]
    result = _cumulative(case, reference_grid, transforms)
    reference_ct = case.courses[-1].ct[0]
    plan_uids = [read_rtplan(files.rtplan).sop_instance_uid for files in case.courses]
    path = write_rtdose(
        result.total,
        tmp_path / "cumulative.dcm",
        reference_ct=reference_ct,
        referenced_plan_uid=plan_uids,
    )
    back = read_rtdose(path)
    assert back.kind is DoseKind.EFFECTIVE
    assert back.provenance["frame_of_reference_uid"] == case.courses[-1].frame_of_reference_uid
    assert np.allclose(back.grid.affine, reference_grid.affine)
    assert np.allclose(back.values, result.total.values, atol=result.total.values.max() * 1e-8)
    ds = pydicom.dcmread(path)
    assert (
        ds.DoseType == "EFFECTIVE" and ds.DoseUnits == "GY" and ds.DoseSummationType == "MULTI_PLAN"
    )
    category = ds.RadiobiologicalDoseEffectSequence[
        0
    ].EffectiveDoseCalculationMethodCategoryCodeSequence[0]
    method = category.EffectiveDoseCalculationMethodCodeSequence[0]
    assert (method.CodeValue, method.CodingSchemeDesignator) == ("130130", "DCM")
    assert "EQD2" in ds.SeriesDescription and "3 courses" in ds.SeriesDescription
    assert ds.PatientID == case.phantom.patient_id
    assert [r.ReferencedSOPInstanceUID for r in ds.ReferencedRTPlanSequence] == plan_uids
    for writer, name in ((write_nrrd, "cumulative.nrrd"), (write_nifti, "cumulative.nii.gz")):
        image = sitk.ReadImage(str(writer(result.total, tmp_path / name)))
        assert np.allclose(image.GetOrigin(), reference_grid.origin, atol=1e-4)
        assert np.allclose(image.GetSpacing(), reference_grid.spacing)
        assert np.allclose(sitk.GetArrayFromImage(image), result.total.values, rtol=1e-6, atol=1e-4)


def test_deformable_path_is_labelled_uncertain_everywhere(case, reference_grid, rigid):
    fixed, moving = case.courses[-1], case.courses[0]
    deformable = register_deformable(
        _ct(fixed.ct),
        read_ct_geometry(fixed.ct[0].parent),
        _ct(moving.ct),
        read_ct_geometry(moving.ct[0].parent),
        initial=rigid,
        iterations=5,
    )
    assert deformable.kind == "deformable" and deformable.uncertain
    demons = register_deformable(
        _ct(fixed.ct),
        read_ct_geometry(fixed.ct[0].parent),
        _ct(moving.ct),
        read_ct_geometry(moving.ct[0].parent),
        initial=rigid,
        method="demons",
        iterations=5,
    )
    assert demons.uncertain and "demons" in demons.description
    result = _cumulative(
        case, reference_grid, [deformable, Transform.identity(), Transform.identity()]
    )
    assert result.uncertain
    assert result.mapped[0].provenance["mapping_uncertain"] is True
    assert result.mapped[1].provenance["mapping_uncertain"] is False
    from reirrad.io.export import _method_text

    assert "UNCERTAIN" in _method_text(result.total)


@pytest.mark.parametrize(
    ("course", "path"), [(0, "reg"), (0, "rigid"), (1, "identity"), (2, "identity")]
)
def test_each_mapping_path_alone_reproduces_the_physical_dose(
    case, reference_grid, rigid, course, path
):
    """Per course, before any radiobiology: the mapped physical dose vs the analytic one,
    at points above 10 % of that course's maximum (and <= 2 Gy/mm)."""
    transform = _transforms(case, "reg" if path == "identity" else path, rigid)[course]
    assert transform.kind == path
    mapped = resample_dose(read_rtdose(case.courses[course].rtdose), reference_grid, transform)
    xyz = _centres(reference_grid)
    exact = case.phantom.physical_dose(course, xyz)
    check = (
        mapped.coverage
        & (exact >= 0.1 * exact.max())
        & (case.phantom.dose_gradient_bound(course, xyz) <= 2.0)
    )
    assert check.sum() > 1000
    relative = np.abs(mapped.dose.values - exact)[check] / exact[check]
    assert relative.max() < 0.01
