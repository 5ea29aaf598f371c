"""The real worker pipeline (offchain.pipeline.worker.Worker with its chain, IPFS and submitter adapters) on
the in-memory chain, audited by the validator: an honest worker run over several epochs has zero findings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from scripted_worker import run_scenario
from validator_realworker import RealWorker, real_worker
from validator_world import MODEL_VERSION, HashRescorer, World

from offchain.audit.model import Status
from offchain.pipeline.ports import ScoreOutcome, TrackRejected
from offchain.scoring_rule import DeclaredGenre
from scoring.agreement import QUALITY_TOLERANCE_BP


class HashTrackScorer:
    """The worker's TrackScorer port over the tests' HashRescorer (the FAKE engine), token order."""

    def __init__(self, nudge_token: int | None = None) -> None:
        self.r = HashRescorer()
        self.nudge_token = nudge_token

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        res = self.r.rescore(token_id, audio, declared)
        if not res.accepted or res.entry is None:
            raise TrackRejected((res.reason or "rejected").split(":")[0], res.reason or "")
        self.r.accept(token_id, res.entry)
        assert res.novelty_bp is not None and res.quality_bp is not None and res.commitment is not None
        if token_id != self.nudge_token:
            return ScoreOutcome(res.novelty_bp, res.quality_bp, MODEL_VERSION, res.commitment)
        # One basis point past the quality tolerance, committed consistently: only the score is wrong.
        quality = res.quality_bp + QUALITY_TOLERANCE_BP + 1
        com = self.r.commit(res.inputs, res.novelty_bp, quality)
        assert com is not None
        return ScoreOutcome(res.novelty_bp, quality, MODEL_VERSION, com)


@pytest.fixture(params=[None, 3], ids=["honest", "nudges-token-3"])
async def driven(
    world: World, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[RealWorker, int | None]]:
    async with real_worker(world, HashTrackScorer(nudge_token=request.param)) as rw:
        yield rw, request.param


async def test_real_worker_audited(world: World, driven: tuple[RealWorker, int | None]) -> None:
    """Honest: zero findings, zero challenges. Token 3's quality 1 bp past its tolerance: that, once."""
    rw, nudged = driven
    await run_scenario(world, rw)
    counts = await rw.store.counts()
    assert counts["tracks_published"] == 4 and counts["tracks_rejected"] == 1  # the duplicate
    assert counts["epochs_settled"] >= 3 and counts["payouts_paid"] > 0
    v = await world.open_validator()
    await v.sync()
    audits = await v.process()
    found = {a.subject: [f.kind.value for f in a.findings] for a in audits if a.findings}
    statuses = {a.subject: a.status for a in audits}
    assert {statuses[f"epoch:{e}"] for e in (0, 1, 2)} == {Status.MATCH}
    if nudged is None:
        assert found == {}
        assert {statuses[f"score:{t}:{MODEL_VERSION}"] for t in (1, 2, 3, 4)} == {Status.MATCH}
        assert world.challenges_on_chain() == []
    else:
        assert found == {f"score:3:{MODEL_VERSION}": ["score_mismatch"]}
        assert [t for t, _ in world.challenges_on_chain()] == [3]
