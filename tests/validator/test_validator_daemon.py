"""The validator as a daemon and its edge cases: unknown model versions, content that is away, a crash
between deciding and sending a challenge, following new blocks until stopped; the CLI's bad-input paths."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scripted_worker import AUDIO, ScriptedWorker, Tamper, nudge, run_scenario
from typer.testing import CliRunner
from validator_world import EPOCH_BLOCKS, MODEL_VERSION, HashRescorer, World, close_validator
from waiting import Calls, until

from ami_node.port import ChainUnavailable
from offchain.audit.model import EPOCH_SUBJECT_BASE, Status
from offchain.audit.validator import ChallengeSent, ContractChallenger
from offchain.cli import app
from offchain.economics import POLICY_VERSION, payout_id
from offchain.ipfs.errors import IpfsNotFound, IpfsUnavailable
from offchain.ipfs.store import MemoryContentStore
from pallets_spec.vocabulary import PayoutKind


async def test_unknown_model_version_is_unverifiable_not_wrong(world: World) -> None:
    worker = await ScriptedWorker.open(world)
    await run_scenario(world, worker)
    # A score under a version this validator does not run (e.g. a newer engine).
    await world.call(
        world.oracle,
        "rewards",
        "submit_score",
        token_id=1,
        novelty_bp=1,
        quality_bp=2,
        model_version=99,
        commitment=b"\x01" * 32,
    )
    v = await world.open_validator()
    await v.sync()
    audits = {a.subject: a for a in await v.process()}
    assert audits["score:1:99"].status == Status.UNVERIFIABLE
    assert "99" in audits["score:1:99"].reason and audits["score:1:99"].findings == []
    assert audits["score:1:7"].status == Status.MATCH
    assert world.challenges_on_chain() == []


class FlakyContent:
    """IPFS that is away until `up` is set (every read raises IpfsUnavailable)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.up = False

    async def cat(self, cid: str, *, max_bytes: int) -> bytes:
        if not self.up:
            raise IpfsUnavailable("node away (test switch)")
        return await self.inner.cat(cid, max_bytes=max_bytes)  # type: ignore[attr-defined,no-any-return]


async def test_content_away_is_unverifiable_until_it_returns(world: World) -> None:
    worker = await ScriptedWorker.open(world, Tamper(score=nudge(3)))
    await run_scenario(world, worker)
    v = await world.open_validator()
    flaky = FlakyContent(world.ipfs)
    v.auditor.content = flaky  # type: ignore[assignment]
    await v.sync()
    audits = {a.subject: a for a in await v.process()}
    assert {audits[f"score:{t}:7"].status for t in (1, 2, 3, 4)} == {Status.UNVERIFIABLE}
    assert "content unavailable" in audits["score:1:7"].reason
    assert world.challenges_on_chain() == []
    flaky.up = True
    audits = {a.subject: a for a in await v.process()}
    assert audits["score:3:7"].status == Status.MISMATCH
    assert {audits[f"score:{t}:7"].status for t in (1, 2, 4)} == {Status.MATCH}
    assert len(world.challenges_on_chain()) == 1


class DownChallenger:
    async def challenge(self, token_id: int, evidence: bytes) -> ChallengeSent:
        raise ChainUnavailable("node away (test switch)")


async def test_decided_challenge_survives_a_crash_and_is_sent_once(world: World) -> None:
    worker = await ScriptedWorker.open(world, Tamper(score=nudge(2)))
    await run_scenario(world, worker)
    v = await world.open_validator()
    real = v.challenger
    v.challenger = DownChallenger()
    await v.sync()
    await v.process()
    assert [(c.subject, c.status) for c in await v.auditor.db.challenges()] == [("score:2:7", "pending")]
    assert world.challenges_on_chain() == []
    await close_validator(v, world)  # the process dies here
    again = await world.open_validator()
    assert again.challenger is not None and real is not None
    await again.sync()
    await again.process()
    await again.process()
    assert [(c.subject, c.status) for c in await again.auditor.db.challenges()] == [("score:2:7", "sent")]
    assert len(world.challenges_on_chain()) == 1


async def test_daemon_follows_new_blocks_and_stops(world: World) -> None:
    worker = await ScriptedWorker.open(world, Tamper(score=nudge(4)))
    v = await world.open_validator()
    task = asyncio.create_task(v.run())
    await run_scenario(world, worker)  # the validator follows while the worker works
    await until(lambda: len(world.challenges_on_chain()) == 1)
    await until(lambda: v.processed_head >= world.port.finalized - 1)
    v.stop()
    await asyncio.wait_for(task, 5)
    audits = {a.subject: a for a in await v.auditor.db.audits()}
    assert audits["score:4:7"].status == Status.MISMATCH
    assert {audits[f"epoch:{e}"].status for e in (0, 1, 2)} == {Status.MATCH}


def test_cli_reports_bad_input_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "--from-block", "9", "--to-block", "3"])
    assert res.exit_code == 2 and "before --from-block" in res.output
    res = runner.invoke(app, ["audit", "--json"])
    assert res.exit_code == 2 and "no deployment file" in res.output
    monkeypatch.setenv("AMI_EPOCH_BLOCKS", "0")
    res = runner.invoke(app, ["validate"])
    assert res.exit_code == 2 and "epoch_blocks" in res.output


