"""Dashboard page server time on a 100,000-track worker database, against the same pages on 1,000 tracks.

Builds both databases through the worker's own store (Minted events, record_score, a settled epoch with
payouts) and a catalogue of unit embeddings, serves the dashboard in-process on 127.0.0.1 and times each page
request (server time: loopback, no browser). Prints per page the median of 5 requests at both sizes, the
ratio (about 1 when paging works), and the target (< 1 s at 100,000 tracks); plus the one-off map build
and, as a second baseline, the store's own unpaged read of every track.

    .venv/bin/python bench/dashboard.py [--tracks 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

# `python bench/dashboard.py` puts bench/ first on sys.path, where bench/scoring.py would shadow the scoring
# package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from offchain.dashboard import DashboardConfig, dashboard_app  # noqa: E402
from offchain.dashboard.embedding_map import build_map  # noqa: E402
from offchain.dashboard.queries import Queries  # noqa: E402
from offchain.dashboard.sources import resolve_source  # noqa: E402
from offchain.economics import EpochSettlement, SettledPayout, payout_id  # noqa: E402
from offchain.projection import BlockData, typed_event  # noqa: E402
from offchain.store import WorkerStore  # noqa: E402
from pallets_spec.vocabulary import PayoutKind  # noqa: E402
from scoring.catalog import Catalogue  # noqa: E402

E = 1000
GENRES = ("bach_chorale", "folk_song", "ragtime_piano", "string_quartet", "synthwave")
# Score details the size the worker stores (hashes, versions, matches: about 1.2 kB a track), so that the
# tables are as wide as in production.
VERSIONS = ("model", "score", "decoder", "features", "fingerprint", "catalog", "novelty", "quality", "rule")
DETAILS = {
    "pcm_sha256": "a" * 64,
    "features_sha256": "b" * 64,
    "catalogue_root": "c" * 64,
    "versions": {k: f"ami-{k}/1 with a build string" for k in VERSIONS},
    "typicality": 0.5,
    "originality": 0.5,
    "coherence": 0.5,
    "nearest_similarity": 0.5,
    "matches": {f"token:{i}": {"fp": 0.5, "c2d": 0.6, "emb": 0.7} for i in range(1, 4)},
    "declared_genre": "Some genre",
}
PAGES = (
    "/",
    "/tracks",
    "/tracks?sort=novelty&order=desc&page={deep}",
    "/tracks?q=ragtime",
    "/tracks/{mid}",
    "/epochs/0",
    "/accounts",
    "/accounts/creator7",
    "/distributions",
    "/map",
    "/map.json",
    "/findings",
)


async def build(folder: Path, n: int) -> None:
    store = await WorkerStore.open(folder / "worker.sqlite")
    rng = np.random.default_rng(1)
    per_block = 50
    blocks = []
    for b in range(n // per_block):
        evs = [
            typed_event(
                "Minted",
                i,
                {
                    "token_id": b * per_block + i + 1,
                    "creator": f"creator{(b * per_block + i) % 997}",
                    "audio_cid": f"bafyaudio{b * per_block + i + 1}",
                    "metadata_cid": f"bafymeta{b * per_block + i + 1}",
                    "royalty_splits": [(f"creator{(b * per_block + i) % 997}", 10000)],
                },
            )
            for i in range(per_block)
        ]
        blocks.append(BlockData(b + 1, f"0x{b + 1:064x}", tuple(evs)))
    for i in range(0, len(blocks), 200):
        await store.ingest(blocks[i : i + 200])
    nov = rng.integers(0, 10_001, n)
    qual = rng.integers(0, 10_001, n)
    await store._db.execute("BEGIN")  # one transaction: the bench's set-up, not the code under test
    for t in range(1, n + 1):
        details = {**DETAILS, "genre_z": float(rng.normal()), "scored_genre": GENRES[t % 5]}
        await store.record_score(t, int(nov[t - 1]), int(qual[t - 1]), 1, bytes(32), details)
    await store._db.execute("COMMIT")
    payouts = tuple(
        SettledPayout(
            payout_id("bench", 0, PayoutKind.CREATE, f"creator{a}", a + 1),
            0,
            PayoutKind.CREATE,
            f"creator{a}",
            a + 1,
            100 + a,
            f"created token {a + 1}",
        )
        for a in range(min(n, 20_000))
    )
    budgets = {"create": 10**9}
    paid = {"create": sum(p.amount for p in payouts)}
    settlement = EpochSettlement(0, "bench", payouts, budgets, paid, {"create": 10**9 - paid["create"]}, {})
    await store.save_settlement(settlement, 0, E - 1)
    await store.close()
    emb = rng.standard_normal((n, 128)).astype(np.float32)
    cat = Catalogue(128, 0)
    cat.add(
        [f"token:{t}" for t in range(1, n + 1)],
        emb,
        labels=[GENRES[t % 5] for t in range(1, n + 1)],
        pcm_sha256=[f"{t:064x}" for t in range(1, n + 1)],
    )
    cat.save(folder / "catalogue")


async def time_pages(folder: Path, n: int) -> dict[str, float]:
    source = resolve_source(folder / "worker.sqlite")
    app = dashboard_app(DashboardConfig(source, epoch_blocks=E))
    out: dict[str, float] = {}
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await (await client.get("/map.json")).read()  # the map is precomputed once per catalogue state
        for page in PAGES:
            path = page.format(mid=n // 2, deep=max(1, n // 100))  # a page half-way down the sorted list
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                r = await client.get(path)
                await r.read()
                times.append(time.perf_counter() - t0)
                assert r.status == 200, (path, r.status)
            out[page] = statistics.median(times)
    return out


async def unpaged_read(folder: Path) -> float:
    store = await WorkerStore.open(folder / "worker.sqlite")
    t0 = time.perf_counter()
    await store.tracks()
    dt = time.perf_counter() - t0
    await store.close()
    return dt


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as big_dir, tempfile.TemporaryDirectory() as small_dir:
        big, small = Path(big_dir), Path(small_dir)
        t0 = time.perf_counter()
        await build(big, n)
        await build(small, 1000)
        print(f"built {n:,} and 1,000 tracks in {time.perf_counter() - t0:.1f} s")
        q = await Queries.open(resolve_source(big / "worker.sqlite"))
        info = await q.track_points()
        await q.close()
        t0 = time.perf_counter()
        m = build_map(big / "catalogue", info, E)
        print(
            f"map of {len(m.tokens):,} tracks built once (in the background):"
            f" {time.perf_counter() - t0:.2f} s"
        )
        small_t = await time_pages(small, 1000)
        big_t = await time_pages(big, n)
        print(f"{'page':45} {'1k tracks':>10} {f'{n // 1000}k tracks':>11} {'ratio':>6}  < 1 s")
        for page in PAGES:
            a, b = small_t[page], big_t[page]
            print(f"{page:45} {a * 1000:8.1f}ms {b * 1000:9.1f}ms {b / a:6.2f}  {'yes' if b < 1 else 'NO'}")
        naive = await unpaged_read(big)
        worst = max(big_t.values())
        print(
            f"slowest page at {n:,} tracks: {worst * 1000:.0f} ms; the store's unpaged read of every track:"
            f" {naive * 1000:.0f} ms (ratio slowest page / unpaged read {worst / naive:.2f})"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    asyncio.run(main(ap.parse_args().tracks))
