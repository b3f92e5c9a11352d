"""DICOM RT readers against what the files (and their documentation) state independently.

Expected numbers come from: the raw DICOM attributes read here with pydicom (not through
reirrad), the README of the shared test data (dicompyler example: 194x129x98 voxels at
2.5x2.5x3 mm, 10 ROIs, 7 fractions, Rx 14 Gy), the analytical values published with the
Nelms et al. (Med Phys 2015) data set, and the DICOM PS3.3 C.7.6.2.1.1 position equation
for synthetic files.
"""

from __future__ import annotations

import copy
import csv
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from reirrad.core.geometry import DoseKind
from reirrad.core.structures import Structure, StructureSet
from reirrad.errors import InputError
from reirrad.io.dicom import (
    ImageSeries,
    check_references,
    read_ct_geometry,
    read_ct_series,
    read_dicom,
    read_rtdose,
    read_rtplan,
    read_rtstruct,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DICOMPYLER = DATA / "dicompyler-core-example"
PYDICOM = DATA / "pydicom-rt-testfiles"
NELMS = DATA / "nelms-dvh-analytical"
RTUTILS = DATA / "rt-utils-mock"
PYMEDPHYS = DATA / "pymedphys-rtplans"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared DICOM test data not present")

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _raises_naming(path, match: str | None = None):
    """pytest.raises for an InputError whose message names the file (and ``match``)."""

    class _Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(InputError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            if not suppressed:  # another exception type: let it propagate unchanged
                return False
            message = str(self.info.value)
            assert Path(path).name in message, message
            if match is not None:
                assert match in message, message
            return suppressed

    return _Ctx()


# ---------------------------------------------------------------------------------------
# RTDOSE: real files
# ---------------------------------------------------------------------------------------


def test_dicompyler_rtdose_grid_and_values():
    path = DICOMPYLER / "rtdose.dcm"
    dose = read_rtdose(path)
    # README: 194 x 129 x 98 voxels at 2.5 x 2.5 x 3 mm; arrays are [k, j, i].
    assert dose.values.shape == (98, 129, 194)
    np.testing.assert_allclose(dose.grid.spacing, [2.5, 2.5, 3.0])
    # ImagePositionPatient of the file, relative offsets 0, 3, ..., 291.
    np.testing.assert_allclose(dose.grid.origin, [-228.6541915, -419.2444776, -122.4407])
    last = dose.grid.index_to_patient([193, 128, 97])
    np.testing.assert_allclose(
        last, [-228.6541915 + 193 * 2.5, -419.2444776 + 128 * 2.5, -122.4407 + 291]
    )
    # The last dose plane (z = 168.5593) is the plane of the CT slice ct.0.dcm.
    assert last[2] == pytest.approx(168.5593)
    assert dose.kind is DoseKind.PHYSICAL and dose.fractions is None
    prov = dose.provenance
    assert prov["dose_type"] == "PHYSICAL"
    assert prov["summation_type"] == "PLAN"
    assert prov["dose_units"] == "GY"
    assert prov["frame_offsets"] == "relative"
    assert prov["oblique"] is False
    assert prov["source"] == str(path)
    assert prov["sop_instance_uid"] == "1.2.246.352.71.7.320687012.47206.20090603085223"
    assert prov["frame_of_reference_uid"] == "2.16.840.1.113662.2.12.0.3057.1241703565.36"
    # It references the plan of the same folder.
    assert prov["referenced_rtplan_uid"] == read_rtplan(DICOMPYLER / "rtplan.dcm").sop_instance_uid

    # Values: raw stored integers times DoseGridScaling (1.4e-5), computed by hand.
    raw = pydicom.dcmread(path).pixel_array
    assert raw.max() == 1048626
    assert dose.values.max() == pytest.approx(1048626 * 1.4e-5)  # 14.680764 Gy
    k, j, i = np.unravel_index(np.argmax(raw), raw.shape)
    assert dose.values[k, j, i] == pytest.approx(14.680764)
    rng = np.random.default_rng(7)
    for _ in range(5):
        k, j, i = (int(rng.integers(0, n)) for n in raw.shape)
        assert dose.values[k, j, i] == pytest.approx(int(raw[k, j, i]) * 1.4e-5)


def test_dicompyler_dose_maximum_matches_planning_system_dvh_and_prescription():
    """Eclipse's own DVH of BODY (in the RTDOSE) gives Dmax as 104.862666...% of the 14 Gy Rx.

    (The DVHs in this file are in percent of the prescription although they say GY.)
    """
    dose = read_rtdose(DICOMPYLER / "rtdose.dcm")
    plan = read_rtplan(DICOMPYLER / "rtplan.dcm")
    body_dvh = next(
        item
        for item in pydicom.dcmread(DICOMPYLER / "rtdose.dcm").DVHSequence
        if item.DVHReferencedROISequence[0].ReferencedROINumber == 1
    )
    dmax_percent = float(body_dvh.DVHMaximumDose)
    assert dose.values.max() == pytest.approx(
        dmax_percent / 100 * plan.prescribed_dose_gy, rel=1e-5
    )


def test_pydicom_transfer_syntaxes_give_identical_doses():
    reference = read_rtdose(PYDICOM / "rtdose.dcm", relative_scale_gy=1.0)  # implicit LE
    raw = pydicom.dcmread(PYDICOM / "rtdose.dcm").pixel_array
    assert raw[0, 0, 0] == 1249000  # stated in the file
    # RELATIVE units x DoseGridScaling 1e-6 x normalisation 1 Gy: 1.249 Gy.
    assert reference.values[0, 0, 0] == pytest.approx(1.249)
    np.testing.assert_allclose(reference.values, raw * 1e-6)
    assert reference.values.shape == (15, 10, 10)
    np.testing.assert_allclose(reference.grid.spacing, [10.0, 10.0, 5.0])
    np.testing.assert_allclose(reference.grid.origin, [189.43125, 199.43125, -761.87])
    assert reference.provenance["summation_type"] == "BEAM"
    assert reference.provenance["dose_units"] == "RELATIVE"
    for name in ("rtdose_expb.dcm", "rtdose_rle.dcm"):  # explicit big endian, RLE lossless
        other = read_rtdose(PYDICOM / name, relative_scale_gy=1.0)
        np.testing.assert_array_equal(other.values, reference.values)
        np.testing.assert_array_equal(other.grid.affine, reference.grid.affine)
    for name in ("rtdose_1frame.dcm", "rtdose_expb_1frame.dcm", "rtdose_rle_1frame.dcm"):
        single = read_rtdose(PYDICOM / name, relative_scale_gy=1.0)
        assert single.values.shape == (1, 10, 10)
        np.testing.assert_array_equal(single.values[0], reference.values[0])
        np.testing.assert_allclose(single.grid.origin, reference.grid.origin)
        assert single.provenance["warnings"]  # 15 offsets for 1 frame is reported


def test_relative_dose_needs_a_normalisation():
    path = PYDICOM / "rtdose.dcm"
    with _raises_naming(path, "relative_scale_gy") as info:
        read_rtdose(path)
    assert info.value.field == "DoseUnits"
    scaled = read_rtdose(path, relative_scale_gy=60.0)
    assert scaled.values[0, 0, 0] == pytest.approx(1.249 * 60.0)
    assert scaled.provenance["relative_scale_gy"] == 60.0
    with _raises_naming(DICOMPYLER / "rtdose.dcm", "GY"):
        read_rtdose(DICOMPYLER / "rtdose.dcm", relative_scale_gy=2.0)


def test_fractions_only_when_given():
    assert read_rtdose(DICOMPYLER / "rtdose.dcm", fractions=7).fractions == 7


NELMS_LINEAR = {
    # Dose (Gy) as a function of patient position (mm), read off the files' geometry and
    # values: 1 Gy/mm along -y (AntPost) or +z (SupInf), zero beyond 10 mm from the origin.
    "Linear_AntPost": lambda xyz: np.clip(10.0 - xyz[..., 1], 0.0, None),
    "Linear_SupInf": lambda xyz: np.clip(10.0 + xyz[..., 2], 0.0, None),
}


@pytest.mark.parametrize("gradient", sorted(NELMS_LINEAR))
@pytest.mark.parametrize("voxel_mm", [1, 2])
def test_nelms_linear_gradients_follow_position(gradient, voxel_mm):
    path = NELMS / "DOSE_GRIDS" / f"{gradient}_{voxel_mm}mm_Aligned.dcm"
    dose = read_rtdose(path)
    assert dose.provenance["summation_type"] == "FRACTION"
    np.testing.assert_allclose(dose.grid.spacing, [voxel_mm] * 3)
    k, j, i = np.meshgrid(*(np.arange(n) for n in dose.values.shape), indexing="ij")
    xyz = dose.grid.index_to_patient(np.stack([i, j, k], axis=-1))
    # The same function of position must hold on the 1 mm and the 2 mm grids, whose
    # origins differ (-24,-26,-26 vs -24,-24,-24): a swapped or shifted axis would break it.
    np.testing.assert_allclose(dose.values, NELMS_LINEAR[gradient](xyz), atol=2e-5)


def test_nelms_sphere_centre_dose_equals_published_mean_dose():
    """For a linear dose, the mean over a sphere is the dose at its centre.

    The centre comes from the RTSTRUCT, the mean dose from analytical_expected.csv.
    """
    sphere = read_rtstruct(NELMS / "STRUCTURES" / "Sphere_02_0.dcm").get("Sphere_02_0")
    centre = sphere.bounds.mean(axis=0)
    np.testing.assert_allclose(centre, [0.0, -6.0, 6.0], atol=1e-6)
    rows = list(csv.DictReader((NELMS / "analytical_expected.csv").open()))
    for gradient in ("Linear_AntPost", "Linear_SupInf"):
        expected = next(
            float(r["dmean_gy"])
            for r in rows
            if r["structure_file"] == "STRUCTURES/Sphere_02_0.dcm"
            and r["dose_file"] == f"DOSE_GRIDS/{gradient}_1mm_Aligned.dcm"
        )
        dose = read_rtdose(NELMS / "DOSE_GRIDS" / f"{gradient}_1mm_Aligned.dcm")
        i, j, k = np.rint(dose.grid.patient_to_index(centre)).astype(int)
        np.testing.assert_allclose(dose.grid.index_to_patient([i, j, k]), centre, atol=1e-9)
        assert dose.values[k, j, i] == pytest.approx(expected, abs=1e-4)  # 16 Gy


# ---------------------------------------------------------------------------------------
# RTDOSE: synthetic files, 8 orientations, relative/absolute/decreasing offsets
# ---------------------------------------------------------------------------------------

# Axial orientations (row cosines, column cosines) of the 8 patient positions.
ORIENTATIONS = {
    "HFS": ([1, 0, 0], [0, 1, 0]),
    "HFP": ([-1, 0, 0], [0, -1, 0]),
    "FFS": ([-1, 0, 0], [0, 1, 0]),
    "FFP": ([1, 0, 0], [0, -1, 0]),
    "HFDR": ([0, -1, 0], [1, 0, 0]),
    "HFDL": ([0, 1, 0], [-1, 0, 0]),
    "FFDR": ([0, 1, 0], [1, 0, 0]),
    "FFDL": ([0, -1, 0], [-1, 0, 0]),
}
IPP = (100.0, -50.0, 20.0)
PIXEL_SPACING = (2.0, 3.0)  # (between rows -> along j, between columns -> along i)
SHAPE = (3, 4, 5)  # frames, rows, columns


def _rtdose_dataset(
    *,
    iop=(1, 0, 0, 0, 1, 0),
    ipp=IPP,
    pixel_spacing=PIXEL_SPACING,
    offsets=(0.0, 2.0, 4.0),
    raw=None,
    scaling="0.001",
    units="GY",
    dose_type="PHYSICAL",
    summation="PLAN",
) -> Dataset:
    frames = len(offsets)
    if raw is None:
        raw = np.arange(frames * SHAPE[1] * SHAPE[2], dtype=np.uint32).reshape(
            frames, SHAPE[1], SHAPE[2]
        )
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_DOSE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = RT_DOSE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTDOSE"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = "1.2.3.4"
    ds.ImagePositionPatient = [f"{v:g}" for v in ipp]
    ds.ImageOrientationPatient = [f"{v:g}" for v in iop]
    ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    ds.GridFrameOffsetVector = [f"{v:g}" for v in offsets]
    ds.FrameIncrementPointer = Tag(0x3004000C)
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = raw.shape[1], raw.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = units
    ds.DoseType = dose_type
    ds.DoseSummationType = summation
    ds.DoseGridScaling = scaling
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.5"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedRTPlanSequence = Sequence([ref])
    ds.PixelData = raw.astype("<u4").tobytes()
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _expected_position(row, col, offsets_along_normal, i, j, k):
    """PS3.3 C.7.6.2.1.1 plus C.8.8.3.2(a): IPP + i*dc*row + j*dr*col + offset_k*normal."""
    row, col = np.asarray(row, float), np.asarray(col, float)
    normal = np.cross(row, col)
    return (
        np.asarray(IPP)
        + i * PIXEL_SPACING[1] * row
        + j * PIXEL_SPACING[0] * col
        + offsets_along_normal[k] * normal
    )


@pytest.mark.parametrize("offsets", [(0.0, 2.0, 4.0), (0.0, -2.0, -4.0)], ids=["inc", "dec"])
@pytest.mark.parametrize("position", sorted(ORIENTATIONS))
def test_synthetic_orientations(tmp_path, position, offsets):
    row, col = ORIENTATIONS[position]
    path = _save(_rtdose_dataset(iop=(*row, *col), offsets=offsets), tmp_path / "dose.dcm")
    dose = read_rtdose(path)
    assert dose.grid.is_axis_aligned
    assert dose.provenance["oblique"] is False
    raw = np.arange(60).reshape(SHAPE)
    np.testing.assert_allclose(dose.values, raw * 0.001)
    for i, j, k in [(0, 0, 0), (4, 0, 0), (0, 3, 0), (1, 2, 2), (4, 3, 2)]:
        np.testing.assert_allclose(
            dose.grid.index_to_patient([i, j, k]),
            _expected_position(row, col, offsets, i, j, k),
            atol=1e-9,
        )
    np.testing.assert_allclose(dose.grid.spacing, [3.0, 2.0, 2.0])
    np.testing.assert_allclose(abs(np.linalg.det(dose.grid.affine[:3, :3])), 12.0)


def test_synthetic_positions_written_out_by_hand(tmp_path):
    # HFS: voxel (i=4, j=1, k=2) at IPP + (4*3, 1*2, 4) = (112, -48, 24).
    dose = read_rtdose(_save(_rtdose_dataset(), tmp_path / "hfs.dcm"))
    np.testing.assert_allclose(dose.grid.index_to_patient([4, 1, 2]), [112.0, -48.0, 24.0])
    # FFS: rows run to -x, normal (-1,0,0)x(0,1,0) = (0,0,-1): frames go towards -z.
    dose = read_rtdose(_save(_rtdose_dataset(iop=(-1, 0, 0, 0, 1, 0)), tmp_path / "ffs.dcm"))
    np.testing.assert_allclose(dose.grid.index_to_patient([1, 2, 2]), [97.0, -46.0, 16.0])
    # FFP with decreasing offsets: normal (1,0,0)x(0,-1,0) = (0,0,-1), offsets -2/frame -> +z.
    dose = read_rtdose(
        _save(_rtdose_dataset(iop=(1, 0, 0, 0, -1, 0), offsets=(0, -2, -4)), tmp_path / "ffp.dcm")
    )
    np.testing.assert_allclose(dose.grid.index_to_patient([1, 2, 2]), [103.0, -54.0, 24.0])
    # Prone HFP: rows to -x, columns to -y, normal +z.
    dose = read_rtdose(_save(_rtdose_dataset(iop=(-1, 0, 0, 0, -1, 0)), tmp_path / "hfp.dcm"))
    np.testing.assert_allclose(dose.grid.index_to_patient([1, 2, 1]), [97.0, -54.0, 22.0])


def test_absolute_offsets(tmp_path):
    # Option (b): offsets are patient z, first equal to the IPP z (20).
    dose = read_rtdose(_save(_rtdose_dataset(offsets=(20, 22, 24)), tmp_path / "abs.dcm"))
    assert dose.provenance["frame_offsets"] == "absolute"
    np.testing.assert_allclose(dose.grid.axis_coordinates()[2], [20.0, 22.0, 24.0])
    dose = read_rtdose(_save(_rtdose_dataset(offsets=(20, 18, 16)), tmp_path / "absdec.dcm"))
    np.testing.assert_allclose(dose.grid.axis_coordinates()[2], [20.0, 18.0, 16.0])
    # Feet-first with absolute z: still the patient z of each frame (flagged as non-standard).
    dose = read_rtdose(
        _save(_rtdose_dataset(iop=(-1, 0, 0, 0, 1, 0), offsets=(20, 22, 24)), tmp_path / "ffs.dcm")
    )
    np.testing.assert_allclose(dose.grid.axis_coordinates()[2], [20.0, 22.0, 24.0])
    assert any("absolute z" in w for w in dose.provenance["warnings"])


def test_oblique_dose_grid_is_built_and_flagged(tmp_path):
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    row, col = (c, s, 0.0), (-s, c, 0.0)
    dose = read_rtdose(_save(_rtdose_dataset(iop=(*row, *col)), tmp_path / "obl.dcm"))
    assert dose.provenance["oblique"] is True
    assert not dose.grid.is_axis_aligned
    np.testing.assert_allclose(
        dose.grid.index_to_patient([1, 2, 2]),
        np.asarray(IPP) + 3 * np.asarray(row) + 4 * np.asarray(col) + [0, 0, 4],
        atol=1e-6,
    )


def test_effective_dose_type(tmp_path):
    dose = read_rtdose(_save(_rtdose_dataset(dose_type="EFFECTIVE"), tmp_path / "eff.dcm"))
    assert dose.kind is DoseKind.EFFECTIVE
    assert dose.provenance["dose_type"] == "EFFECTIVE"


def test_summation_type_kept(tmp_path):
    for summation in ("MULTI_PLAN", "FRACTION", "BEAM"):
        path = _save(_rtdose_dataset(summation=summation), tmp_path / f"{summation}.dcm")
        assert read_rtdose(path).provenance["summation_type"] == summation


# ---------------------------------------------------------------------------------------
# RTDOSE: malformed input
# ---------------------------------------------------------------------------------------


def test_unequal_frame_offsets_refused(tmp_path):
    path = _save(_rtdose_dataset(offsets=(0, 2, 5)), tmp_path / "uneven.dcm")
    with _raises_naming(path, "GridFrameOffsetVector"):
        read_rtdose(path)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda ds: delattr(ds, "DoseGridScaling"), "DoseGridScaling"),
        (lambda ds: delattr(ds, "ImagePositionPatient"), "ImagePositionPatient"),
        (lambda ds: delattr(ds, "PixelSpacing"), "PixelSpacing"),
        (lambda ds: delattr(ds, "GridFrameOffsetVector"), "GridFrameOffsetVector"),
        (lambda ds: delattr(ds, "DoseUnits"), "DoseUnits"),
        (lambda ds: setattr(ds, "DoseUnits", "CGY"), "DoseUnits"),
        (lambda ds: setattr(ds, "DoseType", "ERROR"), "DoseType"),
        (lambda ds: setattr(ds, "GridFrameOffsetVector", ["0", "2"]), "GridFrameOffsetVector"),
        (lambda ds: setattr(ds, "GridFrameOffsetVector", ["7", "9", "11"]), "GridFrameOffset"),
        (lambda ds: setattr(ds, "GridFrameOffsetVector", ["0", "0", "0"]), "GridFrameOffset"),
        (lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 1, 0, 0]), "Orientation"),
        (lambda ds: setattr(ds, "Rows", 7), "PixelData"),
        (lambda ds: setattr(ds, "Modality", "RTPLAN"), "RTPLAN"),
        (lambda ds: setattr(ds, "SOPClassUID", CT_IMAGE_STORAGE), "SOPClassUID"),
        (lambda ds: delattr(ds, "PixelData"), "no dose grid"),
        (lambda ds: setattr(ds, "DoseGridScaling", "0"), "DoseGridScaling"),
        (lambda ds: setattr(ds, "PixelSpacing", ["2", "-3"]), "PixelSpacing"),
    ],
    ids=[
        "no-scaling",
        "no-ipp",
        "no-spacing",
        "no-offsets",
        "no-units",
        "cgy",
        "error-type",
        "offsets-count",
        "offsets-ambiguous",
        "offsets-zero-step",
        "iop-parallel",
        "rows-wrong",
        "modality",
        "sop-class",
        "dvh-only",
        "zero-scaling",
        "negative-spacing",
    ],
)
def test_malformed_rtdose(tmp_path, change, field):
    ds = _rtdose_dataset()
    change(ds)
    path = _save(ds, tmp_path / "bad_dose.dcm")
    with _raises_naming(path, field):
        read_rtdose(path)


