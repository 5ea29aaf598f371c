"""`ami` subcommands for validators: audit and validate."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""
