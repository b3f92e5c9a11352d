"""The typer application and the error boundary shared by every command."""

from __future__ import annotations

import sys

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


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning input errors into one line and exit 2.

    Usage errors are reported by typer itself (exit 2); an :class:`InputError` raised by the
    API is printed as one line without a traceback.
    """
    try:
        app(args=argv, prog_name="reirrad")
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except InputError as error:
        typer.echo(f"reirrad: error: {error}", err=True)
        return EXIT_INPUT
    return 0


def run() -> None:  # pragma: no cover - thin wrapper for the console script
    sys.exit(main())
