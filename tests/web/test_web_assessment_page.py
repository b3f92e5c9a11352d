"""The assessment page (the report's tables and figures, stored at run time) and its exports:
every number in an export equals the page's and the JSON result's, the EFFECTIVE RTDOSE equals
the phantom's exact cumulative EQD2, and every new URL is behind the object-level checks."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class _Tables(HTMLParser):
    """Cell texts of the page's tables, by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            if self._table:
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _gy(text: str) -> float:
    return float(text.replace("Gy", "").strip())


@pytest.fixture
def phantom_assessment(phantom_case, department, make_user, settings):
    """The two-course phantom (DICOM, voxel-wise), run in-process without a PDF."""
    from reirrad.web.registry.assessments import start_assessment
    from reirrad.web.registry.casefile import import_case
    from reirrad.web.registry.runner import run_assessment

    settings.REPORT_PDF = "off"
    patient = import_case(phantom_case, department)
    planner = make_user("planner", "planner", department)
    assessment = start_assessment(patient, planner, enqueue=False)
    assert run_assessment(assessment.pk) == "done", assessment.failure_reason
    assessment.refresh_from_db()
    return assessment


def _urls(assessment) -> list[str]:
    pk = assessment.pk
    names = ("case.yaml", "limits.csv", "structures.csv", "cumulative_eqd2_RD.dcm")
    return [
        reverse("registry:assessment", args=[pk]),
        *(reverse("registry:assessment_export", args=[pk, n]) for n in names),
        *(
            reverse("registry:assessment_figure", args=[pk, n])
            for n in range(len(assessment.summary["page"]["figures"]))
        ),
    ]


def test_phantom_page_exports_and_permissions(
    phantom_assessment, department, other_department, make_user
):
    from reirrad.core.radiobiology import eqd2
    from reirrad.io.dicom import read_rtdose
    from reirrad.io.phantom import default_phantom
    from reirrad.web.registry.models import AuditEvent

    a = phantom_assessment
    viewer = _client(make_user("viewer", "viewer", department))
    page = viewer.get(reverse("registry:assessment", args=[a.pk])).content.decode()
    # verdicts first, then the report's sections; the basis is named
    order = [page.index(h) for h in ('id="limits"', 'id="sensitivity"', 'id="dvh"',
                                      'id="planes"', 'id="explorer"', 'id="assumptions"')]  # fmt: skip
    assert order == sorted(order)
    assert "Voxel-wise: evaluated on the voxel-wise cumulative EQD2" in page
    figures = a.summary["page"]["figures"]
    assert [f["key"] for f in figures] == ["dvh", "images", "explorer"]
    for n, figure in enumerate(figures):
        response = viewer.get(reverse("registry:assessment_figure", args=[a.pk, n]))
        svg = b"".join(response.streaming_content)
        assert response["Content-Type"] == "image/svg+xml" and svg.startswith(b"<?xml")
        import hashlib

        assert hashlib.sha256(svg).hexdigest() == figure["sha256"]

    # the CSV, the page's table and the JSON result hold the same numbers
    tables = _tables(page)
    rows = tables["limits-table"][1:]
    got = viewer.get(reverse("registry:assessment_export", args=[a.pk, "limits.csv"]))
    limits = list(csv.DictReader(io.StringIO(b"".join(got.streaming_content).decode())))
    result = json.loads(b"".join(
        viewer.get(reverse("registry:assessment_output", args=[a.pk, "result.json"]))
        .streaming_content))  # fmt: skip
    voxel = result["voxel"]["constraints"]
    assert len(rows) == len(limits) == len(voxel) > 0
    passed = sum(item["status"] == "pass" for item in voxel)  # the counts are the table's
    assert f"{passed} within limits" in page and f"{len(voxel) - passed} above limits" in page
    for row, line, item in zip(rows, limits, voxel, strict=True):
        assert row[0] == line["structure"] == item["structure"]
        assert line["id"] == item["id"] and f"({line['id']})" in row[1]
        assert _gy(row[3]) == _gy(line["value"]) == pytest.approx(item["value"], abs=0.005)
        assert _gy(row[4]) == _gy(line["margin"]) == pytest.approx(item["margin"], abs=0.005)
        assert row[5].split()[0] == line["verdict"] == item["status"].upper()
    structures = list(csv.DictReader(io.StringIO(b"".join(viewer.get(
        reverse("registry:assessment_export", args=[a.pk, "structures.csv"])
    ).streaming_content).decode())))  # fmt: skip
    metrics = {
        (s["structure"], m["metric"]): m
        for s in result["voxel"]["structures"]
        for m in s["metrics"]
    }
    for row, line in zip(tables["structures-table"][1:], structures, strict=True):
        assert row[:2] == [line["structure"], line["statistic"]]
        expected = metrics[(line["structure"], line["statistic"])]["eqd2_gy"]
        assert float(row[4]) == float(line["eqd2"]) == pytest.approx(expected, abs=0.005)

    # the EFFECTIVE RTDOSE: the phantom's exact cumulative EQD2 in the target (alpha/beta
    # 10 Gy, no recovery), where the dose is smooth enough for the grid (as tests/pipelines)
    got = viewer.get(reverse("registry:assessment_export", args=[a.pk, "cumulative_eqd2_RD.dcm"]))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/rd.dcm"
        with open(path, "wb") as handle:
            handle.write(b"".join(got.streaming_content))
        rd = read_rtdose(path)
    assert rd.kind.name == "EFFECTIVE"
    phantom = default_phantom(2, small=True)
    kk, jj, ii = np.meshgrid(*[np.arange(n) for n in rd.grid.shape], indexing="ij")
    xyz = rd.grid.index_to_patient(np.stack([ii, jj, kk], axis=-1))
    inside = phantom.structure("PTV_reirr").contains(xyz)
    for name in ("SpinalCanal", "OAR_sphere", "OAR_tilted"):
        inside &= ~phantom.structure(name).contains(xyz)
    exact = sum(
        eqd2(phantom.physical_dose(c, xyz), phantom.courses[c].fractions, 10.0) for c in (0, 1)
    )
    gradient = np.max([phantom.dose_gradient_bound(c, xyz) for c in (0, 1)], axis=0)
    check = inside & (gradient <= 2.0) & (exact > 0)
    assert check.sum() > 50
    rel = np.abs(rd.values[check] - exact[check]) / exact[check]
    assert rel.max() < 0.01

    # every export is audited with its hash; the case file is the frozen one
    got = viewer.get(reverse("registry:assessment_export", args=[a.pk, "case.yaml"]))
    assert got.content.decode() == a.case_yaml
    events = AuditEvent.objects.filter(action="export", object_id=str(a.pk))
    formats = {e.detail.get("format") for e in events}
    assert formats == {"limits.csv", "structures.csv", "cumulative_eqd2_RD.dcm", "case.yaml"}

    # another department's user: 404 on every new URL; a viewer may not sign or rerun
    stranger = _client(make_user("stranger", "physician", other_department))
    for url in _urls(a):
        assert viewer.get(url).status_code == 200, url
        assert stranger.get(url).status_code == 404, url
    assert viewer.post(reverse("registry:assessment_sign", args=[a.pk])).status_code == 403
    assert (
        viewer.get(reverse("registry:assessment_export", args=[a.pk, "x.csv"])).status_code == 404
    )
    n = len(figures)
    assert viewer.get(reverse("registry:assessment_figure", args=[a.pk, n])).status_code == 404


