"""The devnet's pool drops future-nonce transactions once their era has ended (as substrate's clear_stale
does), so an expired transaction cannot hold its nonce slot (1014) or inflate system_accountNextIndex."""

from __future__ import annotations

import pytest

from ami_node.devnet.testing import running_devnet
from ami_node.keys import load_keypair
from ami_node.port import PoolRejected
from ami_node.substrate import SubstrateChainPort

ALICE, EVE = load_keypair("//Alice"), load_keypair("//Eve")


async def test_expired_future_transaction_is_purged_and_its_nonce_freed() -> None:
    with running_devnet() as dn:
        async with SubstrateChainPort(dn.url, timeout_s=10.0) as port:
            call, other = [
                await port.compose_call("Balances", "transfer_keep_alive", {"dest": EVE.address, "value": v})
                for v in (5, 6)
            ]
            n0 = await port.account_next_index(ALICE.address)
            future = await port.sign(call, ALICE, n0 + 1, era_period=8)  # a gap at n0: never ready
            await port.submit(future)
            assert await port.account_next_index(ALICE.address) == n0  # a gap: future txs do not count
            with pytest.raises(PoolRejected) as busy:  # the slot is taken while the era lasts
                await port.submit(await port.sign(other, ALICE, n0 + 1, era_period=8))
            assert busy.value.code == 1014
            assert future.era_death - 1 > (await port.best_head()).number  # still alive now
            dn.new_block(future.era_death - (await port.best_head()).number - 1)
            assert (await port.best_head()).number == future.era_death - 1
            assert dn.call(lambda: len(dn.chain.pool_by_hash)) == 1  # one block before its death: kept
            dn.new_block(1)  # block number == death: the era is over, the pool forgets it
            assert dn.call(lambda: len(dn.chain.pool_by_hash)) == 0
            with pytest.raises(PoolRejected) as banned:  # and bans the dead bytes
                await port.submit(future)
            assert banned.value.code == 1012
            # The slot is free: a fresh transaction at the same nonce is pooled, and lands once n0 is filled.
            replacement = await port.sign(other, ALICE, n0 + 1, era_period=64)
            await port.submit(replacement)
            await port.submit(await port.sign(call, ALICE, n0, era_period=64))
            assert await port.account_next_index(ALICE.address) == n0 + 2
