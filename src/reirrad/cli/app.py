"""The typer application and the error boundary shared by every command."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import typer

from reirrad.errors import InputError

app = typer.Typer(
    name="reirrad",
    help="Re-irradiation dose assessment: cumulative EQD2/BED with recovery, DVHs, constraints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Exit code for bad or ambiguous input (click uses 2 for usage errors too).
EXIT_INPUT = 2


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    typer.echo(f"reirrad: error: {message}", err=True)
    return typer.Exit(EXIT_INPUT)


def check_number(
    value: float | None,
    option: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    whole: bool = False,
    why: str = "",
) -> float | None:
    """Refuse a non-finite or out-of-range option value (``None`` passes: not given).

    ``why`` says where an upper limit comes from (e.g. the case-file plausibility limits).
    """
    if value is None:
        return None
    if not math.isfinite(value):
        raise InputError(f"must be a finite number, not {value!r}", source=option)
    if whole and value != int(value):
        raise InputError(f"must be a whole number, not {value:g}", source=option)
    if gt is not None and not value > gt:
        raise InputError(f"must be > {gt:g}, not {value:g}", source=option)
    if ge is not None and not value >= ge:
        raise InputError(f"must be >= {ge:g}, not {value:g}", source=option)
    if le is not None and not value <= le:
        raise InputError(f"must be <= {le:g}{why}, not {value:g}", source=option)
    return value


FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def check_figure_path(path: Path | None, option: str = "--plot") -> Path | None:
    """A figure path must name a file (.png, .pdf or .svg) in an existing folder.

    Without this, matplotlib writes ``DIR/`` as ``DIR.png`` and guesses PNG for a path
    without a suffix.
    """
    if path is None:
        return None
    text = str(path)
    if not text.strip() or text.endswith(("/", "\\")) or path.is_dir():
        raise InputError(f"{text!r} is a folder; give a file name such as dvh.png", source=option)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(
            f"{text!r}: the file name must end in {', '.join(FIGURE_SUFFIXES)}", source=option
        )
    if not path.parent.is_dir():
        raise InputError(f"the folder {str(path.parent)!r} does not exist", source=option)
    return path


def _usage_line(error: typer.TyperException) -> str:
    """One line for a click/typer usage error: the command, then click's own message."""
    format_message = getattr(error, "format_message", None)
    message = format_message() if callable(format_message) else str(error)
    ctx = getattr(error, "ctx", None)
    command = getattr(ctx, "command_path", None)
    text = f"{command}: {message}" if command and command != "reirrad" else message
    if ctx is not None:
        text += f" (see {command or 'reirrad'} --help)"
    text = text.replace("Value error, ", "")
    return " ".join(text.split())  # one line, whatever click put in


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, every refusal one line on stderr and exit 2.

    Usage errors found by typer/click (a bad option value, a missing argument, an unknown
    option) and an :class:`InputError` raised by the API take the same path: one line
    ``reirrad: error: ...``, no framed box, no traceback, exit code 2.
    """
    try:
        result = app(args=argv, prog_name="reirrad", standalone_mode=False)
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except InputError as error:
        typer.echo(f"reirrad: error: {error}", err=True)
        return EXIT_INPUT
    except typer.Abort:
        typer.echo("reirrad: aborted", err=True)
        return 1
    except typer.TyperException as error:  # click's ClickException and subclasses
        if type(error).__name__ == "NoArgsIsHelpError":
            return EXIT_INPUT  # the help was printed while the error was made
        typer.echo(f"reirrad: error: {_usage_line(error)}", err=True)
        return EXIT_INPUT
    # without standalone mode, --help and typer.Exit come back as the exit code
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - thin wrapper for the console script
    sys.exit(main())