@pytest.fixture
def done_page_assessment(npc_patient, department, make_user, settings):
    """The bundled NPC case (typed-in statistics), run in-process without a PDF."""
    from reirrad.web.registry.assessments import start_assessment
    from reirrad.web.registry.runner import run_assessment

    settings.REPORT_PDF = "off"
    planner = make_user("planner", "planner", department)
    a = start_assessment(npc_patient, planner, enqueue=False)
    assert run_assessment(a.pk) == "done"
    a.refresh_from_db()
    return a


def test_structure_level_case_is_labelled_and_exported(done_page_assessment, department, make_user):
    """The bundled NPC case: structure-level limits, labelled; no RTDOSE to export."""
    a = done_page_assessment
    client = _client(make_user("physicist", "physicist", department))
    page = client.get(reverse("registry:assessment", args=[a.pk])).content.decode()
    assert "Structure level: evaluated on each structure" in page
    assert "cumulative_eqd2_RD.dcm" not in page
    url = reverse("registry:assessment_export", args=[a.pk, "cumulative_eqd2_RD.dcm"])
    assert client.get(url).status_code == 404
    rows = _tables(page)["limits-table"][1:]
    result = json.loads(a.result_json.path.read_text())
    constraints = [c for r in result["results"] for c in r["constraints"]]
    assert len(rows) == len(constraints) > 0
    for row, item in zip(rows, constraints, strict=True):
        assert _gy(row[3]) == pytest.approx(item["value"], abs=0.005)
        assert re.sub(r"\s.*", "", row[5]) == item["status"].upper()


def test_a_signed_assessment_exports_what_was_signed(done_page_assessment, department, make_user):
    """After sign-off the page's stored outputs cannot change and the exports are the same
    bytes as before (their SHA-256 is the one stored at run time)."""
    import hashlib

    from reirrad.web.registry.models import Assessment, Immutable, Role, SignOff, StoredObject

    a = done_page_assessment
    client = _client(make_user("viewer", "viewer", department))
    url = reverse("registry:assessment_export", args=[a.pk, "limits.csv"])
    before = b"".join(client.get(url).streaming_content)
    physician = make_user("dr", "physician", department)
    # a stand-in PDF (Chromium is not needed here): sign-off needs one to sign
    pdf = StoredObject.from_bytes(b"%PDF-1.4 stand-in", kind=StoredObject.Kind.REPORT_PDF)
    Assessment.objects.filter(pk=a.pk).update(report_pdf=pdf)
    a.refresh_from_db()
    SignOff.objects.create(assessment=a, user=physician, role=Role.PHYSICIAN, pdf_sha256=pdf.sha256)
    with pytest.raises(Immutable):
        Assessment.objects.filter(pk=a.pk).update(summary={})
    after = b"".join(client.get(url).streaming_content)
    assert after == before
    assert hashlib.sha256(after).hexdigest() == a.summary["page"]["exports"]["limits.csv"]
