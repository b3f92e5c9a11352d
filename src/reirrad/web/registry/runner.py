"""Running an assessment (in the worker).

The web layer computes no dose: a run writes the frozen case file and its stored files into
a scratch folder, checks every hash, and calls :func:`reirrad.pipelines.run.run_case` and
:func:`reirrad.present.report.write_report`; the JSON result and the report go into the
store.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from reirrad.errors import InputError
from reirrad.web.registry import store
from reirrad.web.registry.models import Assessment, StoredObject
from reirrad.web.registry.page import store_page

logger = logging.getLogger(__name__)


def _materialize(assessment: Assessment, folder: Path) -> Path:
    """Write the frozen case file and its inputs into ``folder``, checking every hash."""
    folder.mkdir(parents=True, exist_ok=True)
    case_path = folder / "case.yaml"
    case_path.write_text(assessment.case_yaml, encoding="utf-8")
    for relative, sha256 in assessment.input_hashes.items():
        target = folder / relative
        if relative != "case.yaml":
            stored = StoredObject.objects.filter(sha256=sha256).first()
            if stored is None or not stored.path.is_file():
                raise InputError(
                    f"input {relative} ({sha256[:12]}) is missing from the store",
                    source="file store",
                )
            store.copy_out(stored, target)
        found = store.sha256_of(target)
        if found != sha256:
            raise InputError(
                f"input {relative}: SHA-256 {found[:12]} differs from the frozen "
                f"{sha256[:12]}; the store is damaged",
                source="file store",
            )
    return case_path


def _want_pdf() -> bool:
    from reirrad.present.report import find_chromium

    mode = str(settings.REPORT_PDF).lower()
    if mode in ("0", "off", "false", "no"):
        return False
    if mode in ("1", "on", "true", "yes"):
        return True
    return find_chromium() is not None


def summarize(result: Mapping[str, Any]) -> dict[str, Any]:
    """The verdicts the assessment page shows first, from the result document."""
    rows = []
    counts = {"pass": 0, "fail": 0}
    for row in result.get("results", []):
        verdicts = []
        for item in row.get("constraints", []):
            counts[item["status"]] = counts.get(item["status"], 0) + 1
            verdicts.append(
                {k: item.get(k) for k in ("id", "limit", "quantity", "value", "status", "margin")}
            )
        cumulative = row.get("cumulative") or {}
        rows.append(
            {
                "structure": row.get("structure"),
                "role": row.get("role"),
                "statistic": row.get("statistic"),
                "eqd2_gy": cumulative.get("eqd2_gy"),
                "eqd2_no_recovery_gy": cumulative.get("eqd2_no_recovery_gy"),
                "constraints": verdicts,
            }
        )
    return {
        "counts": counts,
        "rows": rows,
        "not_evaluated": result.get("constraints_not_evaluated", []),
        "warnings": result.get("warnings", []),
    }


def run_assessment(assessment_id: int) -> str:
    """Run a queued assessment and store its outputs; return its final status.

    A run that finds its assessment already finished does nothing (a job delivered twice).
    While it runs, a thread renews the assessment's heartbeat (its lease), so that a worker
    that dies (kill -9) is noticed by the next worker's :func:`sweep_stale`. The outputs and
    the status ``done`` are written by one UPDATE: an assessment is never done without them.
    """
    now = timezone.now()
    updated = Assessment.objects.filter(
        pk=assessment_id, status__in=[Assessment.Status.QUEUED, Assessment.Status.RUNNING]
    ).update(status=Assessment.Status.RUNNING, started_at=now, heartbeat_at=now)
    if not updated:
        return Assessment.objects.get(pk=assessment_id).status
    assessment = Assessment.objects.get(pk=assessment_id)
    try:
        with _heartbeat(assessment_id):
            outputs = _run(assessment)
    except InputError as error:
        _finish(assessment_id, Assessment.Status.FAILED, failure_reason=str(error))
    except Exception as error:  # recorded in words; the job itself must not be lost silently
        logger.exception("assessment %s failed", assessment_id)
        _finish(
            assessment_id,
            Assessment.Status.FAILED,
            failure_reason=f"internal error ({type(error).__name__}): {error}",
        )
    else:
        _finish(assessment_id, Assessment.Status.DONE, **outputs)
    return Assessment.objects.get(pk=assessment_id).status


def _finish(assessment_id: int, status: str, **fields: Any) -> None:
    # only a run still holding the assessment finishes it: one swept as stale stays failed
    Assessment.objects.filter(pk=assessment_id, status=Assessment.Status.RUNNING).update(
        status=status, finished_at=timezone.now(), **fields
    )


@contextmanager
def _heartbeat(assessment_id: int) -> Iterator[None]:
    """Renew the assessment's heartbeat every ``ASSESSMENT_HEARTBEAT_S`` while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.ASSESSMENT_HEARTBEAT_S):
                Assessment.objects.filter(
                    pk=assessment_id, status=Assessment.Status.RUNNING
                ).update(heartbeat_at=timezone.now())
        except Exception:  # a missed beat only risks the sweep; the run goes on
            logger.exception("heartbeat of assessment %s", assessment_id)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{assessment_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def sweep_stale(lease_s: float | None = None) -> int:
    """Mark failed, with the reason, every running assessment whose lease expired.

    A worker renews the heartbeat of the assessment it runs every ``ASSESSMENT_HEARTBEAT_S``;
    one older than ``lease_s`` (default ``ASSESSMENT_LEASE_S``) means its worker died. Such
    an assessment wrote no outputs (they are written with the status ``done`` at once); its
    partial temporary files are swept by :func:`reirrad.web.registry.store.sweep_temp`.
    Returns how many were marked.
    """
    lease = settings.ASSESSMENT_LEASE_S if lease_s is None else lease_s
    cutoff = timezone.now() - timedelta(seconds=lease)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    return (
        Assessment.objects.filter(status=Assessment.Status.RUNNING)
        .filter(stale)
        .update(
            status=Assessment.Status.FAILED,
            finished_at=timezone.now(),
            failure_reason=(
                f"interrupted: the worker running this assessment stopped (no heartbeat for "
                f"{lease:g} s); nothing it computed was kept; start a new assessment"
            ),
        )
    )


def _run(assessment: Assessment) -> dict[str, Any]:
    from reirrad.pipelines.run import run_case
    from reirrad.present.render import assessment_to_dict
    from reirrad.present.report import write_report

    params = assessment.parameters
    with tempfile.TemporaryDirectory(prefix="reirrad-run-") as scratch:
        folder = Path(scratch)
        case_path = _materialize(assessment, folder / "case")
        run = run_case(
            case_path,
            methods=params.get("methods"),
            constraint_sets=params.get("constraint_sets"),
            reference=params.get("reference"),
            workers=1,
        )
        result = assessment_to_dict(run.assessment)
        result["data_quality"] = params.get("data_quality", {})
        result_text = json.dumps(result, indent=1, sort_keys=False)
        result_object = StoredObject.from_bytes(
            result_text.encode("utf-8"),
            kind=StoredObject.Kind.RESULT,
            media_type="application/json",
            original_name=f"assessment-{assessment.pk}.json",
        )
        pdf = folder / "report.pdf" if _want_pdf() else None
        summary = summarize(result)
        try:
            written = write_report(run, folder / "report.html", pdf=pdf)
        except InputError as error:
            if pdf is None or str(settings.REPORT_PDF).lower() != "auto":
                raise
            summary["pdf_unavailable"] = str(error)
            written = write_report(run, folder / "report.html")
        html = StoredObject.from_path(
            written.html, kind=StoredObject.Kind.REPORT_HTML, media_type="text/html"
        )
        # figures, tables and exports for the page, from the report's own data (page.py)
        summary["page"] = store_page(written.data, run, folder)
        pdf_object = None
        if written.pdf is not None:
            pdf_object = StoredObject.from_path(
                written.pdf, kind=StoredObject.Kind.REPORT_PDF, media_type="application/pdf"
            )
    summary["data_quality"] = params.get("data_quality", {})
    return {
        "result_json": result_object,
        "report_html": html,
        "report_pdf": pdf_object,
        "summary": summary,
    }


def fail_interrupted(reason: str) -> int:
    """Mark assessments left ``running`` by a worker that stopped as failed, with ``reason``.

    Called when the only worker starts (``reirrad serve``): nothing can still be running
    them. They are not rerun by themselves; the page says why and a user starts a new one.
    Returns how many were marked.
    """
    return Assessment.objects.filter(status=Assessment.Status.RUNNING).update(
        status=Assessment.Status.FAILED, failure_reason=reason, finished_at=timezone.now()
    )
