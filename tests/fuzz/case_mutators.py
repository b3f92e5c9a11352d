"""Case-file (YAML) mutations: hypothesis strategies over the case schema, plus YAML syntax.

The structure-level example (``examples/npc-reirradiation-2026.yaml``) is run through
``reirrad assess``; the phantom's DICOM case through ``reirrad accumulate``.  Values are
drawn with hypothesis strategies, seeded from the fuzz case's seed so that a case id always
builds the same input (:func:`draw`).

Expectations follow ``docs/case-format.md`` and the schema (``reirrad.core.case``): a wrong
type, a non-finite, negative or absurd (1e30) number, a zero count or dose per prescription,
a missing required field, dates out of order, a name that is not declared, a duplicated key
or an octal/sexagesimal-looking number (YAML 1.1 reads ``030`` as 24 and ``1:10`` as 70)
must be refused.  A zero in ``doses`` is documented as valid ("enter 0 for a course that did
not irradiate the structure"); free-text fields (label, note, ...) may take any scalar.
"""

from __future__ import annotations

import copy
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from . import inputs
from .model import EITHER, REFUSE, Built

Doc = dict[str, Any]
PathT = tuple[Any, ...]
#: (new document or YAML text, description, expect)
Mutated = tuple[Doc | str, str, str]

_hypothesis_lock = threading.Lock()


def draw(strategy: st.SearchStrategy, seed: int) -> Any:
    """One value of ``strategy``, the same for the same seed (hypothesis, no database)."""
    found: list[Any] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=6,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    with _hypothesis_lock:  # hypothesis is not thread-safe; the runner builds in threads
        collect()
    return found[-1]


# ---- paths in a document --------------------------------------------------------------------


def _leaves(node: Any, path: PathT = ()) -> list[tuple[PathT, Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, i))]
    return [(path, node)]


def _nodes(node: Any, path: PathT = ()) -> list[tuple[PathT, Any]]:
    out = [(path, node)] if path else []
    if isinstance(node, dict):
        out += [n for k, v in node.items() for n in _nodes(v, (*path, k))]
    elif isinstance(node, list):
        out += [n for i, v in enumerate(node) for n in _nodes(v, (*path, i))]
    return out


def _get(doc: Any, path: PathT) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: Any, path: PathT, value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _delete(doc: Any, path: PathT) -> None:
    del _get(doc, path[:-1])[path[-1]]


