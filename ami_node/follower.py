"""Block follower: every finalized block by number, in order, with its decoded domain events.

Finality notices may skip numbers (finality arrives in batches, notices get lost across reconnects), so the
follower walks every number from the checkpoint to each notified head itself. It checks that each block
chains onto the previous one (parent hash) and that the caller's checkpoint is still canonical, and raises
NonCanonicalBlock otherwise: finalized blocks never change, so a mismatch means the node serves another chain
(reset devnet, wrong URL) and continuing would mix two histories.

The caller stores `fb.ref` as its checkpoint in the same database transaction as whatever it derives from
`fb.events`, and passes it back as `start_after` on restart; replays are then harmless.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from ami_node.abi import ContractAbi
from ami_node.events import DomainEvent, decode_block
from ami_node.port import Block, BlockRef, ChainError, ChainPort, ChainUnavailable

__all__ = ["BlockFollower", "FollowedBlock", "NonCanonicalBlock"]

log = structlog.get_logger(__name__)
T = TypeVar("T")


class NonCanonicalBlock(ChainError):
    """A stored checkpoint or a fetched block does not belong to the node's finalized chain."""


@dataclass(frozen=True)
class FollowedBlock:
    """One finalized block: its identity, its domain events (in event order) and the raw block."""

    ref: BlockRef
    events: list[DomainEvent]
    block: Block | None = field(default=None, repr=False)


class BlockFollower:
    """`async for fb in BlockFollower(port, {address: abi}, start_after=checkpoint).blocks(): ...`

    `start_after` None starts at block #1 (genesis holds no extrinsics). `retry_delay_s` is the pause before
    asking again when the node is unavailable; the follower itself never gives up on an outage.
    """

    def __init__(
        self,
        port: ChainPort,
        contracts: Mapping[str, ContractAbi],
        *,
        start_after: BlockRef | None,
        retry_delay_s: float = 1.0,
    ) -> None:
        self.port = port
        self.contracts = dict(contracts)
        self.start_after = start_after
        self.retry_delay_s = retry_delay_s
        self.last: BlockRef | None = start_after

    async def _retrying(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        delay = self.retry_delay_s
        while True:
            try:
                return await fn()
            except ChainUnavailable as exc:
                log.warning("follower waiting for the node", what=what, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _check_checkpoint(self) -> None:
        cp = self.start_after
        if cp is None:
            return
        actual = await self._retrying("checkpoint hash", lambda: self.port.block_hash(cp.number))
        if actual is None:
            raise NonCanonicalBlock(
                f"checkpoint block #{cp.number} does not exist on this node; is it the same chain?"
            )
        if actual != cp.hash:
            raise NonCanonicalBlock(
                f"checkpoint block #{cp.number} is {cp.hash} but the node's canonical block is {actual}; "
                "the node serves a different chain (reset it or clear the worker database)"
            )

    async def blocks(self) -> AsyncIterator[FollowedBlock]:
        """Yield every finalized block after the checkpoint, forever, in order."""
        await self._check_checkpoint()
        next_number = self.last.number + 1 if self.last is not None else 1
        async for head in self.port.finalized_heads():
            while next_number <= head.number:
                n = next_number
                block = await self._retrying(f"block #{n}", functools.partial(self.port.block, n))
                if block.ref.number != n:
                    raise NonCanonicalBlock(f"asked for block #{n}, node returned #{block.ref.number}")
                last = self.last
                if last is not None and last.number == n - 1 and block.parent_hash != last.hash:
                    raise NonCanonicalBlock(
                        f"block #{n} ({block.ref.hash}) has parent {block.parent_hash}, not the followed "
                        f"block #{n - 1} ({last.hash}); the node's finalized chain changed"
                    )
                events = decode_block(block, self.contracts)
                self.last = block.ref
                next_number = n + 1
                yield FollowedBlock(block.ref, events, block)
