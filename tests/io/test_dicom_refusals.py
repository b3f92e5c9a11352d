"""The DICOM readers refuse inputs they would otherwise misread, rather than guess.

Each test mutates a copy of a real file (``../shared/data``) or of the phantom written by
:func:`reirrad.io.phantom.write_example_case`, with pydicom, and checks that the reader
raises :class:`~reirrad.errors.InputError` naming the file and the DICOM attribute.  Valid
files must still read as before (``tests/test_dicom_io.py``).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml

from reirrad.cli import main
from reirrad.errors import InputError
from reirrad.io.dicom import (
    MAX_PLAUSIBLE_DOSE_GY,
    check_frame_of_reference,
    check_input_file,
    read_ct_series,
    read_ct_volume,
    read_dicom,
    read_rtdose,
    read_rtstruct,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DICOMPYLER = DATA / "dicompyler-core-example"
PROSTATE = DATA / "eclipse-prostate"
PYDICOM = DATA / "pydicom-rt-testfiles"
RTUTILS = DATA / "rt-utils-mock"

pytestmark = [
    pytest.mark.skipif(not DATA.is_dir(), reason="shared DICOM test data not present"),
    # pydicom warns when the tests write the NaN values the readers must refuse.
    pytest.mark.filterwarnings("ignore:Invalid value for VR DS"),
]

# dicompyler-core-example/rtdose.dcm: largest stored value 1048626, DoseGridScaling 1.4e-5,
# i.e. a maximum of 14.68 Gy (the 14 Gy prescription with its hot spot).
DICOMPYLER_MAX_RAW = 1048626


def _raises(path, *needles: str):
    """pytest.raises(InputError) whose message names the file and every needle."""

    class _Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(InputError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.ctx.__exit__(*exc)
            if not suppressed:
                return False
            message = str(self.info.value)
            assert Path(path).name in message, message
            assert "\n" not in message, message  # one line
            for needle in needles:
                assert needle in message, message
            return suppressed

    return _Ctx()


def _mutated(source: Path, target: Path, change) -> Path:
    ds = pydicom.dcmread(source)
    change(ds)
    ds.save_as(target)
    return target


# ---------------------------------------------------------------------------------------
# Paths: only regular files of a bounded size reach pydicom
# ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "dose.dcm"
    os.mkfifo(fifo)

    # Safety net: if the reader ever opened the FIFO it would block; a writer unblocks it
    # so that the test fails instead of hanging.
    def unblock():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass

    timer = threading.Timer(10.0, unblock)
    timer.start()
    try:
        with _raises(fifo, "not a regular file"):
            read_rtdose(fifo)
    finally:
        timer.cancel()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_device_is_refused():
    with _raises("/dev/zero", "not a regular file"):
        read_rtdose("/dev/zero")
    with _raises("/dev/zero", "not a regular file"):
        read_rtstruct("/dev/zero")


def test_directory_and_size_limit(tmp_path):
    with _raises(tmp_path, "directory"):
        read_rtdose(tmp_path)
    path = DICOMPYLER / "rtss.dcm"
    with _raises(path, "GiB"):
        read_dicom(path, max_bytes=1000)
    with _raises(path, "GiB"):
        check_input_file(path, max_bytes=1000)
    assert check_input_file(path) == path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_ct_directory_reads_only_regular_files(tmp_path):
    folder = tmp_path / "ct"
    shutil.copytree(RTUTILS / "mock_data", folder)
    os.mkfifo(folder / "zz_fifo.dcm")  # would block a reader that opened it
    series = read_ct_series(folder)
    assert len(series.sources) == len(read_ct_series(RTUTILS / "mock_data").sources)
    with _raises(folder / "zz_fifo.dcm", "not a regular file"):
        read_ct_series([*series.sources, folder / "zz_fifo.dcm"])


# ---------------------------------------------------------------------------------------
# Pixel module: consistent with itself and with the PixelData length
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "attribute"),
    [
        # 32-bit dose declared as 16 bits stored: pydicom masks the upper 16 bits.
        (lambda ds: (setattr(ds, "BitsStored", 16), setattr(ds, "HighBit", 15)), "BitsStored"),
        (lambda ds: setattr(ds, "HighBit", 30), "HighBit"),
        (lambda ds: setattr(ds, "BitsStored", 33), "BitsStored"),
        (lambda ds: setattr(ds, "BitsAllocated", 8), "BitsAllocated"),
        (
            lambda ds: (
                setattr(ds, "BitsAllocated", 16),
                setattr(ds, "BitsStored", 16),
                setattr(ds, "HighBit", 15),
            ),
            "PixelData",
        ),
        (lambda ds: setattr(ds, "PixelRepresentation", 2), "PixelRepresentation"),
        (lambda ds: setattr(ds, "Columns", ds.Columns - 1), "PixelData"),
        (lambda ds: setattr(ds, "NumberOfFrames", ds.NumberOfFrames + 1), "PixelData"),
        (lambda ds: setattr(ds, "NumberOfFrames", 0), "NumberOfFrames"),
        (lambda ds: setattr(ds, "PixelData", ds.PixelData[:-4]), "PixelData"),
    ],
    ids=[
        "bits-stored-16",
        "high-bit",
        "stored-above-allocated",
        "allocated-8",
        "allocated-16",
        "representation",
        "columns",
        "frames",
        "zero-frames",
        "short-pixel-data",
    ],
)
def test_inconsistent_dose_pixel_module(tmp_path, change, attribute):
    path = _mutated(DICOMPYLER / "rtdose.dcm", tmp_path / "rd.dcm", change)
    with _raises(path, attribute):
        read_rtdose(path)


def test_big_endian_and_rle_doses_still_read():
    reference = read_rtdose(PYDICOM / "rtdose.dcm", relative_scale_gy=50.0)
    for name in ("rtdose_expb.dcm", "rtdose_rle.dcm"):
        other = read_rtdose(PYDICOM / name, relative_scale_gy=50.0)
        np.testing.assert_array_equal(other.values, reference.values)


def test_ct_values_overflowing_bits_stored(tmp_path):
    # ct.0.dcm is signed 16-bit, -1000 ... 1457 HU; 10 bits hold -512 ... 511 only.
    narrow = _mutated(
        DICOMPYLER / "ct.0.dcm",
        tmp_path / "ct_narrow.dcm",
        lambda ds: (setattr(ds, "BitsStored", 10), setattr(ds, "HighBit", 9)),
    )
    with _raises(narrow, "BitsStored", "overflow"):
        read_ct_volume([narrow])
    # Unsigned 12 bits: -1000 stored as 64536 sets bits above the high bit.
    unsigned = _mutated(
        DICOMPYLER / "ct.0.dcm",
        tmp_path / "ct_unsigned.dcm",
        lambda ds: (
            setattr(ds, "PixelRepresentation", 0),
            setattr(ds, "BitsStored", 12),
            setattr(ds, "HighBit", 11),
        ),
    )
    with _raises(unsigned, "BitsStored"):
        read_ct_volume([unsigned])
    # 12 signed bits hold -2048 ... 2047: the sign-extended values are accepted as they are.
    values, *_ = read_ct_volume(
        [
            _mutated(
                DICOMPYLER / "ct.0.dcm",
                tmp_path / "ct12.dcm",
                lambda ds: (setattr(ds, "BitsStored", 12), setattr(ds, "HighBit", 11)),
            )
        ]
    )
    assert values.min() == -1000 and values.max() == 1457


# ---------------------------------------------------------------------------------------
# Dose plausibility
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scaling", "needles"),
    [
        ("1e-300", ("DoseGridScaling", "below")),  # zero doses: every limit would PASS
        ("1e9", ("DoseGridScaling", "cGy")),
        ("1e308", ("DoseGridScaling", "not a finite dose")),
        ("NaN", ("DoseGridScaling", "finite")),
        ("1.4e-3", ("DoseGridScaling", "cGy labelled GY")),  # the same dose in cGy
    ],
    ids=["tiny", "huge", "overflow", "nan", "cgy-as-gy"],
)
def test_implausible_dose_scaling(tmp_path, scaling, needles):
    path = _mutated(
        DICOMPYLER / "rtdose.dcm",
        tmp_path / "rd.dcm",
        lambda ds: setattr(ds, "DoseGridScaling", scaling),
    )
    with _raises(path, *needles):
        read_rtdose(path)


def test_dose_limit_can_be_raised_for_brachytherapy(tmp_path):
    path = _mutated(
        DICOMPYLER / "rtdose.dcm",
        tmp_path / "rd.dcm",
        lambda ds: setattr(ds, "DoseGridScaling", "1.4e-3"),
    )
    dose = read_rtdose(path, max_dose_gy=2000.0)
    assert dose.values.max() == pytest.approx(DICOMPYLER_MAX_RAW * 1.4e-3)
    assert DICOMPYLER_MAX_RAW * 1.4e-3 > MAX_PLAUSIBLE_DOSE_GY


def test_negative_and_all_zero_doses(tmp_path):
    def negative(ds):
        raw = ds.pixel_array.astype("<i4")
        raw[10, 50, 60] = -5
        ds.PixelRepresentation = 1
        ds.PixelData = raw.tobytes()

    path = _mutated(DICOMPYLER / "rtdose.dcm", tmp_path / "neg.dcm", negative)
    with _raises(path, "PixelData", "negative"):
        read_rtdose(path)

    def zero(ds):
        ds.PixelData = bytes(len(ds.PixelData))

    path = _mutated(DICOMPYLER / "rtdose.dcm", tmp_path / "zero.dcm", zero)
    with _raises(path, "DoseGridScaling", "no treatment dose"):
        read_rtdose(path)


@pytest.mark.parametrize(
    ("change", "attribute"),
    [
        (lambda ds: setattr(ds, "PixelSpacing", ["1e6", "1e6"]), "PixelSpacing"),
        (lambda ds: setattr(ds, "PixelSpacing", ["1e-9", "1e-9"]), "PixelSpacing"),
        (
            lambda ds: setattr(
                ds, "GridFrameOffsetVector", [f"{100.0 * k:g}" for k in range(ds.NumberOfFrames)]
            ),
            "GridFrameOffsetVector",
        ),
        (lambda ds: setattr(ds, "ImagePositionPatient", ["1e308", "0", "0"]), "ImagePosition"),
        (lambda ds: setattr(ds, "ImagePositionPatient", ["nan", "0", "0"]), "ImagePosition"),
        (lambda ds: setattr(ds, "ImagePositionPatient", ["9990", "0", "0"]), "ImagePosition"),
    ],
    ids=["spacing-huge", "spacing-tiny", "slice-100mm", "ipp-1e308", "ipp-nan", "grid-beyond-10m"],
)
def test_implausible_dose_geometry(tmp_path, change, attribute):
    path = _mutated(DICOMPYLER / "rtdose.dcm", tmp_path / "rd.dcm", change)
    with _raises(path, attribute):
        read_rtdose(path)


def test_grid_too_large_for_memory(tmp_path):
    path = DICOMPYLER / "rtdose.dcm"
    with _raises(path, "Rows/Columns/NumberOfFrames", "voxels"):
        read_rtdose(path, max_voxels=1000)


# ---------------------------------------------------------------------------------------
# RTSTRUCT: unique ROIs, consistent references, finite bounded contours
# ---------------------------------------------------------------------------------------


def _roi_number(ds, name: str) -> int:
    return next(int(r.ROINumber) for r in ds.StructureSetROISequence if r.ROIName == name)


def _roi_contour(ds, number: int):
    return next(c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) == number)


def test_duplicate_roi_numbers_and_names(tmp_path):
    def same_number(ds):
        ds.StructureSetROISequence[2].ROINumber = ds.StructureSetROISequence[1].ROINumber

    path = _mutated(DICOMPYLER / "rtss.dcm", tmp_path / "num.dcm", same_number)
    with _raises(path, "ROINumber", "used twice"):
        read_rtstruct(path)

    def same_name(ds):  # the cord case: two ROIs called "Heart"
        ds.StructureSetROISequence[5].ROIName = "Heart"

    path = _mutated(DICOMPYLER / "rtss.dcm", tmp_path / "name.dcm", same_name)
    with _raises(path, "ROIName", "'Heart' is used twice"):
        read_rtstruct(path)


def test_roi_contour_repointed(tmp_path):
    def onto_breast(ds):  # the Heart contours re-pointed at the Breast's ROI number
        heart = _roi_contour(ds, _roi_number(ds, "Heart"))
        heart.ReferencedROINumber = _roi_number(ds, "Breast")

    path = _mutated(DICOMPYLER / "rtss.dcm", tmp_path / "swap.dcm", onto_breast)
    with _raises(path, "ReferencedROINumber", "two ROIContourSequence items"):
        read_rtstruct(path)

    def undefined(ds):
        _roi_contour(ds, _roi_number(ds, "Heart")).ReferencedROINumber = 999

    path = _mutated(DICOMPYLER / "rtss.dcm", tmp_path / "undef.dcm", undefined)
    with _raises(path, "ReferencedROINumber", "999"):
        read_rtstruct(path)


@pytest.mark.parametrize(
    ("factor", "vertex"),
    [(1e8, None), (1e12, None), (1.0, 1e308), (1.0, float("nan"))],
    ids=["scaled-1e8", "scaled-1e12", "vertex-1e308", "vertex-nan"],
)
def test_implausible_contour_coordinates(tmp_path, factor, vertex):
    def change(ds):
        contour = _roi_contour(ds, _roi_number(ds, "Heart")).ContourSequence[3]
        points = [float(v) * factor for v in contour.ContourData]
        if vertex is not None:
            points[0] = vertex
        contour.ContourData = [f"{v:.6g}" for v in points]

    path = _mutated(DICOMPYLER / "rtss.dcm", tmp_path / "far.dcm", change)
    with _raises(path, "ContourData"):
        read_rtstruct(path)


def test_short_contours_are_named_one_by_one(tmp_path):
    heart_contours = len(read_rtstruct(DICOMPYLER / "rtss.dcm").get("Heart").contours)

    def shorten(ds):
        sequence = _roi_contour(ds, _roi_number(ds, "Heart")).ContourSequence
        for index, keep in ((2, 2), (7, 1)):
            sequence[index].ContourData = list(sequence[index].ContourData)[: 3 * keep]
            sequence[index].NumberOfContourPoints = keep

    path = _mutated(DICOMPYLER / "rtss.dcm", tmp_path / "short.dcm", shorten)
    ss = read_rtstruct(path)
    assert len(ss.get("Heart").contours) == heart_contours - 2
    ds = pydicom.dcmread(path)
    sequence = _roi_contour(ds, _roi_number(ds, "Heart")).ContourSequence
    for index, points in ((2, 2), (7, 1)):
        z = float(sequence[index].ContourData[2])
        expected = f"ROI 'Heart' (ROI {_roi_number(ds, 'Heart')}): contour {index} at z = {z:g} mm"
        assert any(w.startswith(expected) and f"has {points} point(s)" in w for w in ss.warnings)


# ---------------------------------------------------------------------------------------
# Frame of reference of dose and structures
# ---------------------------------------------------------------------------------------


def test_frame_of_reference_mismatch(tmp_path, capsys):
    dose = read_rtdose(DICOMPYLER / "rtdose.dcm")
    check_frame_of_reference(dose, read_rtstruct(DICOMPYLER / "rtss.dcm"))

    def other_frame(ds):
        ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.3.4.5"

    path = _mutated(DICOMPYLER / "rtss.dcm", tmp_path / "rtss_other.dcm", other_frame)
    with _raises(path, "ReferencedFrameOfReferenceSequence", "1.2.3.4.5"):
        check_frame_of_reference(dose, read_rtstruct(path))
    code = main(["dvh", "--dose", str(DICOMPYLER / "rtdose.dcm"), "--structures", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "frame of reference" in err and "Traceback" not in err


def test_dose_grid_shifted_off_the_body(tmp_path, capsys):
    def shift(ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x + 2000:g}", f"{y:g}", f"{z:g}"]

    path = _mutated(DICOMPYLER / "rtdose.dcm", tmp_path / "shifted.dcm", shift)
    args = ["dvh", "--dose", str(path), "--structures", str(DICOMPYLER / "rtss.dcm")]
    assert main([*args, "--roi", "BODY"]) == 2
    err = capsys.readouterr().err
    assert "entirely outside the dose grid" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------
# CT values in HU through pydicom's modality LUT
# ---------------------------------------------------------------------------------------


def test_ct_volume_of_the_water_phantom():
    values, grid, first, frame = read_ct_volume(PROSTATE / "CT")
    # Synthetic water CT: exactly 0 HU inside the BODY and -1000 HU outside (README).
    assert values.dtype == np.float32 and values.shape == (92, 86, 136) == grid.shape
    assert set(np.unique(values).tolist()) == {-1000.0, 0.0}
    assert Path(first).name == "CT_0000.dcm"
    assert (
        frame == pydicom.dcmread(PROSTATE / "RD.dcm", stop_before_pixels=True).FrameOfReferenceUID
    )


def test_ct_volume_applies_rescale_slope_and_intercept(tmp_path):
    # HU = stored value x RescaleSlope + RescaleIntercept (PS3.3 C.11.1); the
    # water CT stores 0 and -1000, so slope 2 and intercept -24 give -24 and -2024.
    folder = tmp_path / "ct"
    folder.mkdir()
    for source in sorted((PROSTATE / "CT").iterdir()):
        _mutated(
            source,
            folder / source.name,
            lambda ds: (setattr(ds, "RescaleSlope", "2"), setattr(ds, "RescaleIntercept", "-24")),
        )
    values, *_ = read_ct_volume(folder)
    assert set(np.unique(values).tolist()) == {-2024.0, -24.0}
    first = sorted(folder.iterdir())[0]
    _mutated(first, first, lambda ds: setattr(ds, "RescaleSlope", "0"))
    with _raises(first, "RescaleSlope"):
        read_ct_volume(folder)


def test_ct_volume_refuses_non_ct(tmp_path):
    pet = DATA / "tcia-sts-pet" / "STS_001" / "FDG_PET" / "image"
    if not pet.is_dir():
        pytest.skip("PET series not present")
    first = sorted(pet.iterdir())[0]
    with _raises(first, "Modality: is a PT series", "Hounsfield"):
        read_ct_volume([first])


# ---------------------------------------------------------------------------------------
# Case files: every command path applies the same checks
# ---------------------------------------------------------------------------------------


def _dicompyler_case(tmp_path: Path, dicom: dict) -> Path:
    case = {
        "reirrad_case": 1,
        "patient": {"id": "ECLIPSE-EXAMPLE"},
        "tissue_defaults": {
            "target": {"alpha_beta": 10, "recovery": "none"},
            "organ_at_risk": {"alpha_beta": 3, "recovery": "nieder-step"},
        },
        "structures": [
            {"name": "Heart", "role": "organ_at_risk", "organ": "heart"},
            {"name": "Tumor Bed", "role": "target"},
        ],
        "courses": [
            {
                "id": "BREAST",
                "start": "2009-05-11",
                "end": "2009-05-19",
                "fractions": 7,
                "prescriptions": [{"target": "Tumor Bed", "dose_gy": 14, "fractions": 7}],
                "dicom": dicom,
            },
            {
                "id": "REIRRAD",
                "start": "2011-03-01",
                "end": "2011-03-05",
                "fractions": 5,
                "doses": {"Heart": {"Dmean": 2.0}, "Tumor Bed": {"Dmean": 30}},
            },
        ],
    }
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


def test_phases_form_gives_the_shorthand_statistics(tmp_path):
    from reirrad.pipelines.assess import assess_case

    rtss = str(DICOMPYLER / "rtss.dcm")
    rtdose = str(DICOMPYLER / "rtdose.dcm")
    shorthand = assess_case(_dicompyler_case(tmp_path, {"rtdose": rtdose, "rtstruct": rtss}))
    (tmp_path / "phases").mkdir()
    phases = assess_case(
        _dicompyler_case(
            tmp_path / "phases",
            {"phases": [{"rtdose": rtdose, "fractions": 7}], "rtstruct": rtss},
        )
    )

    def means(assessment):
        return {
            r.structure: r.courses[0].physical_gy
            for r in assessment.results
            if r.statistic == "Dmean"
        }

    assert means(phases) == means(shorthand)
    assert any("in rtdose.dcm" in a for a in phases.assumptions)


def test_rtstruct_given_as_rtdose_is_refused_alike_by_every_path(tmp_path, capsys):
    from reirrad.core.case import Case
    from reirrad.io.dicom_case import course_phases

    rtss = str(DICOMPYLER / "rtss.dcm")
    path = _dicompyler_case(tmp_path, {"rtdose": rtss, "rtstruct": rtss})
    assert main(["assess", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    case = Case.model_validate(yaml.safe_load(path.read_text()))
    with pytest.raises(InputError) as voxel_path:  # what reirrad accumulate calls
        course_phases(case.courses[0])
    assert err == f"reirrad: error: {voxel_path.value}"
    assert "rtss.dcm: Modality: is an RTSTRUCT file" in err and "expected RTDOSE" in err


def test_case_with_dose_off_the_structures(tmp_path):
    from reirrad.pipelines.assess import assess_case

    def shift(ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x + 2000:g}", f"{y:g}", f"{z:g}"]

    shifted = _mutated(DICOMPYLER / "rtdose.dcm", tmp_path / "shifted.dcm", shift)
    rtss = str(DICOMPYLER / "rtss.dcm")
    path = _dicompyler_case(tmp_path, {"rtdose": str(shifted), "rtstruct": rtss})
    with _raises(shifted, "entirely outside the dose grid", "allow_partial_coverage"):
        assess_case(path)


# ---------------------------------------------------------------------------------------
# The phantom's own files: frame and registration checks
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from reirrad.io.phantom import write_example_case

    return write_example_case(tmp_path_factory.mktemp("phantom")).parent


def test_phantom_reads_and_refuses_a_foreign_structure_set(phantom, tmp_path):
    dose = read_rtdose(phantom / "course1" / "RD.dcm")
    own = read_rtstruct(phantom / "course1" / "RS.dcm")
    check_frame_of_reference(dose, own)
    # Course 1 is in its own frame (mapped through its REG); course 3's contours are not.
    foreign = read_rtstruct(phantom / "course3" / "RS.dcm")
    with _raises(phantom / "course3" / "RS.dcm", "frame of reference"):
        check_frame_of_reference(dose, foreign)


def test_phantom_registration_refusals(phantom, tmp_path):
    from reirrad.io.registration_io import read_spatial_registration

    reg = phantom / "course1" / "REG_to_reference.dcm"
    assert read_spatial_registration(reg).matrix.shape == (4, 4)

    def nan_matrix(ds):
        entry = ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[0]
        values = list(entry.FrameOfReferenceTransformationMatrix)
        values[3] = "NaN"
        entry.FrameOfReferenceTransformationMatrix = values

    bad = _mutated(reg, tmp_path / "reg_nan.dcm", nan_matrix)
    with _raises(bad, "FrameOfReferenceTransformationMatrix", "non-finite"):
        read_spatial_registration(bad)

    def far_translation(ds):  # x translation of 100 m
        entry = ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[0]
        values = list(entry.FrameOfReferenceTransformationMatrix)
        values[3] = "1e5"
        entry.FrameOfReferenceTransformationMatrix = values

    bad = _mutated(reg, tmp_path / "reg_far.dcm", far_translation)
    with _raises(bad, "FrameOfReferenceTransformationMatrix", "translation"):
        read_spatial_registration(bad)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "reg_fifo.dcm"
        os.mkfifo(fifo)
        with _raises(fifo, "not a regular file"):
            read_spatial_registration(fifo)


def test_phantom_dose_in_cgy_labelled_gy(phantom, tmp_path):
    def to_cgy(ds):
        ds.DoseGridScaling = f"{float(ds.DoseGridScaling) * 100:.8g}"

    path = _mutated(phantom / "course1" / "RD.dcm", tmp_path / "RD_cgy.dcm", to_cgy)
    with _raises(path, "DoseGridScaling", "cGy labelled GY"):
        read_rtdose(path)


def test_case_with_dose_off_the_structures_allowed_counts_zero(tmp_path):
    from reirrad.pipelines.assess import assess_case

    def shift(ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x + 2000:g}", f"{y:g}", f"{z:g}"]

    shifted = _mutated(DICOMPYLER / "rtdose.dcm", tmp_path / "shifted.dcm", shift)
    dicom = {
        "rtdose": str(shifted),
        "rtstruct": str(DICOMPYLER / "rtss.dcm"),
        "allow_partial_coverage": True,
    }
    assessment = assess_case(_dicompyler_case(tmp_path, dicom))
    heart = next(r for r in assessment.results if r.structure == "Heart" and r.statistic == "Dmean")
    assert heart.courses[0].physical_gy == 0.0
    assert any(
        "entirely outside the dose grid; counted as 0 Gy" in a for a in assessment.assumptions
    )


def test_ct_header_geometry_refusals(tmp_path):
    source = DICOMPYLER / "ct.0.dcm"
    tiny = _mutated(
        source, tmp_path / "tiny.dcm", lambda ds: setattr(ds, "PixelSpacing", ["1e-9", "1e-9"])
    )
    with _raises(tiny, "PixelSpacing"):
        read_ct_series([tiny])
    far = _mutated(
        source,
        tmp_path / "far.dcm",
        lambda ds: setattr(ds, "ImagePositionPatient", ["0", "0", "1e12"]),
    )
    with _raises(far, "ImagePositionPatient"):
        read_ct_series([far])
    thick = _mutated(
        source, tmp_path / "thick.dcm", lambda ds: setattr(ds, "SliceThickness", "500")
    )
    with _raises(thick, "SliceThickness"):
        read_ct_series([thick])
