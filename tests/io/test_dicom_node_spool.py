"""The node's spool write, without the network: checked against its documented outcomes
(stored once, identical re-sends are duplicates, a different object under a used UID is kept
beside it).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from reirrad.io.dicom_node import NodeConfig, SpoolOutcome, StorageSCP, spool_bytes


def test_spool_outcomes_with_a_kept_folder_descriptor(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    fd = os.open(spool, os.O_RDONLY)
    try:
        first, changed = b"first object", b"changed object"
        assert spool_bytes(spool, "1.2.3", first, dir_fd=fd) == (
            spool / "1.2.3.dcm",
            SpoolOutcome.STORED,
        )
        assert spool_bytes(spool, "1.2.3", first, dir_fd=fd)[1] == SpoolOutcome.DUPLICATE
        kept, outcome = spool_bytes(spool, "1.2.3", changed, dir_fd=fd)
        digest = hashlib.sha256(changed).hexdigest()
        assert (kept.name, outcome) == (f"1.2.3.conflict-{digest[:16]}.dcm", "conflict")
        assert spool_bytes(spool, "1.2.3", changed, dir_fd=fd) == (kept, SpoolOutcome.DUPLICATE)
    finally:
        os.close(fd)
    assert (spool / "1.2.3.dcm").read_bytes() == first and kept.read_bytes() == changed
    assert sorted(p.name for p in spool.iterdir()) == sorted(["1.2.3.dcm", kept.name])


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_stop_closes_the_spool_folder_descriptor(tmp_path):
    def spool_fds() -> int:
        links = (os.readlink(p) for p in Path("/proc/self/fd").iterdir() if p.is_symlink())
        return sum(1 for target in links if target == str(tmp_path / "spool"))

    scp = StorageSCP(NodeConfig(spool=tmp_path / "spool", port=0))
    scp.start()
    assert spool_fds() == 1
    scp.stop()
    assert spool_fds() == 0


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


def test_the_folder_descriptor_outlives_stop_while_a_handler_uses_it(tmp_path):
    from reirrad.io.dicom_node import _SpoolFolder

    folder = _SpoolFolder(tmp_path)
    with folder.use() as fd:
        folder.close()  # the node stops while an association still stores
        os.fsync(fd)  # still open: the handler's fsync is real
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by the last user
    with folder.use() as fd:
        assert fd is None  # later handlers open the folder themselves
