"""Helpers for tests and demos: run a devnet on a free loopback port in a background thread.

from ami_node.devnet.testing import running_devnet
with running_devnet(finality_lag=2) as dn:
    substrate = SubstrateInterface(url=dn.url)
    dn.set_faults(reject_next=1, reject_code=1014)   # thread-safe control from the test thread
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ami_node.devnet.chain import Devnet, Faults
from ami_node.devnet.rpc_methods import MAX_DEV_BLOCKS
from ami_node.devnet.server import DevnetServer
from ami_node.devnet.store import SqliteStore

T = TypeVar("T")


class DevnetHandle:
    """A devnet running on its own event-loop thread. `url` is its ws:// address; methods are thread-safe."""

    def __init__(
        self,
        *,
        block_time_ms: int = 0,
        finality_lag: int = 0,
        state_dir: str | Path | None = None,
        port: int = 0,
    ) -> None:
        self._block_time_ms = block_time_ms
        self._finality_lag = finality_lag
        self._state_dir = None if state_dir is None else Path(state_dir)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ami-devnet", daemon=True)
        self.server: DevnetServer | None = None
        self.url = ""

    def start(self) -> DevnetHandle:
        self._thread.start()
        self.url = self._run(self._start())
        return self

    async def _start(self) -> str:
        store = SqliteStore(self._state_dir) if self._state_dir is not None else None
        chain = Devnet(finality_lag=self._finality_lag, store=store)
        self.server = DevnetServer(chain, port=self._port, block_time_ms=self._block_time_ms)
        return await self.server.start()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the devnet's loop thread (where the chain lives) and return its result."""

        async def wrapper() -> T:
            return fn()

        result: T = self._run(wrapper())
        return result

    @property
    def chain(self) -> Devnet:
        assert self.server is not None
        return self.server.chain

    # -- control
    def set_faults(self, **changes: Any) -> Faults:
        def apply() -> Faults:
            faults = self.chain.set_faults(**changes)
            assert self.server is not None
            if not faults.hold_finality:
                self.server.schedule_produce()
            return faults

        return self.call(apply)

    def new_block(self, count: int = 1) -> str:
        """Author `count` blocks (at least one), in calls of at most the RPC's limit each."""
        assert self.server is not None
        server = self.server
        left = max(1, count)
        while True:
            n = min(left, MAX_DEV_BLOCKS)
            head = self.call(lambda n=n: server.rpc.rpc_dev_newBlock(None, {"count": n}))  # type: ignore[arg-type,misc]
            left -= n
            if left <= 0:
                return head

    def drop_connections(self) -> int:
        assert self.server is not None
        server = self.server
        return self.call(server.drop_connections)

    def reorg(self, depth: int, new_blocks: int | None = None) -> list[str]:
        assert self.server is not None
        server = self.server
        return self.call(lambda: server.rpc.rpc_devnet_reorg(None, depth, new_blocks))  # type: ignore[arg-type]

    def finalize(self, number: int | None = None) -> str:
        assert self.server is not None
        server = self.server
        return self.call(lambda: server.rpc.rpc_devnet_finalize(None, number))  # type: ignore[arg-type]

    def advance_time(self, ms: int) -> int:
        def advance() -> int:
            self.chain.advance_time(ms)
            return self.chain.now_ms()

        return self.call(advance)

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                self._run(self.server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@contextlib.contextmanager
def running_devnet(**opts: Any) -> Iterator[DevnetHandle]:
    """Start a devnet (block_time_ms=0 instant, finality_lag=0, state_dir=None, port=0) and stop it after."""
    handle = DevnetHandle(**opts).start()
    try:
        yield handle
    finally:
        handle.stop()
