"""One-off transactions: compose, sign (mortal), submit with pool-aware nonces, wait for finalization, report.

This is what `ami tx` and the other developer commands use. It is safe to run many processes at once with the
same key: each attempt asks the node for the pool-aware next nonce, and a transient pool refusal (another
process took that nonce: "priority is too low", "outdated") is retried with a fresh nonce after a random wait.
Inclusion is confirmed by scanning finalized blocks for the extrinsic's hash, never by waiting on the node's
watch notifications (substrate-interface's wait can hang after `invalid` or `usurped`). A transaction whose
nonce a finalized block's state has already used, while no finalized block holds it, is dead at once
(usurped: another extrinsic took its nonce, e.g. a pool that accepted both and dropped one silently) and is
signed again with a fresh nonce; it is never left to wait for an era end that may not come.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from ami_node.keys import Keypair
from ami_node.nonce import NonceManager
from ami_node.port import (
    BlockRef,
    ChainError,
    ChainPort,
    ContractReverted,
    PoolRejected,
    RawEvent,
    SignedTx,
    dispatch_error_text,
)

__all__ = [
    "TxDispatchFailed",
    "TxReceipt",
    "TxExpired",
    "TxTimeout",
    "TxUsurped",
    "send_call",
    "wait_finalized",
]


@dataclass(frozen=True)
class TxReceipt:
    """Where a transaction landed (in a finalized block) and what it did."""

    hash: str
    nonce: int
    block: BlockRef
    extrinsic_index: int
    success: bool
    error: str | None
    events: tuple[RawEvent, ...]
    attempts: int

    def event(self, pallet: str, name: str) -> RawEvent | None:
        return next((e for e in self.events if e.pallet == pallet and e.name == name), None)


class TxTimeout(ChainError):
    """No finalized block contained the transaction before the deadline, and it was still valid then: its
    nonce unused in the finalized state and its era not over, so it may still land (until `era_death`)."""

    def __init__(self, tx_hash: str, timeout_s: float, era_death: int | None = None) -> None:
        until = f" until block #{era_death} (its era's end)" if era_death is not None else ""
        super().__init__(
            f"transaction {tx_hash} was not finalized within {timeout_s:.0f} s; it is still valid and may "
            f"land{until}: check the node's finality and `ami chain status`, or raise --timeout"
        )
        self.tx_hash = tx_hash


class TxExpired(ChainError):
    """Every attempt's mortal era ended without the transaction in a finalized block: none can land now."""

    def __init__(self, tx: SignedTx, attempts: int) -> None:
        super().__init__(
            f"transaction {tx.hash} was not included before its era ended at block #{tx.era_death} "
            f"({attempts} attempts, each signed again after its era); none of them can land now, nothing was "
            "executed: check that the node produces blocks and accepts the signer's transactions"
        )
        self.tx = tx


class TxUsurped(ChainError):
    """A finalized block's state has used the transaction's nonce, and no finalized block holds it: another
    extrinsic took the nonce, so this one can never land (nothing of it was executed)."""

    def __init__(self, tx: SignedTx, head: BlockRef, account_nonce: int) -> None:
        super().__init__(
            f"transaction {tx.hash} can never land: its nonce {tx.nonce} was used by another transaction of "
            f"{tx.signer} (finalized block #{head.number} has its nonce at {account_nonce}); nothing of it "
            "was executed: send it again"
        )
        self.tx = tx
        self.head = head


class TxDispatchFailed(ChainError):
    """The transaction was included and finalized but its call failed (fees were paid, nothing else)."""

    def __init__(self, receipt: TxReceipt) -> None:
        super().__init__(
            f"transaction {receipt.hash} failed in block #{receipt.block.number}: {receipt.error}"
        )
        self.receipt = receipt


async def wait_finalized(
    port: ChainPort, tx: SignedTx, after: int, deadline: float, *, poll_s: float = 0.1, attempts: int = 1
) -> TxReceipt | None:
    """Scan finalized blocks after `after` for `tx`; None when its era ended without it (it never lands).

    `after` is a finalized block read before `tx` was submitted. TxUsurped as soon as a finalized state has
    used `tx`'s nonce while no finalized block after `after` holds `tx`; TimeoutError at `deadline`.
    """
    cursor = after
    checked = -1  # the finalized number whose state was last asked for the signer's nonce
    while True:
        head = await port.finalized_head()
        for number in range(cursor + 1, head.number + 1):
            block = await port.block(number)
            if tx.hash in block.extrinsic_hashes:
                index = block.extrinsic_hashes.index(tx.hash)
                events = tuple(e for e in block.events if e.extrinsic_index == index)
                failed = next(
                    (e for e in events if e.pallet == "System" and e.name == "ExtrinsicFailed"), None
                )
                return TxReceipt(
                    hash=tx.hash,
                    nonce=tx.nonce,
                    block=block.ref,
                    extrinsic_index=index,
                    success=failed is None,
                    error=None if failed is None else dispatch_error_text(failed.attributes),
                    events=events,
                    attempts=attempts,
                )
            cursor = number
            if number >= tx.era_death:
                return None
        if head.number > checked:
            # not in any finalized block up to `head`: if `head`'s state has used its nonce, it is dead
            checked = head.number
            used = await port.account_nonce(tx.signer, head.hash)
            if used > tx.nonce:
                raise TxUsurped(tx, head, used)
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(poll_s)


