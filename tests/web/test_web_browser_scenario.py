"""The clinic's path in a real browser (Playwright driving Debian's Chromium) against
`reirrad serve` (web server and worker) on a fresh data folder, on SQLite and on PostgreSQL:

a planner logs in, creates a patient with the new-patient form, uploads the phantom's DICOM
course by course, builds each course from its upload and starts an assessment; the page
follows its progress until the worker is done; a physician opens the report and signs it and
sees the signed PDF; an admin sees the audit entries. A viewer of the department finds no
upload or sign-off control, and a forged POST (with a valid CSRF token) is refused with 403;
a planner of another department gets 404 for the patient.

One browser for the module. Screenshots go to ``REIRRAD_SCREENSHOTS`` when it names a folder
(``REIRRAD_SCREENSHOTS=docs/images``), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
#: Bound on waiting for the worker to finish the assessment (not a timed assertion).
RUN_TIMEOUT_MS = 300_000
PASSWORD = "a long scenario password"
PATIENT = "BROWSER-001"
#: The phantom's structures (reirrad.io.phantom) with the tissue parameters its case file
#: gives them through tissue_defaults (target 10 Gy, no recovery; organs 3 Gy, nieder-step);
#: the organs' defaults are also its tissue outside the structures.
STRUCTURES = "\n".join([
    "PTV_reirr | target | 10 | none",
    "SpinalCanal | organ_at_risk | 3 | nieder-step | spinal_cord",
    "OAR_sphere | organ_at_risk | 3 | nieder-step",
    "OAR_tilted | organ_at_risk | 3 | nieder-step",
])  # fmt: skip
#: The phantom's courses (its case file): id, first and last day, fractions, Rx dose (Gy).
COURSES = [("C1", "2019-06-01", "2019-06-12", 30, 60), ("C2", "2023-09-01", "2023-09-08", 5, 30)]

MAKE_USERS = f"""
from django.contrib.auth import get_user_model
from reirrad.web.registry.models import Department, Membership
home = Department.objects.get()
other = Department.objects.create(name="Other hospital")
for name, role, department in [
    ("planner", "planner", home), ("dr", "physician", home), ("viewer", "viewer", home),
    ("outsider", "planner", other),
]:
    user = get_user_model().objects.create_user(name, password={PASSWORD!r})
    Membership.objects.create(user=user, department=department, role=role)
"""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (scripts/system-deps.sh)"
)


@pytest.fixture
def fresh_env(fresh_env):
    """The served site with single sign-on on (a provider that is never reached here: the
    password login must work beside it, and the login page shows its button)."""
    nowhere = "http://127.0.0.1:9"
    fresh_env.update({
        "REIRRAD_OIDC": "1", "REIRRAD_OIDC_PROVIDER_NAME": "Hospital SSO",
        "REIRRAD_OIDC_AUTHORIZATION_ENDPOINT": f"{nowhere}/authorize",
        "REIRRAD_OIDC_TOKEN_ENDPOINT": f"{nowhere}/token",
        "REIRRAD_OIDC_USERINFO_ENDPOINT": f"{nowhere}/userinfo",
        "REIRRAD_OIDC_JWKS_ENDPOINT": f"{nowhere}/jwks",
        "REIRRAD_OIDC_CLIENT_ID": "reirrad", "REIRRAD_OIDC_CLIENT_SECRET": "unused",
    })  # fmt: skip
    return fresh_env


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("REIRRAD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _session(browser, base: str, user: str, password: str = PASSWORD):
    """A fresh browser context (its own cookies) logged in as ``user``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Patients")
    return page


def _csrf(page) -> str:
    return page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")


def _create_patient(page, shots: Path) -> str:
    page.click("text=New patient")
    page.fill("input[name=identifier]", PATIENT)
    page.select_option("select[name=sex]", "female")
    page.fill("input[name=birth_date]", "1958-04-02")
    page.fill("input[name=site]", "paraspinal (phantom)")
    page.fill("textarea[name=structures]", STRUCTURES)
    page.fill("input[name=default_tissue]", "3 | nieder-step")
    page.screenshot(path=shots / "web-patient-new.png", full_page=True)
    page.click("text=Create the patient")
    expect(page.locator("h1")).to_have_text(PATIENT)
    return page.url


