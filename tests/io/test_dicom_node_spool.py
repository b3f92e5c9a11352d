"""The node's spool write, without the network: checked against its documented outcomes
(stored once, identical re-sends are duplicates, a different object under a used UID is kept
beside it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reirrad.io.dicom_node import SpoolOutcome, spool_bytes


def test_spool_outcomes(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    first, changed = b"first object", b"changed object"
    assert spool_bytes(spool, "1.2.3", first) == (spool / "1.2.3.dcm", SpoolOutcome.STORED)
    assert spool_bytes(spool, "1.2.3", first)[1] == SpoolOutcome.DUPLICATE
    kept, outcome = spool_bytes(spool, "1.2.3", changed)
    digest = hashlib.sha256(changed).hexdigest()
    assert (kept.name, outcome) == (f"1.2.3.conflict-{digest[:16]}.dcm", "conflict")
    assert spool_bytes(spool, "1.2.3", changed) == (kept, SpoolOutcome.DUPLICATE)
    assert (spool / "1.2.3.dcm").read_bytes() == first and kept.read_bytes() == changed
    assert sorted(p.name for p in spool.iterdir()) == sorted(["1.2.3.dcm", kept.name])


def test_registration_queue_hands_out_batches_only_once_due():
    from reirrad.pipelines.dicom_intake import RegistrationQueue

    paths = [Path(f"{i}.dcm") for i in range(5)]
    waiting = RegistrationQueue(pause_s=3600, max_wait_s=3600, max_batch=2)
    for path in paths:
        waiting.put(path)
    assert waiting.take() == [] and len(waiting) == 5  # still arriving: nothing due
    assert waiting.take(force=True) == paths[:2]  # in arrival order, max_batch at a time
    assert waiting.take(force=True) == paths[2:4]
    assert waiting.take(force=True) == paths[4:] and waiting.take(force=True) == []

    paused = RegistrationQueue(pause_s=0, max_wait_s=3600)  # "nothing arrived for 0 s"
    stream = RegistrationQueue(pause_s=3600, max_wait_s=0)  # the oldest waited long enough
    for queue in (paused, stream):
        queue.put(paths[0])
        queue.put(paths[1])
        assert queue.take() == paths[:2] and len(queue) == 0
