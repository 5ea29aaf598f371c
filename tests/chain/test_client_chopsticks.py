"""SubstrateChainPort against a real Substrate runtime run offline by chopsticks (Rococo Asset Hub genesis).

The devnet serves contracts-node metadata but is our own emulator; this checks the adapter on a runtime we did
not write: heads, blocks and events, compose/sign/submit with the runtime's own signed extensions, pool
errors, Utility.batch_all, weights, and a clear CallError for a pallet the runtime lacks (no Contracts here).
"""

from __future__ import annotations

import pytest
from waiting import finalized_block_with

from ami_node.keys import load_keypair
from ami_node.port import CallError, PoolRejected
from ami_node.substrate import SubstrateChainPort

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob")

pytestmark = [pytest.mark.slow]


async def test_real_runtime_transfer_batch_and_errors(chopsticks: str) -> None:
    port = SubstrateChainPort(chopsticks, timeout_s=30.0)
    try:
        fin, best = await port.finalized_head(), await port.best_head()
        assert 0 <= fin.number <= best.number and await port.block_hash(fin.number) == fin.hash
        assert await port.free_balance(ALICE.address) == 10**18
        bob_before = await port.free_balance(BOB.address)

        params = {"dest": BOB.address, "value": 10**12}
        call = await port.compose_call("Balances", "transfer_keep_alive", params)
        nonce = await port.account_next_index(ALICE.address)
        tx = await port.sign(call, ALICE, nonce, era_period=64)
        assert await port.submit(tx) == tx.hash
        block = await finalized_block_with(port, tx.hash)
        xt = block.extrinsic_hashes.index(tx.hash)
        mine = [(e.pallet, e.name) for e in block.events if e.extrinsic_index == xt]
        assert ("Balances", "Transfer") in mine and mine[-1] == ("System", "ExtrinsicSuccess")
        assert await port.free_balance(BOB.address) == bob_before + 10**12

        with pytest.raises(PoolRejected) as stale:  # the nonce is used now
            await port.submit(await port.sign(call, ALICE, nonce))
        assert stale.value.code == 1010 and stale.value.transient

        batch = await port.batch_all([call, call])
        used, limit = await port.call_weight(batch, ALICE.address), await port.max_extrinsic_weight()
        assert 0 < used[0] < limit[0]
        btx = await port.sign(batch, ALICE, await port.account_next_index(ALICE.address))
        await port.submit(btx)
        bblock = await finalized_block_with(port, btx.hash)
        bxt = bblock.extrinsic_hashes.index(btx.hash)
        names = [e.name for e in bblock.events if e.extrinsic_index == bxt]
        assert names.count("ItemCompleted") == 2 and "BatchCompleted" in names
        assert await port.free_balance(BOB.address) == bob_before + 3 * 10**12

        with pytest.raises(CallError, match="unknown pallet 'Contracts'"):
            await port.compose_call("Contracts", "call", {})
    finally:
        await port.close()
