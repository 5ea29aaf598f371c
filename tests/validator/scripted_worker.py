"""A scripted worker for the validator tests, which can be told to cheat in one way (`Tamper`, `nudge`), and
the scenario it runs in a `World`: three epochs of mints, listens and tags (`run_scenario`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from validator_world import EPOCH_BLOCKS, POLICY, HashRescorer, World

from ami_node.events import decode_block
from ami_node.follower import FollowedBlock
from offchain.audit.rescore import Rescored
from offchain.economics import EpochInput, SettledPayout, settle_epoch
from offchain.pipeline.adapters import to_block_data
from offchain.store import WorkerStore
from scoring.agreement import NOVELTY_TOLERANCE_BP


@dataclass
class Tamper:
    """How the scripted worker cheats (all None: honest)."""

    score: Callable[[int, Rescored], Rescored] | None = None  # change a score before publishing
    publish_rejected: bool = False  # publish scores for tracks the policy rejects (duplicates) as originals
    epoch_input: Callable[[EpochInput], EpochInput] | None = None  # corrupt the settlement's inputs
    payouts: Callable[[int, list[SettledPayout]], list[SettledPayout]] | None = None  # change what is paid


class ScriptedWorker:
    """The worker's rules, step by step: ingest finalized blocks into a WorkerStore, score new mints in token
    order against the accepted catalogue, publish scores, settle finished epochs with `settle_epoch`, pay."""

    def __init__(self, world: World, store: WorkerStore, tamper: Tamper | None = None) -> None:
        self.w = world
        self.store = store
        self.tamper = tamper or Tamper()
        self.scorer = HashRescorer()
        self.handled: set[int] = set()
        self.settled: set[int] = set()

    @classmethod
    async def open(cls, world: World, tamper: Tamper | None = None) -> ScriptedWorker:
        store = await WorkerStore.open(world.tmp / "worker.sqlite")
        world.stores.append(store)
        return cls(world, store, tamper)

    async def _ingest(self) -> None:
        cp = await self.store.checkpoint()
        start = cp[0] + 1 if cp else 1
        blocks = []
        for n in range(start, self.w.port.finalized + 1):
            b = self.w.port.blocks[n]
            blocks.append(to_block_data(FollowedBlock(b.ref, decode_block(b, self.w.contracts), b)))
        await self.store.ingest(blocks)

    async def step(self) -> None:
        await self._ingest()
        for t in await self.store.tracks():
            if t.token_id in self.handled:
                continue
            self.handled.add(t.token_id)
            audio = await self.w.ipfs.cat(t.audio_cid, max_bytes=1 << 20)
            r = self.scorer.rescore(t.token_id, audio, None)
            if r.accepted:
                assert r.entry is not None
                self.scorer.accept(t.token_id, r.entry)
            elif self.tamper.publish_rejected and r.reason and r.reason.startswith("duplicate"):
                # Scored as if the catalogue did not hold the original.
                r = HashRescorer().rescore(t.token_id, audio, None)
            else:
                continue
            if self.tamper.score is not None:
                r = self.tamper.score(t.token_id, r)
            await self.w.submit_score(t.token_id, r)
        await self._ingest()
        cp = await self.store.checkpoint()
        assert cp is not None
        epoch = 0
        while (epoch + 1) * EPOCH_BLOCKS - 1 <= cp[0]:
            if epoch not in self.settled:
                self.settled.add(epoch)
                await self._settle(epoch)
            epoch += 1

    async def _settle(self, epoch: int) -> None:
        inp = await self.store.epoch_input(epoch, EPOCH_BLOCKS)
        if self.tamper.epoch_input is not None:
            inp = self.tamper.epoch_input(inp)
        payouts = list(settle_epoch(inp, POLICY).payouts)
        if self.tamper.payouts is not None:
            payouts = self.tamper.payouts(epoch, payouts)
        for batch, i in enumerate(range(0, len(payouts), 7)):
            items = [p.on_chain().abi_fields() for p in payouts[i : i + 7]]
            await self.w.call(self.w.oracle, "rewards", "distribute", epoch=epoch, batch=batch, payouts=items)


AUDIO = {name: f"RIFF {name} ".encode() * 40 for name in ("a", "b", "c", "d")}


class Stepper(Protocol):
    async def step(self) -> None: ...


async def run_scenario(world: World, worker: Stepper) -> None:
    """Three epochs of activity plus a grace epoch: four originals, one duplicate, listens, tags, splits."""
    w = world
    t1 = await w.mint("C1", AUDIO["a"], [("C1", 7_000), ("P1", 3_000)])
    t2 = await w.mint("C2", AUDIO["b"])
    await w.mint("C1", AUDIO["c"])
    await worker.step()
    for who in ("L1", "L2", "L3"):
        await w.listen(who, t1)
    await w.listen("L1", t2, 45)
    await w.listen("L4", t2, 10)  # too short to count
    await w.tag("L2", t2, "ambient")
    w.advance_to(EPOCH_BLOCKS)  # epoch 0 ends
    await worker.step()
    t4 = await w.mint("C3", AUDIO["d"])
    dup = await w.mint("C4", AUDIO["a"])  # byte-identical copy of token 1
    await worker.step()
    for who in ("L1", "L2", "L3", "L5"):
        await w.listen(who, t2)
    await w.listen("L5", t1)
    await w.listen("L1", t4)
    await w.listen("L2", dup)
    w.advance_to(2 * EPOCH_BLOCKS)
    await worker.step()
    for who in ("L3", "L4", "L5"):
        await w.listen(who, t4)
    await w.listen("L1", t1, 90)
    await w.listen("L1", t1, 90)
    w.advance_to(3 * EPOCH_BLOCKS)
    await worker.step()
    w.advance_to(4 * EPOCH_BLOCKS + 2)  # past the last epoch's grace period
    await worker.step()


def nudge(
    token: int, by: int = NOVELTY_TOLERANCE_BP + 1, quality_by: int = 0, recommit: bool = True
) -> Callable[[int, Rescored], Rescored]:
    """Publish token `token`'s scores moved by `by` (novelty) and `quality_by` (quality) basis points; with
    `recommit` the worker also commits to the moved scores (the cleverer cheat: only the scores differ)."""

    def f(tok: int, r: Rescored) -> Rescored:
        if tok != token:
            return r
        n, q = (r.novelty_bp or 0) + by, (r.quality_bp or 0) + quality_by
        com = HashRescorer().commit(r.inputs, n, q) if recommit else r.commitment
        return replace(r, novelty_bp=n, quality_bp=q, commitment=com)

    return f
