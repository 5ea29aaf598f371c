"""One substrate-interface connection confined to its own worker thread: it reconnects on websocket failure,
pins the runtime once per port call, and turns the library's errors into ChainError and PoolRejected."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog
from substrateinterface import SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential
from websocket import WebSocketException

from ami_node.port import ChainError, ChainUnavailable, PoolRejected
from pallets_spec.vocabulary import SS58_FORMAT

__all__ = ["Connection", "PinnedSubstrate", "classify_pool_error", "is_connection_error", "rpc_error"]

log = structlog.get_logger("ami_node.substrate")
T = TypeVar("T")


# Substrate's author RPC error codes (sc-rpc-api author/error.rs).
POOL_INVALID = 1010
POOL_UNKNOWN = 1011
POOL_BANNED = 1012
POOL_ALREADY_IMPORTED = 1013
POOL_PRIORITY_TOO_LOW = 1014
_TRANSIENT_INVALID_WORDS = ("outdated", "stale", "future", "exhausts the resources")


class Disconnected(Exception):
    """The websocket failed; the connection must be rebuilt before retrying."""


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` means the websocket can no longer be trusted (the connection must be rebuilt)."""
    # websocket-client's recv() returns "" once the server has closed the socket; the library then fails to
    # parse it as JSON. Any unparsable frame means the stream can no longer be trusted: reconnect.
    return isinstance(
        exc, WebSocketException | OSError | EOFError | ConnectionError | TimeoutError | json.JSONDecodeError
    )


def rpc_error(exc: BaseException) -> dict[str, Any] | None:
    """The JSON-RPC error object carried by a SubstrateRequestException, if any."""
    if not isinstance(exc, SubstrateRequestException):
        return None
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, dict):
        return arg
    return {"code": 0, "message": str(arg)}


def classify_pool_error(error: dict[str, Any]) -> PoolRejected:
    """Map a node's author_submitExtrinsic error object to PoolRejected (transient or not)."""
    code = int(error.get("code", 0) or 0)
    message = str(error.get("message", ""))
    data = error.get("data")
    reason = f"{message}: {data}" if data else message
    low = reason.lower()
    # 1012 "temporarily banned" is not transient: the pool bans hashes it has just included or refused, so
    # the same bytes keep failing and a re-signed copy could land twice.
    transient = code == POOL_PRIORITY_TOO_LOW or (
        code == POOL_INVALID and any(w in low for w in _TRANSIENT_INVALID_WORDS)
    )
    return PoolRejected(code, reason, transient)


class Connection:
    """One SubstrateInterface confined to one worker thread, rebuilt on websocket failure."""

    def __init__(self, url: str, name: str, timeout_s: float) -> None:
        self.url = url
        self.name = name
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ami-chain-{name}")
        self._si: Any = None
        self._broken = False
        self._closed = False
        # Per-connection memory of which ContractExecResult layout the node speaks (see contract_dry_run).
        self.exec_result_type: str | None = None

    @staticmethod
    def _drop_socket(si: Any) -> None:
        # websocket-client's close() waits up to 3 s for the peer's close frame; a dead peer never sends one.
        ws = getattr(si, "websocket", None)
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=0.2)
            with contextlib.suppress(Exception):
                ws.shutdown()

    # runs in the worker thread
    def _ensure(self) -> Any:
        if self._si is not None and self._broken:
            # Reopen the socket but keep the instance: its decoded runtime metadata stays valid for the same
            # node, and decoding it again costs far more than the reconnect itself.
            self._drop_socket(self._si)
            self._si.connect_websocket()
            self._si.config["rpc_methods"] = None
            # A drop in the middle of init_runtime leaves the library believing it is initialised (runtime
            # version or block hash set, metadata not yet fetched): forget that so the next call redoes it.
            # Decoded metadata already cached per runtime version is kept.
            self._si.block_hash = None
            self._si.block_id = None
            if self._si.metadata is None:
                self._si.runtime_version = None
            self._broken = False
        if self._si is None:
            self._si = PinnedSubstrate(
                url=self.url,
                ss58_format=SS58_FORMAT,
                # websocket-client checks UTF-8 in pure Python unless wsaccel is installed (~0.4 s per 400 KB
                # block of events); decoding the text frame as JSON validates it anyway.
                ws_options={"timeout": self.timeout_s, "skip_utf8_validation": True},
                auto_reconnect=True,
            )
            self.exec_result_type = None
        self._si.runtime_pinned = False  # each port call looks the latest runtime up once (PinnedSubstrate)
        return self._si

    def _invoke(self, fn: Callable[[Any], T], started: list[bool]) -> T:
        started.append(True)
        try:
            si = self._ensure()
            return fn(si)
        except ChainError:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                self._broken = True
                raise Disconnected(f"{type(exc).__name__}: {exc}") from exc
            # Callers handle ChainError only: an RPC refusal or a decoding failure in the library becomes one,
            # with the original kept as __cause__ for debugging.
            err = rpc_error(exc)
            if err is not None:
                detail = f"{err.get('message')} {err.get('data', '')}".strip()
                raise ChainError(f"node refused the request: {detail}") from exc
            raise ChainError(f"{type(exc).__name__} from substrate-interface: {exc}") from exc

    async def call(self, fn: Callable[[Any], T]) -> T:
        if self._closed:
            raise ChainUnavailable(f"{self.name} connection to {self.url} is closed")
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.timeout_s
        last: BaseException | None = None
        started: list[bool] = []  # set by the worker thread when it picks the call up
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.timeout_s),
                wait=wait_exponential(multiplier=0.05, max=2.0),
                retry=retry_if_exception_type(Disconnected),
                reraise=True,
            ):
                with attempt:
                    remaining = max(0.1, deadline - time.monotonic())
                    try:
                        return await asyncio.wait_for(
                            loop.run_in_executor(self._executor, self._invoke, fn, started), remaining
                        )
                    except Disconnected as exc:
                        last = exc
                        log.info(
                            "chain connection lost, reconnecting",
                            conn=self.name,
                            url=self.url,
                            error=str(exc),
                        )
                        raise
        except Disconnected:
            pass
        except TimeoutError:
            if started:
                # The worker thread may still be blocked on the socket; reopen it before the next call.
                # (A call that timed out while queued behind others is cancelled before it starts.)
                self._broken = True
            last = TimeoutError(f"no answer within {self.timeout_s:g} s")
        raise ChainUnavailable(
            f"node at {self.url} is unreachable ({last}); check the URL and that the node is running"
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def _close() -> None:
            if self._si is not None:
                self._drop_socket(self._si)
                self._si = None

        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(loop.run_in_executor(self._executor, _close), 5.0)
        self._executor.shutdown(wait=False, cancel_futures=True)


class PinnedSubstrate(SubstrateInterface):  # type: ignore[misc]
    """SubstrateInterface that resolves the latest runtime once per port call, not once per library call.

    The library calls init_runtime() (3 round trips: head, header, runtime version) inside nearly every
    method, so signing took ~12 messages; on a link that drops every few messages no call could finish, and
    one port call could mix two runtimes. Within one port call (see Connection._invoke) the first unhashed
    init_runtime() does the work and later ones reuse it; calls for a given block hash are untouched.
    """

    runtime_pinned = False

    def init_runtime(self, block_hash: str | None = None, block_id: int | None = None) -> None:
        if block_hash is None and block_id is None:
            if self.runtime_pinned and self.metadata is not None:
                return
            super().init_runtime()
            self.runtime_pinned = True
            return
        self.runtime_pinned = False
        super().init_runtime(block_hash=block_hash, block_id=block_id)
