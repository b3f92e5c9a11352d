"""From a running Storage SCP to proposed courses: group each study once it has gone idle.

:class:`IntakeMonitor` is polled by the listener loop (``reirrad dicom-listen``).  When
studies have received nothing for ``idle_seconds`` (:func:`reirrad.core.dicom_groups.idle_studies`),
it reads the headers of the spooled objects of those studies' patients (cached by path: a
spool file never changes) and groups them (:func:`reirrad.core.dicom_groups.group_objects`).
The whole patient is grouped, not only the idle study, because a plan, its CT and a REG
object may arrive in different studies.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from pathlib import Path

from reirrad.core.dicom_groups import (
    DEFAULT_IDLE_SECONDS,
    ObjectSummary,
    ProposedCourse,
    group_objects,
    idle_studies,
)
from reirrad.errors import InputError
from reirrad.io.dicom_node import (
    StorageSCP,
    is_conflict_copy,
    spooled_objects,
    summarize_file,
)

__all__ = ["IntakeMonitor", "RegistrationQueue"]

LOG = logging.getLogger("reirrad.dicom_node")


class IntakeMonitor:
    """Turns idle studies of a :class:`~reirrad.io.dicom_node.StorageSCP` into proposals."""

    def __init__(self, scp: StorageSCP, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        if idle_seconds < 0:
            raise InputError("the idle time must be >= 0 seconds", source="--idle")
        self.scp = scp
        self.idle_seconds = idle_seconds
        self._summaries: dict[Path, ObjectSummary | None] = {}

    def summaries(self) -> list[ObjectSummary]:
        """Headers of every readable object in the spool (new files are read once).

        Conflicting copies are included (their ``source`` names the copy).
        """
        for path in spooled_objects(Path(self.scp.config.spool)):
            if path not in self._summaries:
                try:
                    self._summaries[path] = summarize_file(path)
                except InputError as error:
                    LOG.warning("cannot group %s: %s", path.name, error)
                    self._summaries[path] = None
        return [s for s in self._summaries.values() if s is not None]

    def poll(self, now: float | None = None) -> list[ProposedCourse]:
        """Courses touching studies that went idle since the last poll (each reported once)."""
        now = time.monotonic() if now is None else now
        idle = idle_studies(self.scp.last_arrivals(), now, self.idle_seconds)
        if not idle:
            return []
        everything = self.summaries()
        # a UID received twice with different contents: the first object is grouped, and
        # the course says so (never a silent choice between the two)
        conflicted = {s.sop_instance_uid for s in everything if is_conflict_copy(Path(s.source))}
        summaries = [s for s in everything if not is_conflict_copy(Path(s.source))]
        idle_set = set(idle)
        in_idle = {s.sop_instance_uid for s in summaries if s.study_uid in idle_set}
        patients = {s.patient_id for s in summaries if s.sop_instance_uid in in_idle}
        courses = []
        for c in group_objects(s for s in summaries if s.patient_id in patients):
            if not set(c.object_uids) & in_idle:
                continue
            twice = sorted(set(c.object_uids) & conflicted)
            if twice:
                c = dataclasses.replace(
                    c,
                    conflicts=c.conflicts
                    + (
                        f"{len(twice)} object(s) arrived again with different contents under the "
                        f"same SOP Instance UID ({', '.join(twice)}): the first one received is "
                        "grouped; a person must decide which is right (the other is kept in the "
                        "spool as a .conflict- copy)",
                    ),
                )
            courses.append(c)
        self.scp.forget_studies(idle)
        return courses


class RegistrationQueue:
    """Spool files waiting to be registered, handed out in batches once the node pauses.

    Registering an object (database rows, hashing, a header read) takes about as much CPU
    time as receiving it (3.3 ms each for the benchmark phantom, ``benchmarks/dicom_ingest.py``),
    and in one process it competes with the receiving threads for the interpreter lock:
    registered while objects stream in, it slowed the sender down by half.  So files are
    due only when nothing has arrived for ``pause_s``, or the oldest has waited
    ``max_wait_s`` (a continuous stream is still registered), and are handed out at most
    ``max_batch`` at a time (one transaction each).  Nothing is lost by waiting: the spool
    is the queue, and what a crash leaves unregistered is registered at the next start
    (``dicom_intake.sweep``).
    """

    def __init__(self, pause_s: float = 0.5, max_wait_s: float = 10.0, max_batch: int = 500):
        self.pause_s, self.max_wait_s, self.max_batch = pause_s, max_wait_s, max_batch
        self._paths: deque[tuple[float, Path]] = deque()
        self._last = 0.0
        self._lock = threading.Lock()

    def put(self, path: Path) -> None:
        """Queue a newly spooled file (called from the receiving threads)."""
        now = time.monotonic()
        with self._lock:
            self._paths.append((now, path))
            self._last = now

    def __len__(self) -> int:
        with self._lock:
            return len(self._paths)

    def take(self, *, force: bool = False) -> list[Path]:
        """The next batch if one is due (all of it up to ``max_batch`` with ``force``),
        else an empty list."""
        now = time.monotonic()
        with self._lock:
            if not self._paths:
                return []
            due = (
                force
                or now - self._last >= self.pause_s
                or now - self._paths[0][0] >= self.max_wait_s
            )
            if not due:
                return []
            count = min(len(self._paths), self.max_batch)
            return [self._paths.popleft()[1] for _ in range(count)]
