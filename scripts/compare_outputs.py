"""Output-diff guard for refactors: capture reirrad's CLI outputs, then compare two captures.

Usage: before a refactor, ``python scripts/compare_outputs.py capture --src OLD/src --out
before/`` runs the reirrad CLI of the source tree ``OLD/src`` (``PYTHONPATH=OLD/src``, cwd =
``OLD``) on the two example case files (assess as JSON, CSV, Markdown) and on freshly written
2- and 3-course DICOM phantoms (assess, accumulate, explore as JSON; the HTML report reduced
to its visible text), and stores the normalised outputs, exit codes and stderr in ``before/``.
After the refactor capture again from the new tree into ``after/`` and run
``python scripts/compare_outputs.py compare before/ after/ [--rtol 1e-6] [--strict]``: JSON
documents are walked structurally (dict keys; lists of records matched by identifying fields
such as ``id``/``structure``/``course``, shown in the path as ``[structure=...]``), every
number that differs beyond ``rtol`` is listed with its path, before, after and relative
change ((after - before)/|before|, inf when before is 0), added/removed keys and changed
strings are listed, and text files get a truncated unified diff.
The last line is ``files=N identical=N changed=N numbers_changed=N max_rel_change=X``. Exit
status is 0 (it is a report) unless ``--strict`` is given and anything differs (then 1);
2 when a directory is not a capture.
Normalisation replaces volatile content so that two captures of the same code compare equal:
temporary and checkout paths (``<WORK>``, ``<REPO>``, ``<PYTHON>``), date-times
(``<TIMESTAMP>``), DICOM UIDs (``<UID>``; the phantom draws fresh UIDs each run), SHA-256
digests (``<sha256>``; phantom files contain those UIDs) and embedded data URIs. Files whose
name starts with ``_`` (``_capture.json``: timings, source commit) are not compared.
"""

from __future__ import annotations

import argparse
import difflib
import html.parser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENTRY = "import sys; from reirrad.cli import run; sys.argv[0]='reirrad'; run()"
EXAMPLE = "examples/npc-reirradiation-2026.yaml"
EXAMPLE_T2 = "examples/npc-reirradiation-2026-table2.yaml"

# (output file name, argv after `reirrad`, kind of stdout: json | text | none).
# `{W}` is the temporary work directory holding the phantoms.
EXAMPLE_STEPS: list[tuple[str, list[str], str]] = [
    ("example-assess.json", ["assess", EXAMPLE, "--format", "json"], "json"),
    ("example-table2-assess.json", ["assess", EXAMPLE_T2, "--format", "json"], "json"),
    ("example-assess.csv", ["assess", EXAMPLE, "--format", "csv"], "text"),
    ("example-assess.md", ["assess", EXAMPLE, "--format", "markdown"], "text"),
]


def phantom_steps(courses: int) -> list[tuple[str, list[str], str]]:
    """Commands run on a phantom of ``courses`` courses (written first)."""
    d = f"{{W}}/phantom{courses}"
    case = f"{d}/case.yaml"
    p = f"phantom{courses}"
    return [
        (f"{p}-write", ["phantom", d, "--courses", str(courses)], "none"),
        (f"{p}-assess.json", ["assess", case, "--format", "json"], "json"),
        (f"{p}-accumulate.json", ["accumulate", case, "--format", "json"], "json"),
        (f"{p}-explore.json", ["explore", case, "--format", "json"], "json"),
        (f"{p}-report", ["report", case, "--out", f"{d}/report.html"], "none"),
    ]


# --------------------------------------------------------------------------- normalisation


