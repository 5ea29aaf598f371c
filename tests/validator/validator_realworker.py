"""The real worker pipeline (offchain.pipeline.worker.Worker + its chain, IPFS and submitter adapters, and the
real Submitter) running on a validator-test World, with any TrackScorer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from validator_world import EPOCH_BLOCKS, POLICY, World

from ami_node.submitter import Submitter
from offchain.pipeline.adapters import (
    ChainBlockSource,
    IpfsContentFetcher,
    SubmitterPayoutSink,
    SubmitterScorePublisher,
)
from offchain.pipeline.worker import Worker, WorkerOptions
from offchain.store import WorkerStore


@dataclass
class RealWorker:
    """Drives `run_scenario` with the real Worker: `step()` waits until it has caught up and gone quiet."""

    world: World
    worker: Worker
    store: WorkerStore
    submitter: Submitter
    timeout: float = 30.0

    async def step(self) -> None:
        deadline = time.monotonic() + self.timeout
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


@asynccontextmanager
async def real_worker(world: World, scorer: Any, timeout: float = 30.0) -> AsyncIterator[RealWorker]:
    store = await WorkerStore.open(world.tmp / "worker.sqlite")
    submitter = await Submitter(
        world.port, world.oracle, world.tmp / "outbox.sqlite", rewards=world.rewards, poll_s=0.02
    ).open()
    options = WorkerOptions(
        epoch_blocks=EPOCH_BLOCKS,
        policy=POLICY,
        scoring_workers=1,
        poll_s=0.02,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    assert options.policy == POLICY  # the validator resettles under exactly this policy
    worker = Worker(
        store,
        ChainBlockSource(world.port, world.contracts, retry_delay_s=0.01),
        IpfsContentFetcher(world.ipfs),  # type: ignore[arg-type]
        scorer,
        SubmitterScorePublisher(submitter, world.rewards, world.abis["rewards"]),
        SubmitterPayoutSink(submitter),
        options,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(submitter.run(stop))]
    try:
        yield RealWorker(world, worker, store, submitter, timeout)
    finally:
        worker.stop()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await submitter.close()
        await store.close()
