"""Send-back RTDOSEs of the DICOM phantom, against its analytic dose fields."""

import math

import numpy as np
import pydicom

from reirrad.core.radiobiology import eqd2
from reirrad.io.casefile import load_case
from reirrad.io.dicom import read_rtdose
from reirrad.io.phantom import default_phantom
from reirrad.pipelines.accumulate import accumulate_case
from reirrad.pipelines.send_back import write_send_back


def _lq_budget(remaining_eqd2, n, ab):
    # D (1 + D/(n ab)) = E (1 + 2/ab): positive root of the quadratic, written out
    return (n * ab / 2.0) * (-1.0 + np.sqrt(1.0 + 4.0 * remaining_eqd2 * (1 + 2 / ab) / (n * ab)))


def test_phantom_send_back(phantom_case_3, tmp_path):
    sent = write_send_back(phantom_case_3, tmp_path / "out")
    phantom = default_phantom(3)
    c1, c2, c3 = phantom.courses
    assert sent.fractions == c3.fractions
    new = load_case(phantom_case_3).courses[-1].dicom
    new_dose = phantom_case_3.parent / (list(new.rtdose) or new.phases[0].rtdose)[0]
    plan_dose = pydicom.dcmread(new_dose, stop_before_pixels=True)
    for path, dose_type in ((sent.cumulative_path, "EFFECTIVE"), (sent.budget_path, "PHYSICAL")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.DoseType == dose_type
        assert ds.FrameOfReferenceUID == plan_dose.FrameOfReferenceUID
        assert ds.StudyInstanceUID == plan_dose.StudyInstanceUID
        assert ds.PatientID == plan_dose.PatientID
    assert any("nieder2006-cord-cumulative-bed" in name for name in sent.limits_used)

    budget = read_rtdose(sent.budget_path)
    voxel = accumulate_case(phantom_case_3, keep_maps=True)
    assert budget.grid == voxel.grid
    box, occupancy = voxel.maps.occupancy["SpinalCanal"]
    kk, jj, ii = np.nonzero(occupancy > 0)
    ijk = np.stack([ii + box[2].start, jj + box[1].start, kk + box[0].start], axis=-1)
    xyz = voxel.grid.index_to_patient(ijk)
    # cord limits at alpha/beta 2, no recovery credit: Nieder 2006 cumulative BED 135.5 Gy2
    # (EQD2 67.75), Sahgal 2012 cumulative EQD2 70, Nieder per-course BED 98 (EQD2 49, the new
    # course alone): the tightest remaining EQD2 is min(67.75 - R, 49)
    residual = eqd2(phantom.physical_dose(0, xyz), c1.fractions, 2.0) + eqd2(
        phantom.physical_dose(1, xyz), c2.fractions, 2.0
    )
    remaining = np.clip(np.minimum(135.5 / 2.0 - residual, 98.0 / 2.0), 0.0, None)
    expected = _lq_budget(remaining, c3.fractions, 2.0)
    got = budget.values[kk + box[0].start, jj + box[1].start, ii + box[2].start]
    assert math.isclose(float(got.min()), float(expected.min()), rel_tol=0.02)
    np.testing.assert_allclose(got, expected, rtol=0.02)  # measured: at most 1.0 %


def test_a_new_course_of_several_phases_needs_its_fractions_named():
    import pytest

    from reirrad.errors import InputError
    from reirrad.pipelines.send_back import _planned_fractions

    assert _planned_fractions(((5.0, None),), "C2") == 5
    with pytest.raises(InputError, match="C2 has 2 phases: give the number of fractions"):
        _planned_fractions(((25.0, None), (8.0, None)), "C2")


# DICOM PS3.16 codes, written out (CID 7220 "RT Dose Derivation", CID 7221 "RT Dose Purpose of
# Reference"; 121377 from CP-2379, in PS3.16 from edition 2024c)
RADIOBIOLOGY = ("121377", "DCM", "Composed with radiobiological effects")
PRIOR_AND_CURRENT = ("121371", "DCM", "Composed from prior doses and current plan")
SOURCE_DOSE = ("121372", "DCM", "Source dose for composing current dose")


def _codes(items):
    return [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in items]


def test_send_back_labels_cp2379(phantom_case_3, tmp_path):
    from pydicom.sr.codedict import codes

    # the written-out codes are those of pydicom's PS3.16 tables, in the right context groups
    for value, _, meaning in (RADIOBIOLOGY, PRIOR_AND_CURRENT):
        assert any(
            c.value == value and c.meaning == meaning for c in codes.cid7220.concepts.values()
        )
    assert codes.cid7221.SourceDoseForComposingCurrentDose.value == SOURCE_DOSE[0]

    sent = write_send_back(phantom_case_3, tmp_path / "out")
    cumulative = pydicom.dcmread(sent.cumulative_path, stop_before_pixels=True)
    assert _codes(cumulative.DerivationCodeSequence) == [PRIOR_AND_CURRENT, RADIOBIOLOGY]
    # every course's RTDOSE, read from the files themselves, is a source
    case = load_case(phantom_case_3)
    sources = []
    for course in case.courses:
        files = list(course.dicom.rtdose) or [f for p in course.dicom.phases for f in p.rtdose]
        for name in files:
            ds = pydicom.dcmread(phantom_case_3.parent / name, stop_before_pixels=True)
            sources.append(ds.SOPInstanceUID)
    refs = cumulative.ReferencedInstanceSequence
    assert [r.ReferencedSOPInstanceUID for r in refs] == sources and len(sources) == 3
    for ref in refs:
        assert ref.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.481.2"
        assert _codes(ref.PurposeOfReferenceCodeSequence) == [SOURCE_DOSE]
    # the budget is not a dose: no derivation that could make a planning system add it
    budget = pydicom.dcmread(sent.budget_path, stop_before_pixels=True)
    assert "DerivationCodeSequence" not in budget
    assert "ReferencedInstanceSequence" not in budget
