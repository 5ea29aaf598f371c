"""State that lasts: schema migrations from every earlier version (and a newer file refused untouched), one
daemon per database, `ami backup` consistent while a writer runs, `ami restore` refused while one runs."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from ledgers import minted, write_blocks

from offchain import store as worker_store
from offchain.audit import db as validator_db
from offchain.sqlite import instance_lock, open_database

# A toy schema with three versions, each migration a real change of shape, to exercise the mechanism.
TOY_V1 = "CREATE TABLE IF NOT EXISTS song (id INTEGER PRIMARY KEY, title TEXT);"
TOY_MIGRATIONS = {
    1: "ALTER TABLE song ADD COLUMN genre TEXT NOT NULL DEFAULT 'unknown';",
    2: "CREATE TABLE tag (song INTEGER, tag TEXT); INSERT INTO tag SELECT id, genre FROM song;",
}
TOY_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS song"
    " (id INTEGER PRIMARY KEY, title TEXT, genre TEXT NOT NULL DEFAULT 'unknown');"
    "CREATE TABLE IF NOT EXISTS tag (song INTEGER, tag TEXT);"
)


class ToyError(Exception):
    pass


def toy_file_at(path: Path, version: int) -> None:
    """A file as version `version` of the toy program wrote it, with two songs."""
    conn = sqlite3.connect(path)
    if version >= 1:
        conn.executescript(TOY_V1)
        for v in range(1, version):
            conn.executescript(TOY_MIGRATIONS[v])
        conn.execute("INSERT INTO song (id, title) VALUES (1, 'a'), (2, 'b')")
        conn.execute(f"PRAGMA user_version={version}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", [0, 1, 2, 3])
async def test_toy_schema_opens_from_every_earlier_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "toy.sqlite"
    toy_file_at(path, version)
    conn = await open_database(path, TOY_SCHEMA, 3, ToyError, "toy", TOY_MIGRATIONS)
    try:
        assert (await (await conn.execute("PRAGMA user_version")).fetchone())[0] == 3  # type: ignore[index]
        songs = await (await conn.execute("SELECT id, title, genre FROM song ORDER BY id")).fetchall()
        tags = await (await conn.execute("SELECT count(*) FROM tag")).fetchone()
    finally:
        await conn.close()
    if version == 0:
        assert list(songs) == []
    else:
        assert list(songs) == [(1, "a", "unknown"), (2, "b", "unknown")]  # data carried through every step
        assert tags == ((2,) if version < 3 else (0,))  # migration 2 ran only for files older than 3
    backup = path.with_name(f"toy.sqlite.v{version}.bak")
    assert backup.exists() == (0 < version < 3)  # the pre-migration copy, kept for a way back


async def test_newer_or_unmigratable_files_are_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "toy.sqlite"
    toy_file_at(path, 3)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ToyError, match="written by a newer AMI node.*ami restore"):
        await open_database(path, TOY_SCHEMA, 2, ToyError, "toy", TOY_MIGRATIONS)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    toy_file_at(old := tmp_path / "old.sqlite", 1)
    with pytest.raises(ToyError, match="no migration from schema version 2 to 3"):
        await open_database(old, TOY_SCHEMA, 3, ToyError, "toy", {1: TOY_MIGRATIONS[1]})
    # a failing step rolls back: the file stays at the version it was, with its data
    toy_file_at(bad := tmp_path / "bad.sqlite", 1)
    with pytest.raises(ToyError, match="migration from schema version 1 to 2 failed.*unchanged at version 1"):
        await open_database(
            bad, TOY_SCHEMA, 2, ToyError, "toy", {1: "ALTER TABLE song ADD COLUMN x; SELECT nope;"}
        )
    conn = sqlite3.connect(bad)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    assert [r[1] for r in conn.execute("PRAGMA table_info(song)")] == ["id", "title"]
    conn.close()


async def test_a_write_waits_out_a_lock_held_longer_than_sqlites_default(tmp_path: Path) -> None:
    path = tmp_path / "toy.sqlite"
    conn = await open_database(path, TOY_SCHEMA, 3, ToyError, "toy", TOY_MIGRATIONS)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO song (id, title) VALUES (10, 'held')")
    # SQLite's own default gives up after 5 s; the other writer commits after 6
    release = threading.Timer(6.0, holder.execute, ("COMMIT",))
    release.start()
    try:
        await conn.execute("INSERT INTO song (id, title) VALUES (11, 'waited')")
        rows = await (await conn.execute("SELECT id, title FROM song WHERE id >= 10 ORDER BY id")).fetchall()
        assert [tuple(r) for r in rows] == [(10, "held"), (11, "waited")]
    finally:
        release.join()
        holder.close()
        await conn.close()


@pytest.mark.parametrize(
    "module,opener",
    [(worker_store, worker_store.WorkerStore.open), (validator_db, validator_db.ValidatorDb.open)],
    ids=["worker", "validator"],
)
async def test_real_databases_migrate_from_every_earlier_version(
    tmp_path: Path, module: Any, opener: Any
) -> None:
    # every version before the current one has its migration step
    assert set(module.MIGRATIONS) == set(range(1, module.SCHEMA_VERSION))
    for version in range(0, module.SCHEMA_VERSION):
        path = tmp_path / f"v{version}.sqlite"
        sqlite3.connect(path).close()  # version 0: a file created but never initialised
        db = await opener(path)
        await db.close()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone() == (module.SCHEMA_VERSION,)
        conn.close()
    newer = tmp_path / "newer.sqlite"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version={module.SCHEMA_VERSION + 1}")
    conn.close()
    before = newer.read_bytes()
    with pytest.raises(Exception, match="newer AMI node"):
        await opener(newer)
    assert newer.read_bytes() == before


HOLDER = """
import sys
from pathlib import Path
from offchain.sqlite import instance_lock
with instance_lock(Path(sys.argv[1]), "ami run"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_one_daemon_per_database(ami: Any, tmp_path: Path) -> None:
    db = tmp_path / "worker.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        r = ami("run", env={"AMI_DB_PATH": str(db)})
        assert r.code == 2 and f"in use by another ami run (pid {holder.pid})" in r.err, r.err
        vdir = tmp_path / "v"
        with instance_lock(vdir / "validator.sqlite", "ami validate"):
            r = ami("validate", "--db", str(vdir), "--key", "//Charlie")
        assert r.code == 2 and "in use by another ami validate" in r.err, r.err
    finally:
        holder.communicate("", timeout=10)
    # the holder exited: its lock went with it, no stale file to clean up
    with instance_lock(db, "ami run"):
        pass
    # a setup problem is bad input (exit 2), said in one line, before anything starts
    r = ami("run", env={"AMI_DB_PATH": str(db), "AMI_DEPLOYMENT": str(tmp_path / "none.json")})
    assert r.code == 2 and "run `ami deploy`" in r.err and "Traceback" not in r.err, r.err


def test_backup_is_consistent_while_a_writer_runs(ami: Any, tmp_path: Path) -> None:
    db = tmp_path / "busy.sqlite"
    conn = sqlite3.connect(db, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE pair (i INTEGER)")
    conn.commit()
    written = threading.Event()
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            with conn:  # two rows per transaction: a consistent copy always holds an even count
                conn.execute("INSERT INTO pair VALUES (?)", (i,))
                conn.execute("INSERT INTO pair VALUES (?)", (i,))
            i += 1
            if i == 200:
                written.set()

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert written.wait(30)
        copies = []
        for n in range(3):
            dest = tmp_path / f"copy{n}.sqlite"
            r = ami("backup", str(dest), "--db", str(db), "--json")
            assert r.code == 0, r.err
            copies.append(dest)
    finally:
        stop.set()
        t.join()
        conn.close()
    counts = []
    for dest in copies:
        c = sqlite3.connect(dest)
        assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (count,) = c.execute("SELECT count(*) FROM pair").fetchone()
        c.close()
        assert count % 2 == 0 and count >= 400
        counts.append(count)
    assert counts == sorted(counts)
    r = ami("backup", str(copies[0]), "--db", str(db))
    assert r.code == 2 and "refusing to overwrite" in r.err


def test_backup_and_restore_the_worker_database(ami: Any, tmp_path: Path) -> None:
    from offchain.projection import BlockData

    db = tmp_path / "worker.sqlite"
    asyncio.run(write_blocks(db, [BlockData(1, "0x01", [minted(0, 1)])]))
    env = {"AMI_DB_PATH": str(db)}
    r = ami("backup", str(tmp_path / "b.sqlite"), env=env)
    assert r.code == 0 and "backed up" in r.out, r.err
    asyncio.run(write_blocks(db, [BlockData(2, "0x02", [])]))  # the database moves on after the backup
    status = ami("status", "--json", env=env)
    assert status.out and '"checkpoint": [\n    2' in status.out
    # refused while a daemon holds the database, and nothing changes
    with instance_lock(db, "ami run"):
        r = ami("restore", str(tmp_path / "b.sqlite"), env=env)
    assert r.code == 2 and "cannot be restored" in r.err
    assert '"checkpoint": [\n    2' in ami("status", "--json", env=env).out
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    r = ami("restore", str(junk), env=env)
    assert r.code == 2 and "not a usable SQLite database" in r.err
    r = ami("restore", str(tmp_path / "b.sqlite"), "--json", env=env)
    assert r.code == 0, r.err
    assert '"checkpoint": [\n    1' in ami("status", "--json", env=env).out  # back to the backup's state
    assert "checkpoint: block #1 (0x01)" in ami("status", env=env).out  # readable, not a Python repr
