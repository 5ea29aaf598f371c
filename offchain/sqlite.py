"""Opening the daemons' SQLite files: WAL mode, one schema version, and a clear error for a foreign file."""

from __future__ import annotations

from pathlib import Path

import aiosqlite


async def open_database(
    path: Path, schema: str, schema_version: int, error: type[Exception], owner: str
) -> aiosqlite.Connection:
    """Open (creating if needed) the SQLite file at `path`, apply `schema` and stamp `schema_version`.

    A file with another schema version, or one that is not SQLite, raises `error` with a message naming the
    file; the connection is closed on every failure, since its thread would otherwise keep the process alive.
    `owner` names the program in the message ("worker", "validator").
    """
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
    except aiosqlite.DatabaseError as exc:
        raise error(f"{path}: cannot open the database: {exc}") from exc
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        version = (await (await conn.execute("PRAGMA user_version")).fetchone() or (0,))[0]
        if version not in (0, schema_version):
            raise error(f"{path}: schema version {version}, this {owner} knows {schema_version}")
        await conn.executescript(schema)
        await conn.execute(f"PRAGMA user_version={schema_version}")
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, aiosqlite.DatabaseError):
            raise error(f"{path}: not a usable SQLite database: {exc}") from exc
        raise
    return conn


def hex_text(v: object) -> str:
    """Bytes as 0x-hex; anything else (already 0x-hex from the event decoder) as its text."""
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    return str(v)
