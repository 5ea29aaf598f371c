"""The real worker pipeline (offchain.pipeline.worker.Worker with its chain, IPFS and submitter adapters) on
the in-memory chain, audited by the validator: an honest worker run over several epochs has zero findings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from validator_world import EPOCH_BLOCKS, MODEL_VERSION, POLICY, HashRescorer, World, run_scenario

from ami_node.submitter import Submitter
from offchain.audit.model import Status
from offchain.pipeline.adapters import (
    ChainBlockSource,
    IpfsContentFetcher,
    SubmitterPayoutSink,
    SubmitterScorePublisher,
)
from offchain.pipeline.ports import ScoreOutcome, TrackRejected
from offchain.pipeline.worker import Worker, WorkerOptions
from offchain.store import WorkerStore


class HashTrackScorer:
    """The worker's TrackScorer port over the tests' HashRescorer (the FAKE engine), token order."""

    def __init__(self, nudge_token: int | None = None) -> None:
        self.r = HashRescorer()
        self.nudge_token = nudge_token

    async def score(self, token_id: int, audio: bytes) -> ScoreOutcome:
        res = self.r.rescore(token_id, audio, None)
        if not res.accepted or res.entry is None:
            raise TrackRejected((res.reason or "rejected").split(":")[0], res.reason or "")
        self.r.accept(token_id, res.entry)
        assert res.novelty_bp is not None and res.quality_bp is not None and res.commitment is not None
        quality = res.quality_bp + (1 if token_id == self.nudge_token else 0)
        return ScoreOutcome(res.novelty_bp, quality, MODEL_VERSION, res.commitment)


@dataclass
class RealWorker:
    """Drives `run_scenario` with the real Worker: `step()` waits until it has caught up and gone quiet."""

    world: World
    worker: Worker
    store: WorkerStore
    submitter: Submitter
    nudged: int | None

    async def step(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        stable = 0
        while stable < 3:
            assert time.monotonic() < deadline, f"worker did not go quiet: {await self.store.counts()}"
            await asyncio.sleep(0.05)
            cp = await self.store.checkpoint()
            counts = await self.store.counts()
            quiet = (
                cp is not None
                and cp[0] == self.world.port.finalized
                and counts["tracks_pending"] == 0
                and counts["payouts_pending"] == 0
                and await self.submitter.idle()
                and not any(t.status in ("scored", "submitted") for t in await self.store.tracks())
            )
            stable = stable + 1 if quiet else 0


@pytest.fixture(params=[None, 3], ids=["honest", "nudges-token-3"])
async def real_worker(world: World, request: pytest.FixtureRequest) -> AsyncIterator[RealWorker]:
    store = await WorkerStore.open(world.tmp / "worker.sqlite")
    submitter = await Submitter(world.port, world.oracle, world.tmp / "outbox.sqlite", rewards=world.rewards,
                                poll_s=0.02).open()
    options = WorkerOptions(
        epoch_blocks=EPOCH_BLOCKS,
        budgets=dict(POLICY.budgets),
        listen_reward_per_wallet=POLICY.listen_reward_per_wallet,
        min_listen_seconds=POLICY.min_listen_seconds,
        scoring_workers=1, poll_s=0.02, backoff_initial_s=0.01, backoff_max_s=0.05,
    )
    assert options.policy() == POLICY  # the validator resettles under exactly this policy
    worker = Worker(
        store,
        ChainBlockSource(world.port, world.contracts, retry_delay_s=0.01),
        IpfsContentFetcher(world.ipfs),  # type: ignore[arg-type]
        HashTrackScorer(nudge_token=request.param),
        SubmitterScorePublisher(submitter, world.rewards, world.abis["rewards"]),
        SubmitterPayoutSink(submitter),
        options,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(submitter.run(stop))]
    yield RealWorker(world, worker, store, submitter, request.param)
    worker.stop()
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await submitter.close()
    await store.close()


async def test_real_worker_audited(world: World, real_worker: RealWorker) -> None:
    """Honest: zero findings, zero challenges. Nudging token 3's quality by 1 bp: exactly that, once."""
    await run_scenario(world, real_worker)
    counts = await real_worker.store.counts()
    assert counts["tracks_published"] == 4 and counts["tracks_rejected"] == 1  # the duplicate
    assert counts["epochs_settled"] >= 3 and counts["payouts_paid"] > 0
    v = await world.open_validator()
    await v.sync()
    audits = await v.process()
    found = {a.subject: [f.kind.value for f in a.findings] for a in audits if a.findings}
    statuses = {a.subject: a.status for a in audits}
    assert {statuses[f"epoch:{e}"] for e in (0, 1, 2)} == {Status.MATCH}
    if real_worker.nudged is None:
        assert found == {}
        assert {statuses[f"score:{t}:{MODEL_VERSION}"] for t in (1, 2, 3, 4)} == {Status.MATCH}
        assert world.challenges_on_chain() == []
    else:
        assert found == {f"score:3:{MODEL_VERSION}": ["score_mismatch"]}
        assert [t for t, _ in world.challenges_on_chain()] == [3]
