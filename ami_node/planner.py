"""The submitter's planner: dry-run the outbox's pending work, pack it into weight-bounded batches, sign each
batch with the next nonce and submit it, writing every step to the outbox before taking the next.

A transaction is written (with its work assigned) before it is signed, and its signed bytes are written
before they are submitted, so a crash at any point leaves the outbox knowing what may be on its way.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from ami_node.keys import Keypair
from ami_node.nonce import NonceManager
from ami_node.outbox import Outbox, SubmitterError
from ami_node.payouts import Payout
from ami_node.port import CallError, ChainPort, ChainUnavailable, DryRun, PoolRejected
from ami_node.submit_codec import SubmitterCodec

log = structlog.get_logger("ami_node.submitter")

RUNTIME = "runtime"  # the `abi` of queued non-contract calls


class PlanningSubmitter(Protocol):
    """What the planner uses of `ami_node.submitter.Submitter`: its key, chain, outbox and settings."""

    port: ChainPort
    keypair: Keypair
    address: str
    rewards: str | None
    outbox: Outbox
    nonces: NonceManager
    stats: dict[str, int]
    era_period: int
    payouts_per_call: int
    max_calls_per_tx: int
    weight_fill: float
    gas_margin: float
    submit_attempts: int
    max_weight: tuple[int, int] | None

    @property
    def codec(self) -> SubmitterCodec: ...


@dataclass
class PlannedCall:
    """One contract call ready to pack: either a distribute chunk or a queued generic call."""

    contract: str
    data: bytes
    value: int
    gas: tuple[int, int]
    payout_ids: list[bytes] = field(default_factory=list)
    solo: bool = False  # retried after a failed dispatch: sent alone, with more gas
    epoch: int | None = None
    batch: int | None = None
    call_key: str | None = None
    runtime_call: Any = None  # an already composed non-contract call (enqueue_runtime_call)


async def plan_and_submit(sub: PlanningSubmitter) -> None:
    items = await _dry_run_calls(sub) + await _dry_run_payouts(sub)
    if not items:
        return
    for group in await _pack(sub, items):
        await _submit_group(sub, group)


async def _weight_limit(sub: PlanningSubmitter) -> tuple[int, int]:
    if sub.max_weight is None:
        sub.max_weight = await sub.port.max_extrinsic_weight()
    ref, proof = sub.max_weight
    return int(ref * sub.weight_fill), int(proof * sub.weight_fill)


def _gas(sub: PlanningSubmitter, dry: DryRun, boost: float = 1.0) -> tuple[int, int]:
    # A dry run sees the state before the batch; later calls in a batch_all run on a bigger state and may
    # need more. Unused gas is refunded, so the margin costs only packing room.
    margin = sub.gas_margin * boost
    ref, proof = dry.gas_required
    return int(ref * margin) + 1, int(proof * margin) + 1


def _is_retry(error: Any) -> bool:
    return str(error or "").startswith("dispatch failed")


async def _dry_run_calls(sub: PlanningSubmitter) -> list[PlannedCall]:
    items: list[PlannedCall] = []
    for key, contract, abi, message, data, value, error in await sub.outbox.pending_calls():
        retry = _is_retry(error)
        if abi == RUNTIME:
            pallet, _, function = message.partition(".")
            try:
                composed = await sub.port.compose_call(pallet, function, json.loads(data))
            except CallError as exc:
                await sub.outbox.fail_call(key, str(exc))
                continue
            items.append(PlannedCall("", b"", 0, (0, 0), call_key=key, solo=retry, runtime_call=composed))
            continue
        dry = await sub.port.contract_dry_run(contract, bytes(data), sub.address, int(value))
        if not dry.success:
            reason = sub.codec.revert_reason(abi, message, dry)
            sub.stats["dry_run_reverts"] += 1
            log.warning("submitter.call_reverted", key=key, message=message, error=reason)
            await sub.outbox.fail_call(key, f"{message} reverted in dry run: {reason}")
            continue
        gas = _gas(sub, dry, 2.0 if retry else 1.0)
        items.append(PlannedCall(contract, bytes(data), int(value), gas, call_key=key, solo=retry))
    return items


async def _dry_run_payouts(sub: PlanningSubmitter) -> list[PlannedCall]:
    if sub.rewards is None:
        return []
    # Payouts whose last transaction failed on chain go in separate chunks, sent alone with more gas.
    groups: dict[tuple[int, bool], list[Payout]] = {}
    for pid, epoch, to, amount, kind, error in await sub.outbox.pending_payouts():
        groups.setdefault((int(epoch), _is_retry(error)), []).append(
            Payout(id=bytes(pid), to=to, amount=int(amount), kind=kind)
        )
    items: list[PlannedCall] = []
    for (epoch, retry), payouts in groups.items():
        for start in range(0, len(payouts), sub.payouts_per_call):
            chunk = payouts[start : start + sub.payouts_per_call]
            items.extend(await _chunk_item(sub, epoch, chunk, retry))
    return items


async def _chunk_item(
    sub: PlanningSubmitter, epoch: int, chunk: list[Payout], retry: bool = False
) -> list[PlannedCall]:
    """Dry-run one distribute call; sort out already-paid ids and used batch numbers; record reverts."""
    assert sub.rewards is not None
    outbox = sub.outbox
    for _ in range(64):
        batch = await outbox.next_batch(epoch)
        data = sub.codec.encode_distribute(epoch, batch, chunk)
        dry = await sub.port.contract_dry_run(sub.rewards, data, sub.address)
        if dry.success:
            await outbox.commit()
            gas = _gas(sub, dry, 2.0 if retry else 1.0)
            return [PlannedCall(sub.rewards, data, 0, gas, [p.id for p in chunk], retry, epoch, batch)]
        reason = sub.codec.revert_reason("ami_rewards", "distribute", dry)
        if reason == "BatchAlreadyPaid":
            continue  # this batch number was used by an earlier outbox; the counter moves on
        if reason == "PayoutAlreadyPaid" and len(chunk) > 1:
            # Some ids were paid by an earlier life of this outbox (or another one): find them one by one.
            await outbox.commit()
            items: list[PlannedCall] = []
            for p in chunk:
                items.extend(await _chunk_item(sub, epoch, [p], retry))
            return items
        if reason == "PayoutAlreadyPaid":
            await outbox.confirm_already_paid(chunk[0].id)
            return []
        sub.stats["dry_run_reverts"] += 1
        log.warning("submitter.distribute_reverted", epoch=epoch, count=len(chunk), error=reason)
        await outbox.fail_payouts([p.id for p in chunk], f"distribute reverted in dry run: {reason}")
        return []
    await outbox.commit()
    raise SubmitterError(f"could not find an unused batch number for epoch {epoch}")


async def _pack(sub: PlanningSubmitter, items: list[PlannedCall]) -> list[list[PlannedCall]]:
    """Greedy packing: as many calls per extrinsic as the weight budget and max_calls_per_tx allow."""
    limit_ref, limit_proof = await _weight_limit(sub)
    groups: list[list[PlannedCall]] = []
    current: list[PlannedCall] = []
    ref = proof = 0
    for item in items:
        r, p = item.gas
        if current and (
            item.solo
            or current[-1].solo
            or len(current) >= sub.max_calls_per_tx
            or ref + r > limit_ref
            or proof + p > limit_proof
        ):
            groups.append(current)
            current, ref, proof = [], 0, 0
        current.append(item)
        ref, proof = ref + r, proof + p
    if current:
        groups.append(current)
    return groups


async def _compose(sub: PlanningSubmitter, group: list[PlannedCall]) -> Any:
    calls = [
        i.runtime_call
        if i.runtime_call is not None
        else await sub.port.contract_call(i.contract, i.data, i.gas, i.value)
        for i in group
    ]
    return calls[0] if len(calls) == 1 else await sub.port.batch_all(calls)


async def _submit_group(sub: PlanningSubmitter, group: list[PlannedCall]) -> None:
    call = await _compose(sub, group)
    if len(group) > 1:
        max_ref, max_proof = await sub.port.max_extrinsic_weight()
        ref, proof = await sub.port.call_weight(call, sub.address)
        if ref > max_ref or proof > max_proof:
            half = len(group) // 2
            await _submit_group(sub, group[:half])
            await _submit_group(sub, group[half:])
            return
    tx_id = await sub.outbox.plan_tx(
        [i.call_key for i in group], [(pid, i.batch) for i in group for pid in i.payout_ids]
    )
    last = await _sign_and_submit(sub, call, tx_id)
    if last is None:
        return
    # The pool refused every signed version, so none of them can land: give the work back (or fail it when
    # the refusal is permanent, e.g. the key cannot pay fees).
    error = f"pool rejected ({last.code}): {last.reason}"
    await sub.outbox.release_tx(tx_id, "rejected", error=error)
    if not last.transient:
        keys = [i.call_key for i in group if i.call_key is not None]
        await sub.outbox.fail_unsent(keys, [p for i in group for p in i.payout_ids], error)
    await sub.outbox.commit()


async def _sign_and_submit(sub: PlanningSubmitter, call: Any, tx_id: int) -> PoolRejected | None:
    """Sign `call` with the next nonce and submit it, retrying transient pool refusals with a fresh nonce;
    None once the pool took it, else the last refusal."""
    last: PoolRejected | None = None
    for attempt in range(sub.submit_attempts):
        nonce = await sub.nonces.take()
        tx = await sub.port.sign(call, sub.keypair, nonce, sub.era_period)
        await sub.outbox.tx_signed(tx_id, tx)
        try:
            await sub.port.submit(tx)
        except PoolRejected as exc:
            sub.stats["pool_rejections"] += 1
            sub.nonces.reset()
            last = exc
            if not exc.transient:
                break
            log.info("submitter.pool_retry", code=exc.code, reason=exc.reason, attempt=attempt + 1)
            await asyncio.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
            continue
        except ChainUnavailable:
            # Whether the node got it is unknown: the signed bytes stay and are sent again next tick.
            sub.nonces.reset()
            raise
        await sub.outbox.tx_submitted(tx_id)
        sub.stats["txs_submitted"] += 1
        return None
    assert last is not None
    return last
