"""Cohort manifests: which case file belongs to which patient, and each case's input files.

A manifest is one of

* a CSV file with a header row and the columns ``patient`` and ``case`` (the case file,
  relative to the manifest's folder or absolute);
* a YAML file: a list of ``{patient: ..., case: ...}`` mappings, or a mapping with that list
  under ``patients``;
* a folder of case folders: every sub-folder holding exactly one ``*.yaml`` case file is a
  patient named after the sub-folder;
* a registry query (reirrad's clinic registry, :mod:`reirrad.web`): a YAML file with a
  ``registry:`` mapping (keys of :class:`RegistryQuery`), or the CLI's ``--registry
  "site=nasopharynx,department=..."``. This layer only parses the query
  (:func:`parse_registry_query`, :func:`manifest_registry_query`); the registry's adapter
  (``reirrad.web.registry.cohort``) selects the patients and exports their case folders.

:func:`case_input_files` lists the files a case reads (the case file and every DICOM file
it names), the basis of the resume key.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, fields
from pathlib import Path

from reirrad.errors import InputError

__all__ = [
    "CohortEntry",
    "RegistryQuery",
    "case_input_files",
    "check_entries",
    "check_identifier",
    "hash_files",
    "manifest_registry_query",
    "parse_registry_query",
    "read_manifest",
]

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
    if _is_registry_manifest(path):
        raise InputError(
            "this manifest is a registry query: run it with `reirrad cohort run MANIFEST "
            "--data REGISTRY_DATA_FOLDER`", source=str(path), field="registry",
        )  # fmt: skip
    return check_entries(entries, source=str(path))


def check_identifier(patient: str, source: str, field: str) -> None:
    """Refuse a patient identifier that cannot name output files."""
    if not _SAFE_ID.match(patient):
        raise InputError(
            f"patient identifier {patient!r} must be 1-128 letters, digits, '.', '_' "
            "or '-' (it names the output files)", source=source, field=field,
        )  # fmt: skip


def check_entries(entries: list[CohortEntry], source: str) -> tuple[CohortEntry, ...]:
    """Refuse an empty cohort, unsafe or repeated identifiers and missing case files."""
    if not entries:
        raise InputError("the manifest lists no patient", source=source)
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        field = f"patient {number}"
        check_identifier(entry.patient, source, field)
        if entry.patient in seen:
            raise InputError(
                f"patient {entry.patient!r} is listed twice", source=source, field=field
            )
        seen.add(entry.patient)
        if not entry.case.is_file():
            raise InputError(
                f"case file {str(entry.case)!r} does not exist",
                source=source,
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
    if isinstance(data, dict) and "registry" in data:
        return []  # a registry query: read_manifest says how to run it
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


@dataclass(frozen=True)
class RegistryQuery:
    """Which registry patients form a cohort; every given criterion must hold.

    ``department``: the owning department's name (exact); ``site``: the diagnosis site of
    the case file (case-insensitive); ``start_from`` / ``start_to``: some course of the
    patient started in this closed date range; ``follow_up``: ``True`` only patients with a
    follow-up record (a response or toxicity observation), ``False`` only those without,
    ``None`` either.
    """

    department: str | None = None
    site: str | None = None
    start_from: dt.date | None = None
    start_to: dt.date | None = None
    follow_up: bool | None = None


_QUERY_KEYS = tuple(f.name for f in fields(RegistryQuery))


def _query_value(key: str, value: object, source: str) -> object:
    field = f"registry.{key}"
    if value is None:
        return None
    if key in ("start_from", "start_to"):
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise InputError(
                f"{value!r} is not a date; write YYYY-MM-DD", source=source, field=field
            ) from None
    if key == "follow_up":
        text = str(value).strip().lower()
        if text in ("true", "yes", "with", "1"):
            return True
        if text in ("false", "no", "without", "0"):
            return False
        raise InputError(
            f"{value!r}: write follow_up=yes (only patients with follow-up) or no",
            source=source, field=field,
        )  # fmt: skip
    text = str(value).strip()
    if not text:
        raise InputError("empty value; give one or leave the key out", source=source, field=field)
    return text


def registry_query(mapping: object, source: str) -> RegistryQuery:
    """A :class:`RegistryQuery` from a mapping (a manifest's ``registry:`` section)."""
    if not isinstance(mapping, dict):
        raise InputError(
            f"must be a mapping with some of the keys {', '.join(_QUERY_KEYS)}",
            source=source, field="registry",
        )  # fmt: skip
    unknown = sorted(str(k) for k in mapping if k not in _QUERY_KEYS)
    if unknown:
        raise InputError(
            f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_QUERY_KEYS)}",
            source=source, field="registry",
        )  # fmt: skip
    values = {k: _query_value(k, v, source) for k, v in mapping.items()}
    query = RegistryQuery(**values)
    if query.start_from and query.start_to and query.start_from > query.start_to:
        raise InputError("start_from is after start_to", source=source, field="registry")
    return query


def parse_registry_query(text: str, source: str = "--registry") -> RegistryQuery:
    """``"site=nasopharynx,department=Radiotherapy A,follow_up=yes"`` as a query."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(
                f"{item!r} is not KEY=VALUE (keys: {', '.join(_QUERY_KEYS)})", source=source
            )
        mapping[key.strip()] = value
    return registry_query(mapping, source)


def _is_registry_manifest(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml") and manifest_registry_query(path) is not None


def manifest_registry_query(path: str | Path) -> RegistryQuery | None:
    """The ``registry:`` section of a YAML manifest as a query; ``None`` for other manifests."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml"):
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # read_manifest reports it
    if not isinstance(data, dict) or "registry" not in data:
        return None
    return registry_query(data["registry"], str(path))


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
