"""`ami backup` and `ami restore`: copy a daemon's SQLite database, consistent while it runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from offchain.audit.db import SCHEMA_VERSION as VALIDATOR_VERSION
from offchain.config import ConfigError, load_settings
from offchain.sqlite import BackupError, backup_database, restore_database
from offchain.store import SCHEMA_VERSION as WORKER_VERSION

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
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _database(config: Path | None, db: Path | None) -> Path:
    if db is not None:
        return db
    try:
        return Path(load_settings(config).db_path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INPUT) from None


def _known_version() -> int:
    """The newest schema this node can open, over all its databases."""
    return max(WORKER_VERSION, VALIDATOR_VERSION)


@contextmanager
def _refused() -> Iterator[None]:
    """A BackupError inside (a file that exists, a daemon running, a newer schema) is bad input: exit 2."""
    try:
        yield
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INPUT) from None


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
    with _refused():
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
    with _refused():
        version = restore_database(backup, dest, "ami daemon", _known_version())
    data = {"backup": str(backup), "database": str(dest), "schema_version": version}
    _emit(as_json, data, f"restored {dest} from {backup} (schema version {version})")


def register(app: typer.Typer) -> None:
    """Add `ami backup` and `ami restore`."""
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)