@pytest.mark.parametrize("name", ["rtdose.dcm", "rtdose_expb.dcm", "rtdose_rle.dcm"])
def test_truncated_rtdose(tmp_path, name):
    # Cut inside the pixel data: native (defined length) and RLE (encapsulated, undefined).
    data = (PYDICOM / name).read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(data[: len(data) - 1000])
    with _raises_naming(path, "truncated"):
        read_rtdose(path)


def test_wrong_file_kinds(tmp_path):
    with _raises_naming(DICOMPYLER / "rtplan.dcm", "RTPLAN"):
        read_rtdose(DICOMPYLER / "rtplan.dcm")
    with _raises_naming(DICOMPYLER / "rtdose.dcm", "expected RTSTRUCT"):
        read_rtstruct(DICOMPYLER / "rtdose.dcm")
    with _raises_naming(DICOMPYLER / "rtss.dcm", "expected RTPLAN"):
        read_rtplan(DICOMPYLER / "rtss.dcm")
    with _raises_naming(NELMS / "analytical_expected.csv", "not a DICOM file"):
        read_rtdose(NELMS / "analytical_expected.csv")
    with _raises_naming(tmp_path / "missing.dcm", "not found"):
        read_rtdose(tmp_path / "missing.dcm")
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with _raises_naming(empty, "not a DICOM file"):
        read_rtstruct(empty)
    with _raises_naming(tmp_path, "directory"):
        read_rtplan(tmp_path)


