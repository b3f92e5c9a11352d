"""Load constraint sets from YAML: the packaged ones by name, or a user's file by path.

The format is documented in ``docs/constraints.md``.  Files are validated with pydantic
(unknown keys are errors, so a misspelt key is not silently ignored); any problem is
raised as :class:`~reirrad.errors.InputError` naming the file and the field path, e.g.
``my-set.yaml: limits[3].limit: must be > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reirrad.core.constraints import Constraint, ConstraintSet
from reirrad.core.metrics import parse_metric
from reirrad.errors import InputError
from reirrad.io.casefile import load_yaml_file, parse_yaml

__all__ = ["available_constraint_sets", "load_constraint_set", "load_constraints"]

_PACKAGE = "reirrad"
_SUBDIR = ("data", "constraints")

NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _LimitModel(_Model):
    id: NonEmpty
    organ: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    metric: NonEmpty
    quantity: Literal["eqd2", "bed", "physical"]
    scope: Literal["cumulative", "course"]
    comparator: Literal["<", "<=", ">", ">="]
    # strict: a boolean or a text ("033", "yes") is not a number or a boolean here
    limit: Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
    alpha_beta_gy: Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)] | None = None
    recovery_credit: Annotated[bool, Field(strict=True)]
    min_interval_days: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)] | None = None
    tier: str | None = None
    endpoint: NonEmpty
    source: NonEmpty
    evidence: NonEmpty
    note: str | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        try:
            parse_metric(value)
        except InputError as error:
            raise ValueError(error.problem) from None
        return value

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, value: Any) -> Any:
        # YAML reads an unquoted tier such as 5 as a number; keep it as text.
        return str(value) if isinstance(value, int | float) else value


class _SetModel(_Model):
    id: NonEmpty
    title: NonEmpty
    description: str = ""
    source: NonEmpty
    limits: Annotated[list[_LimitModel], Field(min_length=1)]


def _constraints_dir() -> Any:
    return resources.files(_PACKAGE).joinpath(*_SUBDIR)


def available_constraint_sets() -> list[str]:
    """Names of the packaged constraint sets (file names without ``.yaml``), sorted."""
    folder = _constraints_dir()
    if not folder.is_dir():
        return []
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    )


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see docs/constraints.md)"
    if kind == "greater_than":
        return f"must be > {_number(ctx.get('gt'))}"
    if kind == "greater_than_equal":
        return f"must be >= {_number(ctx.get('ge'))}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return "must contain at least one entry"
    if kind == "string_pattern_mismatch":
        return "must be a lower-case key like 'spinal_cord'"
    if kind == "value_error":
        return str(error.get("msg", "")).removeprefix("Value error, ")
    return str(error.get("msg", "invalid value"))


def _validate(data: Any, source: str) -> ConstraintSet:
    if not isinstance(data, dict):
        raise InputError(
            "a constraint set must be a YAML mapping with id, title, source, limits", source=source
        )
    try:
        model = _SetModel.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise InputError(_message(first), source=source, field=_field_path(first["loc"])) from None
    seen: dict[str, int] = {}
    constraints = []
    for index, limit in enumerate(model.limits):
        field = f"limits[{index}]"
        if limit.id in seen:
            raise InputError(
                f"duplicate constraint id {limit.id!r} (also limits[{seen[limit.id]}])",
                source=source,
                field=f"{field}.id",
            )
        seen[limit.id] = index
        try:
            constraints.append(Constraint(**limit.model_dump()))
        except InputError as error:  # cross-field rules (e.g. physical dose with alpha/beta)
            raise InputError(error.problem, source=source, field=field) from None
    return ConstraintSet(
        id=model.id,
        title=model.title,
        source=model.source,
        constraints=tuple(constraints),
        description=model.description,
        origin=source,
    )


def _parse_yaml(text: str, source: str) -> Any:
    # the strict loader of case files: no YAML 1.1 booleans/octals, no duplicate keys
    return parse_yaml(text, source=source)


def load_constraint_set(name_or_path: str | Path) -> ConstraintSet:
    """Load a packaged constraint set by name, or a user's YAML file by path.

    Parameters
    ----------
    name_or_path
        A name from :func:`available_constraint_sets` (e.g. ``"reirradiation"``), or the
        path of a YAML file in the format of ``docs/constraints.md``.

    Raises
    ------
    InputError
        Unknown name, missing or unreadable file, invalid YAML, or a field that fails
        validation (the message names the file and the field path).
    """
    text_arg = str(name_or_path)
    packaged = available_constraint_sets()
    if isinstance(name_or_path, str) and text_arg in packaged:
        resource = _constraints_dir().joinpath(f"{text_arg}.yaml")
        source = f"{text_arg}.yaml (packaged)"
        return _validate(_parse_yaml(resource.read_text(encoding="utf-8"), source), source)
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise InputError(
            f"no constraint set {text_arg!r}: not a packaged set ({', '.join(packaged)}) "
            "and not an existing YAML file"
        )
    source = str(path)
    return _validate(load_yaml_file(path), source)


def load_constraints(names: Sequence[str], *, base: Path | None = None) -> list[list[Constraint]]:
    """Load constraint sets by packaged name or by path (relative paths from ``base``)."""
    out = []
    for name in names:
        candidate = Path(name)
        if (
            candidate.suffix in (".yaml", ".yml")
            and base is not None
            and not candidate.is_absolute()
        ):
            candidate = base / candidate
            name = str(candidate)
        out.append(list(load_constraint_set(name).constraints))
    return out
