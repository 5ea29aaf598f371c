"""Validator errors are not verdicts (ami-agreement/1 rules 3-5): a fetch failure, a crashing or unusable
rescorer, or library versions off the pins leave an honest worker's score unverifiable, with the reason, and
never challenge it; a borderline duplicate verdict agrees within the guard band. The daemon carries on, and
verifies the score once the failure is gone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from scripted_worker import ScriptedWorker, Tamper, run_scenario
from validator_world import MODEL_VERSION, HashRescorer, World

from offchain.audit.model import Status
from offchain.audit.rescore import Rescored, RescoreError
from offchain.audit.validator import Validator
from offchain.ipfs import errors as ipfs_errors
from scoring.agreement import GATE_GUARD

SUBJECT = f"score:2:{MODEL_VERSION}"


class FailingContent:
    """The world's IPFS store, except that the audio of one CID fails with `exc` while `failing` is set."""

    def __init__(self, inner: Any, cid: str, exc: Exception) -> None:
        self.inner, self.cid, self.exc, self.failing = inner, cid, exc, True

    async def cat(self, cid: str, *, max_bytes: int) -> bytes:
        if self.failing and cid == self.cid:
            raise self.exc
        return bytes(await self.inner.cat(cid, max_bytes=max_bytes))

    async def add(self, data: bytes, **kw: Any) -> str:
        return str(await self.inner.add(data, **kw))


