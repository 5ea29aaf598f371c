"""`ami rebuild-catalogue`: a worker whose catalogue an older model wrote is refused at start, naming the
command; the command rebuilds it from the worker's database and the real IPFS node (loopback) with the real
engine, to the root a validator rescoring the same tokens from scratch computes (`EngineRescorer`), keeps the
old folder byte for byte, replaces unsubmitted scores, and the worker then scores the next mint against it.
IPFS going away mid-rebuild, or a token's audio missing, leaves the old catalogue untouched and in place."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from worker_fakes import ALICE, track_metadata, wav_bytes

from offchain.audit.engine import EngineRescorer
from offchain.cli import app
from offchain.ipfs.cid import compute_cid
from offchain.ipfs.client import IpfsClient
from offchain.ipfs.node import LocalIpfsNode
from offchain.pipeline.adapters import IpfsContentFetcher
from offchain.pipeline.catalogue_rebuild import (
    CatalogueUnusable,
    RebuildError,
    catalogue_dir,
    check_catalogue,
    rebuild_catalogue,
)
from offchain.pipeline.scoring import EngineTrackScorer
from offchain.pipeline.worker import Worker, WorkerOptions
from offchain.projection import BlockData, typed_event
from offchain.scoring_rule import declared_genre
from offchain.sqlite import instance_lock
from offchain.store import WorkerStore
from scoring.testsignals import varied_music
from scoring.versions import MODEL_VERSION

OPTIONS = WorkerOptions(poll_s=0.02, backoff_initial_s=0.01, backoff_max_s=0.02, scoring_workers=1)


class _NoChain:
    """The worker's publisher and payout ports, unused here: `score_one` only records."""

    async def publish_score(self, *_: object) -> None:
        raise AssertionError("nothing is published in these tests")

    async def enqueue_payouts(self, *_: object) -> int:
        raise AssertionError("nothing is paid in these tests")


async def _mint_and_score(
    db: Path, client: IpfsClient, tracks: list[tuple[int, bytes, str]]
) -> dict[int, tuple[bytes, bytes]]:
    """Mint (token, audio, genre) on IPFS and in the store, and score each with the real worker stage;
    returns each token's (audio, metadata) as the node holds them."""
    content: dict[int, tuple[bytes, bytes]] = {}
    events: list[Any] = []
    for token, audio, genre in tracks:
        audio_cid = await client.add(audio)
        meta = track_metadata(audio, genre, "Piece", 20.0)
        meta_cid = await client.add(meta)
        content[token] = (audio, meta)
        fields = {
            "token_id": token,
            "creator": ALICE,
            "audio_cid": audio_cid,
            "metadata_cid": meta_cid,
            "royalty_splits": [(ALICE, 10_000)],
        }
        events.append(typed_event("Minted", len(events), fields, contract="5Contract"))
    store = await WorkerStore.open(db)
    scorer = EngineTrackScorer(catalogue_dir(db), device="cpu")
    try:
        first = (await store.checkpoint() or (0, ""))[0] + 1
        await store.ingest([BlockData(first, f"0x{first:02x}", events)])
        chain: Any = _NoChain()
        worker = Worker(store, chain, IpfsContentFetcher(client), scorer, chain, chain, OPTIONS)
        for token, _, _ in tracks:
            await worker.score_one(token)
    finally:
        await scorer.close()
        await store.close()
    return content


def _age(folder: Path) -> dict[str, bytes]:
    """Make the catalogue in `folder` one an older model wrote (its manifest's version); its files' bytes."""
    manifest = folder / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["version"] = "ami-catalog/3"
    manifest.write_text(json.dumps(doc, indent=1))
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


async def _check(db: Path) -> int:
    store = await WorkerStore.open(db)
    try:
        return await check_catalogue(catalogue_dir(db), store)
    finally:
        await store.close()