def test_read_dicom_accepts_files_without_preamble():
    # pymedphys' plans and pydicom's rtstruct are bare datasets without 'DICM'.
    ds = read_dicom(PYMEDPHYS / "06MV_plan.dcm", modality="RTPLAN")
    assert ds.RTPlanLabel == "AMC06MV"


# ---------------------------------------------------------------------------------------
# RTSTRUCT
# ---------------------------------------------------------------------------------------

DICOMPYLER_ROIS = [
    "BODY",
    "Areola",
    "Borders",
    "Breast",
    "Heart",
    "Lt Lung",
    "Nodes",
    "Scar",
    "Tumor Bed",
    "Tumor Bed Block",
]


def test_dicompyler_rtstruct():
    ss = read_rtstruct(DICOMPYLER / "rtss.dcm")
    assert list(ss.structures) == DICOMPYLER_ROIS  # README order = file order
    assert [s.number for s in ss.structures.values()] == list(range(1, 11))
    assert ss.get("Areola").is_empty  # README: "Areola (empty)"
    assert not any(s.is_empty for n, s in ss.structures.items() if n != "Areola")
    body = ss.get("BODY")
    assert body.roi_type == "EXTERNAL" and body.color == (154, 155, 100)
    assert len(body.contours) == 141
    assert ss.get("Heart").roi_type == "ORGAN"
    # First BODY contour: 464 points starting at (17.72, -336.73, -122.44) (file values).
    first = body.contours[0]
    assert first.shape == (464, 3)
    np.testing.assert_allclose(first[0], [17.72, -336.73, -122.44])
    assert np.ptp(first[:, 2]) == 0.0
    assert not first.flags.writeable
    ct = pydicom.dcmread(DICOMPYLER / "ct.0.dcm", stop_before_pixels=True)
    assert ss.frame_of_reference_uid == ct.FrameOfReferenceUID
    assert ss.referenced_series_uid == ct.SeriesInstanceUID
    assert len(ss.referenced_image_uids) == 98
    assert ss.warnings == ()
    assert ss.source == str(DICOMPYLER / "rtss.dcm")


