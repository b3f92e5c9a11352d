"""Reading YAML case files into the validated :class:`reirrad.core.case.Case`.

Every problem becomes an :class:`~reirrad.errors.InputError` naming the file, the field
path (``courses[1].fractions``) and what is wrong.

The YAML is read by :class:`StrictLoader`, not by PyYAML's ``safe_load``: PyYAML follows
YAML 1.1, which reads ``yes``/``no``/``on``/``off`` as booleans, ``033`` as octal 27 and
``1:30`` as the sexagesimal number 90, and silently keeps the last of two equal keys. A dose
or a fraction count must never be guessed from such spellings, so the strict loader

* resolves plain scalars with the YAML 1.2 core schema (``true``/``false`` are the only
  booleans; ``~``/``null``/empty is null; decimal, ``0x`` and ``0o`` integers; decimal
  floats incl. ``1e30``, ``.inf``, ``.nan``) plus ISO dates (``2024-02-13``); a number with
  a leading zero (``033``), a sexagesimal ``1:30`` or ``yes``/``on`` stays text, so the
  schema refuses it where a number or a boolean is expected;
* refuses duplicate keys, naming the key and both lines;
* refuses nesting deeper than :data:`MAX_DEPTH` and documents that expand (through
  anchors and aliases) to more than :data:`MAX_NODES` nodes;
* reads only regular files of at most :data:`MAX_FILE_BYTES` (not FIFOs, devices or
  directories).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from reirrad.core.case import Case
from reirrad.errors import InputError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "StrictLoader",
    "format_location",
    "load_case",
    "load_yaml_file",
    "parse_case",
    "parse_yaml",
]

#: Largest YAML file read (bytes). The bundled examples are under 10 kB; a case file of a
#: megabyte is not a hand-written case (and reading /dev/zero must stop somewhere).
MAX_FILE_BYTES = 1 << 20
#: Deepest nesting of mappings/sequences. A case file nests about 6 levels; PyYAML's
#: recursive composer would otherwise hit Python's recursion limit near 1000.
MAX_DEPTH = 50
#: Most nodes a document may expand to (aliases counted with their full size), so that a
#: few nested aliases ("billion laughs") cannot make validation run for hours.
MAX_NODES = 200_000

_FRIENDLY = {
    "extra_forbidden": "unknown field (misspelt? see docs/case-format.md for the field names)",
    "missing": "required field is missing",
}

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#103-core-schema), except that a
# decimal integer may not have a leading zero: YAML 1.1 reads 033 as 27 and YAML 1.2 as 33,
# so it is left as text and refused where a number is expected.
_CORE_RESOLVERS: list[tuple[str, re.Pattern[str], str]] = [
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), "~nN"),
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (
        "tag:yaml.org,2002:int",
        re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        "-+0123456789",
    ),
    (
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.[0-9]+(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        "-+0123456789.",
    ),
    # ISO 8601 dates and date-times (YAML 1.1 timestamp); pydantic checks them as dates.
    (
        "tag:yaml.org,2002:timestamp",
        re.compile(
            r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}"
            r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}"
            r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$"
        ),
        "0123456789",
    ),
]


class StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses ambiguous input (see the module docstring)."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            anchored = self.anchors.get(self.peek_event().anchor)
            if anchored is not None:
                self._count(self._sizes.get(id(anchored), 1), anchored.start_mark)
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", mark
            )
        before = self._nodes
        self._count(1, mark)
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = self._nodes - before
        self._depth -= 1
        return node

    def _count(self, size: int, mark: Any) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"the document expands to more than {MAX_NODES} values", mark
            )

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a key must be a plain value", key_node.start_mark
                    ) from None
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first at line {first.line + 1}); "
                        "remove one of them",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


for _tag, _regexp, _first in _CORE_RESOLVERS:
    # the null resolver also matches the empty scalar, whose "first character" is ""
    _starts = [*_first, ""] if _tag.endswith(":null") else list(_first)
    StrictLoader.add_implicit_resolver(_tag, _regexp, _starts)
# ``<<`` merge keys are YAML 1.1 only; without a resolver a merge key is refused as unknown.


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(error, "problem", None) or str(error)
    return f"not valid YAML: {where}{problem}"


def parse_yaml(text: str, *, source: str) -> Any:
    """Parse YAML text with :class:`StrictLoader`; any problem is an :class:`InputError`."""
    if len(text) > MAX_FILE_BYTES:
        raise InputError(
            f"larger than {MAX_FILE_BYTES // 1024} KiB; not a YAML input file", source=source
        )
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.YAMLError as error:
        raise InputError(_yaml_problem(error), source=source) from None
    except RecursionError:  # defensive: MAX_DEPTH should stop it first
        raise InputError("not valid YAML: nested too deeply", source=source) from None


def load_yaml_file(path: str | Path) -> Any:
    """Read a YAML file (regular file, at most :data:`MAX_FILE_BYTES`) with the strict loader."""
    path = Path(path)
    source = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except OSError as error:
        raise InputError(
            f"cannot read the file ({error.strerror or error})", source=source
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError("is a directory; give the YAML file", source=source)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            "not a regular file (a device, pipe or socket); give a YAML file", source=source
        )
    if info.st_size > MAX_FILE_BYTES:
        raise InputError(
            f"larger than {MAX_FILE_BYTES // 1024} KiB ({info.st_size} bytes); not a YAML input file",
            source=source,
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start})", source=source) from None
    except OSError as error:
        raise InputError(
            f"cannot read the file ({error.strerror or error})", source=source
        ) from None
    return parse_yaml(text, source=source)


def format_location(loc: tuple) -> str:
    """``('courses', 1, 'fractions')`` -> ``courses[1].fractions``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "dict[str,any]", "function-after[_check(), Course]"):
            continue  # pydantic's names for union branches and validators, not fields
        else:
            out += f".{part}" if out else str(part)
    return out


