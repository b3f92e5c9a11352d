"""``python -m reirrad.web worker``: django-tasks' ``db_worker`` that also sweeps.

At start and then every ``ASSESSMENT_LEASE_S`` seconds it marks failed the running
assessments whose heartbeat expired (their worker died; :func:`runner.sweep_stale`) and
deletes old temporary files in the store (:func:`store.sweep_temp`). So a worker restarted
alone (systemd ``Restart=``) recovers from a kill -9 of its predecessor by itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import connection
from django_tasks_db.management.commands.db_worker import Command as DbWorker

from reirrad.web.registry import runner, store

logger = logging.getLogger(__name__)


def sweep() -> None:
    failed = runner.sweep_stale()
    swept = store.sweep_temp()
    if failed or swept:
        logger.warning(
            "sweep: %d assessment(s) of a dead worker marked failed, %d temporary file(s) removed",
            failed,
            len(swept),
        )


def _sweep_periodically(stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.ASSESSMENT_LEASE_S):
            try:
                sweep()
            except Exception:  # the next round tries again; the worker goes on
                logger.exception("sweep failed")
    finally:
        connection.close()


class Command(DbWorker):
    help = DbWorker.help + " Sweeps assessments of dead workers and old temporary files."

    def handle(self, *args: Any, **options: Any) -> None:
        sweep()
        stop = threading.Event()
        threading.Thread(target=_sweep_periodically, args=(stop,), daemon=True).start()
        try:
            super().handle(*args, **options)
        finally:
            stop.set()
