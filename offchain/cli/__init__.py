"""The `ami` command line: one typer app, each area adds its own subcommands in its own module."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import typer

from offchain.cli import audit, backup, chain, dashboard, devnet, ipfs, key, scoring, tracks, worker

app = typer.Typer(
    name="ami",
    help="AMI node: off-chain worker, developer tools and validator for the AMI music NFT platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _installed_version() -> str:
    try:
        return package_version("ami-node")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ami {_installed_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """AMI node: off-chain worker, developer tools and validator for the AMI music NFT platform.

    Exit status: 0 success, 1 unexpected error (one line; AMI_DEBUG=1 shows the traceback), 2 bad input,
    3 node or service unreachable, 4 refused or reverted on chain, 5 timed out.
    """


# Each module owns its commands; only the scoring engine (torch) is imported when a command needs it, so that
# `ami --help` and light commands start fast.
for module in (devnet, chain, tracks, key, backup, scoring, ipfs, worker, audit, dashboard):
    module.register(app)


@app.command("version")
def version() -> None:
    """Print the installed AMI node version."""
    typer.echo(_installed_version())


def main() -> None:
    """The `ami` entry point: no traceback ever reaches a user (exit 1 with one line instead)."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AMI_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        print(
            f"error: unexpected {type(exc).__name__}: {text} (AMI_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
