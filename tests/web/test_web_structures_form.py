"""Changing and adding the structures of an existing patient (``/patients/<id>/structures/``)."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _lines(client, patient) -> str:
    page = client.get(reverse("registry:patient_structures", args=[patient.pk]))
    assert page.status_code == 200
    return page.context["form"]["structures"].value()


def test_the_lines_read_back_unchanged_and_a_change_is_saved_and_audited(
    npc_patient, department, make_user
):
    from reirrad.web.registry.models import AuditEvent

    planner = _client(make_user("planner", "planner", department))
    url = reverse("registry:patient_structures", args=[npc_patient.pk])
    lines = _lines(planner, npc_patient)
    before = list(npc_patient.structures.values_list("name", "role", "alpha_beta", "recovery"))
    # the page's own lines posted back change nothing
    assert planner.post(url, {"structures": lines}).status_code == 302
    after = list(npc_patient.structures.values_list("name", "role", "alpha_beta", "recovery"))
    assert after == before
    first = npc_patient.structures.order_by("position").first()
    edited = lines.splitlines()
    parts = [p.strip() for p in edited[0].split("|")]
    parts[2] = "7.5"
    edited[0] = " | ".join(parts)
    edited.append("Brainstem_new | organ_at_risk | 2 | none | brainstem")
    assert planner.post(url, {"structures": "\n".join(edited)}).status_code == 302
    first.refresh_from_db()
    assert first.alpha_beta == 7.5
    added = npc_patient.structures.get(name="Brainstem_new")
    assert (added.role, added.alpha_beta, added.organ) == ("organ_at_risk", 2.0, "brainstem")
    event = AuditEvent.objects.filter(action="change").latest("at")
    assert event.detail["structures"] == {"added": ["Brainstem_new"], "changed": [first.name]}


def test_a_removed_line_or_an_invalid_one_saves_nothing(npc_patient, department, make_user):
    planner = _client(make_user("planner", "planner", department))
    url = reverse("registry:patient_structures", args=[npc_patient.pk])
    lines = _lines(planner, npc_patient).splitlines()
    before = list(npc_patient.structures.values_list("name", "alpha_beta"))
    response = planner.post(url, {"structures": "\n".join(lines[1:])})
    assert response.status_code == 400
    assert "are not removed here" in response.content.decode()
    bad = [*lines, "X | tumour | 10 | none"]
    response = planner.post(url, {"structures": "\n".join(bad)})
    assert response.status_code == 400 and f"line {len(bad)}:" in response.content.decode()
    assert list(npc_patient.structures.values_list("name", "alpha_beta")) == before


def test_a_viewer_may_not_and_another_department_cannot_see(
    npc_patient, department, other_department, make_user
):
    url = reverse("registry:patient_structures", args=[npc_patient.pk])
    viewer = _client(make_user("viewer", "viewer", department))
    assert viewer.get(url).status_code == 403
    stranger = _client(make_user("stranger", "planner", other_department))
    assert stranger.get(url).status_code == 404
