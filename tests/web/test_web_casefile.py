"""The case YAML as the registry's import and export format (round trip)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reirrad.errors import InputError
from reirrad.io.casefile import load_case

NPC_CASE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


@pytest.mark.django_db
def test_npc_case_round_trip(department, tmp_path):
    from reirrad.web.registry.casefile import export_case, import_case
    from reirrad.web.registry.models import Course, DoseStatistic, Prescription

    patient = import_case(NPC_CASE, department)
    # the registry holds the case's numbers in its own tables
    assert patient.courses.count() == 2
    imrt = patient.courses.get(course_id="IMRT")
    assert (imrt.start.isoformat(), imrt.end.isoformat(), imrt.fractions) == (
        "2023-12-13",
        "2024-02-13",
        33,
    )
    assert imrt.source == Course.Source.SUMMARY
    assert Prescription.objects.filter(course=imrt).count() == 4
    parotid = DoseStatistic.objects.get(course=imrt, structure__name="Right parotid gland")
    assert (parotid.metric, parotid.value_gy) == ("Dmean", 29.9)
    exported = export_case(patient, tmp_path / "export")
    assert load_case(exported) == load_case(NPC_CASE)


@pytest.mark.django_db
def test_phantom_case_round_trip_with_dicom(department, phantom_case, tmp_path):
    from reirrad.web.registry.casefile import export_case, import_case
    from reirrad.web.registry.models import CourseFile, StoredObject

    patient = import_case(phantom_case, department)
    files = CourseFile.objects.filter(course__patient=patient)
    on_disk = sorted(
        p.relative_to(phantom_case.parent).as_posix() for p in phantom_case.parent.rglob("*.dcm")
    )
    assert sorted(files.values_list("path", flat=True)) == on_disk
    modalities = set(files.values_list("stored__modality", flat=True))
    assert modalities == {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "REG"}
    dose = files.get(path="course2/RD.dcm").stored
    assert dose.kind == StoredObject.Kind.DICOM and dose.sop_instance_uid
    assert dose.frame_of_reference_uid
    exported = export_case(patient, tmp_path / "export")
    assert load_case(exported) == load_case(phantom_case)
    for relative in on_disk:  # the files come back byte for byte
        assert (exported.parent / relative).read_bytes() == (
            phantom_case.parent / relative
        ).read_bytes()


@pytest.mark.django_db
def test_same_patient_twice_is_refused(department):
    from reirrad.web.registry.casefile import import_case

    import_case(NPC_CASE, department)
    with pytest.raises(InputError, match="already in"):
        import_case(NPC_CASE, department)


@pytest.mark.django_db
def test_file_outside_the_case_folder_is_refused(department, phantom_case, tmp_path):
    from reirrad.web.registry.casefile import import_case
    from reirrad.web.registry.models import Patient

    folder = tmp_path / "case"
    shutil.copytree(phantom_case.parent, folder)
    text = (folder / "case.yaml").read_text()
    shutil.move(folder / "course2" / "RD.dcm", tmp_path / "RD.dcm")
    (folder / "case.yaml").write_text(text.replace("course2/RD.dcm", "../RD.dcm"))
    with pytest.raises(InputError, match="outside the case file's folder") as error:
        import_case(folder / "case.yaml", department)
    assert "courses[C2].dicom.rtdose" in str(error.value)
    assert not Patient.objects.exists()  # nothing half-imported
