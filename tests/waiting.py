"""Waiting in tests without fixed sleeps: `until` a condition holds (`wait_until` without an event loop);
`Calls` to see a method called again; `finalized_block_with` a transaction.

A negative ("nothing happened") is proven by waiting for the event after which it would have happened: e.g.
the follower asked the node for the finalized head once more after a block was produced, so a block it was
going to yield would have been yielded by then. Importable from every test folder (tests/ is on sys.path
through tests/conftest.py): `from waiting import Calls, until, wait_until`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ami_node.port import Block, ChainPort


async def until(
    cond: Callable[[], object | Awaitable[object]],
    what: str = "the condition",
    timeout: float = 10.0,
    interval: float = 0.02,
) -> None:
    """Return once `cond()` (a plain or an async callable) is truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def wait_until(
    cond: Callable[[], object], what: str = "the condition", timeout: float = 10.0, interval: float = 0.1
) -> None:
    """`until` for code without an event loop: block until `cond()` is truthy, fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Calls:
    """Counts the calls of `obj.name` (a plain or an async method) from now on; wraps it on the instance."""

    def __init__(self, obj: Any, name: str) -> None:
        self.count = 0
        self.name = name
        original = getattr(obj, name)

        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def counted_async(*args: Any, **kwargs: Any) -> Any:
                self.count += 1
                return await original(*args, **kwargs)

            setattr(obj, name, counted_async)
        else:

            @functools.wraps(original)
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.count += 1
                return original(*args, **kwargs)

            setattr(obj, name, counted)

    async def more(self, n: int = 1, timeout: float = 10.0) -> None:
        """Return once `n` more calls have started than had when this was called."""
        target = self.count + n
        await until(lambda: self.count >= target, f"{n} more call(s) of {self.name}", timeout, interval=0.005)


async def finalized_block_with(port: ChainPort, tx_hash: str, timeout: float = 30.0) -> Block:
    """The finalized block that includes `tx_hash`, found by walking block numbers as the worker does,
    from two below the finalized head at the call (a node building instantly may have finalized it)."""
    n = max(1, (await port.finalized_head()).number - 2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = await port.finalized_head()
        while n <= head.number:
            block = await port.block(n)
            if tx_hash in block.extrinsic_hashes:
                return block
            n += 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"{tx_hash} not finalized within {timeout} s")
