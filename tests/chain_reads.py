"""What the chain itself says, read back by tests: the payout ids of the rewards contract's Paid events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ami_node.abi import ContractAbi
from ami_node.events import Paid, decode_block
from ami_node.port import ChainPort


async def paid_ids(port: ChainPort, rewards: str, abi: ContractAbi, numbers: Iterable[int]) -> list[str]:
    """The payout id (0x hex) of every Paid event of the rewards contract at `rewards` in the blocks
    `numbers`, in block and event order; an id paid twice is there twice."""
    ids: list[str] = []
    for n in numbers:
        events = decode_block(await port.block(n), {rewards: abi})
        ids += [e.payout_id for e in events if isinstance(e, Paid)]
    return ids


async def finalized_paid_counts(port: ChainPort, rewards: str, abi: ContractAbi) -> Counter[str]:
    """How many times each payout id was paid in the finalized blocks #1 to the finalized head."""
    head = (await port.finalized_head()).number
    return Counter(await paid_ids(port, rewards, abi, range(1, head + 1)))
