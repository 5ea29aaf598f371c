"""A tampered worker, one cheat per test: each is found, reported with evidence, and challenged exactly once,
also after a restart (with the validator's database kept, and with it lost)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from scripted_worker import ScriptedWorker, Tamper, nudge, run_scenario
from validator_world import MODEL_VERSION, HashRescorer, World, close_validator, commit

from offchain.audit.model import EPOCH_SUBJECT_BASE, SubjectAudit, evidence_commitment
from offchain.audit.rescore import Rescored
from offchain.audit.validator import Validator
from offchain.economics import POLICY_VERSION, EpochInput, SettledPayout, payout_id
from pallets_spec.vocabulary import PayoutKind
from scoring.agreement import NOVELTY_TOLERANCE_BP, QUALITY_TOLERANCE_BP


async def _audit(world: World, tamper: Tamper) -> tuple[Validator, list[SubjectAudit]]:
    worker = await ScriptedWorker.open(world, tamper)
    await run_scenario(world, worker)
    v = await world.open_validator()
    await v.sync()
    return v, await v.process()


def _mismatches(audits: list[SubjectAudit]) -> dict[str, set[str]]:
    return {a.subject: {f.kind.value for f in a.findings} for a in audits if a.findings}


async def _challenged_once(world: World, v: Validator, audit: SubjectAudit) -> None:
    """Exactly one challenge, on chain and in the DB, for `audit`; still one after restarts."""
    assert audit.evidence_commitment is not None
    assert audit.evidence_commitment == "0x" + evidence_commitment(audit.evidence).hex()
    rows = await v.auditor.db.challenges()
    assert [(r.subject, r.status, r.evidence) for r in rows] == [
        (audit.subject, "sent", audit.evidence_commitment)
    ]
    assert world.challenges_on_chain() == [(audit.token_id, audit.evidence_commitment)]
    # The evidence document is on IPFS, and it is what the commitment commits to.
    assert rows[0].evidence_cid is not None
    doc = await world.ipfs.cat(rows[0].evidence_cid, max_bytes=1 << 20)
    assert "0x" + hashlib.blake2b(doc, digest_size=32).hexdigest() == audit.evidence_commitment
    # A second pass and a restart with the same database decide nothing new.
    assert [a for a in await v.process() if a.findings] == []
    await close_validator(v, world)
    again = await world.open_validator()
    await again.sync()
    await again.process()
    assert len(await again.auditor.db.challenges()) == 1
    # A validator that lost its database derives the same evidence; the contract refuses it a second time.
    fresh = await world.open_validator("lost-db")
    await fresh.sync()
    redone = {a.subject: a for a in await fresh.process()}
    assert redone[audit.subject].evidence_commitment == audit.evidence_commitment
    assert [r.status for r in await fresh.auditor.db.challenges()] == ["sent"]
    assert world.challenges_on_chain() == [(audit.token_id, audit.evidence_commitment)]


async def test_score_one_basis_point_past_the_tolerance(world: World) -> None:
    """Novelty published tolerance + 1 bp above the recomputation, committed consistently: found."""
    v, audits = await _audit(world, Tamper(score=nudge(2)))
    assert _mismatches(audits) == {"score:2:7": {"score_mismatch"}}
    audit = next(a for a in audits if a.subject == "score:2:7")
    ev = audit.evidence
    assert ev["published"]["novelty_bp"] == ev["expected"]["novelty_bp"] + NOVELTY_TOLERANCE_BP + 1
    assert ev["published"]["quality_bp"] == ev["expected"]["quality_bp"]
    assert ev["agreement"] == "ami-agreement/1"
    assert audit.token_id == 2
    await _challenged_once(world, v, audit)


async def test_quality_one_basis_point_past_the_tolerance_below(world: World) -> None:
    v, audits = await _audit(world, Tamper(score=nudge(3, by=0, quality_by=-QUALITY_TOLERANCE_BP - 1)))
    assert _mismatches(audits) == {"score:3:7": {"score_mismatch"}}
    audit = next(a for a in audits if a.subject == "score:3:7")
    assert "quality_bp published" in audit.findings[0].detail
    await _challenged_once(world, v, audit)


async def test_within_tolerance_agrees_but_the_commitment_binds_the_published_scores(world: World) -> None:
    """A difference at the tolerance agrees (an honest device difference); the same difference published
    without committing to it is a commitment mismatch: the commitment binds the published values."""
    edge = nudge(2, by=-NOVELTY_TOLERANCE_BP, quality_by=QUALITY_TOLERANCE_BP)
    v, audits = await _audit(world, Tamper(score=edge))
    assert _mismatches(audits) == {}
    assert {a.status.value for a in audits if a.kind == "score"} == {"match"}
    assert world.challenges_on_chain() == []


async def test_within_tolerance_without_recommitting_is_a_commitment_mismatch(world: World) -> None:
    v, audits = await _audit(world, Tamper(score=nudge(2, by=1, recommit=False)))
    assert _mismatches(audits) == {"score:2:7": {"commitment_mismatch"}}
    audit = next(a for a in audits if a.subject == "score:2:7")
    await _challenged_once(world, v, audit)


async def test_payout_to_an_account_that_did_not_earn_it(world: World) -> None:
    mallory = world.key("Mallory").address

    def add(epoch: int, payouts: list[SettledPayout]) -> list[SettledPayout]:
        if epoch != 1:
            return payouts
        pid = payout_id(POLICY_VERSION, epoch, PayoutKind.LISTEN, mallory, None)
        return [*payouts, SettledPayout(pid, epoch, PayoutKind.LISTEN, mallory, None, 5_000, "listened")]

    v, audits = await _audit(world, Tamper(payouts=add))
    assert _mismatches(audits) == {"epoch:1": {"payout_unearned"}}
    audit = next(a for a in audits if a.subject == "epoch:1")
    (row,) = audit.evidence["payouts"]
    assert row["paid"]["account"] == mallory and row["paid"]["amount"] == "5000" and row["expected"] == {}
    assert audit.token_id == EPOCH_SUBJECT_BASE | 1
    await _challenged_once(world, v, audit)


async def test_royalty_split_ignored(world: World) -> None:
    def ignore_splits(inp: EpochInput) -> EpochInput:
        if inp.epoch != 1:
            return inp
        tracks = {t: replace(i, royalty_splits=((i.creator, 10_000),)) for t, i in inp.tracks.items()}
        return replace(inp, tracks=tracks)

    v, audits = await _audit(world, Tamper(epoch_input=ignore_splits))
    assert _mismatches(audits) == {"epoch:1": {"payout_amount", "payout_missing"}}
    audit = next(a for a in audits if a.subject == "epoch:1")
    p1 = world.key("P1").address
    c1 = world.key("C1").address
    rows = {(r["finding"], r["expected"].get("account")): r for r in audit.evidence["payouts"]}
    # The creator got the whole royalty pool of token 1; its co-owner P1 (30%) got nothing.
    assert rows[("payout_missing", p1)]["expected"]["token_id"] == 1
    got = rows[("payout_amount", c1)]
    assert int(got["paid"]["amount"]) > int(got["expected"]["amount"])
    await _challenged_once(world, v, audit)


async def test_listen_counted_twice(world: World) -> None:
    def double(inp: EpochInput) -> EpochInput:
        if inp.epoch != 2:
            return inp
        return replace(inp, listens=(*inp.listens, inp.listens[0]))

    v, audits = await _audit(world, Tamper(epoch_input=double))
    assert _mismatches(audits) == {"epoch:2": {"payout_amount"}}
    audit = next(a for a in audits if a.subject == "epoch:2")
    kinds = {r["expected"]["kind"] for r in audit.evidence["payouts"]}
    assert int(PayoutKind.LISTEN) in kinds
    await _challenged_once(world, v, audit)


async def test_duplicate_paid_as_original(world: World) -> None:
    v, audits = await _audit(world, Tamper(publish_rejected=True))
    assert _mismatches(audits) == {"score:5:7": {"scored_rejected"}}
    audit = next(a for a in audits if a.subject == "score:5:7")
    assert audit.evidence["expected"]["reason"] == "duplicate_of:1"
    paid = audit.evidence["paid_as_original"]
    assert paid is not None and paid["to"] == world.key("C4").address and int(paid["amount"]) > 0
    await _challenged_once(world, v, audit)


async def test_commitment_that_does_not_match(world: World) -> None:
    def wrong_root(tok: int, r: Rescored) -> Rescored:
        if tok != 3:
            return r
        pcm = bytes.fromhex(r.inputs["pcm_sha256"][2:])
        # Same scores, but committed against an empty catalogue instead of tokens 1 and 2.
        bad = commit(pcm, HashRescorer().root(), r.novelty_bp or 0, r.quality_bp or 0)
        return replace(r, commitment=bad)

    v, audits = await _audit(world, Tamper(score=wrong_root))
    assert _mismatches(audits) == {"score:3:7": {"commitment_mismatch"}}
    audit = next(a for a in audits if a.subject == "score:3:7")
    ev = audit.evidence
    assert ev["published"]["novelty_bp"] == ev["expected"]["novelty_bp"]
    assert ev["published"]["commitment"] != ev["expected"]["commitment"]
    assert ev["expected"]["inputs"]["catalogue_size"] == 2
    await _challenged_once(world, v, audit)


async def test_reruns_give_identical_reports(world: World) -> None:
    worker = await ScriptedWorker.open(world, Tamper(score=nudge(1)))
    await run_scenario(world, worker)
    reports = []
    for name in ("a", "b"):
        v = await world.open_validator(name)
        v.challenger = None
        await v.sync()
        await v.process()
        reports.append((await v.auditor.audit()).model_dump_json())
    assert reports[0] == reports[1]
    assert '"score:1:' + str(MODEL_VERSION) in reports[0]
