"""send_call knows when a transaction is dead: a pool that accepts a second transaction with an already pooled
nonce and later drops it silently (what chopsticks does) must not leave the sender waiting for an era end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ami_node.keys import load_keypair
from ami_node.memory import MemoryChainPort
from ami_node.port import BlockRef, SignedTx
from ami_node.tx import TxExpired, TxTimeout, TxUsurped, send_call

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob").address


class DroppingPool(MemoryChainPort):
    """A memory chain whose next index ignores the pool (two racers read the same nonce) and whose pool
    accepts a duplicate nonce and then drops it without a word."""

    def __init__(self) -> None:
        super().__init__(instant=False)
        self.dropped: list[str] = []

    async def account_next_index(self, address: str) -> int:
        return self.nonces.get(address, 0)

    async def submit(self, tx: SignedTx) -> str:
        if any(p.signer == tx.signer and p.nonce == tx.nonce for p, _ in self.pool):
            self.dropped.append(tx.hash)
            return tx.hash
        return await super().submit(tx)


@contextlib.asynccontextmanager
async def producing(
    chain: MemoryChainPort, every_s: float = 0.01, empty: bool = False
) -> AsyncIterator[None]:
    """Author a block every `every_s` while the block runs: only when the pool holds something (instant seal:
    no transactions, no blocks), or, with `empty`, always (blocks go on whatever the pool does)."""

    async def loop() -> None:
        while True:
            if empty or chain.pool:
                chain.produce_block()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_usurped_transaction_is_signed_again_at_once() -> None:
    chain = DroppingPool()
    call = await chain.compose_call("Balances", "transfer_keep_alive", {"dest": BOB, "value": 5})
    winner = await chain.sign(call, ALICE, 0)
    await chain.submit(winner)  # pooled, not yet in a block
    before = chain.balances.get(BOB, 0)
    async with producing(chain):
        receipt = await send_call(chain, ALICE, call, era_period=64, timeout_s=20, poll_s=0.01)
    assert len(chain.dropped) == 1  # our first signature (nonce 0) was silently dropped
    assert receipt.nonce == 1 and receipt.success
    # found dead by the nonce, long before its era (64 blocks from #0) could have ended
    assert receipt.block.number < 64 and chain.blocks[-1].ref.number < 64
    assert chain.balances[BOB] == before + 10  # the winner and ours, each once


async def test_usurped_at_the_deadline_is_reported_as_never_landing() -> None:
    class AuthorsAfterTheDrop(DroppingPool):
        async def finalized_head(self) -> BlockRef:
            if self.dropped and self.pool:
                self.produce_block()  # the winner lands right after our duplicate was dropped
            return await super().finalized_head()

    chain = AuthorsAfterTheDrop()
    call = await chain.compose_call("Balances", "transfer_keep_alive", {"dest": BOB, "value": 5})
    await chain.submit(await chain.sign(call, ALICE, 0))
    with pytest.raises(TxUsurped, match="can never land: its nonce 0 was used") as info:
        await send_call(chain, ALICE, call, timeout_s=0.0, poll_s=0.01)  # no time left to sign again
    assert chain.dropped == [info.value.tx.hash] and info.value.head.number == 1


async def test_timeout_says_may_still_land_only_while_it_can() -> None:
    chain = MemoryChainPort(instant=False)  # no blocks at all: the transaction stays valid in the pool
    call = await chain.compose_call("Balances", "transfer_keep_alive", {"dest": BOB, "value": 5})
    with pytest.raises(TxTimeout, match=r"still valid and may land until block #64") as info:
        await send_call(chain, ALICE, call, era_period=64, timeout_s=0.1, poll_s=0.01)
    assert len(chain.pool) == 1 and chain.pool[0][0].hash == info.value.tx_hash


async def test_every_era_over_is_reported_as_expired_not_as_may_land() -> None:
    class BlackHole(MemoryChainPort):
        """Accepts every transaction and includes none (a pool that loses them), while blocks go on."""

        async def submit(self, tx: SignedTx) -> str:
            return tx.hash

    chain = BlackHole(instant=False)
    before = chain.balances[BOB]

    async with producing(chain, every_s=0.005, empty=True):
        call = await chain.compose_call("Balances", "transfer_keep_alive", {"dest": BOB, "value": 5})
        with pytest.raises(TxExpired, match="not included before its era ended") as info:
            await send_call(chain, ALICE, call, era_period=4, max_attempts=2, timeout_s=30, poll_s=0.01)
    assert "may still land" not in str(info.value) and "2 attempts" in str(info.value)
    assert chain.balances[BOB] == before
