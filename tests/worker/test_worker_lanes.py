"""The scoring stage's lanes on in-memory fakes: one verdict per track, fairness between creators, a retry
lane for missing content with readmission, and scorer failures that never block the queue."""

from __future__ import annotations

import asyncio

from test_worker_pipeline import mint
from waiting import until
from worker_fakes import FakeChain, FakeIpfs, FakeScorer
from worker_process import running

from offchain.pipeline.ports import ContentNotFound, ScoreOutcome, ScorerCrashed, ScoringTimedOut
from offchain.pipeline.worker import Worker, WorkerOptions
from offchain.scoring_rule import DeclaredGenre
from offchain.store import WorkerStore

GOOD = b"RIFF-honest-track" * 3


def lane_options(**kw: object) -> WorkerOptions:
    """Two fetch lanes and a retry lane, three fetch attempts, quick timings, no epoch end; `kw` overrides."""
    base: dict[str, object] = {
        "epoch_blocks": 1000,
        "fetch_workers": 2,
        "retry_workers": 1,
        "fetch_attempts": 3,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "poll_s": 0.02,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.1,
        "readmit_after_s": 0.2,
        "order_wait_s": 0.05,
    }
    return WorkerOptions(**{**base, **kw})  # type: ignore[arg-type]


class StallingIpfs(FakeIpfs):
    """Content under a "QmStall" CID never comes until `release` is set (a node searching the network)."""

    def __init__(self, content: dict[str, bytes]) -> None:
        super().__init__(content)
        self.release = asyncio.Event()
        self.stalled: set[str] = set()

    async def fetch(self, cid: str, max_bytes: int) -> bytes:
        if cid.startswith("QmStall"):
            self.stalled.add(cid)
            await self.release.wait()
            raise ContentNotFound(f"{cid} not found")
        if cid == "QmBoom":
            raise RuntimeError("a bug in a fetcher")
        return await super().fetch(cid, max_bytes)


async def _status(store: WorkerStore, token: int) -> str | None:
    t = await store.track(token)
    return t.status if t else None


async def test_one_creators_stalled_mints_do_not_delay_another_creators_track(store: WorkerStore) -> None:
    chain = FakeChain()
    ipfs = StallingIpfs({"QmGood": GOOD, "QmMeta": b"{}"})
    hostile = [mint(i, "Mallory", f"QmStall{i}") for i in range(1, 201)]
    chain.land(*hostile, mint(201, "Honest", "QmGood"))
    worker = Worker(store, chain, ipfs, FakeScorer(), chain, chain, lane_options())
    async with running(worker, stop_timeout=None):
        try:
            # Both fetch slots were handed out fairly: one to Mallory, one to Honest, whose track is published
            # while Mallory's first mint is still stalled.
            async def published() -> bool:
                return await _status(store, 201) == "published"

            await until(published, 10)
            assert ipfs.stalled and not ipfs.release.is_set() and await _status(store, 1) == "pending"
        finally:
            ipfs.release.set()


async def test_missing_content_is_retried_rejected_then_readmitted(store: WorkerStore) -> None:
    chain = FakeChain()
    ipfs = FakeIpfs({"QmMeta": b"{}"})
    chain.land(mint(1, "C1", "QmLater"))
    worker = Worker(store, chain, ipfs, FakeScorer(), chain, chain, lane_options())
    async with running(worker, stop_timeout=None):

        async def rejected() -> bool:
            t = await store.track(1)
            return t is not None and t.status == "rejected"

        await until(rejected, 10)
        t = await store.track(1)
        assert t is not None and t.reason == "not_found" and t.attempts == 3
        fetches = ipfs.fetches
        ipfs.content["QmLater"] = GOOD  # the creator finally provides the content

        async def published() -> bool:
            return await _status(store, 1) == "published"

        await until(published, 10)
        assert ipfs.fetches > fetches
        text = worker.metrics.render().decode()
        assert 'ami_worker_tracks_retried_total{reason="not_found"}' in text


class FlakyScorer(FakeScorer):
    """Token 1's process crashes once, token 2 always times out, token 3 is fine."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed = False

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        if token_id == 1 and not self.crashed:
            self.crashed = True
            raise ScorerCrashed("scorer_crashed", "the scoring process died")
        if token_id == 2:
            raise ScoringTimedOut("scoring_timeout", "took longer than 1 s")
        return await super().score(token_id, audio, declared)


async def test_each_track_gets_one_verdict_whatever_fails(store: WorkerStore) -> None:
    chain = FakeChain()
    ipfs = StallingIpfs({"QmA": GOOD, "QmB": GOOD + b"2", "QmC": GOOD + b"3", "QmMeta": b"{}"})
    chain.land(
        mint(1, "C1", "QmA"),
        mint(2, "C2", "QmB"),
        mint(3, "C3", "QmC"),
        mint(4, "C4", "QmBoom"),
    )
    worker = Worker(store, chain, ipfs, FlakyScorer(), chain, chain, lane_options())
    async with running(worker, stop_timeout=None):

        async def settled() -> bool:
            return {t.status for t in await store.tracks()} <= {"published", "rejected"} and len(
                await store.tracks()
            ) == 4

        await until(settled, 10)
        verdicts = {t.token_id: (t.status, t.reason) for t in await store.tracks()}
        assert verdicts == {
            1: ("published", None),  # retried after the crash, then scored
            2: ("rejected", "scoring_timeout"),
            3: ("published", None),
            4: ("rejected", "internal"),  # the fetcher's bug rejects this track only
        }
        assert not [k for k in worker.last_error if k.startswith("scorer-")]
        text = worker.metrics.render().decode()
        assert 'ami_worker_tracks_rejected_total{reason="internal"} 1.0' in text
        assert "ami_worker_scorer_restarts_total 2.0" in text


class SlowFirstIpfs(FakeIpfs):
    """ "QmSlow" arrives after `delay` seconds; everything else at once."""

    def __init__(self, content: dict[str, bytes], delay: float) -> None:
        super().__init__(content)
        self.delay = delay

    async def fetch(self, cid: str, max_bytes: int) -> bytes:
        if cid == "QmSlow":
            await asyncio.sleep(self.delay)
        return await super().fetch(cid, max_bytes)


class OrderScorer(FakeScorer):
    def __init__(self) -> None:
        super().__init__()
        self.order: list[int] = []

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        self.order.append(token_id)
        return await super().score(token_id, audio, declared)


async def test_catalogue_order_is_mint_order_when_content_comes(store: WorkerStore) -> None:
    chain = FakeChain()
    # Token 1's content takes a moment; token 2's is there at once, but is scored second (mint order).
    ipfs = SlowFirstIpfs({"QmSlow": GOOD, "QmFast": GOOD + b"fast", "QmMeta": b"{}"}, delay=0.3)
    chain.land(mint(1, "C1", "QmSlow"), mint(2, "C2", "QmFast"))
    scorer = OrderScorer()
    worker = Worker(store, chain, ipfs, scorer, chain, chain, lane_options(order_wait_s=5.0))
    async with running(worker, stop_timeout=None):

        async def both() -> bool:
            return len(scorer.order) == 2

        await until(both, 10)
        assert scorer.order == [1, 2]
