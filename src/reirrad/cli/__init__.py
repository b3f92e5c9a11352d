"""Command-line interface: a thin layer over the public API in :mod:`reirrad`.

Each command lives in its own module and registers itself on :data:`app`.
"""

from reirrad.cli import commands  # noqa: F401  (registers the commands)
from reirrad.cli.app import app, main, run

__all__ = ["app", "main", "run"]
