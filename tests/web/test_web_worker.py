"""The database-backed queue: a job queued by one process is run by a worker started later.

Everything runs in separate processes on a fresh data folder (and, on PostgreSQL, a fresh
database), as ``reirrad serve`` runs them: the process that queues the assessment exits
before the worker starts, so the job lives only in the database in between.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from web_scripts import QUEUE

ROOT = Path(__file__).resolve().parents[2]
NPC_CASE = ROOT / "examples" / "npc-reirradiation-2026.yaml"


CHECK = """
import hashlib, json, sys
from reirrad.web import setup
setup()
from django_tasks_db.models import DBTaskResult
from reirrad.web.registry.models import Assessment
a = Assessment.objects.get(pk=int(sys.argv[1]))
outputs = {}
for name in ("result_json", "report_html", "report_pdf"):
    stored = getattr(a, name)
    if stored is not None:
        data = stored.path.read_bytes()
        outputs[name] = hashlib.sha256(data).hexdigest() == stored.sha256
result = json.loads(a.result_json.path.read_bytes()) if a.result_json else None
print(json.dumps({
    "status": a.status, "reason": a.failure_reason, "outputs": outputs, "result": result,
    "jobs": list(DBTaskResult.objects.values_list("status", flat=True)),
}))
"""


def _python(env, *args, timeout=300):
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_queued_assessment_waits_for_a_worker_started_later(fresh_env):
    _python(fresh_env, "-m", "reirrad.web", "migrate", "-v0")
    assessment_id = int(_python(fresh_env, "-c", QUEUE, str(NPC_CASE)).strip())
    before = json.loads(_python(fresh_env, "-c", CHECK, str(assessment_id)))
    assert before["status"] == "queued" and before["jobs"] == ["READY"]
    # the queueing process has exited; a worker started now finds the job in the database
    _python(
        fresh_env, "-m", "reirrad.web", "db_worker", "--batch", "--no-startup-delay",
        "--no-reload", "-v0",
    )  # fmt: skip
    after = json.loads(_python(fresh_env, "-c", CHECK, str(assessment_id)))
    assert after["status"] == "done", after["reason"]
    assert after["jobs"] == ["SUCCESSFUL"]
    assert after["outputs"]["result_json"] and after["outputs"]["report_html"]
    assert all(after["outputs"].values())  # every stored output has the hash it is filed under
    from reirrad.present.report import find_chromium

    if find_chromium() is not None:
        assert "report_pdf" in after["outputs"]
    # the numbers are the library's on the frozen case: Marinova 2026 (examples/), "sum. BED
    # 73.58Gy" for the recurrence, and "EQD2 of 70.4 Gy" of the first course (truncated)
    rows = {row["structure"]: row for row in after["result"]["results"]}
    assert rows["Recurrence"]["cumulative"]["bed_gy"] == pytest.approx(73.58, abs=0.05)
    imrt = rows["Recurrence"]["courses"][0]
    assert imrt["course"] == "IMRT" and imrt["eqd2_gy"] == pytest.approx(70.4, abs=0.1)
    assert after["result"]["data_quality"] == {"IMRT": "unverified", "HFRS": "unverified"}