class MissingCid:
    """IPFS that cannot find one CID (IpfsNotFound) until `found` is set."""

    def __init__(self, inner: MemoryContentStore, missing: str) -> None:
        self.inner = inner
        self.missing = missing
        self.found = False

    async def cat(self, cid: str, *, max_bytes: int) -> bytes:
        if cid == self.missing and not self.found:
            raise IpfsNotFound(f"{cid} not found (test switch)")
        return await self.inner.cat(cid, max_bytes=max_bytes)

    async def add(self, data: bytes) -> str:
        return await self.inner.add(data)


async def test_unscored_missing_track_is_provisionally_rejected_then_revisited(world: World) -> None:
    scorer = HashRescorer()
    t1 = await world.mint("C1", AUDIO["a"])
    t2 = await world.mint("C2", AUDIO["b"])
    r1 = scorer.rescore(t1, AUDIO["a"], None)
    assert r1.entry is not None
    scorer.accept(t1, r1.entry)
    await world.submit_score(t1, r1)
    v = await world.open_validator()
    await v.sync()
    missing = next(m.audio_cid for m in await v.auditor.db.mints() if m.token_id == t2)
    content = MissingCid(world.ipfs, missing)
    v.auditor.content = content  # type: ignore[assignment]
    await v.process()
    # Young and unscored: the walk waits for it rather than guessing.
    assert await v.auditor.db.rescored(MODEL_VERSION, t2) is None
    world.advance_to(world.head + EPOCH_BLOCKS + 1)
    await v.sync()
    await v.process()
    audits = {a.subject: a.status for a in await v.auditor.db.audits()}
    provisional = await v.auditor.db.rescored(MODEL_VERSION, t2)
    assert provisional is not None and not provisional.accepted
    assert (provisional.reason or "").startswith("not_found")
    assert audits.get("score:1:7") == Status.MATCH
    # The worker did get it after all and publishes its score: the validator rewinds and verifies it.
    r2 = scorer.rescore(t2, AUDIO["b"], None)
    await world.submit_score(t2, r2)
    content.found = True
    await v.sync()
    await v.process()
    audits = {a.subject: a.status for a in await v.auditor.db.audits()}
    assert audits["score:2:7"] == Status.MATCH
    assert world.challenges_on_chain() == []


async def test_late_payout_for_an_audited_epoch_is_audited_again_after_a_restart(world: World) -> None:
    worker = await ScriptedWorker.open(world)
    await run_scenario(world, worker)
    v = await world.open_validator()
    await v.sync()
    first = {a.subject: a.status for a in await v.process()}
    assert first["epoch:1"] == Status.MATCH
    # Much later, one more batch for epoch 1 lands, paying someone who earned nothing.
    mallory = world.key("Mallory").address
    pid = payout_id(POLICY_VERSION, 1, PayoutKind.LISTEN, mallory, None)
    await world.call(
        world.oracle,
        "rewards",
        "distribute",
        epoch=1,
        batch=99,
        payouts=[{"id": pid, "to": mallory, "amount": 777, "kind": 1}],
    )
    await v.sync()  # ingested, then the validator dies before auditing
    await close_validator(v, world)
    again = await world.open_validator()
    await again.sync()
    redone = {a.subject: a for a in await again.process()}
    assert [f.kind.value for f in redone["epoch:1"].findings] == ["payout_unearned"]
    assert "epoch:0" not in redone  # untouched epochs are not redone
    assert [t for t, _ in world.challenges_on_chain()] == [EPOCH_SUBJECT_BASE | 1]


async def test_challenger_knows_whether_its_key_is_a_validator(world: World) -> None:
    ok = ContractChallenger(world.port, world.validator_key, world.rewards)
    assert await ok.is_validator()
    stranger = ContractChallenger(world.port, world.key("Mallory"), world.rewards)
    assert not await stranger.is_validator()
    # A key that is not a validator: the contract refuses, the decision is recorded as refused, never resent.
    worker = await ScriptedWorker.open(world, Tamper(score=nudge(1)))
    await run_scenario(world, worker)
    v = await world.open_validator()
    v.challenger = stranger
    await v.sync()
    await v.process()
    await v.process()
    assert [(c.subject, c.status, c.error) for c in await v.auditor.db.challenges()] == [
        ("score:1:7", "refused", "NotValidator")
    ]
    assert world.challenges_on_chain() == []


async def test_daemon_waits_out_a_node_outage(world: World) -> None:
    worker = await ScriptedWorker.open(world, Tamper(score=nudge(2)))
    v = await world.open_validator()
    following, fetches = Calls(world.port, "finalized_heads"), Calls(world.port, "block")
    task = asyncio.create_task(v.run())
    await following.more()
    world.port.down = True  # the node goes away while the validator follows: blocks come, reads fail
    for _ in range(3):
        world.port.produce_block()
        await fetches.more(2)  # a block fetch failed and was tried again: the outage is waited out
    assert not task.done()
    world.port.down = False
    await run_scenario(world, worker)
    await until(lambda: len(world.challenges_on_chain()) == 1)
    v.stop()
    await asyncio.wait_for(task, 5)
    assert [t for t, _ in world.challenges_on_chain()] == [2]
