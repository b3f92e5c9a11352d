"""The known good input sets that mutations start from, and copying them into a work dir.

* ``phantom``: ``reirrad.io.phantom.write_example_case(dir, n_courses=2)`` (CT, RTSTRUCT,
  RTPLAN, RTDOSE per course, a REG for course 1) and its ``case.yaml``; written once per
  process into a cache directory and copied for each case.
* ``npc``: ``examples/npc-reirradiation-2026.yaml`` (structure-level, no DICOM).
* ``dicompyler``: ``../shared/data/dicompyler-core-example`` (``rtdose.dcm``, ``rtss.dcm``).
* ``eclipse``: ``../shared/data/eclipse-prostate`` (``RD.dcm``, ``RS.dcm``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
EXAMPLE_CASE = REPO / "examples" / "npc-reirradiation-2026.yaml"

#: Files of each shared data set that a fuzz case needs (copied, never modified in place).
SHARED_SETS = {
    "dicompyler": (SHARED / "dicompyler-core-example", {"RD": "rtdose.dcm", "RS": "rtss.dcm"}),
    "eclipse": (SHARED / "eclipse-prostate", {"RD": "RD.dcm", "RS": "RS.dcm"}),
}

#: Phantom files by course and kind, relative to the phantom directory.
PHANTOM_FILES = {
    "RD": "course{c}/RD.dcm",
    "RS": "course{c}/RS.dcm",
    "RP": "course{c}/RP.dcm",
    "REG": "course1/REG_to_reference.dcm",
    "CT": "course{c}/CT/CT_010.dcm",
}

_lock = threading.Lock()
_phantom_dir: Path | None = None


def available(base: str) -> bool:
    """Whether an input set can be used here (shared data sets may be missing)."""
    if base in SHARED_SETS:
        folder, files = SHARED_SETS[base]
        return all((folder / name).is_file() for name in files.values())
    return True


def _copy_tree(source: Path, target: Path) -> None:
    """Copy files only (no permission bits: the shared data is read-only)."""
    for root, _dirs, files in os.walk(source):
        relative = Path(root).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(Path(root) / name, target / relative / name)


def phantom_dir() -> Path:
    """The cached phantom case (written on first use, in this process's temp dir)."""
    global _phantom_dir
    with _lock:
        if _phantom_dir is None or not (_phantom_dir / "case.yaml").is_file():
            src = str(REPO / "src")
            if src not in sys.path:
                sys.path.insert(0, src)
            from reirrad.io.phantom import write_example_case

            folder = Path(tempfile.mkdtemp(prefix="reirrad-fuzz-phantom-"))
            atexit.register(shutil.rmtree, folder, True)
            write_example_case(folder, n_courses=2)
            _phantom_dir = folder
        return _phantom_dir


def prepare(base: str, work: Path) -> Path:
    """Copy input set ``base`` into ``work`` and return ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    if base == "phantom":
        _copy_tree(phantom_dir(), work)
    elif base == "npc":
        shutil.copyfile(EXAMPLE_CASE, work / "case.yaml")
    elif base in SHARED_SETS:
        folder, files = SHARED_SETS[base]
        for name in files.values():
            shutil.copyfile(folder / name, work / name)
    else:
        raise ValueError(f"unknown input set {base!r}")
    return work


def file_of(base: str, kind: str, course: int = 1) -> str:
    """Path (relative to the work dir) of a file of kind RD/RS/RP/REG/CT in an input set."""
    if base == "phantom":
        return PHANTOM_FILES[kind].format(c=course)
    return SHARED_SETS[base][1][kind]
