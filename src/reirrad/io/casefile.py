"""Reading YAML case files into the validated :class:`reirrad.core.case.Case`.

Every problem becomes an :class:`~reirrad.errors.InputError` naming the file, the field
path (``courses[1].fractions``) and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from reirrad.core.case import Case
from reirrad.errors import InputError

__all__ = ["format_location", "load_case", "parse_case"]

_FRIENDLY = {
    "extra_forbidden": "unknown field (misspelt? see docs/case-format.md for the field names)",
    "missing": "required field is missing",
}


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


def _from_validation(error: ValidationError, source: str) -> InputError:
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
        raise _from_validation(error, source) from None
    except InputError as error:
        raise error.located(source=source) from None


def load_case(path: str | Path) -> Case:
    """Read and validate a YAML case file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the file ({error})", source=source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(f"not valid YAML: {where}{problem}", source=source) from None
    return parse_case(data, source=source)
