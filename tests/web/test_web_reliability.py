"""Reliability with real processes: kill -9 of the worker during an assessment and of the web
server during an upload, the store's consistency check on a broken store, and concurrent
stores of the same DICOM objects. Every process is a subprocess on a fresh data folder (a
fresh database on PostgreSQL), as ``reirrad serve`` and systemd run them.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from web_scripts import QUEUE

ROOT = Path(__file__).resolve().parents[2]
NPC_CASE = ROOT / "examples" / "npc-reirradiation-2026.yaml"


#: Bounds on waiting (not timed assertions).
WAIT_S = 300

STATUS = """
import json, sys
from reirrad.web import setup
setup()
from reirrad.web.registry.models import Assessment
a = Assessment.objects.get(pk=int(sys.argv[1]))
print(json.dumps({"status": a.status, "reason": a.failure_reason,
                  "outputs": [a.result_json_id, a.report_html_id, a.report_pdf_id]}))
"""


def _python(env, *args, check=True, timeout=WAIT_S):
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _cli(env, *args):
    return _python(env, "-c", "from reirrad.cli import run; run()", *args, check=False)


def _status(env, assessment_id):
    return json.loads(_python(env, "-c", STATUS, str(assessment_id)).stdout)


def _wait_for(predicate, what):
    deadline = time.monotonic() + WAIT_S
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"waited too long for {what}"
        time.sleep(0.5)
    return found


BREAK = """
import os, sys
from pathlib import Path
from reirrad.web import setup
setup()
from reirrad.web.registry import store
from reirrad.web.registry.models import StoredObject
kept = StoredObject.from_bytes(b"kept intact", kind="document")
gone = StoredObject.from_bytes(b"file deleted", kind="document")
bad = StoredObject.from_bytes(b"content altered", kind="document")
gone.path.unlink()
os.chmod(bad.path, 0o644)
bad.path.write_bytes(b"content altered!")
orphan, _ = store.put_file_bytes([b"no row for me"])
(store.store_root() / "tmp").mkdir(exist_ok=True)
(store.store_root() / "tmp" / "upload-partial").write_bytes(b"half")
print(gone.sha256, bad.sha256, orphan)
"""


def test_check_store_reports_a_deliberately_broken_store(fresh_env, tmp_path):
    data = fresh_env["REIRRAD_DATA"]
    _python(fresh_env, "-m", "reirrad.web", "migrate", "-v0")
    assert _cli(fresh_env, "check-store", "--data", data).stdout.strip() == "store consistent"
    gone, bad, orphan = _python(fresh_env, "-c", BREAK).stdout.split()
    done = _cli(fresh_env, "check-store", "--data", data)
    assert done.returncode == 1
    lines = set(done.stdout.splitlines())
    assert f"missing: {gone}" in lines  # a row without its file
    assert f"corrupt: {bad}" in lines  # a file whose content differs from its name's hash
    assert f"unreferenced: {orphan}" in lines  # a file without its row
    assert any(line.startswith("temporary: ") and "upload-partial" in line for line in lines)
    assert "store inconsistent: 1 unreferenced, 1 missing, 1 corrupt, 1 temporary" in lines
    # the management command reports the same
    command = _python(fresh_env, "-m", "reirrad.web", "check_store", check=False)
    assert command.returncode == 1 and f"missing: {gone}" in command.stdout
    # a missing data folder is one line and exit 2
    done = _cli(fresh_env, "check-store", "--data", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "Traceback" not in done.stderr


RACE = """
import json, os, sys, time
from pathlib import Path
from reirrad.web import setup
setup()
from reirrad.web.registry.models import StoredObject
files = sorted(p for p in Path(sys.argv[1]).rglob("*.dcm"))
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
ids = {str(p): StoredObject.from_path(p, kind="dicom").pk for p in files}
print(json.dumps(ids))
"""

COUNT = """
from reirrad.web import setup
setup()
from reirrad.web.registry.models import StoredObject
from reirrad.web.registry.store import store_root
print(StoredObject.objects.count(), sum(1 for p in (store_root() / "objects").rglob("*")
                                        if p.is_file()))
