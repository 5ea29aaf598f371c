"""The dashboard as a service: bad input gets a page that says what is wrong (and the server keeps serving),
stored data is never written, `ami dashboard` refuses what it cannot read, a validator's folder is served, and
the worker's own HTTP server mounts the pages with its live state and verified audio."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from processes import http_get
from waiting import until
from worker_fakes import FakeChain, FakeIpfs, FakeScorer
from worker_process import running, serving_http

from offchain.dashboard import DashboardConfig, dashboard_app
from offchain.dashboard.sources import resolve_source
from offchain.pipeline.ports import ContentMismatch
from tests.dashboard.conftest import Served, address, serve, stop


def get(url: str) -> tuple[int, str]:
    return http_get(url, timeout=30)


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/tracks/999", 404, "token 999 was not minted"),
        ("/tracks/abc", 400, "token must be a whole number"),
        ("/tracks?page=0", 400, "page must be 1 or more"),
        ("/tracks?page=two", 400, "page must be a whole number"),
        ("/tracks?sort=drop%20table", 400, "sort must be one of token, novelty, quality, block, status"),
        ("/tracks?order=sideways", 400, "order must be asc or desc"),
        ("/epochs/77", 404, "epoch 77 is not settled"),
        ("/accounts/nobody", 404, "account nobody was never paid"),
        ("/findings/evidence.json?subject=score:9:9", 404, "no audit of"),
        ("/static/..%2Fpages.py", 404, ""),
    ],
)
def test_bad_input_gets_a_page_saying_why_and_the_server_keeps_serving(
    served: Served, path: str, status: int, says: str
) -> None:
    code, body = get(served.url + path)
    assert code == status
    assert says.replace("'", "&#39;") in body or says in body
    assert "Traceback" not in body
    assert get(served.url + "/tracks")[0] == 200
    assert served.proc.poll() is None


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_every_page_leaves_the_databases_byte_for_byte_unchanged(served: Served, data_dir: Path) -> None:
    before = _digests(data_dir)
    for path in (
        "/",
        "/tracks?q=synthwave&sort=quality&order=desc",
        "/tracks/2",
        "/epochs/0",
        "/accounts",
        "/map",
        "/map.json",
        "/distributions",
        "/findings",
    ):
        assert get(served.url + path)[0] == 200, path
    assert _digests(data_dir) == before


def _ami(*args: str) -> subprocess.CompletedProcess[str]:
    ami = str(Path(sys.executable).with_name("ami"))
    return subprocess.run([ami, *args], capture_output=True, text=True, timeout=60)


def test_cli_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    missing = _ami("dashboard", "--db", str(tmp_path / "nope.sqlite"))
    assert missing.returncode == 2 and "no database at" in missing.stderr
    text = tmp_path / "notes.sqlite"
    text.write_text("this is not a database " * 100)
    bad = _ami("dashboard", "--db", str(text))
    assert bad.returncode == 2 and "not a SQLite database" in bad.stderr
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE songs (id INTEGER)")
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    foreign = _ami("dashboard", "--db", str(other))
    assert foreign.returncode == 2 and "neither a worker's database nor a validator's" in foreign.stderr
    assert "songs" in foreign.stderr
    assert hashlib.sha256(other.read_bytes()).hexdigest() == digest
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("songs",)]


def test_cli_listens_on_loopback_by_default_and_says_when_it_cannot_listen(
    served: Served, data_dir: Path
) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    out = _ami("dashboard", "--db", str(data_dir / "worker.sqlite"), "--host", "256.0.0.1")
    assert out.returncode == 2 and "cannot listen on 256.0.0.1:9616" in out.stderr


def test_a_validator_folder_is_served_with_its_findings(data_dir: Path) -> None:
    proc = serve("--db", str(data_dir / "validator"))
    try:
        url = address(proc)
        code, body = get(url + "/findings")
        assert code == 200 and "score:2:1" in body and "novelty differs" in body
        code, body = get(url + "/tracks")
        minted = sqlite3.connect(data_dir / "validator" / "ledger.sqlite").execute(
            "SELECT COUNT(*) FROM tracks"
        )
        assert code == 200 and f'<span data-k="total">{minted.fetchone()[0]}</span>' in body
    finally:
        stop(proc)
    assert proc.returncode == 0


async def test_audio_streams_the_fetched_bytes_and_reports_a_cid_mismatch(data_dir: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    good = b"RIFF" + bytes(range(256)) * 8
    row = sqlite3.connect(data_dir / "worker.sqlite").execute("SELECT audio_cid FROM tracks WHERE token_id=1")
    (cid1,) = row.fetchone()

    async def fetch(cid: str) -> bytes:
        if cid == cid1:
            return good
        raise ContentMismatch(f"{cid}: the bytes read hash to another CID")

    app = dashboard_app(DashboardConfig(resolve_source(data_dir / "worker.sqlite"), fetch_audio=fetch))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        r = await client.get("/tracks/1/audio")
        assert r.status == 200 and r.content_type == "audio/wav" and await r.read() == good
        r = await client.get("/tracks/2/audio")
        assert r.status == 502 and "hash to another CID" in await r.text()
        page = await (await client.get("/tracks/1")).text()
        assert '<audio controls preload="none" src="/tracks/1/audio">' in page


async def test_the_workers_server_mounts_the_dashboard_with_live_state(tmp_path: Path) -> None:
    import aiohttp

    from offchain.pipeline.worker import Worker, WorkerOptions
    from offchain.store import WorkerStore

    audio = b"RIFF-good-audio-1" * 4
    chain = FakeChain()
    chain.land(
        (
            "Minted",
            {
                "token_id": 1,
                "creator": "C1",
                "audio_cid": "QmGood",
                "metadata_cid": "QmMeta",
                "royalty_splits": [("C1", 10000)],
            },
        ),
        (
            "Minted",
            {
                "token_id": 2,
                "creator": "C2",
                "audio_cid": "QmCorrupt",
                "metadata_cid": "QmMeta",
                "royalty_splits": [("C2", 10000)],
            },
        ),
    )
    store = await WorkerStore.open(tmp_path / "worker.sqlite")
    ipfs = FakeIpfs({"QmGood": audio, "QmCorrupt": b"corrupt bytes"})
    worker = Worker(
        store, chain, ipfs, FakeScorer(), chain, chain, WorkerOptions(epoch_blocks=10, poll_s=0.02)
    )
    try:
        # HTTP first, as `ami run` starts them
        async with serving_http(worker) as base, running(worker), aiohttp.ClientSession() as http:
            # Wait for the events the page must show: token 1's score published on chain (the block that
            # lands it is the last one), token 2 rejected, and the worker at that head with it written.
            async def settled() -> bool:
                cp = await store.checkpoint()
                track = await store.track(1)
                return (
                    track is not None
                    and track.status == "published"
                    and cp is not None
                    and cp[0] == chain.head == worker.head
                )

            await until(settled, "track 1 published and the worker at the head with it written")
            async with http.get(base + "/") as r:
                page = await r.text()
            assert f'data-k="head">{worker.head}<' in page
            cp = await store.checkpoint()
            assert cp is not None and f'data-k="checkpoint">{cp[0]}<' in page
            async with http.get(base + "/tracks/1/audio") as r:
                assert r.status == 200 and await r.read() == audio
            async with http.get(base + "/tracks/2") as r:
                assert "undecodable" in await r.text()
            async with http.get(base + "/healthz") as r:
                assert r.status == 200
    finally:
        await store.close()


def test_the_map_follows_a_growing_catalogue_without_making_pages_wait(
    data_dir: Path, tmp_path: Path
) -> None:
    import json
    import shutil
    import time

    import numpy as np

    from scoring.catalog import Catalogue

    folder = tmp_path / "copy"
    shutil.copytree(data_dir, folder, ignore=shutil.ignore_patterns("validator"))
    proc = serve("--db", str(folder / "worker.sqlite"))

    def points(url: str) -> list[int]:
        code, body = get(url + "/map.json")
        assert code == 200
        return sorted(i for t in json.loads(body)["data"] for i in t["customdata"])

    try:
        url = address(proc)
        assert points(url) == [1, 2, 3, 4, 5, 6, 7]
        cat = Catalogue.load(folder / "catalogue")
        row = np.zeros((1, cat.dim))
        row[0, 2] = 1.0
        cat.add(["token:8"], row, labels=["synthwave"], pcm_sha256=["8" * 64])
        cat.save(folder / "catalogue")
        # The next requests answer at once (with the previous map) while it is rebuilt in the background;
        # wait for the event: the rebuilt map holding the new track.
        deadline = time.monotonic() + 60
        while (got := points(url)) != [1, 2, 3, 4, 5, 6, 7, 8]:
            assert got == [1, 2, 3, 4, 5, 6, 7]
            assert time.monotonic() < deadline, "the map never picked up the new catalogue entry"
            time.sleep(0.1)
    finally:
        stop(proc)