class Normaliser:
    """Replace volatile substrings (paths, date-times, UIDs, digests) by placeholders."""

    _TIMESTAMP = re.compile(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}|\s?UTC)?"
    )
    _SHA256 = re.compile(r"\b[0-9a-fA-F]{64}\b")
    # DICOM UIDs: dotted digit groups from root 0/1/2; at least 5 groups so that version
    # numbers such as 0.1.0 are left alone.
    _UID = re.compile(r"\b[012](?:\.\d+){4,}\b")
    _DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")

    def __init__(self, work: Path, repo: Path) -> None:
        pairs: list[tuple[str, str]] = []
        for path, tag in ((work, "<WORK>"), (repo, "<REPO>")):
            for p in {str(path), str(path.resolve())}:
                pairs.append((p, tag))
        for prefix in {sys.prefix, sys.base_prefix, os.path.realpath(sys.prefix)}:
            pairs.append((prefix, "<PYTHON>"))
        pairs.append((tempfile.gettempdir(), "<TMP>"))
        # Longest first so that a path inside another one is replaced whole.
        self._paths = sorted(pairs, key=lambda p: -len(p[0]))

    def text(self, s: str) -> str:
        """Normalised copy of ``s``."""
        for path, tag in self._paths:
            s = s.replace(path, tag)
        s = self._DATA_URI.sub("<data-uri>", s)
        s = self._TIMESTAMP.sub("<TIMESTAMP>", s)
        s = self._SHA256.sub("<sha256>", s)
        return self._UID.sub("<UID>", s)

    def json(self, x: Any) -> Any:
        """Normalised copy of a parsed JSON value (strings and keys)."""
        if isinstance(x, str):
            return self.text(x)
        if isinstance(x, list):
            return [self.json(v) for v in x]
        if isinstance(x, dict):
            return {self.text(k): self.json(v) for k, v in x.items()}
        return x


class _TextExtractor(html.parser.HTMLParser):
    """Visible text of an HTML page, one block per line, table cells joined by ' | '."""

    _SKIP = {"script", "style", "svg", "head"}
    _BLOCK = {
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "br", "table", "section",
        "figure", "figcaption", "ul", "ol", "thead", "tbody", "header", "footer", "dt", "dd",
        "pre", "caption", "title", "article", "nav", "aside", "details", "summary", "hr",
    }  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._cur: list[str] = []
        self._skip = 0
        self._row = 0

    def _flush(self) -> None:
        line = " ".join("".join(self._cur).split())
        if line and line != "|":
            self.lines.append(line.strip(" |"))
        self._cur = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "tr":
            self._flush()
            self._row += 1
        elif tag in ("td", "th") and self._cur:
            self._cur.append(" | ")
        elif tag in self._BLOCK:
            # Inside a table row a block (<br>, <div>) is a space, so a row stays one line.
            if self._row:
                self._cur.append(" ")
            else:
                self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "tr":
            self._row = max(0, self._row - 1)
            self._flush()
        elif tag in self._BLOCK and not self._row:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._cur.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_text(page: str) -> str:
    """Visible text of ``page`` (no images, scripts, styles), one line per block."""
    parser = _TextExtractor()
    parser.feed(page)
    parser.close()
    return "\n".join(parser.lines) + "\n"


# --------------------------------------------------------------------------- capture


