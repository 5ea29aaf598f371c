"""One owner per signing key for its nonce: seeded from the pool-aware next index, counted locally."""

from __future__ import annotations

import asyncio
from typing import Protocol


class _NonceSource(Protocol):
    async def account_next_index(self, address: str) -> int: ...


class NonceManager:
    """Hands out consecutive nonces for one account.

    The chain's `AccountNonceApi` ignores the transaction pool, so back-to-back submissions that read it
    collide; `system_accountNextIndex` counts the pool, but only once a transaction has reached it. Seeding
    once and then counting locally is the only way to submit many transactions in a row. Any failed
    submission leaves a gap (the nonce was never used), so the caller must `reset()`
    and the next `take()` re-seeds from the node.
    """

    def __init__(self, source: _NonceSource, address: str) -> None:
        self._source = source
        self.address = address
        self._next: int | None = None
        self._lock = asyncio.Lock()

    async def take(self) -> int:
        """Return the next unused nonce and count it as used."""
        async with self._lock:
            if self._next is None:
                self._next = await self._source.account_next_index(self.address)
            nonce = self._next
            self._next += 1
            return nonce

    def reset(self) -> None:
        """Forget the local count; the next `take()` asks the node again."""
        self._next = None
