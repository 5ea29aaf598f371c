"""The submitter: the single owner of a signing key's nonce, turning queued payouts and contract calls into
signed, dry-run-checked, batched extrinsics, and closing them only when their own events are finalized.

Every payout and call lives in an SQLite outbox (`outbox`); the planner (`planner`) dry-runs, packs, signs
and submits it; the confirmation scan (`confirmation`) settles it from finalized blocks; `submit_codec` is
all it knows of the contracts' ABI. The order of writes makes a crash (even SIGKILL) at any point harmless:

* a transaction is written (with its payouts assigned) before it is signed, and its signed bytes are written
  before they are submitted; on restart unsigned plans are dropped and signed bytes are submitted again (the
  same bytes have the same hash and nonce, so the pool or the chain accepts them at most once);
* a payout is confirmed only when the rewards contract's `Paid` event with its id is seen in a finalized
  block, whatever transaction carried it;
* a transaction is given up only after its mortal era has passed in finalized blocks without it, so it can
  never land afterwards; only then are its payouts planned again;
* and the contract itself refuses a payout id or an (epoch, batch) it has already paid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ami_node import confirmation, planner
from ami_node.keys import Keypair
from ami_node.nonce import NonceManager
from ami_node.outbox import (
    OUTBOX_SCHEMA_VERSION,
    CallStatus,
    Outbox,
    PayoutConflict,
    SubmitterCounts,
    SubmitterError,
)
from ami_node.payouts import Payout
from ami_node.planner import RUNTIME
from ami_node.port import ChainError, ChainPort, ChainUnavailable, PoolRejected, SignedTx
from ami_node.submit_codec import AbiCodec, SubmitterCodec
from pallets_spec.vocabulary import U128_MAX

__all__ = [
    "OUTBOX_SCHEMA_VERSION",
    "CallStatus",
    "Payout",
    "PayoutConflict",
    "Submitter",
    "SubmitterCounts",
    "SubmitterError",
]

log = structlog.get_logger(__name__)

U32_MAX = 2**32 - 1


@dataclass(eq=False, repr=False)
class Submitter:
    """The single owner of one key's nonce, with a persistent outbox.

    `enqueue_payouts(epoch, payouts)` and `enqueue_call(key, ...)` store work; `run()` (or `tick()`
    repeatedly, or `drain()`) submits it and confirms it from finalized blocks. Only one Submitter may run
    per key and per database at a time.
    """

    port: ChainPort
    keypair: Keypair
    db_path: Path | str
    _: KW_ONLY
    rewards: str | None
    codec: SubmitterCodec = field(default_factory=AbiCodec)
    era_period: int = 64
    payouts_per_call: int = 100
    max_calls_per_tx: int = 64
    weight_fill: float = 0.75
    gas_margin: float = 2.0
    submit_attempts: int = 6
    poll_s: float = 0.2

    def __post_init__(self) -> None:
        if not 4 <= self.era_period <= 65536:
            raise SubmitterError("era_period must be between 4 and 65536 blocks")
        if self.payouts_per_call < 1 or self.max_calls_per_tx < 1:
            raise SubmitterError("payouts_per_call and max_calls_per_tx must be at least 1")
        if not 0.0 < self.weight_fill <= 1.0:
            raise SubmitterError("weight_fill must be in (0, 1]")
        self.address = self.keypair.address
        self.db_path = Path(self.db_path)
        self.nonces = NonceManager(self.port, self.address)
        self.outbox = Outbox(self.db_path, self.address)
        self._recovered = False
        self.max_weight: tuple[int, int] | None = None  # the chain's, read once
        # Monotonic counters since start, for prometheus (the DB holds the durable state).
        self.stats: dict[str, int] = {
            "txs_submitted": 0,
            "pool_rejections": 0,
            "resubmitted": 0,
            "expired": 0,
            "usurped": 0,
            "dry_run_reverts": 0,
        }

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> Submitter:
        if not self.outbox.is_open:
            await self.outbox.open()
        return self

    async def close(self) -> None:
        await self.outbox.close()

    async def __aenter__(self) -> Submitter:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ enqueue

    async def enqueue_payouts(self, epoch: int, payouts: Sequence[Payout]) -> int:
        """Store payouts for `epoch`; returns how many were new. Re-queuing the same ids is harmless; the
        same id with other contents raises PayoutConflict and stores nothing."""
        if not 0 <= epoch <= U32_MAX:
            raise SubmitterError(f"epoch {epoch} out of range (u32)")
        if self.rewards is None:
            raise SubmitterError("no rewards contract configured; pass rewards=<address> (see `ami deploy`)")
        return await self.outbox.add_payouts(epoch, payouts)

    async def enqueue_call(
        self, key: str, contract: str, message: str, data: bytes, *, abi: str, value: int = 0
    ) -> bool:
        """Store one contract call under a unique `key` (e.g. "score:42:1"); returns False when the key was
        already queued (with the same input). `abi` names the contract's metadata, used to decode reverts."""
        if not key:
            raise SubmitterError("call key must be non-empty")
        if value < 0 or value > U128_MAX:
            raise SubmitterError("value must fit u128")
        return await self.outbox.add_call(key, contract, message, data, abi, value)

    async def enqueue_runtime_call(
        self, key: str, pallet: str, function: str, params: dict[str, Any]
    ) -> bool:
        """Store any runtime call (e.g. Balances.transfer_keep_alive) under a unique `key`; it is batched with
        the others and confirmed by its extrinsic's success in a finalized block. `params` must be JSON."""
        try:
            data = json.dumps(params, sort_keys=True).encode()
        except (TypeError, ValueError) as exc:
            raise SubmitterError(f"params of {pallet}.{function} must be JSON-serialisable: {exc}") from None
        return await self.enqueue_call(key, "", f"{pallet}.{function}", data, abi=RUNTIME)

    # ------------------------------------------------------------------ status

    async def counts(self) -> SubmitterCounts:
        return await self.outbox.counts()

    async def payout_status(self, payout_id: bytes) -> tuple[str, str | None, int | None] | None:
        """(state, error, finalized block number) of one payout, or None when unknown."""
        return await self.outbox.payout_status(payout_id)

    async def failed_payouts(self) -> list[tuple[bytes, str]]:
        return await self.outbox.failed_payouts()

    async def call_status(self, key: str) -> CallStatus | None:
        return await self.outbox.call_status(key)

    async def requeue_failed(self) -> int:
        """Put failed payouts and calls back to pending (e.g. once a missing oracle role is granted)."""
        return await self.outbox.requeue_failed()

    async def idle(self) -> bool:
        """True when no payout or call is pending or in flight (every row is confirmed or failed)."""
        c = await self.counts()
        return not (c.pending or c.submitted)

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Submit and confirm until `stop` is set. Chain outages and errors are waited out with backoff."""
        stop = stop or asyncio.Event()
        delay = self.poll_s
        while not stop.is_set():
            try:
                await self.tick()
                delay = self.poll_s
            except Exception as exc:
                if isinstance(exc, ChainUnavailable):
                    log.warning("submitter.chain_unavailable", error=str(exc), retry_in_s=delay)
                elif isinstance(exc, ChainError):
                    # e.g. a block the node no longer serves, an RPC error: the outbox is intact
                    log.error("submitter.chain_error", error=str(exc), retry_in_s=delay)
                else:
                    # Anything else (a full disk, a bug) must not stop the daemon's other work: log it loudly
                    # and try again later.
                    log.exception("submitter.unexpected_error", retry_in_s=delay)
                # Drop writes of the interrupted step; every completed step was committed on its own.
                with contextlib.suppress(Exception):
                    await self.outbox.rollback()
                self.nonces.reset()
                delay = min(max(delay, 0.1) * 2, 30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def drain(self, timeout_s: float = 60.0) -> SubmitterCounts:
        """Tick until idle (everything confirmed or failed); TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            await self.tick()
            if await self.idle():
                return await self.counts()
            if time.monotonic() > deadline:
                raise TimeoutError(f"submitter not idle after {timeout_s} s: {await self.counts()}")
            await asyncio.sleep(self.poll_s)

    async def tick(self) -> None:
        """One round: recover (first time), confirm from finalized blocks, then plan, sign and submit."""
        if not self._recovered:
            await self._recover()
            self._recovered = True
        await confirmation.scan(self)
        await self._resubmit("('signed')")  # signed, but their submission failed for lack of a node
        await planner.plan_and_submit(self)

    # ------------------------------------------------------------------ recovery

    async def _recover(self) -> None:
        """After a (maybe unclean) stop: drop unsigned plans, resubmit signed bytes, start the scan cursor."""
        outbox = self.outbox
        for tx_id in await outbox.planned_tx_ids():
            await outbox.release_tx(tx_id, "abandoned", error=None)
        if await outbox.meta_get("cursor") is None:
            head = await self.port.finalized_head()
            await outbox.meta_set("cursor", str(head.number))
        await outbox.commit()
        await self._resubmit("('signed', 'submitted')")
        self.nonces.reset()

    async def _resubmit(self, states: str) -> None:
        """Send the stored signed bytes of transactions in `states` again (same hash, nonce and era)."""
        for tx_id, tx_hash, data, nonce, birth, death in await self.outbox.txs_in(states):
            tx = SignedTx(str(tx_hash), bytes(data), self.address, int(nonce), int(birth), int(death))
            try:
                await self.port.submit(tx)
                self.stats["resubmitted"] += 1
            except PoolRejected as exc:
                # Already in the pool (1013), nonce used (stale: it or its replacement landed): either way the
                # scan decides; a non-transient refusal is also left to the era to expire.
                log.info("submitter.resubmit_refused", tx=tx.hash, code=exc.code, reason=exc.reason)
            await self.outbox.tx_submitted(tx_id, only_live=True)
