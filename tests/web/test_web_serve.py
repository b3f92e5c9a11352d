"""``reirrad serve`` end to end: a fresh data folder, the printed admin password, the seeded
cases, an assessment run by the worker, the report, and Ctrl-C stopping everything."""

from __future__ import annotations

import http.cookiejar
import re
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Bounds on waiting (not timed assertions): start-up, and one assessment of the NPC case.
START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 300


class Browser:
    """A logged-in HTTP client with a cookie jar (CSRF token taken from the cookie)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[int, str, bytes]:
        with self.opener.open(self.base + path) as response:
            return response.status, response.geturl(), response.read()

    def post(self, path: str, fields: dict | list) -> tuple[int, str, bytes]:
        token = next(c.value for c in self.cookies if c.name == "csrftoken")
        data = urllib.parse.urlencode(
            [
                *(fields.items() if isinstance(fields, dict) else fields),
                ("csrfmiddlewaretoken", token),
            ]
        ).encode()
        request = urllib.request.Request(
            self.base + path, data=data, headers={"Referer": self.base + path}
        )
        with self.opener.open(request) as response:
            return response.status, response.geturl(), response.read()


def _wait_until_listening(browser: Browser) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            browser.get("/login/")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_serve_a_fresh_data_folder(served):
    base, lines, process = served
    password = next(
        m.group(1) for line in lines if (m := re.search(r"with the password (\S+)", line))
    )
    browser = Browser(base)
    _wait_until_listening(browser)
    # every page is behind the login
    status, url, _ = browser.get("/")
    assert "/login/" in url
    status, url, page = browser.post("/login/", {"username": "admin", "password": password})
    assert url == base + "/" and b"MARINOVA-2026-NPC" in page and b"PHANTOM-EXAMPLE" in page
    patient = re.search(rb'href="/patients/(\d+)/">MARINOVA-2026-NPC', page).group(1).decode()
    _, _, page = browser.get(f"/patients/{patient}/")
    courses = re.findall(rb'name="course" value="(\d+)"', page)
    assert len(courses) == 2
    status, url, page = browser.post(
        f"/patients/{patient}/assessments/new/", [("course", c.decode()) for c in courses]
    )
    assessment = re.search(r"/assessments/(\d+)/$", url).group(1)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while b"Status: Done" not in page:
        assert b"Status: Failed" not in page, page.decode()[-2000:]
        assert time.monotonic() < deadline, "the worker did not finish the assessment"
        time.sleep(1)
        _, _, page = browser.get(f"/assessments/{assessment}/")
    assert b"Verdicts" in page
    _, _, report = browser.get(f"/assessments/{assessment}/report.html")
    assert b"MARINOVA-2026-NPC" in report
    # Ctrl-C stops the web server and the worker
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while not any("reirrad: stopped" in line for line in lines):
        assert time.monotonic() < deadline, "".join(lines[-20:])
        time.sleep(0.1)
    with pytest.raises(OSError):
        browser.get("/login/")


def test_serve_starts_the_dicom_node_only_when_configured():
    from reirrad.web.serve import commands, with_dicom_node

    plain = with_dicom_node(commands("127.0.0.1", 8000), {})
    assert set(plain) == {"web server", "worker"}
    node = with_dicom_node(commands("127.0.0.1", 8000), {"REIRRAD_DICOM_PORT": "11112"})
    assert node["DICOM node"][-1] == "dicom_listen"
