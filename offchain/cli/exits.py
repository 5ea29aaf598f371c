"""The exit codes of every `ami` command, and the one way a command stops on a failure it expected.

0 success, 1 unexpected error (or, for `ami audit`, a mismatch), 2 bad input, 3 node or service unreachable,
4 refused or reverted on chain, 5 timed out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

EXIT_UNEXPECTED, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_TIMEOUT = 1, 2, 3, 4, 5


def fail_with(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print "error: `message`" on stderr and exit `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def exit_on(
    errors: type[Exception] | tuple[type[Exception], ...], code: int = EXIT_INPUT, prefix: str = "error: "
) -> Iterator[None]:
    """Turn `errors` raised inside into `prefix` + their message on stderr and exit `code`."""
    try:
        yield
    except errors as exc:
        typer.echo(f"{prefix}{exc}", err=True)
        raise typer.Exit(code) from None