async def send_call(
    port: ChainPort,
    keypair: Keypair,
    call: Any,
    *,
    era_period: int = 64,
    timeout_s: float = 120.0,
    max_attempts: int = 12,
    nonces: NonceManager | None = None,
    raise_on_failure: bool = True,
    poll_s: float = 0.1,
) -> TxReceipt:
    """Sign `call` mortal, submit, and return its receipt once finalized.

    Nonces come from `nonces` (a process that owns the key) or else from the node's pool-aware next index on
    every attempt. Transient pool refusals are retried up to `max_attempts` with jittered backoff; a
    transaction whose era passes without inclusion, or that is usurped (its nonce used by another
    extrinsic), is signed again with a fresh nonce. Usurpations do not count as attempts (each one means
    another transaction of the key landed, so racers make progress), only `timeout_s` bounds them.
    TxDispatchFailed when the call failed on chain (unless `raise_on_failure` is False), TxTimeout after
    `timeout_s` while the transaction may still land, TxUsurped when the last one was usurped at the
    deadline, PoolRejected when refused for good (bad signature, cannot pay fees).
    """
    deadline = time.monotonic() + timeout_s
    tx: SignedTx | None = None
    attempt = usurped = 0
    while attempt < max_attempts:
        attempt += 1
        start = await port.finalized_head()
        nonce = await nonces.take() if nonces else await port.account_next_index(keypair.address)
        tx = await port.sign(call, keypair, nonce, era_period)
        try:
            await port.submit(tx)
        except PoolRejected as exc:
            if nonces:
                nonces.reset()
            if not exc.transient or attempt == max_attempts or time.monotonic() > deadline:
                raise
            # Another signer with this key took the nonce: wait a random while so the racers spread out.
            await asyncio.sleep(random.uniform(0.02, 0.15) * attempt)
            continue
        try:
            receipt = await wait_finalized(port, tx, start.number, deadline, poll_s=poll_s, attempts=attempt)
        except TimeoutError:
            raise TxTimeout(tx.hash, timeout_s, tx.era_death) from None
        except TxUsurped:
            if nonces:
                nonces.reset()
            if time.monotonic() > deadline:
                raise
            attempt -= 1  # another transaction of this key landed: progress, not a failed attempt
            usurped += 1
            # the racers that lost this nonce all sign again now: spread them out, more so each time
            await asyncio.sleep(random.uniform(0.0, 0.1 * min(usurped, 10)))
            continue
        if receipt is None:
            if nonces:
                nonces.reset()
            continue  # expired unincluded: safe to sign again
        if raise_on_failure and not receipt.success:
            raise TxDispatchFailed(receipt)
        return receipt
    assert tx is not None  # max_attempts >= 1 and every path above signed one
    raise TxExpired(tx, max_attempts)


@dataclass(frozen=True)
class ContractTxResult:
    """A finalized contract call: its receipt, the dry run's decoded return value and its decoded events."""

    receipt: TxReceipt
    value: Any
    events: tuple[tuple[str, dict[str, Any]], ...]


def decode_contract_events(
    events: tuple[RawEvent, ...] | list[RawEvent], contracts: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(label, fields) of each ContractEmitted event of a contract in `contracts` (address -> ContractAbi)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for e in events:
        abi = contracts.get(e.contract or "")
        if e.name != "ContractEmitted" or abi is None or e.data is None:
            continue
        try:
            out.append(abi.decode_event(e.topics, e.data))
        except ValueError:  # an event of another version of the contract: shown raw by the caller
            continue
    return out


async def contract_tx(
    port: ChainPort,
    keypair: Keypair,
    abi: Any,
    address: str,
    message: str,
    args: dict[str, Any],
    *,
    value: int = 0,
    gas_margin: float = 1.3,
    timeout_s: float = 120.0,
    nonces: NonceManager | None = None,
) -> ContractTxResult:
    """Dry-run `message` on the contract at `address`; if it would revert raise ContractReverted with the
    decoded error (nothing is sent); else submit it with the dry run's gas (plus a margin) and wait."""
    data = abi.encode_call(message, **args)
    dry = await port.contract_dry_run(address, data, keypair.address, value)
    if not dry.success:
        reason = abi.decode_error_output(message, dry.output) if dry.output else None
        error = reason or dry.error or "trapped"
        raise ContractReverted(error, f"{abi.name}.{message} would revert: {error}; nothing was sent")
    result = abi.decode_return(message, dry.output) if dry.output else None
    gas = (int(dry.gas_required[0] * gas_margin) + 1, int(dry.gas_required[1] * gas_margin) + 1)
    call = await port.contract_call(address, data, gas, value)
    receipt = await send_call(port, keypair, call, timeout_s=timeout_s, nonces=nonces)
    events = tuple(decode_contract_events(receipt.events, {address: abi}))
    return ContractTxResult(receipt, result, events)