def show(path: PathT) -> str:
    """``('courses', 1, 'fractions')`` -> ``courses[1].fractions``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def numeric_paths(doc: Doc) -> list[PathT]:
    return [
        p
        for p, v in _leaves(doc)
        if isinstance(v, int | float) and not isinstance(v, bool) and p != ("reirrad_case",)
    ]


def _category(path: PathT) -> str:
    last = str(path[-1])
    if last == "fractions":
        return "count"
    if path[0] == "courses" and "doses" in path:
        return "course-dose"
    if last.startswith("age") or last in ("age_years",):
        return "age"
    return "positive"  # dose_gy, alpha_beta, volume_ml, thresholds


# ---- strategies -------------------------------------------------------------------------------

_LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).filter(
    lambda s: s not in ("nan", "inf", "infinity", "e", "y", "n", "yes", "no", "on", "off")
)
BAD_NUMBERS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e30, 1e300, 0, 0.0]),
    st.floats(max_value=-1e-6, min_value=-1e6, allow_nan=False),
    st.integers(min_value=10**20, max_value=10**40),
)
WRONG_TYPES = st.one_of(
    st.booleans(),
    _LETTERS,
    st.lists(st.integers(0, 100), max_size=3),
    st.dictionaries(_LETTERS, st.integers(0, 9), min_size=1, max_size=2),
)


def _number_expect(path: PathT, value: Any) -> str:
    category = _category(path)
    if isinstance(value, bool) or not math.isfinite(value) or value < 0 or abs(value) > 1e15:
        return REFUSE
    if value == 0:
        return EITHER if category in ("course-dose", "age") else REFUSE
    if category == "count" and float(value) != int(value):
        return REFUSE
    if category == "age" and value > 130:
        return REFUSE
    return EITHER


def _bad_number(doc: Doc, rng: random.Random) -> Mutated:
    path, value = draw(
        st.tuples(st.sampled_from(numeric_paths(doc)), BAD_NUMBERS), rng.getrandbits(32)
    )
    _set(doc, path, value)
    return doc, f"{show(path)} = {value!r}", _number_expect(path, value)


def _fractional_count(doc: Doc, rng: random.Random) -> Mutated:
    counts = [p for p in numeric_paths(doc) if _category(p) == "count"]
    path, value = draw(
        st.tuples(st.sampled_from(counts), st.floats(0.05, 60).filter(lambda v: v != int(v))),
        rng.getrandbits(32),
    )
    _set(doc, path, value)
    return doc, f"{show(path)} = {value!r} (not a whole number)", REFUSE


def _wrong_type_number(doc: Doc, rng: random.Random) -> Mutated:
    path, value = draw(
        st.tuples(st.sampled_from(numeric_paths(doc)), WRONG_TYPES), rng.getrandbits(32)
    )
    _set(doc, path, value)
    return doc, f"{show(path)} = {value!r} (a number expected)", REFUSE


def _numeric_string(doc: Doc, rng: random.Random) -> Mutated:
    path = draw(st.sampled_from(numeric_paths(doc)), rng.getrandbits(32))
    value = _get(doc, path)
    _set(doc, path, str(value))
    return doc, f"{show(path)} = {str(value)!r} (quoted number)", EITHER


_FREE_TEXT = {"label", "note", "technique", "systemic_therapy", "histology", "site", "name", "id"}
_UNION = {"method", "recovery", "ct", "rtdose"}  # str | list | dict in the schema


def _wrong_type_node(doc: Doc, rng: random.Random) -> Mutated:
    """Replace any node (str, number, list, mapping) by a value of another JSON kind."""
    candidates = [
        p
        for p, v in _nodes(doc)
        if p != ("reirrad_case",)
        and not (set(map(str, p)) & _UNION)
        and not isinstance(v, bool)
        and v is not None
    ]
    path = draw(st.sampled_from(candidates), rng.getrandbits(32))
    old = _get(doc, path)
    if isinstance(old, str):
        kinds = st.one_of(
            st.integers(1, 99),
            st.lists(_LETTERS, max_size=2),
            st.dictionaries(_LETTERS, _LETTERS, min_size=1, max_size=1),
        )
    elif isinstance(old, int | float):
        kinds = WRONG_TYPES
    elif isinstance(old, list):
        kinds = st.one_of(
            _LETTERS, st.integers(), st.dictionaries(_LETTERS, st.integers(), max_size=2)
        )
    else:
        kinds = st.one_of(_LETTERS, st.integers(), st.lists(st.integers(), max_size=2))
    value = draw(kinds, rng.getrandbits(32))
    _set(doc, path, value)
    free_text = (
        isinstance(old, str) and str(path[-1]) in _FREE_TEXT and str(path[-1]) not in ("id", "name")
    )
    expect = EITHER if free_text and isinstance(value, int) else REFUSE
    return doc, f"{show(path)}: {type(old).__name__} replaced by {value!r}", expect


def _required_paths(doc: Doc) -> list[PathT]:
    top = [("reirrad_case",), ("patient",), ("patient", "id"), ("structures",), ("courses",)]
    out = [p for p in top if _exists(doc, p)]
    for i, course in enumerate(doc.get("courses", [])):
        out += [("courses", i, k) for k in ("id", "start", "end", "fractions") if k in course]
        for j, _ in enumerate(course.get("prescriptions", [])):
            out += [
                ("courses", i, "prescriptions", j, k) for k in ("target", "dose_gy", "fractions")
            ]
    for i, _ in enumerate(doc.get("structures", [])):
        out += [("structures", i, "name"), ("structures", i, "role")]
    if "exploration" in doc:
        out.append(("exploration", "target"))
    return out


def _exists(doc: Any, path: PathT) -> bool:
    try:
        _get(doc, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _missing(doc: Doc, rng: random.Random) -> Mutated:
    path = draw(st.sampled_from(_required_paths(doc)), rng.getrandbits(32))
    _delete(doc, path)
    return doc, f"required field {show(path)} removed", REFUSE


def _dates(doc: Doc, rng: random.Random) -> Mutated:
    kind = draw(
        st.sampled_from(
            ["end-before-start", "overlap", "reversed", "invalid-day", "integer", "birth-after"]
        ),
        rng.getrandbits(32),
    )
    courses = doc["courses"]
    i = rng.randrange(len(courses))
    if kind == "end-before-start":
        courses[i]["start"], courses[i]["end"] = courses[i]["end"], courses[i]["start"]
        if courses[i]["start"] == courses[i]["end"]:
            courses[i]["start"] = "2030-01-01"
        return doc, f"courses[{i}]: end before start", REFUSE
    if kind == "overlap":
        courses[-1]["start"] = courses[0]["start"]
        return doc, f"courses[{len(courses) - 1}].start = courses[0].start (overlap)", REFUSE
    if kind == "reversed":
        doc["courses"] = courses[::-1]
        return doc, "courses listed newest first", REFUSE
    if kind == "invalid-day":
        courses[i]["end"] = "2023-02-30"
        return doc, f"courses[{i}].end = 2023-02-30 (no such day)", REFUSE
    if kind == "integer":
        courses[i]["start"] = 20230101
        return doc, f"courses[{i}].start = 20230101 (an integer, not a date)", REFUSE
    doc["patient"]["birth_date"] = "2099-01-01"
    return doc, "patient.birth_date 2099-01-01, after every course", REFUSE


def _unknown_name(doc: Doc, rng: random.Random) -> Mutated:
    options = ["dose-structure", "sets", "recovery", "method", "role", "metric", "metric-150"]
    if "exploration" in doc:
        options += ["exploration-target", "exploration-course"]
    kind = draw(st.sampled_from(options), rng.getrandbits(32))
    name = "Zz_" + draw(_LETTERS, rng.getrandbits(32))
    course = next((c for c in doc["courses"] if c.get("doses")), None)
    if kind in ("dose-structure", "metric", "metric-150") and course is None:
        kind = "sets"
    if kind == "dose-structure":
        key = rng.choice(sorted(course["doses"]))
        course["doses"][name] = course["doses"].pop(key)
        return doc, f"doses of course {course['id']}: {key!r} renamed {name!r} (undeclared)", REFUSE
    if kind in ("metric", "metric-150"):
        key = rng.choice(sorted(course["doses"]))
        metric = "D150%" if kind == "metric-150" else "D" + name
        course["doses"][key][metric] = 10.0
        return doc, f"doses of course {course['id']}, {key!r}: unknown statistic {metric!r}", REFUSE
    if kind == "sets":
        doc.setdefault("constraints", {})["sets"] = [name]
        return doc, f"constraints.sets = [{name!r}] (no such set)", REFUSE
    if kind == "recovery":
        doc["tissue_defaults"]["organ_at_risk"]["recovery"] = name
        return doc, f"tissue_defaults.organ_at_risk.recovery = {name!r} (no such model)", REFUSE
    if kind == "method":
        doc.setdefault("analysis", {})["method"] = name
        return doc, f"analysis.method = {name!r}", REFUSE
    if kind == "role":
        doc["structures"][0]["role"] = name
        return doc, f"structures[0].role = {name!r}", REFUSE
    if kind == "exploration-target":
        doc["exploration"]["target"] = name
        return doc, f"exploration.target = {name!r} (not declared)", REFUSE
    doc["exploration"]["new_course"] = name
    return doc, f"exploration.new_course = {name!r} (no such course)", REFUSE


def _duplicates(doc: Doc, rng: random.Random) -> Mutated:
    kind = draw(st.sampled_from(["course-id", "structure-name"]), rng.getrandbits(32))
    if kind == "course-id" and len(doc["courses"]) > 1:
        doc["courses"][1]["id"] = doc["courses"][0]["id"]
        return doc, "two courses with one id", REFUSE
    doc["structures"].append(copy.deepcopy(doc["structures"][-1]))
    return doc, f"structure {doc['structures'][-1]['name']!r} declared twice", REFUSE


# ---- YAML text mutations ----------------------------------------------------------------------

_MARK = "ZZ_FUZZ_PLACEHOLDER"


def _dump(doc: Doc) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _with_raw(doc: Doc, path: PathT, raw: str) -> str:
    """YAML text of ``doc`` with the value at ``path`` written as raw YAML ``raw``."""
    _set(doc, path, _MARK)
    return _dump(doc).replace(_MARK, raw, 1)


def _octal(doc: Doc, rng: random.Random) -> Mutated:
    path = draw(st.sampled_from(numeric_paths(doc)), rng.getrandbits(32))
    value = _get(doc, path)
    whole = max(1, round(float(value)))
    kind = draw(st.sampled_from(["octal", "octal-8", "sexagesimal"]), rng.getrandbits(32))
    if kind == "octal":
        raw = "0" + format(whole, "d").replace("8", "7").replace("9", "7")
    elif kind == "octal-8":
        raw = "08" if whole < 10 else "0" + str(whole)
    else:
        raw = f"{whole // 60 + 1}:{whole % 60:02d}"
    return (
        _with_raw(doc, path, raw),
        f"{show(path)}: {raw} (YAML 1.1 reads {yaml.safe_load(raw)!r})",
        REFUSE,
    )


def _duplicate_key(doc: Doc, rng: random.Random) -> Mutated:
    paths = [
        p for p, v in _leaves(doc) if isinstance(p[-1], str) and isinstance(v, int | float | str)
    ]
    path = draw(st.sampled_from(paths), rng.getrandbits(32))
    old = _get(doc, path)
    text = _with_raw(doc, path, _MARK + "1")
    other = repr(old + 1) if isinstance(old, int | float) and not isinstance(old, bool) else "other"
    lines = []
    for line in text.splitlines():
        if _MARK + "1" in line:
            indent = len(line) - len(line.lstrip(" -"))
            key = str(path[-1])
            lines.append(
                line.replace(_MARK + "1", yaml.safe_dump(old).strip().removesuffix("...").strip())
            )
            lines.append(" " * indent + f"{key}: {other}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n", f"key {show(path)} given twice ({old!r}, then {other})", REFUSE


def _deep_nesting(doc: Doc, rng: random.Random) -> Mutated:
    depth = draw(st.sampled_from([1000, 10_000, 100_000]), rng.getrandbits(32))
    path = ("patient", "id")
    return (
        _with_raw(doc, path, "[" * depth + "]" * depth),
        f"{show(path)}: lists nested {depth} deep",
        REFUSE,
    )


def _alias_bomb(doc: Doc, rng: random.Random) -> Mutated:
    levels = 9
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    doc["structures"][0]["note"] = _MARK
    text = _dump(doc).replace(f"'{_MARK}'", f"*a{levels - 1}").replace(_MARK, f"*a{levels - 1}")
    return (
        "\n".join(lines) + "\n" + text,
        f"YAML alias bomb (10^{levels} items) as structures[0].note",
        REFUSE,
    )


def _not_a_mapping(doc: Doc, rng: random.Random) -> Mutated:
    kind = draw(
        st.sampled_from(
            ["list", "scalar", "empty", "comments", "two-documents", "tabs", "latin1", "null"]
        ),
        rng.getrandbits(32),
    )
    text = _dump(doc)
    variants = {
        "list": "- " + text.replace("\n", "\n  "),
        "scalar": "just a string\n",
        "empty": "",
        "comments": "# nothing here\n",
        "two-documents": text + "---\n" + text,
        "tabs": text.replace("  ", "\t", 3),
        "latin1": "# caf\xe9\n" + text,
        "null": "~\n",
    }
    out = variants[kind]
    if kind == "latin1":
        return out.encode("latin-1").decode("latin-1"), "case file in Latin-1 (not UTF-8)", REFUSE
    return out, f"case file: {kind}", REFUSE


def _harmless(doc: Doc, rng: random.Random) -> Mutated:
    kind = draw(
        st.sampled_from(["flow-style", "reordered", "crlf", "bom", "comments", "float-counts"]),
        rng.getrandbits(32),
    )
    if kind == "flow-style":
        return yaml.safe_dump(doc, default_flow_style=True, width=10_000), "flow style YAML", EITHER
    if kind == "reordered":
        return dict(reversed(list(doc.items()))), "top-level keys in reverse order", EITHER
    if kind == "crlf":
        return _dump(doc).replace("\n", "\r\n"), "CRLF line endings", EITHER
    if kind == "bom":
        return "\ufeff" + _dump(doc), "UTF-8 byte order mark", EITHER
    if kind == "comments":
        return (
            "\n".join(
                f"{line}  # c"
                if line.strip() and ":" in line and "|" not in line and ">" not in line
                else line
                for line in _dump(doc).splitlines()
            )
            + "\n",
            "comments after every key",
            EITHER,
        )
    for course in doc["courses"]:
        course["fractions"] = float(course["fractions"])
    return doc, "course fractions written as 30.0", EITHER


# ---- DICOM-linked (phantom) ---------------------------------------------------------------------


def _same_rtdose(doc: Doc, rng: random.Random) -> Mutated:
    kind = draw(st.sampled_from(["other-course", "listed-twice", "phases"]), rng.getrandbits(32))
    first, second = doc["courses"][0]["dicom"], doc["courses"][1]["dicom"]
    if kind == "other-course":
        second["rtdose"] = first["rtdose"]
        return doc, "course C2 uses course C1's RTDOSE", REFUSE
    if kind == "listed-twice":
        second["rtdose"] = [second["rtdose"], second["rtdose"]]
        return doc, "course C2 lists its RTDOSE twice (summed twice)", REFUSE
    dose = second.pop("rtdose")
    plan = second.pop("rtplan")
    second["phases"] = [{"rtdose": dose, "rtplan": plan}, {"rtdose": dose, "rtplan": plan}]
    return doc, "course C2: two phases with the same RTDOSE", REFUSE


def _dicom_links(doc: Doc, rng: random.Random) -> Mutated:
    kind = draw(
        st.sampled_from(
            [
                "rtplan-other",
                "rtstruct-other",
                "missing-rtdose",
                "structure-map-unknown",
                "reference-unknown",
            ]
        ),
        rng.getrandbits(32),
    )
    first, second = doc["courses"][0]["dicom"], doc["courses"][1]["dicom"]
    if kind == "rtplan-other":
        first["rtplan"] = second["rtplan"]
        return doc, "course C1 given course C2's RTPLAN (5 fractions, not 30)", REFUSE
    if kind == "rtstruct-other":
        first["rtstruct"] = second["rtstruct"]
        # accumulate reads the reference course's RTSTRUCT only: C1's is not used there
        return doc, "course C1 given course C2's RTSTRUCT (another frame of reference)", EITHER
    if kind == "missing-rtdose":
        second["rtdose"] = "course2/NOPE.dcm"
        return doc, "course C2 rtdose: no such file", REFUSE
    if kind == "structure-map-unknown":
        second["structure_map"] = {"SpinalCanal": "NoSuchROI"}
        return doc, "structure_map SpinalCanal -> 'NoSuchROI' (not in the RTSTRUCT)", REFUSE
    doc.setdefault("analysis", {})["reference_course"] = "C9"
    return doc, "analysis.reference_course = 'C9' (no such course)", REFUSE


def _special_case_file(kind: str) -> Callable[[Path], str]:
    def apply(path: Path) -> str:
        import os

        path.unlink()
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-zero":
            path.symlink_to("/dev/zero")
        elif kind == "directory":
            path.mkdir()
        return f"case.yaml replaced by {kind}"

    return apply


@dataclass(frozen=True)
class CaseMutation:
    """A mutation of the case file of input set ``base`` (``npc`` or ``phantom``)."""

    mutation_class: str
    name: str
    bases: tuple[str, ...]
    apply: Callable[[Doc, random.Random], Mutated] | None = None
    special: Callable[[Path], str] | None = None


CASE_MUTATIONS: list[CaseMutation] = [
    CaseMutation("case-bad-number", "bad-number", ("npc", "phantom"), _bad_number),
    CaseMutation("case-bad-number", "fractional-count", ("npc", "phantom"), _fractional_count),
    CaseMutation("case-wrong-type", "wrong-type-number", ("npc", "phantom"), _wrong_type_number),
    CaseMutation("case-wrong-type", "wrong-type-node", ("npc", "phantom"), _wrong_type_node),
    CaseMutation("case-harmless", "numeric-string", ("npc",), _numeric_string),
    CaseMutation("case-harmless", "formatting", ("npc", "phantom"), _harmless),
    CaseMutation("case-missing-field", "missing-required", ("npc", "phantom"), _missing),
    CaseMutation("case-dates", "dates", ("npc", "phantom"), _dates),
    CaseMutation("case-unknown-name", "unknown-name", ("npc", "phantom"), _unknown_name),
    CaseMutation("case-unknown-name", "duplicate-declaration", ("npc", "phantom"), _duplicates),
    CaseMutation("case-yaml", "octal-looking", ("npc",), _octal),
    CaseMutation("case-yaml", "duplicate-key", ("npc", "phantom"), _duplicate_key),
    CaseMutation("case-yaml", "deep-nesting", ("npc",), _deep_nesting),
    CaseMutation("case-yaml", "alias-bomb", ("npc",), _alias_bomb),
    CaseMutation("case-yaml", "not-a-mapping", ("npc",), _not_a_mapping),
    CaseMutation("case-dicom-link", "same-rtdose-twice", ("phantom",), _same_rtdose),
    CaseMutation("case-dicom-link", "dicom-links", ("phantom",), _dicom_links),
    *(
        CaseMutation("file-special", f"case-file-{k}", ("npc",), special=_special_case_file(k))
        for k in ("fifo", "dev-zero", "directory")
    ),
]

_COMMANDS = {"npc": ("assess", "case.yaml"), "phantom": ("accumulate", "case.yaml")}


def build(mutation: CaseMutation, base: str, rng: random.Random, work: Path) -> Built:
    """Copy input set ``base`` into ``work``, mutate its ``case.yaml``, return what to run."""
    inputs.prepare(base, work)
    path = work / "case.yaml"
    if mutation.special is not None:
        detail = mutation.special(path)
        return Built(mutation.mutation_class, f"{base}: {detail}", REFUSE, _COMMANDS[base])
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    result, detail, expect = mutation.apply(doc, rng)
    text = result if isinstance(result, str) else _dump(result)
    if "Latin-1" in detail:
        path.write_bytes(text.encode("latin-1"))
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return Built(mutation.mutation_class, f"{base} case.yaml: {detail}", expect, _COMMANDS[base])
