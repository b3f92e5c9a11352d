"""The content-addressed file store under ``DATA_DIR/store``.

A file lives at ``objects/ab/cd/<sha256>``, named by the SHA-256 of its bytes. It is
written to a temporary file in the store, flushed to disk, then hard-linked into place:
``link`` fails when the name exists, so a stored file is never overwritten (a concurrent
writer of the same bytes finds the first copy and keeps it). Stored files are read-only.
The database row (:class:`~reirrad.web.registry.models.StoredObject`, whose class methods
store a file and make its row) is made after the file,
so a row never points at a missing file; a crash between the two leaves an unreferenced
file, which a consistency check can report.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from reirrad.errors import InputError

_CHUNK = 1 << 20


def store_root() -> Path:
    return Path(settings.STORE_DIR)


def object_path(sha256: str) -> Path:
    """Where the object with this hash lives (whether or not it exists)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return store_root() / "objects" / sha256[:2] / sha256[2:4] / sha256


def _write_temp(chunks: Iterable[bytes]) -> tuple[Path, str, int]:
    tmp_dir = store_root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), digest.hexdigest(), size


def put_file_bytes(chunks: Iterable[bytes]) -> tuple[str, int]:
    """Store the bytes (given in chunks); return their SHA-256 and size."""
    tmp, sha256, size = _write_temp(chunks)
    try:
        os.chmod(tmp, 0o444)
        _link(tmp, sha256, size)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256, size


def _link(path: Path, sha256: str, size: int) -> None:
    """Hard-link a read-only, fsynced file to its SHA-256 name, never overwriting: a second
    writer of the same bytes finds the name taken and keeps the first file."""
    final = object_path(sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, final)
        _fsync_dir(final.parent)
    except FileExistsError:
        if final.stat().st_size != size:
            raise InputError(
                f"the stored object {sha256} has the wrong size; the store is damaged, "
                "run the consistency check",
                source=str(final),
            ) from None


def put_file_link(path: str | Path) -> tuple[str, int]:
    """Store a file that is already on disk (fsynced) and never rewritten, by a hard link
    instead of a copy; return its SHA-256 and size.

    For the DICOM node's spool, whose files are written once and never changed: the copy
    and its fsync were half of the registration's time. The file becomes read-only; on
    another file system (no hard link possible) it is copied as :func:`put_file_bytes` does.
    """
    path = Path(path)
    sha256, size = sha256_of(path), path.stat().st_size
    try:
        os.chmod(path, 0o444)
        _link(path, sha256, size)
    except OSError:  # another file system: copy
        with open(path, "rb") as handle:
            return put_file_bytes(read_chunks(handle))
    return sha256, size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_chunks(handle: IO[bytes]) -> Iterable[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


def copy_out(stored: Any, destination: str | Path) -> Path:
    """Copy a stored object to ``destination`` (a writable copy, for a run or an export)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stored.path, destination)
    return destination


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in read_chunks(handle):
            digest.update(chunk)
    return digest.hexdigest()


def temp_files() -> list[Path]:
    """Files in the store's temporary folder: objects being written, uploads being received
    (``FILE_UPLOAD_TEMP_DIR`` is there), or the debris of a process killed while writing."""
    tmp_dir = store_root() / "tmp"
    return sorted(p for p in tmp_dir.rglob("*") if p.is_file()) if tmp_dir.is_dir() else []


def sweep_temp(older_than_s: float | None = None) -> list[Path]:
    """Delete the store's temporary files last written more than ``older_than_s`` seconds ago
    (default ``STORE_TEMP_MAX_AGE_S``; 0 when nothing else runs, as ``reirrad serve`` starts).

    A file still being written has a fresh modification time, so it is kept. Returns the
    deleted files.
    """
    age = settings.STORE_TEMP_MAX_AGE_S if older_than_s is None else older_than_s
    cutoff = time.time() - age
    swept = []
    for path in temp_files():
        try:
            if path.stat().st_mtime <= cutoff:
                path.unlink()
                swept.append(path)
        except FileNotFoundError:  # finished and removed by its writer meanwhile
            pass
    return swept


def check_store(*, rehash: bool = True) -> dict[str, list[str]]:
    """Compare the store with the :class:`StoredObject` rows.

    Returns the SHA-256 of files without a row (``unreferenced``: a crash between writing a
    file and committing its row leaves one), of rows without a file (``missing``), of
    files whose content no longer has their name's hash (``corrupt``, with ``rehash``), and
    the paths of temporary files (``temporary``: partial writes or uploads of a killed
    process, or ones in progress; :func:`sweep_temp` removes old ones).
    :func:`reirrad.web.registry.consistency.check_consistency` adds the DICOM node's spool.
    """
    from django.apps import apps

    rows = set(apps.get_model("registry", "StoredObject").objects.values_list("sha256", flat=True))
    root = store_root() / "objects"
    files = {p.name: p for p in root.glob("??/??/*") if p.is_file()} if root.is_dir() else {}
    report = {
        "unreferenced": sorted(set(files) - rows),
        "missing": sorted(rows - set(files)),
        "corrupt": [],
        "temporary": [str(p) for p in temp_files()],
    }
    if rehash:
        report["corrupt"] = sorted(
            name for name, path in files.items() if name in rows and sha256_of(path) != name
        )
    return report
