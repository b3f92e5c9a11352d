"""Packaged NTCP parameter sets (``reirrad/data/ntcp/parameters.yaml``)."""

from __future__ import annotations

import math
from importlib import resources
from types import MappingProxyType

from reirrad.core.ntcp import NTCPParameterSet
from reirrad.errors import InputError
from reirrad.io.casefile import parse_yaml

__all__ = ["load_ntcp_parameter_sets"]

_SOURCE = "reirrad/data/ntcp/parameters.yaml"


def _number(value: object, name: str) -> float:
    """A parameter is a real, finite number: not a boolean, not text such as "033"."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{name}: {value!r} is not a finite number")
    return float(value)


def _positive(value: object, name: str) -> float:
    number = _number(value, name)
    if number <= 0:
        raise InputError(f"{name}: must be > 0, not {number:g}")
    return number


def load_ntcp_parameter_sets(text: str | None = None) -> dict[str, NTCPParameterSet]:
    """Read the packaged NTCP parameter sets (or ``text`` in the same YAML format).

    Returns
    -------
    dict
        ``key -> NTCPParameterSet``; every entry carries its citation and evidence text.
    """
    if text is None:
        text = resources.files("reirrad").joinpath("data/ntcp/parameters.yaml").read_text("utf-8")
    # the strict loader of case files: no YAML 1.1 booleans/octals, no duplicate keys
    document = parse_yaml(text, source=_SOURCE)
    entries = document.get("parameter_sets") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise InputError("missing mapping 'parameter_sets'", source=_SOURCE)
    sets: dict[str, NTCPParameterSet] = {}
    for key, entry in entries.items():
        where = f"parameter_sets.{key}"
        try:
            params = {
                name: _number(value, f"parameters.{name}")
                for name, value in dict(entry["parameters"]).items()
            }
            sets[key] = NTCPParameterSet(
                key=key,
                model=str(entry["model"]),
                organ=str(entry["organ"]),
                endpoint=str(entry["endpoint"]),
                parameters=MappingProxyType(params),
                citation=" ".join(str(entry["citation"]).split()),
                evidence=" ".join(str(entry["evidence"]).split()),
                alpha_beta_gy=(
                    _positive(entry["alpha_beta_gy"], "alpha_beta_gy")
                    if entry.get("alpha_beta_gy") is not None
                    else None
                ),
                dose_quantity=str(entry.get("dose_quantity", "")),
            )
        except KeyError as error:
            raise InputError(
                f"missing field {error.args[0]!r}", source=_SOURCE, field=where
            ) from None
        except (TypeError, ValueError) as error:
            if isinstance(error, InputError):
                raise error.located(source=_SOURCE, field=where) from None
            raise InputError(f"bad value: {error}", source=_SOURCE, field=where) from None
    return sets
