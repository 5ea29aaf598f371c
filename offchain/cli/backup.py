"""`ami backup` and `ami restore`: copy a daemon's SQLite database, consistent while it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from offchain.sqlite import BackupError, backup_database, restore_database

EXIT_INPUT = 2

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="The worker's TOML/YAML settings (its db_path is the default)."),
]
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db", help="Another AMI database instead of the worker's: e.g. .ami/validator/validator.sqlite."
    ),
]


def _database(config: Path | None, db: Path | None) -> Path:
    if db is not None:
        return db
    from offchain.config import ConfigError, load_settings

    try:
        return Path(load_settings(config).db_path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INPUT) from None


def _known_version() -> int:
    """The newest schema this node can open, over all its databases."""
    from offchain.audit.db import SCHEMA_VERSION as VALIDATOR_VERSION
    from offchain.store import SCHEMA_VERSION as WORKER_VERSION

    return max(WORKER_VERSION, VALIDATOR_VERSION)


def register(app: typer.Typer) -> None:
    """Add `ami backup` and `ami restore`."""

    @app.command("backup")
    def backup_cmd(
        dest: Annotated[Path, typer.Argument(help="New file to write the copy to (never overwritten).")],
        config: ConfigOpt = None,
        db: DbOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Copy the worker's database (or --db) to DEST; safe while `ami run` or `ami validate` runs."""
        source = _database(config, db)
        try:
            size = backup_database(source, dest)
        except BackupError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_INPUT) from None
        if as_json:
            typer.echo(json.dumps({"source": str(source), "backup": str(dest), "bytes": size}))
        else:
            typer.echo(f"backed up {source} to {dest} ({size:,} bytes)")

    @app.command("restore")
    def restore_cmd(
        backup: Annotated[Path, typer.Argument(help="A file written by `ami backup`.")],
        config: ConfigOpt = None,
        db: DbOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Replace the worker's database (or --db) with BACKUP. Refused while a daemon runs on it."""
        dest = _database(config, db)
        try:
            version = restore_database(backup, dest, "ami daemon", _known_version())
        except BackupError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_INPUT) from None
        if as_json:
            typer.echo(json.dumps({"backup": str(backup), "database": str(dest), "schema_version": version}))
        else:
            typer.echo(f"restored {dest} from {backup} (schema version {version})")