def _run_step(
    argv: list[str], src: Path, cwd: Path, norm: Normaliser
) -> tuple[dict[str, Any], str, float]:
    """Run ``reirrad ARGV`` from ``src``; return its record, raw stdout and seconds."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(src),
        PYTHONHASHSEED="0",  # set/dict-of-hash ordering must not vary between captures
        COLUMNS="160",  # rich tables wrap at the terminal width
        TERM="dumb",
        NO_COLOR="1",
        MPLBACKEND="Agg",
        TZ="UTC",
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - t0
    record = {
        "argv": [norm.text(a) for a in ["reirrad", *argv]],
        "exit_code": proc.returncode,
        "stderr": norm.text(proc.stderr).splitlines(),
    }
    return record, proc.stdout, seconds


def _store(name: str, kind: str, stdout: str, record: dict, out: Path, norm: Normaliser) -> None:
    """Write the normalised stdout of one step (or keep it in the step's record)."""
    if kind == "json":
        try:
            doc = json.loads(stdout)
        except json.JSONDecodeError:
            record["stdout_not_json"] = True
            (out / (name + ".txt")).write_text(norm.text(stdout))
            return
        text = json.dumps(norm.json(doc), indent=1, ensure_ascii=False)
        (out / name).write_text(text + "\n")
    elif kind == "text":
        (out / name).write_text(norm.text(stdout))
    else:
        record["stdout"] = norm.text(stdout).splitlines()


def capture(src: Path, out: Path) -> int:
    """Run every step from source tree ``src`` and write normalised outputs into ``out``."""
    src = src.resolve()
    repo = src.parent
    if not (src / "reirrad" / "cli" / "__init__.py").is_file():
        print(f"compare_outputs: {src} has no reirrad/cli package", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="reirrad-guard-"))
    norm = Normaliser(work, repo)
    steps = EXAMPLE_STEPS + phantom_steps(2) + phantom_steps(3)
    commands: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    try:
        for name, argv, kind in steps:
            argv = [a.replace("{W}", str(work)) for a in argv]
            record, stdout, seconds = _run_step(argv, src, repo, norm)
            _store(name, kind, stdout, record, out, norm)
            if argv[0] == "report":
                page = Path(argv[argv.index("--out") + 1])
                record["html_written"] = page.is_file()
                if page.is_file():
                    text = html_text(page.read_text(encoding="utf-8"))
                    (out / f"{name}.txt").write_text(norm.text(text))
            commands[name] = record
            timings[name] = round(seconds, 2)
            print(f"{name}: exit {record['exit_code']} in {seconds:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out / "commands.json").write_text(json.dumps(commands, indent=1) + "\n")
    total = time.perf_counter() - t_all
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    meta = {"src": str(src), "commit": commit, "seconds": timings, "total_seconds": total}
    (out / "_capture.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"captured {len(steps)} commands from {src} ({commit[:12]}) in {total:.1f} s -> {out}")
    return 0


# --------------------------------------------------------------------------- compare

ID_KEYS = (
    "id", "structure", "roi", "course", "metric", "statistic", "name", "target", "fractions",
    "label", "constraint", "item", "quantity", "endpoint", "key",
)  # fmt: skip


@dataclass
class Report:
    """Differences found in one file."""

    lines: list[str] = field(default_factory=list)
    numbers: int = 0
    others: int = 0
    max_rel: float = 0.0

    def add(self, line: str, number_rel: float | None = None) -> None:
        self.lines.append(line)
        if number_rel is None:
            self.others += 1
        else:
            self.numbers += 1
            self.max_rel = max(self.max_rel, abs(number_rel))


def _short(x: Any, n: int = 100) -> str:
    s = json.dumps(x, ensure_ascii=False)
    return s if len(s) <= n else s[: n - 3] + "..."


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


_MISSING = object()  # marks a key or list item present on one side only


def _identity(items: list[dict]) -> list[str] | None:
    """Fields that identify each record of ``items`` uniquely, or None (match by index)."""
    keys: list[str] = []
    distinct = 1
    for k in ID_KEYS:
        if not all(isinstance(d.get(k), str | int | float | bool) for d in items):
            continue
        n = len({tuple(d[j] for j in [*keys, k]) for d in items})
        if n > distinct:
            keys, distinct = [*keys, k], n
        if distinct == len(items):
            return keys
    return None


def _label(d: dict, keys: list[str]) -> str:
    return "[" + ",".join(f"{k}={d[k]}" for k in keys) + "]"


def _match_records(a: list[dict], b: list[dict]) -> Iterator[tuple[str, Any, Any]]:
    """Pair items of two lists of records by identity fields; yield (label, a, b)."""
    keys = _identity(a or b)

    def index(items: list[dict]) -> dict[tuple, dict] | None:
        if keys is None or not all(all(k in d for k in keys) for d in items):
            return None
        by_key = {tuple(d[k] for k in keys): d for d in items}
        return by_key if len(by_key) == len(items) else None

    ia, ib = index(a), index(b)
    if ia is not None and ib is not None and keys is not None:
        for key in [*ia, *(k for k in ib if k not in ia)]:
            d = ia.get(key, ib.get(key))
            yield _label(d, keys), ia.get(key, _MISSING), ib.get(key, _MISSING)
        return
    for i in range(max(len(a), len(b))):
        yield f"[{i}]", a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING


def _num_close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def walk(a: Any, b: Any, path: str, rep: Report, rtol: float, atol: float) -> None:
    """Record in ``rep`` every difference between JSON values ``a`` and ``b``."""
    if a is _MISSING:
        rep.add(f"  + {path}: added {_short(b)}")
    elif b is _MISSING:
        rep.add(f"  - {path}: removed {_short(a)}")
    elif _is_num(a) and _is_num(b):
        if not _num_close(float(a), float(b), rtol, atol):
            rel = (b - a) / abs(a) if a else math.inf
            rep.add(f"  {path}: {a!r} -> {b!r} (rel {rel:+.3e})", rel)
    elif isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            walk(a.get(k, _MISSING), b.get(k, _MISSING), f"{path}.{k}", rep, rtol, atol)
    elif isinstance(a, list) and isinstance(b, list):
        if all(isinstance(x, dict) for x in a + b):
            for label, x, y in _match_records(a, b):
                walk(x, y, path + label, rep, rtol, atol)
        elif all(isinstance(x, str) for x in a + b) and len(a) != len(b):
            # Lists of messages: show which lines were added/removed, not a shifted index.
            for line in difflib.ndiff(a, b):
                if line[0] in "+-":
                    rep.add(f"  {line[0]} {path}[]: {_short(line[2:], 160)}")
        else:
            for i in range(max(len(a), len(b))):
                x = a[i] if i < len(a) else _MISSING
                y = b[i] if i < len(b) else _MISSING
                walk(x, y, f"{path}[{i}]", rep, rtol, atol)
    elif type(a) is not type(b) and not (_is_num(a) and _is_num(b)):
        rep.add(
            f"  {path}: type {type(a).__name__} -> {type(b).__name__}: {_short(a)} -> {_short(b)}"
        )
    elif a != b:
        rep.add(f"  {path}: {_short(a, 160)} -> {_short(b, 160)}")


def compare_file(a: Path, b: Path, rtol: float, atol: float, max_lines: int) -> Report:
    """Differences between two captured files (JSON structurally, others line by line)."""
    rep = Report()
    if a.suffix == ".json":
        try:
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
        except json.JSONDecodeError as exc:
            rep.add(f"  not valid JSON ({exc}); compared as text")
        else:
            walk(ja, jb, "$", rep, rtol, atol)
            return rep
    ta, tb = a.read_text().splitlines(), b.read_text().splitlines()
    diff = list(difflib.unified_diff(ta, tb, "before", "after", n=1, lineterm=""))
    if diff:
        changed = sum(1 for d in diff[2:] if d[:1] in "+-")
        shown = diff[:max_lines]
        rep.lines.extend("  " + d for d in shown)
        if len(diff) > len(shown):
            rep.lines.append(f"  ... diff truncated ({len(diff) - len(shown)} more lines)")
        rep.others += changed
    return rep


def compare(
    before: Path, after: Path, rtol: float, atol: float, strict: bool, max_lines: int
) -> int:
    """Print every difference between two capture directories and the summary line."""
    for d in (before, after):
        if not (d / "commands.json").is_file():
            print(f"compare_outputs: {d} is not a capture (no commands.json)", file=sys.stderr)
            return 2
    names_a = {p.name for p in before.iterdir() if p.is_file() and not p.name.startswith("_")}
    names_b = {p.name for p in after.iterdir() if p.is_file() and not p.name.startswith("_")}
    identical = changed = numbers = 0
    max_rel = 0.0
    for name in sorted(names_a | names_b):
        if name not in names_b or name not in names_a:
            print(f"== {name}: only in {'BEFORE' if name in names_a else 'AFTER'}")
            changed += 1
            continue
        rep = compare_file(before / name, after / name, rtol, atol, max_lines)
        if not rep.lines:
            identical += 1
            continue
        changed += 1
        numbers += rep.numbers
        max_rel = max(max_rel, rep.max_rel)
        print(f"== {name}: {rep.numbers} numbers changed, {rep.others} other differences")
        print("\n".join(rep.lines))
    files = len(names_a | names_b)
    print(
        f"files={files} identical={identical} changed={changed} "
        f"numbers_changed={numbers} max_rel_change={max_rel:.6g}"
    )
    return 1 if strict and changed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture", help="run the CLI of a source tree and store its outputs")
    c.add_argument("--src", type=Path, required=True, help="the tree's src/ directory")
    c.add_argument("--out", type=Path, required=True, help="directory for the outputs")
    d = sub.add_parser("compare", help="report differences between two captures")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    d.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance for numbers")
    d.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for numbers")
    d.add_argument("--strict", action="store_true", help="exit 1 when anything differs")
    d.add_argument("--max-lines", type=int, default=200, help="text diff lines shown per file")
    args = ap.parse_args(argv)
    if args.cmd == "capture":
        return capture(args.src, args.out)
    return compare(args.before, args.after, args.rtol, args.atol, args.strict, args.max_lines)


if __name__ == "__main__":
    sys.exit(main())
