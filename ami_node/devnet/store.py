"""Persistence for `ami devnet --state DIR`: blocks and the head state in one SQLite file, so a restart
continues the same chain (same genesis, same accounts, contracts and their model state).

Each produced block is written with the state after it in one transaction. The pool and the per-block state
history are not persisted (like a restarted node, pending transactions are gone and old states are pruned).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ami_node.devnet import contracts as cx
from ami_node.devnet.state import Block, ContractRecord, WorldState

if TYPE_CHECKING:
    from ami_node.devnet.chain import Devnet  # the chain imports nothing of this module; typing only

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, hash BLOB NOT NULL, parent BLOB NOT NULL, header BLOB NOT NULL,
    state_root BLOB NOT NULL, extrinsics_root BLOB NOT NULL, digest TEXT NOT NULL, extrinsics TEXT NOT NULL,
    events BLOB NOT NULL, timestamp INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
FORMAT = 1


class StoreError(RuntimeError):
    """The state directory holds something this devnet cannot continue from."""


class SqliteStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "devnet.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self.db.executescript(SCHEMA)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StoreError(f"{self.path} is not a devnet state database ({exc})") from exc

    def load(self) -> tuple[WorldState, list[Block], int] | None:
        try:
            return self._load()
        except (sqlite3.DatabaseError, KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"{self.path}: unreadable devnet state ({exc})") from exc

    def _load(self) -> tuple[WorldState, list[Block], int] | None:
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if "state" not in meta:
            return None
        if int(meta.get("format", "0")) != FORMAT:
            raise StoreError(f"{self.path}: unsupported devnet state format {meta.get('format')}")
        rows = self.db.execute(
            "SELECT number, hash, parent, header, state_root, extrinsics_root, digest, extrinsics, events,"
            " timestamp FROM blocks ORDER BY number"
        ).fetchall()
        blocks = []
        for i, r in enumerate(rows):
            if r[0] != i:
                raise StoreError(f"{self.path}: block {i} is missing")
            blocks.append(
                Block(
                    r[0],
                    bytes(r[1]),
                    bytes(r[2]),
                    bytes(r[3]),
                    bytes(r[4]),
                    bytes(r[5]),
                    [bytes.fromhex(d) for d in json.loads(r[6])],
                    [bytes.fromhex(x) for x in json.loads(r[7])],
                    bytes(r[8]),
                    r[9],
                    None,
                )
            )
        if not blocks:
            raise StoreError(f"{self.path}: state without blocks")
        return _state_from_json(json.loads(meta["state"])), blocks, int(meta.get("finalized", "0"))

    def save(self, chain: Devnet, new_blocks: list[Block]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for b in new_blocks:
                self.db.execute("DELETE FROM blocks WHERE number >= ?", (b.number,))
                self.db.execute(
                    "INSERT INTO blocks VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        b.number,
                        b.hash,
                        b.parent_hash,
                        b.header,
                        b.state_root,
                        b.extrinsics_root,
                        json.dumps([d.hex() for d in b.digest]),
                        json.dumps([x.hex() for x in b.extrinsics]),
                        b.events,
                        b.timestamp,
                    ),
                )
            rows = [
                ("format", str(FORMAT)),
                ("finalized", str(chain.finalized_number)),
                ("state", json.dumps(_state_to_json(chain.state))),
            ]
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    def close(self) -> None:
        self.db.close()


def _state_to_json(st: WorldState) -> dict[str, Any]:
    return {
        "accounts": {k.hex(): list(v) for k, v in st.accounts.items()},
        "codes": {k.hex(): v.hex() for k, v in st.codes.items()},
        "code_owner": {k.hex(): [o.hex(), d] for k, (o, d) in st.code_owner.items()},
        "contracts": {
            a.hex(): {
                "code_hash": r.code_hash.hex(),
                "model": r.model,
                "deployer": r.deployer.hex(),
                "state": cx.state_to_json(r.state),
            }
            for a, r in st.contracts.items()
        },
        "timestamp": st.timestamp,
        "total_issuance": str(st.total_issuance),
        "sudo_key": st.sudo_key.hex(),
    }


def _state_from_json(d: dict[str, Any]) -> WorldState:
    return WorldState(
        accounts={bytes.fromhex(k): (int(v[0]), int(v[1]), int(v[2])) for k, v in d["accounts"].items()},
        codes={bytes.fromhex(k): bytes.fromhex(v) for k, v in d["codes"].items()},
        code_owner={bytes.fromhex(k): (bytes.fromhex(v[0]), int(v[1])) for k, v in d["code_owner"].items()},
        contracts={
            bytes.fromhex(a): ContractRecord(
                bytes.fromhex(r["code_hash"]),
                r["model"],
                cx.state_from_json(r["state"]),
                bytes.fromhex(r["deployer"]),
            )
            for a, r in d["contracts"].items()
        },
        timestamp=int(d["timestamp"]),
        total_issuance=int(d["total_issuance"]),
        sudo_key=bytes.fromhex(d["sudo_key"]),
    )