def _upload_course(page, patient_url: str, folder: Path, course) -> None:
    course_id, start, end, fractions, dose = course
    page.goto(patient_url)
    page.click("text=Upload DICOM")
    files = [str(p) for p in sorted(folder.rglob("*.dcm"))]
    page.locator("input[name=files]:not([webkitdirectory])").set_input_files(files)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Upload")
    expect(page.locator("main")).to_contain_text(f"{len(files)} objects stored")
    page.locator("input[name=rtdose]").check()
    page.select_option("select[name=rtplan]", index=1)
    page.select_option("select[name=ct_series]", index=1)
    if page.locator("select[name=registration] option").count() > 1:
        page.select_option("select[name=registration]", index=1)
    for name, value in {
        "course_id": course_id, "start": start, "end": end, "fractions": str(fractions),
        "rx_target": "PTV_reirr", "rx_dose_gy": str(dose), "rx_fractions": str(fractions),
    }.items():  # fmt: skip
        page.fill(f"input[name={name}]", value)
    page.click("text=Create the course")
    expect(page.locator("h1")).to_contain_text(course_id)


def test_create_upload_assess_sign_and_refusals(served, fresh_env, browser, phantom_case, shots):
    base, lines, _ = served
    admin_password = next(
        m.group(1) for line in lines if (m := re.search(r"with the password (\S+)", line))
    )
    made = subprocess.run(
        [sys.executable, "-m", "reirrad.web", "shell", "-c", MAKE_USERS],
        env=fresh_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr

    # the login page offers the password and single sign-on
    page = browser.new_page(viewport={"width": 1280, "height": 700})
    page.goto(f"{base}/login/")
    expect(page.locator("a.button")).to_have_text("Sign in with Hospital SSO")
    page.screenshot(path=shots / "web-login.png", full_page=True)
    page.close()

    # a planner: new patient, its DICOM courses, an assessment followed to the end
    page = _session(browser, base, "planner")
    patient_url = _create_patient(page, shots)
    for course in COURSES:
        _upload_course(page, patient_url, phantom_case.parent / f"course{course[0][1]}", course)
    page.goto(patient_url)
    expect(page.locator("main")).to_contain_text("C1")
    page.click("text=Start assessment")
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile("Status: (Done|Failed)"), timeout=RUN_TIMEOUT_MS)
    expect(status).to_contain_text("Status: Done")  # else the reason shows in the failure
    expect(page.locator("h2", has_text="Verdicts")).to_be_visible()
    assessment_url = page.url
    page.context.close()

    # a physician opens the report and signs it; the signed PDF is there
    page = _session(browser, base, "dr")
    page.goto(assessment_url)
    page.click("text=Report (HTML)")
    expect(page.locator("body")).to_contain_text(PATIENT)
    page.go_back()
    page.check("input[name=reviewed]")
    page.fill("input[name=password]", PASSWORD)
    page.click("text=Sign the report")
    expect(page.locator(".signed")).to_contain_text("Signed by dr (physician)")
    pdf_link = page.get_by_role("link", name="Report (PDF)").get_attribute("href")
    pdf = page.request.get(base + pdf_link)
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    page.context.close()

    # a viewer sees the patient but no upload or sign-off, and a forged POST is refused
    page = _session(browser, base, "viewer")
    page.goto(patient_url)
    expect(page.locator("text=Upload DICOM")).to_have_count(0)
    expect(page.locator("text=Start assessment")).to_have_count(0)
    page.goto(assessment_url)
    expect(page.locator("text=Sign the report")).to_have_count(0)
    token = _csrf(page)  # the logout form's: a valid token, so only the role check refuses
    forged_sign = page.request.post(
        f"{assessment_url}sign/",
        form={"csrfmiddlewaretoken": token, "reviewed": "yes", "password": PASSWORD},
    )
    forged_upload = page.request.post(
        f"{patient_url}uploads/new/", multipart={"csrfmiddlewaretoken": token},
    )  # fmt: skip
    assert forged_sign.status == 403 and forged_upload.status == 403
    page.context.close()

    # another department's planner: not in the list, 404 at its URL
    page = _session(browser, base, "outsider")
    expect(page.locator("main")).not_to_contain_text(PATIENT)
    assert page.goto(patient_url).status == 404
    assert page.goto(assessment_url).status == 404
    page.context.close()

    # the admin reads the audit log: who created what, viewed the report and signed it
    page = _session(browser, base, "admin", admin_password)
    audit = f"{base}/admin/registry/auditevent/"
    expected = {
        "create": ["planner", "Patient", "Upload", "Course", "Assessment"],
        "view_report": ["dr", "Assessment"],
        "sign_off": ["dr"],
        "login": ["planner", "dr", "viewer", "outsider"],
    }
    for action, words in expected.items():
        page.goto(f"{audit}?action__exact={action}")
        for word in words:
            expect(page.locator("#result_list")).to_contain_text(word)
    page.goto(f"{audit}?action__exact=create")
    page.screenshot(path=shots / "web-audit.png", full_page=True)
    page.context.close()