def test_structure_lookup():
    ss = read_rtstruct(DICOMPYLER / "rtss.dcm")
    assert ss.get("lt lung").name == "Lt Lung"
    assert ss.get("TUMOR BED").name == "Tumor Bed"
    with _raises_naming(DICOMPYLER / "rtss.dcm", "'Lung'") as info:
        ss.get("Lung")
    assert "Lt Lung" in str(info.value) and "Tumor Bed Block" in str(info.value)
    ambiguous = StructureSet(
        structures={
            "PTV": Structure("PTV", 1),
            "Ptv": Structure("Ptv", 2),
        },
        frame_of_reference_uid=None,
        referenced_series_uid=None,
        source="x.dcm",
        warnings=(),
    )
    assert ambiguous.get("Ptv").number == 2
    with pytest.raises(InputError, match="ambiguous"):
        ambiguous.get("ptv")


def test_nelms_sphere_structure_matches_published_volume():
    ss = read_rtstruct(NELMS / "STRUCTURES" / "Sphere_02_0.dcm")
    assert ss.get("POI_1").is_empty  # a marker ROI without contours
    sphere = ss.get("Sphere_02_0")
    lo, hi = sphere.bounds
    radius = (hi - lo) / 2
    np.testing.assert_allclose(radius, [12.0, 12.0, 12.0], atol=1e-6)
    expected_cc = next(
        float(r["volume_cc"])
        for r in csv.DictReader((NELMS / "analytical_expected.csv").open())
        if r["structure_file"] == "STRUCTURES/Sphere_02_0.dcm"
    )
    # 4/3 pi 12^3 = 7.23823 cc; the published value (7.2382396) differs in the 6th digit
    # (end-cap convention of the paper), far below any DVH tolerance.
    assert 4 / 3 * math.pi * 12.0**3 / 1000 == pytest.approx(expected_cc, rel=1e-5)
    z = sorted({float(c[0, 2]) for c in sphere.contours})
    np.testing.assert_allclose(np.diff(z), 0.2, atol=1e-6)  # "_02_": 0.2 mm contour spacing


