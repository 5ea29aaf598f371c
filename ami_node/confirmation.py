"""The submitter's confirmation scan: walk finalized blocks after the outbox's cursor, confirm payouts by
their `Paid` events, settle transactions (included, dispatch failed, expired, usurped).

* a payout is confirmed only when the rewards contract's `Paid` event with its id is seen in a finalized
  block, whatever transaction carried it;
* a transaction is given up only after its mortal era has passed in finalized blocks without it (or a
  finalized state has used its nonce), so it can never land afterwards; only then is its work planned again.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from ami_node.nonce import NonceManager
from ami_node.outbox import Outbox
from ami_node.port import Block, BlockRef, ChainPort, dispatch_error_text
from ami_node.submit_codec import SubmitterCodec

log = structlog.get_logger("ami_node.submitter")


class ConfirmingSubmitter(Protocol):
    """What the scan uses of `ami_node.submitter.Submitter`: chain, outbox, rewards contract, counters."""

    port: ChainPort
    address: str
    rewards: str | None
    outbox: Outbox
    nonces: NonceManager
    stats: dict[str, int]

    @property
    def codec(self) -> SubmitterCodec: ...


Live = dict[str, tuple[int, int]]
"""Transactions in flight: hash -> (outbox tx id, era death block)."""


async def scan(sub: ConfirmingSubmitter) -> None:
    """Walk finalized blocks after the cursor: confirm payouts by Paid events, settle transactions."""
    outbox = sub.outbox
    head = await sub.port.finalized_head()
    cursor = int(await outbox.meta_get("cursor") or head.number)
    if head.number <= cursor:
        return
    rows = await outbox.live_txs()
    live: Live = {str(r[1]): (int(r[0]), int(r[2])) for r in rows}
    nonce_of = {str(r[1]): int(r[3]) for r in rows}
    for number in range(cursor + 1, head.number + 1):
        if not live:
            # Nothing of ours is in flight, so these blocks hold nothing to confirm (payouts are only
            # ever paid by a transaction we track, or found already paid by a dry run): skip them.
            await outbox.meta_set("cursor", str(head.number))
            await outbox.commit()
            return
        block = await sub.port.block(number)
        await apply_block(sub, block, live)
        await _expire(sub, number, live)
        await outbox.meta_set("cursor", str(number))
        await outbox.commit()
    if live:
        await _release_usurped(sub, live, nonce_of, head)


async def _expire(sub: ConfirmingSubmitter, number: int, live: Live) -> None:
    for tx_hash, (tx_id, era_death) in list(live.items()):
        if number >= era_death:
            # The era is over in finalized blocks and the transaction is not in any of them: it can
            # never land, so its work may be signed again.
            await sub.outbox.release_tx(tx_id, "expired", error=None)
            del live[tx_hash]
            sub.stats["expired"] += 1
            sub.nonces.reset()
            log.info("submitter.expired", tx=tx_hash, block=number)


async def _release_usurped(
    sub: ConfirmingSubmitter, live: Live, nonce_of: dict[str, int], head: BlockRef
) -> None:
    """A transaction in no finalized block up to `head` whose nonce `head`'s state has used can never
    land (another process signing with this key took the nonce): release its work now, without waiting
    for its era to end (an instant-seal node may never get there)."""
    used = await sub.port.account_nonce(sub.address, head.hash)
    for tx_hash, (tx_id, _) in list(live.items()):
        if nonce_of[tx_hash] < used:
            await sub.outbox.release_tx(tx_id, "usurped", error=None)
            del live[tx_hash]
            sub.stats["usurped"] += 1
            sub.nonces.reset()
            log.info("submitter.usurped", tx=tx_hash, nonce=nonce_of[tx_hash], block=head.number)
    await sub.outbox.commit()


async def apply_block(sub: ConfirmingSubmitter, block: Block, live: Live) -> None:
    """Confirm what finalized `block` settles: payouts by `Paid`, our transactions by their outcome."""
    outbox = sub.outbox
    number = block.ref.number
    if sub.rewards is not None:
        await outbox.confirm_paid(number, list(sub.codec.paid_ids(block, sub.rewards)))
    for index, ext_hash in enumerate(block.extrinsic_hashes):
        entry = live.pop(ext_hash, None)
        if entry is None:
            continue
        tx_id = entry[0]
        outcome = [
            e
            for e in block.events
            if e.extrinsic_index == index
            and e.pallet == "System"
            and e.name in ("ExtrinsicSuccess", "ExtrinsicFailed")
        ]
        if outcome and outcome[-1].name == "ExtrinsicSuccess":
            await outbox.tx_included(tx_id, number, index)
            continue
        reason = dispatch_error_text(outcome[-1].attributes) if outcome else "no outcome event"
        log.warning("submitter.dispatch_failed", tx=ext_hash, block=number, error=reason)
        await outbox.tx_dispatch_failed(tx_id, number, index, reason)