def _hint(item: dict) -> str:
    """Why a text value was refused where a number or boolean was expected."""
    value = item.get("input")
    kind = item["type"]
    if kind in ("less_than_equal", "less_than"):
        return (
            "; above reirrad's plausibility limit (docs/case-format.md, Limits): check the "
            "unit (Gy, not cGy) and the number"
        )
    if isinstance(value, bool) and kind in ("int_type", "float_type"):
        return "; true/false is not a number"
    if not isinstance(value, str):
        return ""
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing"):
        if re.fullmatch(r"[-+]?0[0-9]+(\.[0-9]*)?", value):
            return "; write the number without leading zeros (YAML 1.1 reads 033 as octal 27)"
        if ":" in value:
            return "; write a plain number (YAML 1.1 reads 1:30 as 90)"
        return "; write a plain number without quotes"
    if kind in ("bool_type", "bool_parsing"):
        return "; write true or false"
    return ""


def input_error_from_validation(error: ValidationError, source: str | None = None) -> InputError:
    """pydantic's validation errors in the case file's words: the first problem and its
    field, up to two more after it."""
    problems = []
    first_field = None
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if not str(p).startswith(("function-", "constrained-")))
        where = format_location(loc)
        message = _FRIENDLY.get(item["type"], item["msg"])
        message = message.removeprefix("Value error, ")
        if "input" in item and item["type"] not in ("missing", "extra_forbidden"):
            if isinstance(item["input"], str | int | float):
                message += f" (got {item['input']!r})"
            message += _hint(item)
        if first_field is None:
            first_field = where
            problems.append(message)
        else:
            problems.append(f"{where}: {message}" if where else message)
    text = problems[0] if len(problems) == 1 else "; ".join(problems[:3])
    if len(problems) > 3:
        text += f"; and {len(problems) - 3} more"
    return InputError(text, source=source, field=first_field or None)


def parse_case(data: object, *, source: str = "<case>") -> Case:
    """Validate an already-parsed mapping (e.g. from JSON or a notebook) as a case."""
    if not isinstance(data, dict):
        raise InputError("a case file must be a YAML mapping (key: value)", source=source)
    try:
        return Case.model_validate(data)
    except ValidationError as error:
        raise input_error_from_validation(error, source) from None
    except InputError as error:
        raise error.located(source=source) from None


def load_case(path: str | Path) -> Case:
    """Read and validate a YAML case file."""
    return parse_case(load_yaml_file(path), source=str(path))
