"""The validator: follow finalized blocks, audit what the worker published, challenge differences once.

`Validator.sync()` brings the ledgers up to the node's finalized head (through `ami_node.follower`, so gaps
are filled and hashes checked); `Validator.process()` rescores new tracks, audits new scores and every epoch
whose grace period has passed (again when new payouts of it land), and challenges each mismatching subject
exactly once: the decision is written to SQLite before the transaction is sent, a restart resends only what
never landed, and the contract itself refuses the same (token, evidence) twice. `run()` does both forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, Protocol

import structlog

from ami_node.abi import ContractAbi
from ami_node.follower import BlockFollower, NonCanonicalBlock
from ami_node.keys import Keypair
from ami_node.port import BlockRef, ChainPort, ContractReverted
from ami_node.tx import contract_tx
from offchain.audit.auditor import Auditor
from offchain.audit.model import Status, SubjectAudit, canonical_json, score_subject
from offchain.pipeline.adapters import to_block_data
from offchain.projection import BlockData

log = structlog.get_logger("ami.validate")

_FINAL = {Status.MATCH.value, Status.MISMATCH.value}


class ChallengeRefused(Exception):
    """The contract refuses the challenge for good (e.g. NotValidator); `error` is its ink! error name."""

    def __init__(self, error: str) -> None:
        super().__init__(f"challenge refused by the contract: {error}")
        self.error = error


@dataclass(frozen=True)
class ChallengeSent:
    tx_hash: str | None  # None when the chain already held this (token, evidence)
    block: int | None


class Challenger(Protocol):
    async def challenge(self, token_id: int, evidence: bytes) -> ChallengeSent:
        """Send `challenge(token_id, evidence)` and return once it is finalized; ChallengeRefused when the
        contract refuses it for good; any other exception means "try again later"."""
        ...


class ContractChallenger:
    """Challenger over a signed `ami_rewards.challenge` call (dry-run first, mortal, confirmed finalized)."""

    def __init__(
        self, port: ChainPort, keypair: Keypair, rewards: str, abi: ContractAbi | None = None
    ) -> None:
        self.port = port
        self.keypair = keypair
        self.rewards = rewards
        self.abi = abi or ContractAbi.load("ami_rewards")

    async def is_validator(self) -> bool:
        """Whether the rewards contract lists this key as a validator (a read-only dry run)."""
        data = self.abi.encode_call("is_validator", account=self.keypair.address)
        dry = await self.port.contract_dry_run(self.rewards, data, self.keypair.address)
        return bool(self.abi.decode_return("is_validator", dry.output)) if dry.success else False

    async def challenge(self, token_id: int, evidence: bytes) -> ChallengeSent:
        try:
            res = await contract_tx(
                self.port,
                self.keypair,
                self.abi,
                self.rewards,
                "challenge",
                {"token_id": token_id, "evidence": evidence},
            )
        except ContractReverted as exc:
            if exc.error == "AlreadyChallenged":
                return ChallengeSent(None, None)
            raise ChallengeRefused(exc.error) from None
        return ChallengeSent(res.receipt.hash, res.receipt.block.number)


@dataclass(eq=False, repr=False)
class Validator:
    """See the module docstring. `contracts` maps the NFT and rewards addresses to their ABIs."""

    port: ChainPort
    contracts: Mapping[str, ContractAbi]
    auditor: Auditor
    challenger: Challenger | None
    _: KW_ONLY
    batch_blocks: int = 64
    retry_delay_s: float = 1.0
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        self.contracts = dict(self.contracts)
        self._stop = asyncio.Event()
        # Held while writing the databases or auditing: stop() never cancels in the middle of either (a cancel
        # landing on a COMMIT's await would report a failure for a write that happened).
        self._critical = asyncio.Lock()
        self.last_error: str | None = None
        self.processed_head = 0

    # -- following -------------------------------------------------------------------------------------------

    async def _ingest(self, blocks: list[BlockData]) -> None:
        await self.auditor.ingest(blocks)

    async def _follow(self, until: int | None) -> None:
        cp = await self.auditor.checkpoint()
        if until is not None and cp is not None and cp[0] >= until:
            return
        follower = BlockFollower(
            self.port,
            self.contracts,
            start_after=BlockRef(*cp) if cp else None,
            retry_delay_s=self.retry_delay_s,
        )
        batch: list[BlockData] = []
        known_head = until if until is not None else 0
        async for fb in follower.blocks():
            batch.append(to_block_data(fb))
            n = fb.ref.number
            if until is None and n >= known_head:
                known_head = (await self.port.finalized_head()).number
            caught_up = n >= known_head
            if len(batch) >= self.batch_blocks or caught_up:
                async with self._critical:
                    await self._ingest(batch)
                batch = []
            if until is not None and n >= until:
                return
            if caught_up and until is None:
                async with self._critical:
                    await self.process()
            if self._stop.is_set():
                return

    async def sync(self) -> int:
        """Ingest every finalized block up to the node's current finalized head; returns that head."""
        head = (await self.port.finalized_head()).number
        await self._follow(head)
        return head

    # -- auditing & challenging ------------------------------------------------------------------------------

    async def process(self) -> list[SubjectAudit]:
        """Rescore, audit what is due, challenge new mismatches; returns the audits made in this pass."""
        a = self.auditor
        head = await a.head()
        await a.rescore_pending()
        done: list[SubjectAudit] = []
        stored = await a.db.audit_statuses()
        mints = {m.token_id: m for m in await a.db.mints()}
        for score in await a.db.scores():
            subject = score_subject(score.token_id, score.model_version)
            prev = stored.get(subject)
            if prev in _FINAL:
                continue
            audit = await a.audit_score(score, mints.get(score.token_id))
            await a.db.save_audit(audit, head)
            done.append(audit)
        n, grace = a.opt.epoch_blocks, a.opt.grace
        due = (head - grace + 1) // n  # epochs 0..due-1 ended at least `grace` blocks ago
        paid_now = await a.db.paid_counts()
        paid_seen = await a.db.audit_paid_seen()
        for epoch in range(max(due, 0)):
            subject = f"epoch:{epoch}"
            # A final audit is redone only when more payouts of its epoch landed since (a late batch).
            if stored.get(subject) in _FINAL and paid_seen.get(subject) == paid_now.get(epoch, 0):
                continue
            audit = await a.audit_epoch(epoch)
            await a.db.save_audit(audit, head, paid_now.get(epoch, 0))
            done.append(audit)
        for audit in done:
            if audit.status == Status.MISMATCH:
                log.warning(
                    "validate.mismatch",
                    subject=audit.subject,
                    findings=[f.kind.value for f in audit.findings],
                )
                await self._decide(audit)
        await self.send_pending()
        self.processed_head = head
        return done

    async def _decide(self, audit: SubjectAudit) -> None:
        assert audit.evidence_commitment is not None
        db = self.auditor.db
        if await db.challenge(audit.subject) is not None:
            return
        cid = await self._publish_evidence(audit)
        if await db.record_challenge_intent(audit.subject, audit.token_id, audit.evidence_commitment, cid):
            log.info(
                "validate.challenge_decided",
                subject=audit.subject,
                token_id=audit.token_id,
                evidence=audit.evidence_commitment,
                evidence_cid=cid,
            )

    async def _publish_evidence(self, audit: SubjectAudit) -> str | None:
        """Put the canonical evidence document on IPFS (its blake2b-256 is the on-chain evidence), so anyone
        can check a challenge; a failure here never holds the challenge back."""
        add = getattr(self.auditor.content, "add", None)
        if add is None:
            return None
        try:
            return str(await add(canonical_json(audit.evidence)))
        except Exception as exc:  # IPFS away: the document stays in the validator's DB (audits table)
            log.warning("validate.evidence_not_published", subject=audit.subject, error=str(exc))
            return None

    async def send_pending(self) -> int:
        """Send every challenge decided but not landed yet; returns how many landed now."""
        if self.challenger is None:
            return 0
        db = self.auditor.db
        landed = 0
        on_chain = {(t, e) for t, e, _ in await db.challenged_on_chain()}
        for row in await db.challenges(status="pending"):
            evidence = bytes.fromhex(row.evidence[2:])
            if (row.token_id, row.evidence) in on_chain:
                await db.mark_challenge(row.subject, "sent")
                continue
            try:
                sent = await self.challenger.challenge(row.token_id, evidence)
            except ChallengeRefused as exc:
                await db.mark_challenge(row.subject, "refused", error=exc.error)
                log.error("validate.challenge_refused", subject=row.subject, error=exc.error)
                continue
            except Exception as exc:  # node away, timeout: the intent stays pending and is sent again later
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("validate.challenge_failed", subject=row.subject, error=str(exc))
                continue
            await db.mark_challenge(row.subject, "sent", tx_hash=sent.tx_hash, block=sent.block)
            landed += 1
            log.info("validate.challenged", subject=row.subject, tx=sent.tx_hash, block=sent.block)
        return landed

    # -- daemon ----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Follow and audit until stop(); outages are waited out with backoff, a foreign chain is fatal."""
        delay = self.retry_delay_s
        while not self._stop.is_set():
            task = asyncio.create_task(self._follow(None))
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not task.done():
                async with self._critical:  # the write or audit pass in flight finishes first
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                break
            exc = task.exception()
            if exc is None:
                continue
            if isinstance(exc, NonCanonicalBlock):
                raise exc
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("validate.follow_failed", error=str(exc), retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def summary(self) -> dict[str, Any]:
        audits = await self.auditor.db.audits()
        counts: dict[str, int] = {}
        for s in audits:
            counts[s.status.value] = counts.get(s.status.value, 0) + 1
        chs = await self.auditor.db.challenges()
        return {
            "checkpoint": await self.auditor.checkpoint(),
            "audits": counts,
            "challenges": {
                st: sum(1 for c in chs if c.status == st) for st in ("pending", "sent", "refused")
            },
        }
