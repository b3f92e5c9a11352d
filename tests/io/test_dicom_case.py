"""Case files pointing a course at DICOM RT: statistics from the DVH engine feed `assess`.

Reference: the 9 DVHs the Eclipse planning system stored in the example RTDOSE
(DVHSequence, in % of the 14 Gy prescription although labelled GY).
"""

from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml

from reirrad.cli import main
from reirrad.errors import InputError
from reirrad.pipelines.assess import assess_case

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "dicompyler-core-example"
PRESCRIPTION_GY = 14.0


def _case(tmp_path, **dicom) -> Path:
    course1 = {
        "id": "BREAST",
        "start": "2009-05-11",
        "end": "2009-05-19",
        "fractions": 7,
        "prescriptions": [{"target": "Breast", "dose_gy": 14, "fractions": 7}],
        "dicom": {
            "rtdose": str(DATA / "rtdose.dcm"),
            "rtstruct": str(DATA / "rtss.dcm"),
            "rtplan": str(DATA / "rtplan.dcm"),
            **dicom,
        },
    }
    course2 = {
        "id": "REIRRAD",
        "start": "2011-03-01",
        "end": "2011-03-05",
        "fractions": 5,
        "doses": {"Heart": {"Dmean": 2.0}, "Lt Lung": {"Dmean": 3.0}, "Tumor Bed": {"Dmean": 30}},
    }
    case = {
        "reirrad_case": 1,
        "patient": {"id": "ECLIPSE-EXAMPLE"},
        "tissue_defaults": {
            "target": {"alpha_beta": 10, "recovery": "none"},
            "organ_at_risk": {"alpha_beta": 3, "recovery": "nieder-step"},
        },
        "structures": [
            {"name": "Heart", "role": "organ_at_risk", "organ": "heart"},
            {"name": "Lt Lung", "role": "organ_at_risk", "organ": "lung"},
            {"name": "Tumor Bed", "role": "target"},
        ],
        "courses": [course1, course2],
    }
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


def _eclipse_means() -> dict[str, float]:
    ds = pydicom.dcmread(DATA / "rtss.dcm")
    names = {int(r.ROINumber): r.ROIName for r in ds.StructureSetROISequence}
    dose = pydicom.dcmread(DATA / "rtdose.dcm")
    return {
        names[int(item.DVHReferencedROISequence[0].ReferencedROINumber)]: float(item.DVHMeanDose)
        * PRESCRIPTION_GY
        / 100.0
        for item in dose.DVHSequence
    }


def test_statistics_come_from_the_dvhs(tmp_path):
    assessment = assess_case(_case(tmp_path))
    reference = _eclipse_means()
    rows = {(r.structure, r.statistic): r for r in assessment.results}
    for name in ("Heart", "Lt Lung", "Tumor Bed"):
        mean = rows[(name, "Dmean")].courses[0].physical_gy
        assert mean == pytest.approx(reference[name], rel=0.02), name
    heart = rows[("Heart", "Dmean")]
    # 7 fractions: EQD2 of the DVH mean with its own dose per fraction, a/b 3.
    d = heart.courses[0].physical_gy
    assert heart.courses[0].eqd2_gy == pytest.approx(d * (d / 7 + 3) / 5)
    # Interval 2009-05-19 -> 2011-03-01 = 651 days > 12 months: 50 % (nieder-step).
    assert heart.courses[0].recovered_fraction == 0.5
    assert any("from the DVH of ROI 'Heart'" in a for a in assessment.assumptions)
    # Statistics only the DICOM course has give a warning, not a silent partial sum.
    assert any("Dmax given for course BREAST only" in w for w in assessment.warnings)


def test_plan_fraction_mismatch_is_refused(tmp_path):
    path = _case(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["courses"][0]["fractions"] = 8
    data["courses"][0]["prescriptions"][0]["fractions"] = 8
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="7 fractions planned but the case says 8"):
        assess_case(path)


def test_unknown_roi_lists_the_available_ones(tmp_path, capsys):
    path = _case(tmp_path, structure_map={"Heart": "Cardiac"})
    assert main(["assess", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ROI 'Cardiac'" in err and "Lt Lung" in err and "Traceback" not in err


def test_dose_grid_not_covering_a_structure(tmp_path, capsys):
    # Keep the first 55 dose planes (up to z = 39.6 mm): the lung (to z = 129.6 mm) then
    # sticks out of the grid while heart and tumour bed stay inside.
    ds = pydicom.dcmread(DATA / "rtdose.dcm")
    frames = ds.pixel_array[:55]
    ds.NumberOfFrames = 55
    ds.GridFrameOffsetVector = list(ds.GridFrameOffsetVector[:55])
    ds.PixelData = np.ascontiguousarray(frames).astype(frames.dtype).tobytes()
    del ds.DVHSequence
    cropped = tmp_path / "cropped.dcm"
    ds.save_as(cropped)
    path = _case(tmp_path, rtdose=str(cropped))
    assert main(["assess", str(path)]) == 2
    err = capsys.readouterr().err
    assert "covers only" in err and "allow_partial_coverage" in err
    accepted = _case(tmp_path, rtdose=str(cropped), allow_partial_coverage=True)
    assessment = assess_case(accepted)
    assert any("counted as 0 Gy" in a for a in assessment.assumptions)