class CrashingRescorer(HashRescorer):
    """The fake engine, failing on token 2 the way `how` says while `failing` is set."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how, self.failing = how, True

    def rescore(self, token_id: int, audio: bytes, genre: Any) -> Rescored:
        if self.failing and token_id == 2:
            if self.how == "raise":
                raise RuntimeError("validator bug: index out of range")
            return Rescored(accepted=False, reason="unscorable: FingerprintError: fpcalc not found")
        return super().rescore(token_id, audio, genre)


async def _honest_run(world: World) -> Validator:
    await run_scenario(world, await ScriptedWorker.open(world, Tamper()))
    v = await world.open_validator()
    await v.sync()
    return v


async def _statuses(v: Validator) -> dict[str, Status]:
    return {a.subject: a.status for a in await v.auditor.db.audits()}


async def _no_challenge(world: World, v: Validator) -> None:
    assert await v.auditor.db.challenges() == []
    assert world.challenges_on_chain() == []


@pytest.mark.parametrize(
    "exc",
    [
        ipfs_errors.CidMismatch("the node served other bytes"),
        ipfs_errors.IpfsNodeError("500 internal error"),
        RuntimeError("unexpected client bug"),
    ],
    ids=["cid-mismatch", "node-error", "bug"],
)
async def test_fetch_failure_is_unverifiable_then_verified(world: World, exc: Exception) -> None:
    v = await _honest_run(world)
    mint = next(m for m in await v.auditor.db.mints() if m.token_id == 2)
    content = FailingContent(world.ipfs, mint.audio_cid, exc)
    v.auditor.content = content
    audits = {a.subject: a for a in await v.process()}  # the audit pass completes: the event to wait for
    assert audits[SUBJECT].status == Status.UNVERIFIABLE
    assert type(exc).__name__ in audits[SUBJECT].reason and "unverifiable here" in audits[SUBJECT].reason
    later = f"score:3:{MODEL_VERSION}"  # after the blocked track: its catalogue root is not known yet
    assert audits[later].status == Status.UNVERIFIABLE and "token 2" in audits[later].reason
    assert audits[f"score:1:{MODEL_VERSION}"].status == Status.MATCH
    await _no_challenge(world, v)
    content.failing = False
    await v.process()
    statuses = await _statuses(v)
    assert {s for k, s in statuses.items() if k.startswith("score:")} == {Status.MATCH}
    await _no_challenge(world, v)


@pytest.mark.parametrize("how", ["raise", "unscorable"])
async def test_rescorer_failure_is_unverifiable_then_verified(world: World, how: str) -> None:
    v = await _honest_run(world)
    rescorer = CrashingRescorer(how)
    v.auditor.rescorers = {MODEL_VERSION: rescorer}
    audits = {a.subject: a for a in await v.process()}
    assert audits[SUBJECT].status == Status.UNVERIFIABLE
    assert ("RuntimeError" if how == "raise" else "fpcalc not found") in audits[SUBJECT].reason
    await _no_challenge(world, v)
    rescorer.failing = False
    await v.process()
    assert (await _statuses(v))[SUBJECT] == Status.MATCH
    await _no_challenge(world, v)


async def test_failure_on_an_unpublished_track_is_a_provisional_rejection(world: World) -> None:
    """Token 5 (the duplicate) has no score: a failure there rejects it provisionally, as the worker did;
    the walk goes on and every published score still verifies."""

    class FailsOnDuplicate(HashRescorer):
        def rescore(self, token_id: int, audio: bytes, genre: Any) -> Rescored:
            if token_id == 5:
                raise RuntimeError("boom")
            return super().rescore(token_id, audio, genre)

    v = await _honest_run(world)
    v.auditor.rescorers = {MODEL_VERSION: FailsOnDuplicate()}
    await v.process()
    statuses = await _statuses(v)
    assert {s for k, s in statuses.items() if k.startswith("score:")} == {Status.MATCH}
    assert 5 in await v.auditor.db.provisional_rejections(MODEL_VERSION)
    await _no_challenge(world, v)


async def test_library_versions_off_the_pins_are_unverifiable(world: World) -> None:
    class OffPins(HashRescorer):
        def rescore(self, token_id: int, audio: bytes, genre: Any) -> Rescored:
            r = super().rescore(token_id, audio, genre)
            diffs = ["torch 2.14.0 here, pinned 2.13.0"]
            return replace(r, novelty_bp=0, inputs={**r.inputs, "version_differences": diffs})

    v = await _honest_run(world)
    v.auditor.rescorers = {MODEL_VERSION: OffPins()}
    audits = {a.subject: a for a in await v.process()}
    assert audits[SUBJECT].status == Status.UNVERIFIABLE
    assert audits[SUBJECT].reason == "unverifiable: torch 2.14.0 here, pinned 2.13.0"
    await _no_challenge(world, v)


@pytest.mark.parametrize(
    ("margin", "expected"),
    [(GATE_GUARD / 2, Status.MATCH), (-GATE_GUARD / 2, Status.MATCH), (GATE_GUARD * 1.5, Status.MISMATCH)],
    ids=["inside-above", "inside-below", "beyond"],
)
async def test_duplicate_verdict_guard_band(world: World, margin: float, expected: Status) -> None:
    """The validator's gate calls token 2 a derivative of token 1; only a margin beyond the guard band makes
    that a finding."""

    class Borderline(HashRescorer):
        def rescore(self, token_id: int, audio: bytes, genre: Any) -> Rescored:
            r = super().rescore(token_id, audio, genre)
            if token_id != 2:
                return r
            gate = {"decision": "derivative", "margin_ppm": round(margin * 1_000_000)}
            return replace(r, accepted=False, reason="derivative_of:1", inputs={**r.inputs, "gate": gate})

    v = await _honest_run(world)
    v.auditor.rescorers = {MODEL_VERSION: Borderline()}
    audits = {a.subject: a for a in await v.process()}
    assert audits[SUBJECT].status == expected
    if expected == Status.MATCH:
        assert "agrees within guard band" in audits[SUBJECT].reason
        await _no_challenge(world, v)
    else:
        assert [f.kind.value for f in audits[SUBJECT].findings] == ["scored_rejected"]
        assert [r.subject for r in await v.auditor.db.challenges()] == [SUBJECT]


async def test_a_catalogue_that_cannot_be_restored_is_unverifiable(world: World) -> None:
    """Entries stored by an older validator (no PCM hash) cannot rebuild the catalogue: every score stays
    unverifiable with that reason, nothing is challenged, and the daemon's pass completes."""

    class NoRestore(HashRescorer):
        def restore(self, entries: Any) -> None:
            raise RescoreError("a stored catalogue entry is not an emb/c2d/fp/pcm npz one")

    v = await _honest_run(world)
    v.auditor.rescorers = {MODEL_VERSION: NoRestore()}
    audits = [a for a in await v.process() if a.kind == "score"]
    assert audits and {a.status for a in audits} == {Status.UNVERIFIABLE}
    assert all("cannot restore its catalogue" in a.reason for a in audits)
    await _no_challenge(world, v)
