"""The daemons' SQLite files: opening (WAL, versioned schema migrations), one instance per file, backups.

`SqliteFile` is the base of the worker store and the validator db (open, close); `transaction` is one write
transaction. `open_database` upgrades an older file step by step (`migrations[v]` takes version v to v+1,
each step in one transaction, after a backup copy `<file>.v<old>.bak`) and refuses a newer one.
`instance_lock` keeps a second daemon off a file another one is running on. `backup_database` /
`restore_database` copy a file with SQLite's online backup API, consistent while a daemon writes to it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import ClassVar, Self

import aiosqlite


class DatabaseLocked(Exception):
    """Another process runs on this database (it holds the instance lock)."""


BUSY_TIMEOUT_S = 30.0
"""How long a statement waits for another connection's write lock before it fails with "database is locked"
(SQLite's default is 5 s; another process's write, such as `ami dashboard` adding its indexes, can hold it
longer on a loaded host, and each failure restarts a lane for nothing). It cannot help a connection whose open
read statement pins a snapshot that another connection has since changed: that write fails at once."""


class BackupError(Exception):
    """A backup or restore cannot be done; the message says why and nothing was changed."""


async def open_database(
    path: Path,
    schema: str,
    schema_version: int,
    error: type[Exception],
    owner: str,
    migrations: Mapping[int, str] | None = None,
) -> aiosqlite.Connection:
    """Open (creating if needed) the SQLite file at `path`, bring it to `schema_version`, apply `schema`.

    `schema` is idempotent (CREATE ... IF NOT EXISTS) and describes the current version; a new file gets it
    directly. A file at an older version v is first upgraded by `migrations[v]`, `migrations[v+1]`, ...
    (each script with its version stamp in one transaction, after a backup `<file>.v<v>.bak`). A newer file,
    a missing migration step, or a file that is not SQLite raises `error` with a message naming the file and
    what to do; the connection is closed on every failure, since its thread would otherwise keep the process
    alive. `owner` names the program in the message ("worker", "validator").
    """
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_S)
    except aiosqlite.DatabaseError as exc:
        raise error(f"{path}: cannot open the database: {exc}") from exc
    try:
        # The version first: a refused file stays byte for byte as it was (WAL mode rewrites its header).
        rows = list(await (await conn.execute("PRAGMA user_version")).fetchall())  # ends the statement
        version = int(rows[0][0]) if rows else 0
        if version > schema_version:
            raise error(
                f"{path}: schema version {version} was written by a newer AMI node; this {owner} knows up to "
                f"{schema_version}: upgrade ami, or restore a backup made by this version (`ami restore`)"
            )
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        if 0 < version < schema_version:
            missing = [v for v in range(version, schema_version) if v not in (migrations or {})]
            if missing:
                raise error(f"{path}: no migration from schema version {missing[0]} to {missing[0] + 1}")
            if str(path) != ":memory:":
                await (await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")).fetchall()
                _copy(path, path.with_name(f"{path.name}.v{version}.bak"))
            for v in range(version, schema_version):
                # One transaction per step: an interrupted upgrade leaves the file at a version it knows.
                script = (migrations or {})[v]
                try:
                    await conn.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\n;PRAGMA user_version={v + 1};\nCOMMIT;"
                    )
                except aiosqlite.DatabaseError as exc:
                    if conn.in_transaction:
                        await conn.execute("ROLLBACK")
                    raise error(
                        f"{path}: migration from schema version {v} to {v + 1} failed ({exc}); the file is "
                        f"unchanged at version {v} (a copy is in {path.name}.v{version}.bak)"
                    ) from exc
        await conn.executescript(schema)
        await conn.execute(f"PRAGMA user_version={schema_version}")
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, aiosqlite.DatabaseError):
            raise error(f"{path}: not a usable SQLite database: {exc}") from exc
        raise
    return conn


class SqliteFile:
    """A daemon's SQLite file (its schema, version and migrations as class attributes); one instance per
    process owns the connection."""

    SCHEMA: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]
    MIGRATIONS: ClassVar[Mapping[int, str]]
    ERROR: ClassVar[type[Exception]]
    OWNER: ClassVar[str]  # the program, as messages name it ("worker", "validator")

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._db = conn
        self.path = path

    @classmethod
    async def open(cls, path: Path | str) -> Self:
        """Open (creating or upgrading) the file with `open_database`, then `_prepare` it."""
        path = Path(path)
        conn = await open_database(path, cls.SCHEMA, cls.SCHEMA_VERSION, cls.ERROR, cls.OWNER, cls.MIGRATIONS)
        try:
            await cls._prepare(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path)

    @classmethod
    async def _prepare(cls, conn: aiosqlite.Connection) -> None:
        """Additive, idempotent changes made on every open (none by default)."""

    async def close(self) -> None:
        await self._db.close()


@asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any exception."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


def hex_text(v: object) -> str:
    """Bytes as 0x-hex; anything else (already 0x-hex from the event decoder) as its text."""
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    return str(v)


def _copy(source: Path, dest: Path) -> None:
    """Copy the SQLite file `source` to `dest` with the online backup API (consistent under writers)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


@contextmanager
def instance_lock(db: Path, owner: str) -> Iterator[None]:
    """Hold an exclusive lock on `<db>.lock` while the block runs; DatabaseLocked when another process holds
    it. The kernel drops the lock when the holder exits, however it exits: no stale lock files to clean."""
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(db), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise DatabaseLocked(
                f"{db} is in use by another {owner} (pid {holder}); stop it first, or give this one its own "
                "database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _check_sqlite(path: Path, max_version: int | None) -> int:
    """The schema version of the SQLite file at `path` after an integrity check; BackupError if unusable."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a usable SQLite database: {exc}") from None
    if not ok or ok[0] != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {ok[0] if ok else '?'}")
    if max_version is not None and version > max_version:
        raise BackupError(
            f"{path} has schema version {version}, newer than this AMI node knows ({max_version})"
        )
    return version


def backup_database(source: Path, dest: Path) -> int:
    """Copy the database at `source` to the new file `dest`, consistent even while a daemon writes to it
    (SQLite's online backup API reads one snapshot). Returns the copy's size in bytes."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if dest.exists():
        raise BackupError(f"{dest} already exists; refusing to overwrite it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    try:
        _copy(source, tmp)
        _check_sqlite(tmp, None)
        os.replace(tmp, dest)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest.stat().st_size


def restore_database(backup: Path, dest: Path, owner: str, max_version: int) -> int:
    """Replace the database at `dest` with the backup's content. Refused while a daemon holds `dest`
    (instance_lock), and when the backup is not a sound SQLite file this node can open. Returns its schema
    version."""
    if not backup.is_file():
        raise BackupError(f"no backup at {backup}")
    version = _check_sqlite(backup, max_version)
    try:
        with instance_lock(dest, owner):
            # The backup API writes through SQLite, so the target's WAL and shared memory stay coherent.
            _copy(backup, dest)
    except DatabaseLocked as exc:
        raise BackupError(f"{exc}; a running daemon's database cannot be restored") from None
    return version
