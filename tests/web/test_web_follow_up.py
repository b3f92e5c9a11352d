"""The follow-up record in the registry: imported from and exported to the case file, added
and changed in forms checked by the case file's rules, shown on the patient page and its
timeline with the recovery windows."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from reirrad.io.casefile import load_case

pytestmark = pytest.mark.django_db

NPC_CASE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_case_reports_follow_up_round_trips(npc_patient, tmp_path):
    from reirrad.web.registry.casefile import export_case

    # the case report's follow-up as registry rows (examples/npc-reirradiation-2026.yaml)
    assert npc_patient.responses.count() == 8
    assert npc_patient.toxicities.count() == 7
    pet = npc_patient.responses.get(date="2025-09-11", site="local")
    assert (pet.modality, pet.suv_max, pet.size_mm) == ("PET/CT", 9.79, [28, 24])
    mucositis = npc_patient.toxicities.get(term="Pharyngeal mucositis")
    assert (mucositis.grade, mucositis.structure.name) == (
        3,
        "Nasopharyngeal and pharyngeal mucosa",
    )
    assert npc_patient.toxicities.get(term="Dysphagia").grade is None  # not stated in the report
    exported = load_case(export_case(npc_patient, tmp_path / "out"))
    assert exported.follow_up == load_case(NPC_CASE).follow_up


def _toxicity(**changes):
    fields = {
        "date": "2026-03-01",
        "term": "Osteonecrosis of jaw",
        "grade": "2",
        "structure": "Right parotid gland",
        "attribution": "probable",
        "onset": "late",
        "note": "",
    }
    return fields | changes


def test_a_physician_adds_and_changes_a_toxicity(npc_patient, department, make_user, tmp_path):
    from reirrad.web.registry.casefile import export_case
    from reirrad.web.registry.models import AuditEvent

    client = _client(make_user("dr", "physician", department))
    url = reverse("registry:observation_new", args=[npc_patient.pk, "toxicity"])
    response = client.post(url, _toxicity())
    assert response.status_code == 302
    row = npc_patient.toxicities.get(term="Osteonecrosis of jaw")
    assert (row.grade, row.structure.name, str(row.date)) == (
        2,
        "Right parotid gland",
        "2026-03-01",
    )
    change = reverse("registry:observation", args=[npc_patient.pk, "toxicity", row.pk])
    assert client.post(change, _toxicity(grade="3")).status_code == 302
    row.refresh_from_db()
    assert row.grade == 3
    actions = list(
        AuditEvent.objects.filter(object_type="ToxicityObservation", object_id=str(row.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "change"]
    # the new observation is part of the exported case, validated as a case file
    exported = load_case(export_case(npc_patient, tmp_path / "out"))
    assert [t.grade for t in exported.follow_up.toxicity if t.term == "Osteonecrosis of jaw"] == [3]
    page = client.get(reverse("registry:patient", args=[npc_patient.pk])).content.decode()
    assert "Osteonecrosis of jaw" in page and "Pharyngeal mucositis" in page


def test_refusals_are_the_case_files_and_save_nothing(npc_patient, department, make_user):
    client = _client(make_user("phys", "physicist", department))
    before = npc_patient.toxicities.count(), npc_patient.responses.count()
    # before the diagnosis (November 2023): refused by the case file's own check
    url = reverse("registry:observation_new", args=[npc_patient.pk, "toxicity"])
    response = client.post(url, _toxicity(date="2020-01-01"))
    assert response.status_code == 400
    assert "before the diagnosis" in response.content.decode()
    # a response that says nothing: refused by core.follow_up's rule
    url = reverse("registry:observation_new", args=[npc_patient.pk, "response"])
    response = client.post(url, {"date": "2026-03-01", "modality": "MR", "site": "local"})
    assert response.status_code == 400
    assert "give at least one of" in response.content.decode()
    assert (npc_patient.toxicities.count(), npc_patient.responses.count()) == before
    # a response with a size and SUVmax is saved
    ok = {"date": "2026-03-01", "modality": "PET/CT", "site": "local", "size_mm": "20 x 18",
          "suv_max": "4.1", "percist": "PMR"}  # fmt: skip
    assert client.post(url, ok).status_code == 302
    assert npc_patient.responses.get(date="2026-03-01").size_mm == [20, 18]


def test_viewer_and_other_department_cannot_change_the_record(
    npc_patient, department, other_department, make_user
):
    url = reverse("registry:observation_new", args=[npc_patient.pk, "toxicity"])
    assert _client(make_user("v", "viewer", department)).post(url, _toxicity()).status_code == 403
    outsider = _client(make_user("o", "physician", other_department))
    assert outsider.post(url, _toxicity()).status_code == 404
    assert not npc_patient.toxicities.filter(term="Osteonecrosis of jaw").exists()


def test_timeline_shows_recovery_windows_and_follow_up(npc_patient, department, make_user):
    from reirrad.web.registry.timeline import timeline

    line = timeline(list(npc_patient.courses.all()), npc_patient)
    # every NPC structure uses the case report's fixed 50 % at any interval: credited from the
    # day after each course (window of 0 days), one row, one window per course
    assert len(line.models) == 1 and "marinova2026-fixed-50" in line.models[0]
    assert len(line.windows) == 2
    # 8 response observations (5 PET/CT, 2 CT ... as entered) and 7 toxicities
    shapes = [m.shape for m in line.markers]
    assert (shapes.count("pet"), shapes.count("study"), shapes.count("toxicity")) == (6, 2, 7)
    page = _client(make_user("v", "viewer", department)).get(
        reverse("registry:patient", args=[npc_patient.pk])
    )
    text = page.content.decode()
    assert "recovery window of marinova2026-fixed-50" in text and "marker-pet" in text


def test_recovery_window_of_the_step_rule_spans_6_to_12_months(npc_patient):
    """Doi et al. 2021's step rule credits nothing before 6 months and the full 50 % from 12
    months: its window after each course starts 183 days after the last fraction and is 183
    days long (whole days; core.recovery.credit_window)."""
    import datetime as dt

    from reirrad.web.registry.timeline import timeline

    npc_patient.structures.filter(name="Right parotid gland").update(recovery="nieder-step")
    courses = list(npc_patient.courses.order_by("start"))
    line = timeline(courses, npc_patient)
    assert len(line.models) == 2
    row = next(i for i, d in enumerate(line.models) if d.startswith("nieder-step"))
    windows = [w for w in line.windows if w.row == row]
    assert len(windows) == 2
    ticks = dict((label, x) for x, label in line.ticks)
    per_day = (ticks["2025"] - ticks["2024"]) / 366  # 2024 is a leap year
    for window, course in zip(windows, courses, strict=True):
        start = (
            ticks["2024"]
            + (course.end + dt.timedelta(days=183) - dt.date(2024, 1, 1)).days * per_day
        )
        assert window.x == pytest.approx(start)
        assert window.width == pytest.approx(183 * per_day)