async def _rows(db: Path) -> dict[int, tuple[str, str | None, int | None, str | None]]:
    store = await WorkerStore.open(db)
    try:
        return {t.token_id: (t.status, t.reason, t.model_version, t.commitment) for t in await store.tracks()}
    finally:
        await store.close()


async def _as_older_model(db: Path, token: int, *, handed: bool) -> None:
    """Give `token` a score of model 3, as the worker stored it before the upgrade (handed or not)."""
    store = await WorkerStore.open(db)
    try:
        await store.record_score(token, 1234, 4321, MODEL_VERSION - 1, b"\x01" * 32, {"old": True})
        if handed:
            await store.mark_score_submitted(token)
    finally:
        await store.close()


def test_rebuild_carries_the_worker_across_a_model_change(
    ipfs_node: LocalIpfsNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = varied_music(8, 20.0, seed=11)
    tracks = [
        (1, wav_bytes(pieces[0]), "Bach chorale"),
        (2, wav_bytes(pieces[2]), "Folk song"),
        (3, wav_bytes(0.8 * pieces[0]), "Bach chorale"),  # a gain-changed duplicate of token 1
        (4, b"corrupt, not audio" * 100, "Folk song"),  # undecodable: never in the catalogue
        (5, wav_bytes(pieces[5]), "vaporwave"),
    ]
    db = tmp_path / "worker.sqlite"
    folder = catalogue_dir(db)

    async def worker_state() -> dict[int, tuple[bytes, bytes]]:
        async with IpfsClient(ipfs_node.api_url, node_timeout=2) as client:
            return await _mint_and_score(db, client, tracks)

    content = asyncio.run(worker_state())
    rows = asyncio.run(_rows(db))
    assert {t: r[:2] for t, r in rows.items()} == {
        1: ("scored", None),
        2: ("scored", None),
        3: ("rejected", "duplicate"),
        4: ("rejected", "undecodable"),
        5: ("scored", None),
    }
    asyncio.run(_as_older_model(db, 1, handed=True))  # in the submitter's hands: it keeps its model
    asyncio.run(_as_older_model(db, 2, handed=False))  # never handed: it gets the current model's score
    old_ids = json.loads((folder / "manifest.json").read_text())["ids"]
    assert old_ids == ["token:1", "token:2", "token:3", "token:5"]
    old_files = _age(folder)

    # Before: the worker refuses to start, saying what to run; so does a lost catalogue.
    with pytest.raises(CatalogueUnusable, match="ami-catalog/3.*`ami rebuild-catalogue`"):
        asyncio.run(_check(db))
    hidden = folder.rename(tmp_path / "elsewhere")
    with pytest.raises(CatalogueUnusable, match="missing, but 4 scored tracks entered it"):
        asyncio.run(_check(db))
    hidden.rename(folder)

    monkeypatch.setenv("AMI_DB_PATH", str(db))
    monkeypatch.setenv("AMI_IPFS_API_URL", ipfs_node.api_url)
    monkeypatch.setenv("AMI_DEVICE", "cpu")
    # Refused while a daemon holds the database: nothing is read or moved.
    with instance_lock(db, "ami run"):
        locked = CliRunner().invoke(app, ["rebuild-catalogue"])
    assert locked.exit_code == 2 and "is in use by another ami run" in locked.output
    assert {p.name: p.read_bytes() for p in sorted(folder.iterdir())} == old_files

    out = CliRunner().invoke(app, ["rebuild-catalogue", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)

    # The validator's from-scratch rescoring of the same tokens, in token order: the independent root.
    validator = EngineRescorer("cpu")
    rescored = {t: validator.rescore(t, audio, declared_genre(meta)) for t, (audio, meta) in content.items()}
    assert report["root_hash"] == validator.catalogue.root_hash()
    assert report["entries"] == 4 and report["left_out"].keys() == {"4"}
    rebuilt = json.loads((folder / "manifest.json").read_text())
    assert rebuilt["ids"] == old_ids and "token:4" not in rebuilt["ids"]
    assert rebuilt["root_hash"] == validator.catalogue.root_hash()
    backup = Path(report["backup"])
    assert backup == tmp_path / "catalogue.ami-catalog-3.bak"
    assert {p.name: p.read_bytes() for p in sorted(backup.iterdir())} == old_files
    assert asyncio.run(_check(db)) == 4

    # Scores: the handed one keeps model 3; the unhanded one is the current model's, as a validator has it.
    after = asyncio.run(_rows(db))
    assert after[1] == ("submitted", None, MODEL_VERSION - 1, "0x" + "01" * 32)
    assert after[2][:3] == ("scored", None, MODEL_VERSION)
    assert after[2][3] == "0x" + (rescored[2].commitment or b"").hex()
    assert report["rescored_unsubmitted"] == [2, 5]

    # The worker then scores the next mint against the rebuilt catalogue, exactly as the validator does.
    late = wav_bytes(pieces[1])

    async def next_mint() -> dict[int, tuple[bytes, bytes]]:
        async with IpfsClient(ipfs_node.api_url, node_timeout=2) as client:
            return await _mint_and_score(db, client, [(6, late, "Bach chorale")])

    (audio6, meta6) = asyncio.run(next_mint())[6]
    row6 = asyncio.run(_rows(db))[6]
    expected = validator.rescore(6, audio6, declared_genre(meta6))
    assert row6[0] == "scored" and row6[3] == "0x" + (expected.commitment or b"").hex()
    assert json.loads((folder / "manifest.json").read_text())["ids"] == [*old_ids, "token:6"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _StopsAfter:
    """A content fetcher whose IPFS node goes away after `n` fetches (then: a real refused connection)."""

    def __init__(self, live: IpfsContentFetcher, gone: IpfsContentFetcher, n: int) -> None:
        self.live, self.gone, self.left = live, gone, n

    async def fetch(self, cid: str, max_bytes: int) -> bytes:
        self.left -= 1
        return await (self.live if self.left >= 0 else self.gone).fetch(cid, max_bytes)


def test_rebuild_failures_leave_the_old_catalogue_in_place(ipfs_node: LocalIpfsNode, tmp_path: Path) -> None:
    pieces = varied_music(4, 12.0, seed=5)
    db = tmp_path / "worker.sqlite"
    folder = catalogue_dir(db)

    async def scenario() -> None:
        async with IpfsClient(ipfs_node.api_url, node_timeout=2) as client:
            await _mint_and_score(
                db, client, [(1, wav_bytes(pieces[0]), "Folk song"), (2, wav_bytes(pieces[2]), "Folk song")]
            )
            old_files = _age(folder)
            store = await WorkerStore.open(db)
            gone = IpfsClient(f"http://127.0.0.1:{_closed_port()}", retries=0, connect_timeout=1)
            try:
                # IPFS stops after token 1's audio and metadata were read.
                fetcher = _StopsAfter(IpfsContentFetcher(client), IpfsContentFetcher(gone), 2)
                with pytest.raises(RebuildError, match="IPFS is unreachable at token 2.*nothing was changed"):
                    await rebuild_catalogue(store, folder, fetcher, device="cpu")  # type: ignore[arg-type]
                # Token 2's audio is nowhere to be found (a CID no node holds).
                unheld = compute_cid(b"never added to any node " * 10, 1)  # a valid CID no node holds
                await store._db.execute("UPDATE tracks SET audio_cid=? WHERE token_id=2", (unheld,))
                with pytest.raises(RebuildError, match="audio of token 2 .* cannot be read: not_found"):
                    await rebuild_catalogue(store, folder, IpfsContentFetcher(client), device="cpu")
            finally:
                await gone.close()
                await store.close()
            assert {p.name: p.read_bytes() for p in sorted(folder.iterdir())} == old_files
            assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("catalogue")) == [
                "catalogue"
            ]

    asyncio.run(scenario())
