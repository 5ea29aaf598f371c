"""`ami backup` and `ami restore`: copy a daemon's SQLite database, consistent while it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from offchain.audit.db import SCHEMA_VERSION as VALIDATOR_VERSION
from offchain.cli.exits import exit_on
from offchain.cli.settings import worker_settings
from offchain.sqlite import BackupError, backup_database, restore_database
from offchain.store import SCHEMA_VERSION as WORKER_VERSION

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
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _database(config: Path | None, db: Path | None) -> Path:
    if db is not None:
        return db
    return Path(worker_settings(config).db_path)


def _known_version() -> int:
    """The newest schema this node can open, over all its databases."""
    return max(WORKER_VERSION, VALIDATOR_VERSION)


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(data) if as_json else text)


def backup_cmd(
    dest: Annotated[Path, typer.Argument(help="New file to write the copy to (never overwritten).")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy the worker's database (or --db) to DEST; safe while `ami run` or `ami validate` runs."""
    source = _database(config, db)
    with exit_on(BackupError):
        size = backup_database(source, dest)
    data = {"source": str(source), "backup": str(dest), "bytes": size}
    _emit(as_json, data, f"backed up {source} to {dest} ({size:,} bytes)")


def restore_cmd(
    backup: Annotated[Path, typer.Argument(help="A file written by `ami backup`.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace the worker's database (or --db) with BACKUP. Refused while a daemon runs on it."""
    dest = _database(config, db)
    with exit_on(BackupError):
        version = restore_database(backup, dest, "ami daemon", _known_version())
    data = {"backup": str(backup), "database": str(dest), "schema_version": version}
    _emit(as_json, data, f"restored {dest} from {backup} (schema version {version})")


def register(app: typer.Typer) -> None:
    """Add `ami backup` and `ami restore`."""
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)