"""


def test_concurrent_stores_of_the_same_dicom_keep_one_copy(fresh_env, phantom_case, tmp_path):
    _python(fresh_env, "-m", "reirrad.web", "migrate", "-v0")
    folder = phantom_case.parent
    n_files = len(list(folder.rglob("*.dcm")))
    assert n_files > 3
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(folder), str(go)],
            env=fresh_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(3)
    ]
    time.sleep(3)  # let each process set Django up, then start them together
    go.touch()
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=WAIT_S)
        assert racer.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    assert results[0] == results[1] == results[2]  # every process got the same rows
    rows, files = map(int, _python(fresh_env, "-c", COUNT).stdout.split())
    distinct = len(set(results[0].values()))
    assert rows == files == distinct
    consistent = _cli(fresh_env, "check-store", "--data", fresh_env["REIRRAD_DATA"])
    assert consistent.stdout.strip() == "store consistent", consistent.stdout


def _worker(env):
    return subprocess.Popen(
        [sys.executable, "-m", "reirrad.web", "worker", "--no-reload", "--no-startup-delay"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_kill_9_of_the_worker_during_an_assessment(fresh_env):
    env = dict(fresh_env, REIRRAD_HEARTBEAT_S="0.5", REIRRAD_LEASE_S="5")
    _python(env, "-m", "reirrad.web", "migrate", "-v0")
    assessment = int(_python(env, "-c", QUEUE, str(NPC_CASE)).stdout.strip())
    worker = _worker(env)
    try:
        _wait_for(lambda: _status(env, assessment)["status"] != "queued", "the run to start")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=60)
        killed = _status(env, assessment)
        if killed["status"] == "done":
            pytest.skip("the run finished before the kill; nothing to recover")
        # the dead worker's assessment shows running, never done without its outputs
        assert killed["status"] == "running" and killed["outputs"] == [None, None, None]
        # a worker started alone (as systemd restarts it) finds the expired lease
        worker = _worker(env)
        after = _wait_for(
            lambda: (s := _status(env, assessment))["status"] != "running" and s,
            "the restarted worker to sweep the expired lease",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert after["status"] == "failed", after
    assert "worker running this assessment stopped" in after["reason"]
    assert after["outputs"] == [None, None, None]
    check = _cli(env, "check-store", "--data", env["REIRRAD_DATA"])
    assert check.stdout.strip() == "store consistent", check.stdout


UPLOAD_BYTES = 12 * 1024 * 1024  # above the part kept in memory: Django spools it to a file


def _slow_upload(base: str, session: requests.Session, patient: int) -> socket.socket:
    """Start a multipart upload and send part of it, slowly; return the open socket."""
    token = session.cookies["csrftoken"]
    boundary = "reirradboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
        f'{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="big.dcm"\r\nContent-Type: application/dicom\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    port = int(base.rsplit(":", 1)[1])
    path = f"/patients/{patient}/uploads/new/"
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookies}\r\n"
        f"Referer: {base}{path}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + UPLOAD_BYTES + len(tail)}\r\n\r\n"
    ).encode()
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(request + head)
    for _ in range(20):  # 5 MB of the 12, then it stalls (a slow client)
        connection.sendall(b"\0" * (256 * 1024))
        time.sleep(0.05)
    return connection


def test_kill_9_of_the_web_server_during_an_upload(served, fresh_env, tmp_path):
    base, lines, process = served
    data = tmp_path / "data"
    password = next(m.group(1) for ln in lines if (m := re.search(r"password (\S+)", ln)))
    session = requests.Session()

    def listening() -> bool:
        try:
            return session.get(base + "/login/", timeout=60).status_code == 200
        except requests.ConnectionError:
            return False

    _wait_for(listening, "the web server to listen")
    page = session.post(
        base + "/login/",
        data={"username": "admin", "password": password,
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": base + "/login/"}, timeout=60,
    )  # fmt: skip
    patient = int(re.search(r'href="/patients/(\d+)/"', page.text).group(1))
    session.get(f"{base}/patients/{patient}/uploads/new/", timeout=60)
    temp_dir = data / "store" / "tmp"
    connection = _slow_upload(base, session, patient)
    try:
        _wait_for(lambda: any(temp_dir.rglob("*.upload*")), "the upload to spool to disk")
        web = [
            p for p in psutil.Process(process.pid).children(recursive=True)
            if "gunicorn" in " ".join(p.cmdline())
        ]  # fmt: skip
        assert web
        for proc in web:
            proc.send_signal(signal.SIGKILL)
        assert process.wait(timeout=120) == 1  # serve stops the worker when the server dies
    finally:
        connection.close()
    # the killed upload left only its temporary file: no stored object, no row
    cli_env = fresh_env
    check = _cli(cli_env, "check-store", "--data", str(data))
    assert check.returncode == 1
    kinds = {ln.split(":")[0] for ln in check.stdout.splitlines()[:-1]}
    assert kinds == {"temporary"}, check.stdout
    # the next start sweeps it
    restarted = subprocess.run(
        [sys.executable, "-c", SWEEP_AT_START, str(data)], env=cli_env,
        capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    check = _cli(cli_env, "check-store", "--data", str(data))
    assert check.stdout.strip() == "store consistent", check.stdout


#: What ``reirrad serve`` does before it starts the processes (migrate, sweep, seed).
SWEEP_AT_START = """
import sys
from pathlib import Path
from reirrad.web.serve import prepare
prepare(Path(sys.argv[1]))
"""


def test_the_sweep_fails_only_expired_leases_and_a_late_finish_keeps_it_failed(
    npc_patient, make_user, department
):
    from datetime import timedelta

    from django.utils import timezone

    from reirrad.web.registry import runner
    from reirrad.web.registry.assessments import start_assessment
    from reirrad.web.registry.models import Assessment

    user = make_user("planner", "planner", department)
    dead, alive = (start_assessment(npc_patient, user) for _ in range(2))
    now = timezone.now()
    Assessment.objects.filter(pk=dead.pk).update(
        status="running", started_at=now, heartbeat_at=now - timedelta(seconds=61)
    )
    Assessment.objects.filter(pk=alive.pk).update(
        status="running", started_at=now, heartbeat_at=now - timedelta(seconds=59)
    )
    assert runner.sweep_stale(lease_s=60) == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == "failed" and "no heartbeat for 60 s" in dead.failure_reason
    assert alive.status == "running"
    # the dead run, had it been only slow, cannot turn its swept assessment into "done"
    runner._finish(dead.pk, Assessment.Status.DONE, summary={"counts": {}})
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.summary == {}