def test_point_contours_skipped_with_warning():
    ss = read_rtstruct(PYDICOM / "rtstruct.dcm")  # no preamble; POINT isocentres
    assert list(ss.structures) == ["patient", "Isocenter 1", "Isocenter 2"]
    assert ss.get("Isocenter 1").is_empty and ss.get("Isocenter 1").roi_type == "ISOCENTER"
    assert len(ss.get("patient").contours) == 3
    assert sum("POINT" in w for w in ss.warnings) == 2


def test_open_contours_and_repeated_polygons(tmp_path):
    ds = pydicom.dcmread(DICOMPYLER / "rtss.dcm")
    heart = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == 5)
    heart.ContourSequence[0].ContourGeometricType = "OPEN_PLANAR"
    nodes = next(c for c in ds.ROIContourSequence if c.ReferencedROINumber == 7)
    nodes.ContourSequence.append(copy.deepcopy(nodes.ContourSequence[1]))
    path = tmp_path / "open.dcm"
    ds.save_as(path)
    ss = read_rtstruct(path)
    assert len(ss.get("Heart").contours) == 33 - 1
    assert any("OPEN_PLANAR" in w for w in ss.warnings)
    assert len(ss.get("Nodes").contours) == 4  # the repeated polygon would cancel its twin
    assert any("repeats" in w for w in ss.warnings)


