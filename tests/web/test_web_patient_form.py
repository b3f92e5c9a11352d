"""The new-patient form: who may use it, which departments it offers, validation, audit."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

URL = "/patients/new/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client, department, **fields):
    data = {"department": department.pk, "identifier": "NEW-001", "sex": "female"}
    data.update(fields)
    return client.post(URL, data)


def test_url_is_the_named_one():
    assert reverse("registry:patient_new") == URL


def test_planner_creates_a_patient_with_audit(department, make_user):
    from reirrad.web.registry.models import AuditEvent, Patient

    planner = make_user("planner", "planner", department)
    client = _client(planner)
    assert "New patient" in client.get(reverse("registry:patients")).content.decode()
    response = _post(
        client, department, birth_date="1960-02-03", site="nasopharynx",
        histology="undifferentiated carcinoma", diagnosis_date="2020-05-01",
    )  # fmt: skip
    patient = Patient.objects.get(identifier="NEW-001")
    assert response.status_code == 302 and response.url == reverse(
        "registry:patient", args=[patient.pk]
    )
    assert patient.department == department and patient.sex == "female"
    assert str(patient.birth_date) == "1960-02-03" and patient.created_by == planner
    assert patient.diagnosis == {
        "site": "nasopharynx", "histology": "undifferentiated carcinoma", "date": "2020-05-01",
    }  # fmt: skip
    event = AuditEvent.objects.get(action="create", object_type="Patient")
    assert event.user == planner and event.patient_id == patient.pk
    assert event.detail["source"] == "form"


def test_structures_are_declared_with_their_tissue(department, make_user):
    from reirrad.web.registry.models import Patient

    client = _client(make_user("planner", "planner", department))
    lines = (
        "PTV | target | 10 | none\nSpinalCanal | organ_at_risk | 2 | nieder-step | spinal_cord\n"
    )
    response = _post(client, department, structures=lines, default_tissue="3 | nieder-step")
    assert response.status_code == 302
    patient = Patient.objects.get()
    assert patient.case_options == {
        "analysis": {"default_tissue": {"alpha_beta": 3.0, "recovery": "nieder-step"}}
    }
    rows = list(patient.structures.values_list("name", "role", "alpha_beta", "recovery", "organ"))
    assert rows == [
        ("PTV", "target", 10.0, "none", ""),
        ("SpinalCanal", "organ_at_risk", 2.0, "nieder-step", "spinal_cord"),
    ]


def test_new_patient_page_opens_without_courses(department, make_user):
    from reirrad.web.registry.models import Patient

    client = _client(make_user("physicist", "physicist", department))
    _post(client, department, site="larynx")
    patient = Patient.objects.get(identifier="NEW-001")
    page = client.get(reverse("registry:patient", args=[patient.pk])).content.decode()
    assert "NEW-001" in page
    listing = client.get(reverse("registry:patients")).content.decode()
    assert "NEW-001" in listing and "larynx" in listing


def test_viewer_and_physician_are_refused(department, make_user):
    from reirrad.web.registry.models import Patient

    for name, role in (("viewer", "viewer"), ("physician", "physician")):
        client = _client(make_user(name, role, department))
        assert client.get(URL).status_code == 403
        assert _post(client, department).status_code == 403
        assert "New patient" not in client.get(reverse("registry:patients")).content.decode()
    assert not Patient.objects.exists()


def test_only_own_departments_are_offered(department, other_department, make_user):
    from reirrad.web.registry.models import Patient

    client = _client(make_user("planner", "planner", department))
    page = client.get(URL).content.decode()
    assert department.name in page and other_department.name not in page
    response = _post(client, other_department)
    assert response.status_code == 400 and not Patient.objects.exists()


def test_duplicate_id_in_a_department_is_refused(department, other_department, make_user):
    from reirrad.web.registry.models import Membership, Patient

    planner = make_user("planner", "planner", department)
    Membership.objects.create(user=planner, department=other_department, role="planner")
    client = _client(planner)
    assert _post(client, department).status_code == 302
    response = _post(client, department)
    assert response.status_code == 400
    assert "Radiotherapy A already has a patient NEW-001" in response.content.decode()
    assert _post(client, other_department).status_code == 302  # the same id elsewhere is fine
    assert Patient.objects.filter(identifier="NEW-001").count() == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"identifier": "  "}, "This field is required"),
        ({"birth_date": "2999-01-01"}, "The birth date is in the future"),
        ({"birth_date": "1990-01-01", "site": "larynx", "diagnosis_date": "1980-01-01"},
         "The diagnosis is before the birth date"),
        ({"histology": "squamous"}, "A diagnosis needs its site"),
        ({"sex": "robot"}, "Select a valid choice"),
        ({"structures": "PTV | target | 10"}, "line 1: give name | role"),
        ({"structures": "PTV | tumour | 10 | none"}, "line 1: role:"),
        ({"structures": "PTV | target | ten | none"}, "line 1: alpha/beta"),
        ({"structures": "PTV | target | -1 | none"}, "line 1: alpha_beta:"),
        ({"structures": "P | target | 10 | none\n\nP | target | 10 | none"}, "line 3: P is given twice"),
        ({"structures": "PTV | target | 10 | miracle"}, "line 1:"),
        ({"default_tissue": "3"}, "give alpha/beta | recovery"),
        ({"default_tissue": "0 | none"}, "alpha_beta:"),
    ],
)  # fmt: skip
def test_invalid_input_is_named(department, make_user, fields, message):
    from reirrad.web.registry.models import Patient

    client = _client(make_user("planner", "planner", department))
    response = _post(client, department, **fields)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Patient.objects.exists()


def test_form_needs_login_and_csrf(department, make_user):
    response = Client().get(URL)
    assert response.status_code == 302 and response.url.startswith("/login/")
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("planner", "planner", department))
    assert _post(client, department).status_code == 403
