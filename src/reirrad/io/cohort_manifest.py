"""Cohort manifests: which case file belongs to which patient, and each case's input files.

A manifest is one of

* a CSV file with a header row and the columns ``patient`` and ``case`` (the case file,
  relative to the manifest's folder or absolute);
* a YAML file: a list of ``{patient: ..., case: ...}`` mappings, or a mapping with that list
  under ``patients``;
* a folder of case folders: every sub-folder holding exactly one ``*.yaml`` case file is a
  patient named after the sub-folder.

:func:`case_input_files` lists the files a case reads (the case file and every DICOM file
it names), the basis of the resume key.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from reirrad.errors import InputError

__all__ = ["CohortEntry", "case_input_files", "hash_files", "read_manifest"]

#: Patient identifiers become file names: letters, digits, ``._-`` (no path separators).
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class CohortEntry:
    """One patient of a cohort: identifier and absolute case-file path."""

    patient: str
    case: Path


def read_manifest(path: str | Path) -> tuple[CohortEntry, ...]:
    """Read a CSV or YAML manifest, or a folder of case folders.

    Raises
    ------
    InputError
        Unreadable manifest, missing column or field, empty cohort, unsafe or repeated
        patient identifier, missing case file.
    """
    path = Path(path)
    if path.is_dir():
        entries = _from_folder(path)
    elif not path.is_file():
        raise InputError(
            "no such file or folder; give a CSV or YAML manifest or a folder of case folders",
            source=str(path),
        )
    elif path.suffix.lower() == ".csv":
        entries = _from_csv(path)
    elif path.suffix.lower() in (".yaml", ".yml"):
        entries = _from_yaml(path)
    else:
        raise InputError(
            "the manifest must be a .csv or .yaml file, or a folder of case folders",
            source=str(path),
        )
    if not entries:
        raise InputError("the manifest lists no patient", source=str(path))
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        field = f"patient {number}"
        if not _SAFE_ID.match(entry.patient):
            raise InputError(
                f"patient identifier {entry.patient!r} must be 1-128 letters, digits, '.', '_' "
                "or '-' (it names the output files)", source=str(path), field=field,
            )  # fmt: skip
        if entry.patient in seen:
            raise InputError(
                f"patient {entry.patient!r} is listed twice", source=str(path), field=field
            )
        seen.add(entry.patient)
        if not entry.case.is_file():
            raise InputError(
                f"case file {str(entry.case)!r} does not exist",
                source=str(path),
                field=f"{field}.case",
            )
    return tuple(entries)


def _from_csv(path: Path) -> list[CohortEntry]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read the CSV manifest: {error}", source=str(path)) from None
    if rows and not {"patient", "case"} <= set(rows[0]):
        raise InputError("the CSV manifest needs the header columns patient,case", source=str(path))
    out = []
    for number, row in enumerate(rows, start=2):
        patient, case = (row.get("patient") or "").strip(), (row.get("case") or "").strip()
        if not patient or not case:
            raise InputError(
                "patient and case must both be given", source=str(path), field=f"line {number}"
            )
        out.append(CohortEntry(patient, _resolve(path.parent, case)))
    return out


def _from_yaml(path: Path) -> list[CohortEntry]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        raise InputError(f"cannot read the YAML manifest: {reason}", source=str(path)) from None
    items = data.get("patients") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(
            "the YAML manifest must be a list of {patient, case} (or have it under 'patients')",
            source=str(path),
        )
    out = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not item.get("patient") or not item.get("case"):
            raise InputError(
                "each item needs patient and case",
                source=str(path),
                field=f"patients[{number - 1}]",
            )
        out.append(CohortEntry(str(item["patient"]), _resolve(path.parent, str(item["case"]))))
    return out


def _from_folder(path: Path) -> list[CohortEntry]:
    out = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir()):
        cases = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
        if len(cases) > 1:
            names = ", ".join(c.name for c in cases)
            raise InputError(
                f"holds several case files ({names}); keep one per patient folder or use a manifest",
                source=str(folder),
            )
        if cases:
            out.append(CohortEntry(folder.name, cases[0].resolve()))
    return out


def _resolve(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def case_input_files(case: str | Path) -> tuple[Path, ...]:
    """The case file and every file its DICOM sources name (CT folders expanded), sorted.

    Files that do not exist are listed too (the run then fails with the reader's message).
    A case file that cannot be read lists only itself: its bytes are its key.
    """
    from reirrad.io.casefile import load_case

    case = Path(case).resolve()
    try:
        parsed = load_case(case)
    except InputError:
        return (case,)
    names: list[str] = []
    for course in parsed.courses:
        source = course.dicom
        if source is None:
            continue
        names += [*source.rtdose, source.rtstruct, *source.extra_rtstructs, source.rtplan or ""]
        for phase in source.phases:
            names += [*phase.rtdose, phase.rtplan or ""]
        cts = source.ct if isinstance(source.ct, list) else [source.ct or ""]
        names += cts
        if source.registration is not None and source.registration.file:
            names.append(source.registration.file)
    files = {case}
    for name in filter(None, names):
        path = _resolve(case.parent, name)
        files.update(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return tuple(sorted(files))


def hash_files(files: tuple[Path, ...], root: Path | None = None) -> str:
    """SHA-256 over the files' names (relative to ``root``) and contents; a missing file
    contributes its name and the word ``missing``."""
    digest = hashlib.sha256()
    for path in files:
        name = (
            str(path.relative_to(root))
            if root is not None and path.is_relative_to(root)
            else str(path)
        )
        digest.update(name.encode() + b"\0")
        try:
            with path.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()
