"""``python -m reirrad.web dicom_listen``: the DICOM node of the registry (``reirrad serve``
starts it when ``REIRRAD_DICOM_PORT`` is set).

Receives objects into the spool (:class:`reirrad.io.dicom_node.StorageSCP`), registers them
into the store and database in batches from this process's main loop (one database
connection; the receiving threads only queue spool paths) once the node pauses
(:class:`~reirrad.pipelines.dicom_intake.RegistrationQueue`: registering while objects
stream in would slow the sender down), and proposes a course for each
study idle for ``REIRRAD_DICOM_IDLE_S`` seconds.  At start it registers what a previous run
left in the spool unregistered.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reirrad.errors import InputError

LOG = logging.getLogger("reirrad.dicom_node")
#: Test hook: kill this process (SIGKILL) right after the N-th object is spooled and before
#: it is registered, to test that a crash between the two loses and duplicates nothing.
CRASH_ENV = "REIRRAD_DICOM_TEST_KILL_AFTER"


class Command(BaseCommand):
    help = "Run the registry's DICOM Storage SCP (settings: REIRRAD_DICOM_*; docs/dicom-node.md)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, help="TCP port (default REIRRAD_DICOM_PORT)")

    def handle(self, *args: Any, port: int | None = None, **options: Any) -> None:
        try:
            self._run(port)
        except InputError as error:
            raise CommandError(str(error)) from None

    def _run(self, port: int | None) -> None:
        from reirrad.io.dicom_node import NodeConfig, StorageSCP, parse_peer
        from reirrad.pipelines.dicom_intake import IntakeMonitor, RegistrationQueue
        from reirrad.web.registry import dicom_intake

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("pynetdicom").setLevel(logging.ERROR)
        department = dicom_intake.node_department()
        spool = Path(settings.DICOM_SPOOL_DIR)
        spool.mkdir(parents=True, exist_ok=True)
        left_over = dicom_intake.sweep(spool, department)
        config = NodeConfig(
            spool=spool, ae_title=settings.DICOM_AE_TITLE, host=settings.DICOM_HOST,
            port=port if port is not None else (settings.DICOM_PORT or 11112),
            allowed=tuple(parse_peer(a.strip()) for a in settings.DICOM_ALLOW),
        )  # fmt: skip
        arrived = RegistrationQueue()
        kill_after = int(os.environ.get(CRASH_ENV) or 0)
        count = [0]

        def on_stored(path: Path, summary: object) -> None:
            count[0] += 1
            if kill_after and count[0] >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            arrived.put(path)

        scp = StorageSCP(config, on_stored=on_stored)
        monitor = IntakeMonitor(scp, idle_seconds=settings.DICOM_IDLE_SECONDS)
        scp.mark_arrived(left_over)  # grouped once idle, as if just received
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        actual = scp.start()
        self.stderr.write(f"DICOM node {config.ae_title} on {config.host}:{actual}, "
                          f"department {department.name}")  # fmt: skip
        try:
            while not stop.wait(0.2):
                self._register(arrived, department)
                courses = monitor.poll()
                if courses:
                    dicom_intake.sweep(spool, department)  # anything the queue missed
                    for course in courses:
                        proposal = dicom_intake.propose(course, department)
                        LOG.info("proposed course %d (%s) for patient %s", proposal.pk,
                                 proposal.state, proposal.patient_identifier)  # fmt: skip
        except KeyboardInterrupt:
            pass
        finally:
            scp.stop()
            self._register(arrived, department, force=True)
            signal.signal(signal.SIGTERM, previous)
            self.stderr.write("DICOM node stopped (" + ", ".join(
                f"{v} {k}" for k, v in scp.counts.items()) + ")")  # fmt: skip

    @staticmethod
    def _register(arrived: Any, department: Any, *, force: bool = False) -> None:
        """Register the batches due (all that are queued with ``force``, at stop)."""
        from reirrad.web.registry import dicom_intake

        while batch := arrived.take(force=force):
            start = time.perf_counter()
            n = dicom_intake.register_batch(batch, department)
            LOG.debug("registered %d objects in %.2f s", n, time.perf_counter() - start)
