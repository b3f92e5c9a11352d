"""Exceptions that carry enough context for a one-line, actionable message.

Every error a user can cause by their input (a case file, a DICOM file, a command-line
option) is raised as :class:`InputError`; the CLI prints ``str(error)`` and exits with
code 2.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ReirradError(Exception):
    """Base class of all reirrad errors."""


class InputError(ReirradError, ValueError):
    """Bad or ambiguous input.

    Parameters
    ----------
    problem
        What is wrong and, where possible, what to do about it.
    source
        The file (or ``"--option"``) the input came from, if known.
    field
        Dotted path of the offending field inside ``source`` (e.g. ``courses[1].fractions``).
    """

    def __init__(self, problem: str, *, source: str | None = None, field: str | None = None):
        self.problem = problem
        self.source = source
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.problem}" if where else self.problem

    def located(self, *, source: str | None = None, field: str | None = None) -> InputError:
        """Return a copy with the file and/or field filled in where still missing."""
        return InputError(
            self.problem,
            source=self.source or source,
            field=self.field or field,
        )