def test_duplicate_roi_names_refused(tmp_path):
    # Matching structures by name would silently pick one of the two (a cord and its
    # limits were dropped this way): refused, naming both ROI numbers.
    ds = pydicom.dcmread(DICOMPYLER / "rtss.dcm")
    ds.StructureSetROISequence[4].ROIName = "Breast"  # Heart renamed: duplicate of ROI 4
    path = tmp_path / "dup.dcm"
    ds.save_as(path)
    with _raises_naming(path, "ROIName: ROI name 'Breast' is used twice (ROI 4 and ROI 5)"):
        read_rtstruct(path)


def test_malformed_rtstruct(tmp_path):
    ds = pydicom.dcmread(DICOMPYLER / "rtss.dcm")
    ds.ROIContourSequence[2].ContourSequence[0].ContourData = [1.0, 2.0, 3.0, 4.0]
    path = tmp_path / "bad_contour.dcm"
    ds.save_as(path)
    with _raises_naming(path, "ContourData"):
        read_rtstruct(path)
    ds = pydicom.dcmread(DICOMPYLER / "rtss.dcm")
    del ds.StructureSetROISequence
    path = tmp_path / "no_rois.dcm"
    ds.save_as(path)
    with _raises_naming(path, "StructureSetROISequence"):
        read_rtstruct(path)
    data = (DICOMPYLER / "rtss.dcm").read_bytes()
    path = tmp_path / "cut_rtss.dcm"
    path.write_bytes(data[: len(data) // 2])
    with _raises_naming(path, "truncated"):
        read_rtstruct(path)


# ---------------------------------------------------------------------------------------
# References between structure set, images and dose
# ---------------------------------------------------------------------------------------


def test_rt_utils_reference_cases():
    ct = read_ct_series(RTUTILS / "mock_data")  # the folder also holds RTSTRUCTs: skipped
    # rt.dcm: right series and images, but another frame of reference than the CT.
    problems = check_references(read_rtstruct(RTUTILS / "mock_data" / "rt.dcm"), ct, strict=False)
    assert any("frame of reference" in p for p in problems)
    # invalid_reference_rt.dcm: 5 images referenced, only 2 exist.
    problems = check_references(
        read_rtstruct(RTUTILS / "mock_data" / "invalid_reference_rt.dcm"), ct, strict=False
    )
    assert problems == (
        "3 of 5 referenced images are not in the series (e.g. "
        "2.16.840.1.114362.1.11940992.23790159890.563423472.148.92)",
    )
    # non_existent_reference_rt.dcm: no image series referenced at all.
    path = RTUTILS / "mock_data" / "non_existent_reference_rt.dcm"
    with _raises_naming(path, "does not reference any image series"):
        check_references(read_rtstruct(path), ct)
    # empty/dummy_rt.dcm: a structure set whose images are absent.
    assert check_references(read_rtstruct(RTUTILS / "empty" / "dummy_rt.dcm"), ct, strict=False)


def test_references_to_dose_and_series_uid():
    ss = read_rtstruct(DICOMPYLER / "rtss.dcm")
    assert check_references(ss, read_rtdose(DICOMPYLER / "rtdose.dcm")) == ()
    assert check_references(ss, "2.16.840.1.113662.2.12.0.3057.1241703565.43") == ()
    with _raises_naming(DICOMPYLER / "rtss.dcm", "frame of reference"):
        check_references(ss, read_rtdose(NELMS / "DOSE_GRIDS" / "Linear_SupInf_2mm_Aligned.dcm"))
    with _raises_naming(DICOMPYLER / "rtss.dcm", "1.2.3"):
        check_references(ss, ["1.2.3"])


# ---------------------------------------------------------------------------------------
# RTPLAN
# ---------------------------------------------------------------------------------------


def test_dicompyler_rtplan():
    plan = read_rtplan(DICOMPYLER / "rtplan.dcm")
    assert plan.fractions_planned == 7  # README: 7 fractions
    assert plan.prescribed_dose_gy == pytest.approx(14.0)  # README: Rx 14 Gy
    assert plan.dose_per_fraction_gy == pytest.approx(2.0)
    assert plan.label == "B1"
    assert plan.frame_of_reference_uid == "2.16.840.1.113662.2.12.0.3057.1241703565.36"
    assert [b.name for b in plan.beams] == ["3 RAO", "4 AP", "5 LAO", "6 LPO"]
    assert [b.meterset for b in plan.beams] == [97.0, 87.0, 89.0, 94.0]
    assert [b.nominal_energy for b in plan.beams] == [10.0, 6.0, 6.0, 10.0]
    assert {b.radiation_type for b in plan.beams} == {"PHOTON"}
    (group,) = plan.fraction_groups
    assert group.number == 1 and [b.beam_dose_gy for b in group.beams] == [0.5] * 4
    site = plan.prescriptions[0]
    assert (site.dose_reference_type, site.structure_type, site.description) == (
        "TARGET",
        "SITE",
        "Breast",
    )
    assert plan.prescriptions[1].point_coordinates == pytest.approx(
        (91.9182331220605, -319.57116385398, -5.7555046979658)
    )
    assert plan.approval_status == "UNAPPROVED"
    assert str(plan.plan_date) == "1901-01-01"  # anonymised date, kept as written


def test_pydicom_rtplan_and_truncated_copy():
    plan = read_rtplan(PYDICOM / "rtplan.dcm")
    assert plan.fractions_planned == 30
    assert plan.prescribed_dose_gy == pytest.approx(30.826203)
    oar = plan.prescriptions[0]
    assert oar.dose_reference_type == "ORGAN_AT_RISK"
    assert oar.organ_at_risk_maximum_dose_gy == pytest.approx(75.0)
    (beam,) = plan.beams
    assert (beam.name, beam.nominal_energy, beam.meterset) == ("Field 1", 6.0, 116.0036697)
    assert str(plan.plan_date) == "2003-09-03"
    with _raises_naming(PYDICOM / "rtplan_truncated.dcm", "truncated"):
        read_rtplan(PYDICOM / "rtplan_truncated.dcm")


@pytest.mark.parametrize(
    ("name", "fractions", "beams", "rx"),
    [
        ("06MV_plan.dcm", 1, 10, 2.0),
        ("24mm_x_20mm_rectangle.dcm", 1, 1, 2.0),
        ("FFF_example.dcm", 1, 1, 2.0),
        ("vmat_example.dcm", 2, 2, 1.0),
    ],
)
def test_pymedphys_rtplans(name, fractions, beams, rx):
    plan = read_rtplan(PYMEDPHYS / name)
    assert plan.fractions_planned == fractions
    assert len(plan.beams) == beams
    assert plan.prescribed_dose_gy == pytest.approx(rx)
    assert all(b.meterset is not None and b.meterset > 0 for b in plan.beams)


def test_vmat_plan_beam_details():
    plan = read_rtplan(PYMEDPHYS / "vmat_example.dcm")
    assert [b.beam_type for b in plan.beams] == ["DYNAMIC", "DYNAMIC"]
    assert [b.meterset for b in plan.beams] == [157.238693, 158.782211]
    assert [b.number_of_control_points for b in plan.beams] == [32, 31]


def test_several_fraction_groups(tmp_path):
    ds = pydicom.dcmread(DICOMPYLER / "rtplan.dcm")
    boost = Dataset()
    boost.FractionGroupNumber = 2
    boost.NumberOfFractionsPlanned = 3
    boost.NumberOfBeams = 0
    boost.NumberOfBrachyApplicationSetups = 0
    ds.FractionGroupSequence.append(boost)
    path = tmp_path / "two_groups.dcm"
    ds.save_as(path)
    plan = read_rtplan(path)
    assert plan.fractions_planned is None
    assert [(g.number, g.fractions_planned) for g in plan.fraction_groups] == [(1, 7), (2, 3)]
    assert any("fraction groups" in w for w in plan.warnings)


def test_malformed_rtplan(tmp_path):
    ds = pydicom.dcmread(DICOMPYLER / "rtplan.dcm")
    del ds.FractionGroupSequence[0].NumberOfFractionsPlanned
    path = tmp_path / "no_fractions.dcm"
    ds.save_as(path)
    with _raises_naming(path, "NumberOfFractionsPlanned"):
        read_rtplan(path)
    ds = pydicom.dcmread(DICOMPYLER / "rtplan.dcm")
    del ds.BeamSequence[3]
    path = tmp_path / "missing_beam.dcm"
    ds.save_as(path)
    with _raises_naming(path, "BeamSequence"):
        read_rtplan(path)


# ---------------------------------------------------------------------------------------
# CT geometry
# ---------------------------------------------------------------------------------------


def test_rt_utils_ct_series():
    series = read_ct_series(RTUTILS / "mock_data")
    assert isinstance(series, ImageSeries)
    grid = series.grid
    assert grid.shape == (2, 512, 512)
    np.testing.assert_allclose(grid.spacing, [0.488281, 0.488281, 5.0])
    np.testing.assert_allclose(grid.origin, [-125.0, -125.0, 60.0])  # ct_1.dcm, z 60 < 65
    assert series.series_instance_uid == "2.16.840.1.114362.1.11940992.23790159890.563423471.893.88"
    assert series.frame_of_reference_uid == (
        "1.2.840.113619.2.405.3.84541899.902.1605198123.912.6060.1"
    )
    # Order of the given files does not matter: slices are sorted along the normal.
    files = [RTUTILS / "mock_data" / "ct_2.dcm", RTUTILS / "mock_data" / "ct_1.dcm"]
    np.testing.assert_array_equal(
        read_ct_geometry(files).affine, read_ct_geometry(files[::-1]).affine
    )
    np.testing.assert_allclose(read_ct_geometry(files).origin, [-125.0, -125.0, 60.0])


def test_single_slice_ct_uses_slice_thickness():
    grid = read_ct_geometry(DICOMPYLER / "ct.0.dcm")
    assert grid.shape == (1, 512, 512)
    np.testing.assert_allclose(grid.spacing, [1.074219, 1.074219, 3.0])
    np.testing.assert_allclose(grid.origin, [-275.0, -524.0, 168.5593])
    assert grid.is_axis_aligned  # -1.224647e-16 in the orientation is float noise


def test_oblique_ct_refused():
    with _raises_naming(RTUTILS / "oriented_data" / "0.dcm", "ImageOrientationPatient"):
        read_ct_geometry(RTUTILS / "oriented_data")
    with _raises_naming(RTUTILS / "one_slice_data" / "0.dcm", "oblique"):
        read_ct_geometry(RTUTILS / "one_slice_data")


def _ct_header(z: float, *, iop=(1, 0, 0, 0, 1, 0), xy=(-10.0, -20.0), series="1.2.3.9") -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series
    ds.FrameOfReferenceUID = "1.2.3.4"
    ds.ImagePositionPatient = [f"{xy[0]:g}", f"{xy[1]:g}", f"{z:g}"]
    ds.ImageOrientationPatient = [f"{v:g}" for v in iop]
    ds.PixelSpacing = ["0.5", "0.75"]
    ds.SliceThickness = "2"
    ds.Rows, ds.Columns = 8, 6
    return ds


def _write_series(tmp_path: Path, headers: list[Dataset]) -> list[Path]:
    paths = []
    for index, ds in enumerate(headers):
        path = tmp_path / f"ct_{index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_synthetic_ct_series(tmp_path):
    paths = _write_series(tmp_path, [_ct_header(z) for z in (4.0, 0.0, 2.0)])
    series = read_ct_series(tmp_path)
    assert series.grid.shape == (3, 8, 6)
    np.testing.assert_allclose(series.grid.spacing, [0.75, 0.5, 2.0])  # i: columns, j: rows
    np.testing.assert_allclose(series.grid.index_to_patient([5, 7, 2]), [-6.25, -16.5, 4.0])
    assert series.sources == (str(paths[1]), str(paths[2]), str(paths[0]))
    # Feet-first supine: normal (0,0,-1), so k runs towards -z.
    ff = tmp_path / "ff"
    ff.mkdir()
    _write_series(ff, [_ct_header(z, iop=(-1, 0, 0, 0, 1, 0)) for z in (0.0, 2.0, 4.0)])
    grid = read_ct_geometry(ff)
    np.testing.assert_allclose(grid.index_to_patient([0, 0, 0]), [-10.0, -20.0, 4.0])
    np.testing.assert_allclose(grid.index_to_patient([2, 0, 2]), [-11.5, -20.0, 0.0])


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        (lambda: [_ct_header(z) for z in (0.0, 2.0, 5.0)], "not equally spaced"),
        (lambda: [_ct_header(z) for z in (0.0, 2.0, 2.0)], "same position"),
        (
            lambda: [_ct_header(0.0), _ct_header(2.0, iop=(0, 1, 0, 1, 0, 0))],
            "ImageOrientationPatient",
        ),
        (lambda: [_ct_header(0.0), _ct_header(2.0, xy=(-9.0, -20.0))], "sideways"),
        (lambda: [_ct_header(0.0), _ct_header(2.0, series="1.2.3.10")], "several image series"),
    ],
    ids=["uneven", "duplicate", "orientation", "tilt", "two-series"],
)
def test_malformed_ct_series(tmp_path, headers, match):
    paths = _write_series(tmp_path, headers())
    with pytest.raises(InputError, match=match) as info:
        read_ct_geometry(paths)
    assert "ct_" in str(info.value) or str(tmp_path) in str(info.value)


def test_ct_reader_refuses_non_images(tmp_path):
    with _raises_naming(DICOMPYLER / "rtdose.dcm", "RTDOSE"):
        read_ct_geometry([DICOMPYLER / "rtdose.dcm"])
    ds = _ct_header(0.0)
    del ds.SliceThickness
    (path,) = _write_series(tmp_path, [ds])
    with _raises_naming(path, "SliceThickness"):
        read_ct_geometry([path])
