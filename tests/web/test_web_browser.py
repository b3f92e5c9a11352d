"""In a real browser (Playwright driving Debian's Chromium) against `reirrad serve`: log in,
find the seeded phantom patient, run an assessment and watch it finish, open the report,
sign it as a physician, and see the signature and the audit entries.

Screenshots of the pages go to ``REIRRAD_SCREENSHOTS`` when it names a folder
(``REIRRAD_SCREENSHOTS=docs/images pytest tests/web/test_web_browser.py``), else to the
test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
#: Bound on waiting for the worker to finish the phantom's assessment (not a timed assertion).
RUN_TIMEOUT_MS = 300_000

MAKE_PHYSICIAN = """
from django.contrib.auth import get_user_model
from reirrad.web.registry.models import Department, Membership
user = get_user_model().objects.create_user("dr", password="a physician's password")
Membership.objects.create(user=user, department=Department.objects.get(), role="physician")
"""


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("REIRRAD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _login(page, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (system-deps)")
def test_browse_assess_and_sign(served, fresh_env, shots):
    base, lines, _ = served
    password = next(
        m.group(1) for line in lines if (m := re.search(r"with the password (\S+)", line))
    )
    made = subprocess.run(
        [sys.executable, "-m", "reirrad.web", "shell", "-c", MAKE_PHYSICIAN],
        env=fresh_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        expect(page).to_have_url(re.compile(r"/login/"))  # every page is behind the login
        _login(page, base, "admin", password)
        expect(page.locator("h1")).to_have_text("Patients")
        page.screenshot(path=shots / "web-patients.png", full_page=True)
        page.fill("input[name=q]", "phantom")
        page.click("form.search button")
        expect(page.locator("table")).not_to_contain_text("MARINOVA")
        page.click("text=PHANTOM-EXAMPLE")
        expect(page.locator("h1")).to_have_text("PHANTOM-EXAMPLE")
        page.screenshot(path=shots / "web-patient.png", full_page=True)
        page.get_by_role("link", name="C2", exact=True).click()
        expect(page.locator("h2", has_text="DICOM objects")).to_be_visible()
        page.screenshot(path=shots / "web-course.png", full_page=True)
        page.go_back()
        page.click("text=Start assessment")
        expect(page.locator("#status")).to_contain_text("Status: Done", timeout=RUN_TIMEOUT_MS)
        expect(page.locator("h2", has_text="Verdicts")).to_be_visible()
        page.screenshot(path=shots / "web-assessment.png", full_page=True)
        assessment_url = page.url
        page.click("text=Report (HTML)")  # a plain link: the same tab
        expect(page.locator("body")).to_contain_text("PHANTOM-EXAMPLE")
        page.go_back()
        # admins do not sign; a physician does, with the password again
        expect(page.locator("text=Sign the report")).to_have_count(0)
        page.click("text=Log out")
        _login(page, base, "dr", "a physician's password")
        page.goto(assessment_url)
        page.check("input[name=reviewed]")
        page.fill("input[name=password]", "a physician's password")
        page.click("text=Sign the report")
        expect(page.locator(".signed")).to_contain_text("Signed by dr (physician)")
        page.screenshot(path=shots / "web-signed.png", full_page=True)
        browser.close()
    audit = subprocess.run(
        [sys.executable, "-m", "reirrad.web", "shell", "-c",
         "import json; from reirrad.web.registry.models import AuditEvent as A; "
         "print(json.dumps(sorted(set(A.objects.values_list('action', flat=True)))))"],
        env=fresh_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    actions = set(json.loads(audit.stdout.strip().splitlines()[-1]))
    assert {"login", "create", "view_report", "sign_off", "import"} <= actions
