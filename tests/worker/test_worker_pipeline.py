"""The pipeline end to end on in-memory fakes: mints scored and published, bad tracks rejected with a reason,
listens settled into payouts that match the policy by hand, each paid exactly once across restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from waiting import Calls, until
from worker_fakes import FakeChain, FakeIpfs, FakeScorer
from worker_process import running, serving_http

from offchain.economics import PolicyParams
from offchain.pipeline.worker import Worker, WorkerOptions
from offchain.store import WorkerStore
from pallets_spec.vocabulary import PayoutKind

AUDIO = b"RIFF-good-audio-1" * 4
SPLITS = [("C1", 7000), ("P1", 3000)]


def options() -> WorkerOptions:
    return WorkerOptions(
        epoch_blocks=10,
        policy=PolicyParams(
            budgets={
                PayoutKind.CREATE: 1000,
                PayoutKind.LISTEN: 900,
                PayoutKind.ENGAGEMENT: 100,
                PayoutKind.ROYALTY: 100,
            },
            listen_reward_per_wallet=500,
            min_listen_seconds=30,
        ),
        max_audio_bytes=100,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        poll_s=0.02,
    )


def mint(token: int, creator: str, cid: str, splits: list[tuple[str, int]] | None = None) -> tuple[str, dict]:
    return (
        "Minted",
        {
            "token_id": token,
            "creator": creator,
            "audio_cid": cid,
            "metadata_cid": "QmMeta",
            "royalty_splits": splits or [(creator, 10000)],
        },
    )


def listen(token: int, who: str, seconds: int) -> tuple[str, dict]:
    return ("Listened", {"token_id": token, "listener": who, "seconds": seconds})


def make(chain: FakeChain, store: WorkerStore, ipfs: FakeIpfs, scorer: FakeScorer | None = None) -> Worker:
    return Worker(store, chain, ipfs, scorer or FakeScorer(), chain, chain, options())


def scenario() -> tuple[FakeChain, FakeIpfs]:
    chain = FakeChain()
    ipfs = FakeIpfs({"QmGood": AUDIO, "QmCorrupt": b"corrupt bytes", "QmDup": AUDIO, "QmBig": b"x" * 200})
    chain.land(
        mint(1, "C1", "QmGood", SPLITS),
        mint(2, "C2", "QmCorrupt"),
        mint(3, "C3", "QmDup"),
        mint(4, "C4", "not-a-cid"),
        mint(5, "C5", "QmBig"),
    )
    return chain, ipfs


def land_activity(chain: FakeChain) -> None:
    chain.land(
        ("Tagged", {"token_id": 1, "curator": "K", "tag": "baroque"}),
        *(listen(1, "L1", 60) for _ in range(4)),
        listen(1, "L2", 45),
        listen(1, "C1", 60),  # the creator: self-dealing, ignored
        listen(1, "L3", 10),  # too short
        listen(2, "L2", 60),  # a rejected track: never scored, earns nothing
    )


async def test_pipeline_end_to_end_with_fakes(store: WorkerStore) -> None:
    chain, ipfs = scenario()
    worker = make(chain, store, ipfs)
    async with running(worker):
        # Track 1 scored and published (its ScoreSubmitted lands in block 2); the others rejected with a
        # reason.
        await until(lambda: (1, 1) in chain.scored)
        await until(lambda: store.track(1), timeout=5)

        async def statuses() -> dict[int, tuple[str, str | None]]:
            return {t.token_id: (t.status, t.reason) for t in await store.tracks()}

        await until(lambda: _all_done(statuses))
        land_activity(chain)
        chain.land_empty_until(10)  # epoch 0 = blocks 0..9 is now final
        await until(lambda: len(chain.paid) == 6)
        await until(lambda store=store: _count(store, "payouts_paid", 6))

    assert await statuses() == {
        1: ("published", None),
        2: ("rejected", "undecodable"),
        3: ("rejected", "duplicate"),
        4: ("rejected", "bad_cid"),
        5: ("rejected", "too_large"),
    }
    paid = {(acc, kind): amount for acc, amount, kind, _epoch in chain.paid.values()}
    # By hand: create 1000 -> C1 (only scored track). Listen: L1 4 listens = 2000 credits, L2 1 = 1000 ->
    # 600 / 300 of 900, L1 capped at 500, the 100 excess unallocated. Engagement 100: K tagged before both.
    # Royalty 100 -> token 1's pool, 70/30 per its splits.
    assert paid == {
        ("C1", 0): 1000,
        ("L1", 1): 500,
        ("L2", 1): 300,
        ("K", 3): 100,
        ("C1", 4): 70,
        ("P1", 4): 30,
    }
    (epoch,) = await store.epochs()
    assert epoch["paid"]["listen"] == 800 and epoch["unallocated"]["listen"] == 100


async def _all_done(statuses) -> bool:  # type: ignore[no-untyped-def]
    return (
        all(s in ("published", "rejected") for s, _ in (await statuses()).values())
        and len(await statuses()) == 5
    )


async def _count(store: WorkerStore, key: str, n: int) -> bool:
    return (await store.counts())[key] == n


async def test_restarts_pay_each_payout_exactly_once(tmp_path: Path) -> None:
    chain, ipfs = scenario()
    chain.auto_land = False  # the "submitter" holds what it was given until we flush
    db = tmp_path / "w.sqlite"
    for round_ in range(3):
        store = await WorkerStore.open(db)
        worker = make(chain, store, ipfs)
        async with running(worker):
            if round_ == 0:
                await until(lambda: (1, 1) in chain.scored)
                chain.flush()
                land_activity(chain)
                chain.land_empty_until(12)
                await until(lambda: len(chain.paid) == 6)
                await until(lambda store=store: _count(store, "payouts_pending", 6))
            elif round_ == 1:
                # As if the last run died between the hand-off and marking it: the same payouts are handed
                # again, and the submitter / contract pay each id once.
                await until(lambda: chain.enqueue_calls >= 3)
                chain.flush()
                await until(lambda store=store: _count(store, "payouts_paid", 6))
            else:
                chain.land_empty_until(15)
                await until(lambda store=store: _checkpoint_at(store, 15))
        if round_ == 0:
            await store.mark_payouts([p.payout_id for p in await store.payouts()], "pending")
        assert len(await store.epochs()) == 1
        await store.close()
    paid_events = [e for b in chain.history for e in b.events if e.label == "Paid"]
    assert len(paid_events) == 6 == len({e.payout_id for e in paid_events})
    assert sum(a for _, a, _, _ in chain.paid.values()) == 1000 + 800 + 100 + 100


async def test_outages_are_waited_out(store: WorkerStore) -> None:
    chain, ipfs = scenario()
    ipfs.down = True
    worker = make(chain, store, ipfs)
    async with running(worker) as task:
        await until(lambda: ipfs.fetches >= 3)
        assert (await store.track(1)).status == "pending"  # never held against the track
        heads = Calls(chain, "finalized_number")
        chain.down = True
        await heads.more(2)  # the head watcher failed, was restarted and asked again: it outlived the outage
        assert not task.done()
        assert worker.last_error.keys() & {"follower", "head"}
        chain.down = False
        ipfs.down = False
        await until(lambda: (1, 1) in chain.scored)
        chain.land_empty_until(5)
        await until(lambda: _checkpoint_at(store, 5))


async def _checkpoint_at(store: WorkerStore, n: int) -> bool:
    cp = await store.checkpoint()
    return cp is not None and cp[0] >= n


async def test_http_ready_follows_outages_and_metrics_count(store: WorkerStore) -> None:
    import aiohttp

    chain, ipfs = scenario()
    worker = make(chain, store, ipfs)
    # HTTP first, as `ami run` starts them: the dashboard adds its indexes on start, and a schema change
    # committed while the lanes read makes one of them fail once and fetch its track again
    async with serving_http(worker) as base, running(worker):
        async with aiohttp.ClientSession() as http:

            async def ready() -> int:
                async with http.get(f"{base}/readyz") as r:
                    return r.status

            await until(lambda: _is(ready, 200))
            chain.down = True
            await until(lambda: _is(ready, 503))
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
            assert any("fake node unreachable" in reason for reason in body["reasons"])
            chain.down = False
            await until(lambda: _is(ready, 200))

            async def metrics() -> str:
                async with http.get(f"{base}/metrics") as r:
                    return await r.text()

            # the last rejection is counted once its verdict is recorded, and the follower catches up after
            # the outage: wait for both, not for a fixed time
            await until(lambda: _has(metrics, 'ami_worker_tracks_scored_total{result="rejected"} 4.0'))
            await until(lambda: _has(metrics, "ami_worker_blocks_behind_head 0.0"))
            text = await metrics()
            # latency histograms in seconds: one observation per fetched track (3 of the 5 have content) and
            # per track the scorer saw (1 scored, 2 rejected by it; the other 2 never reached it)
            assert "# TYPE ami_worker_score_seconds histogram" in text
            assert "ami_worker_fetch_seconds_count 3.0" in text
            assert 'ami_worker_score_seconds_count{result="scored"} 1.0' in text
            assert 'ami_worker_score_seconds_count{result="rejected"} 2.0' in text
            assert "ami_worker_blocks_behind_head 0.0" in text
            async with http.get(f"{base}/") as r:
                assert "AMI worker" in await r.text()
        # Loopback unless configured otherwise (a container sets its compose address on purpose).
        from offchain.config import WorkerSettings

        assert WorkerSettings.model_fields["http_host"].default == "127.0.0.1"


async def _has(probe: Callable[[], object], line: str) -> bool:
    return line in await probe()  # type: ignore[misc,operator]


async def _is(probe: Callable[[], object], status: int) -> bool:
    return await probe() == status  # type: ignore[misc]


async def test_a_scorer_lane_that_recovers_from_a_locked_store_is_ready_again(store: WorkerStore) -> None:
    import sqlite3

    from offchain.http import readiness

    chain, ipfs = scenario()
    worker = make(chain, store, ipfs)
    real = store.fair_pending
    failures = {"left": 1}

    async def locked_once(*args: object, **kwargs: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    def lane_failures() -> float:
        registry = worker.metrics.registry
        samples = (
            registry.get_sample_value("ami_worker_source_errors_total", {"source": f"scorer-{i}"})
            for i in range(8)
        )
        return sum(v or 0.0 for v in samples)

    async def ready() -> bool:
        return (await readiness(worker))[0]

    store.fair_pending = locked_once  # type: ignore[method-assign]
    async with running(worker):
        # one scorer lane hit the lock and its supervisor restarted it; once it claims again, /readyz stops
        # reporting the old failure (it used to stay "not ready" until the daemon restarted)
        await until(lambda: lane_failures() == 1.0, "a scorer lane to fail on the locked store")
        await until(ready, "the worker to be ready again")
        assert not any(k.startswith("scorer-") for k in worker.last_error)
