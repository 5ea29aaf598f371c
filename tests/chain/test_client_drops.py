"""SubstrateChainPort on a link that drops every 9th message from the first one: initialising (metadata),
composing, signing, submitting and reading blocks all finish, and a transfer lands exactly once."""

from __future__ import annotations

from typing import Any

from ami_node.devnet.testing import running_devnet
from ami_node.keys import load_keypair
from ami_node.substrate import SubstrateChainPort
from ami_node.tx import send_call

ALICE, DAVE = load_keypair("//Alice"), load_keypair("//Dave")


async def test_everything_survives_a_drop_every_nine_messages() -> None:
    with running_devnet() as dn:
        dn.set_faults(drop_every_n_messages=9)  # before the port's very first message
        async with SubstrateChainPort(dn.url, timeout_s=20.0) as port:
            before = await port.free_balance(DAVE.address)
            call = await port.compose_call(
                "Balances", "transfer_keep_alive", {"dest": DAVE.address, "value": 4_321}
            )
            receipt: Any = await send_call(port, ALICE, call, timeout_s=30)
            assert receipt.success
            block = await port.block(receipt.block.number)
            assert ("Balances", "Transfer") in {(e.pallet, e.name) for e in block.events}
            assert await port.free_balance(DAVE.address) == before + 4_321
            assert await port.max_extrinsic_weight() > (0, 0)
