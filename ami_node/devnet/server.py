"""The devnet's websocket JSON-RPC 2.0 server: substrate-contracts-node's RPC surface over the chain core.

One asyncio loop owns the chain (no locks); each connection has an ordered outgoing queue so a subscription's
id always reaches the client before its first notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ami_node.devnet.chain import Block, Devnet, RpcError
from ami_node.devnet.extrinsic import MalformedExtrinsic, parse_extrinsic
from ami_node.devnet.fees import fee_for
from ami_node.devnet.meta import account_bytes, blake2_256, hexstr, unhex

log = logging.getLogger("ami.devnet")

EXTRA_METHODS = [
    "dev_newBlock",
    "devnet_advanceTime",
    "devnet_dropConnections",
    "devnet_finalize",
    "devnet_getFaults",
    "devnet_info",
    "devnet_reorg",
    "devnet_setFaults",
]
NOTIFY = {
    "newHeads": "chain_newHead",
    "allHeads": "chain_allHead",
    "finalizedHeads": "chain_finalizedHead",
    "storage": "state_storage",
    "runtimeVersion": "state_runtimeVersion",
    "extrinsic": "author_extrinsicUpdate",
}
TERMINAL = ("finalized", "usurped", "dropped", "invalid", "finalityTimeout")
# A client that does not read its replies and notifications must not grow the node's memory unboundedly: like
# a real node's per-connection buffer, past this many queued bytes the connection is closed (slow consumer).
MAX_QUEUED_BYTES = 16 * 1024 * 1024
SLOW_CONSUMER_CLOSE = 1008  # policy violation, with a reason the client can log
MAX_DEV_BLOCKS = 256  # dev_newBlock / devnet_reorg: blocks per call (~0.6 s: each call holds the event loop)
MAX_ADVANCE_MS = 10 * 365 * 24 * 3600 * 1000  # devnet_advanceTime: at most ten years per call


class _Conn:
    def __init__(self, ws: ServerConnection, server: DevnetServer) -> None:
        self.ws = ws
        self.server = server
        self.out: asyncio.Queue[str | None] = asyncio.Queue()
        self.subs: dict[str, tuple[str, Any]] = {}  # id -> (kind, data)
        self.sent = 0
        self.queued_bytes = 0
        self.closing = False

    def push(self, msg: dict[str, Any] | list[Any]) -> None:
        if self.closing:
            return
        text = json.dumps(msg)
        self.queued_bytes += len(text)
        self.server.peak_queued_bytes = max(self.server.peak_queued_bytes, self.queued_bytes)
        if self.queued_bytes > MAX_QUEUED_BYTES:
            self.close_slow_consumer()
            return
        self.out.put_nowait(text)

    def close_slow_consumer(self) -> None:
        """Drop everything queued and close: the client stopped reading (what a real node does too)."""
        self.closing = True
        log.warning("closing a slow consumer: %d bytes queued", self.queued_bytes)
        while not self.out.empty():
            self.out.get_nowait()
        self.queued_bytes = 0
        self.out.put_nowait(None)
        self.server.slow_consumers_closed += 1
        reason = f"devnet: client did not read its messages (over {MAX_QUEUED_BYTES} bytes queued)"
        asyncio.ensure_future(self.ws.close(SLOW_CONSUMER_CLOSE, reason))

    def notify(self, sub_id: str, result: Any) -> None:
        kind = self.subs[sub_id][0]
        self.push(
            {"jsonrpc": "2.0", "method": NOTIFY[kind], "params": {"subscription": sub_id, "result": result}}
        )

    async def writer(self) -> None:
        while True:
            msg = await self.out.get()
            if msg is None:
                return
            await self.ws.send(msg)
            self.queued_bytes -= len(msg)
            self.sent += 1
            n = self.server.chain.faults.drop_every_n_messages
            if n and self.sent % n == 0:
                await self.ws.close(1011, "devnet fault: connection dropped")
                return


class DevnetServer:
    """Serves one `Devnet` on ws://host:port. `await start()`, `await stop()`; `url` once started."""

    def __init__(
        self,
        chain: Devnet,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        block_time_ms: int = 0,
        lag_block_ms: int = 20,
    ) -> None:
        self.chain = chain
        self.host = host
        self.port = port
        self.block_time_ms = block_time_ms
        self.lag_block_ms = lag_block_ms
        self.conns: set[_Conn] = set()
        self.watchers: dict[bytes, list[tuple[_Conn, str]]] = {}
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._produce_pending = False
        self._last_with_txs = 0
        self.peak_queued_bytes = 0  # the most bytes any one connection had queued (for tests and benches)
        self.slow_consumers_closed = 0
        chain.listeners.append(self._on_chain)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> str:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            max_size=64 * 1024 * 1024,
            ping_interval=None,
            compression=None,
            # sync clients (substrate-interface) answer a close frame only when they next read
            close_timeout=1,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        if self.block_time_ms > 0:
            self._ticker = asyncio.create_task(self._tick())
        return self.url

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.chain.store is not None:
            self.chain.store.close()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.block_time_ms / 1000)
            self._produce()

    # -- block production
    def _schedule_produce(self, delay: float = 0.0) -> None:
        if self.block_time_ms > 0 or self._produce_pending:
            return
        self._produce_pending = True
        loop = asyncio.get_running_loop()
        if delay:
            loop.call_later(delay, self._produce_instant)
        else:
            loop.call_soon(self._produce_instant)

    def _produce_instant(self) -> None:
        self._produce_pending = False
        if self.chain.has_ready():
            self._produce()
        elif (
            self.chain.faults.finality_lag > 0
            and not self.chain.faults.hold_finality
            and self._last_with_txs > self.chain.finalized_number
        ):
            # instant mode with a finality lag: empty blocks follow until finality reaches the last tx
            self._produce()

    def _produce(self) -> Block | None:
        try:
            block = self.chain.produce_block()
        except Exception:  # a bug in one block must not kill the node
            log.exception("block production failed")
            return None
        if len(block.extrinsics) > 1:
            self._last_with_txs = block.number
        delay = self.chain.faults.finality_delay_ms
        if delay > 0:
            asyncio.get_running_loop().call_later(delay / 1000 + 0.002, self.chain.advance_finality)
        if self.block_time_ms == 0 and (
            self.chain.has_ready()
            or (self.chain.faults.finality_lag > 0 and self._last_with_txs > self.chain.finalized_number)
        ):
            self._schedule_produce(0.0 if self.chain.has_ready() else self.lag_block_ms / 1000)
        return block

    # -- chain events
    def _on_chain(self, kind: str, payload: Any) -> None:
        if kind == "new_head":
            block: Block = payload
            for conn in list(self.conns):
                for sub_id, (sk, data) in list(conn.subs.items()):
                    if sk in ("newHeads", "allHeads"):
                        conn.notify(sub_id, block.header_json())
                    elif sk == "storage":
                        self._storage_notice(conn, sub_id, data, block)
        elif kind == "finalized":
            for conn in list(self.conns):
                for sub_id, (sk, _) in list(conn.subs.items()):
                    if sk == "finalizedHeads":
                        conn.notify(sub_id, payload.header_json())
        elif kind == "tx":
            tx_hash, status = payload
            for conn, sub_id in list(self.watchers.get(tx_hash, [])):
                if sub_id not in conn.subs:
                    continue
                if conn.subs[sub_id][0] == "buffer":
                    conn.subs[sub_id][1].append(status)
                    continue
                conn.notify(sub_id, status)
                key = status if isinstance(status, str) else next(iter(status))
                if key in TERMINAL:
                    conn.subs.pop(sub_id, None)
            if (
                isinstance(status, str)
                and status in TERMINAL
                or (isinstance(status, dict) and next(iter(status)) in TERMINAL)
            ):
                self.watchers.pop(tx_hash, None)

    def _storage_notice(self, conn: _Conn, sub_id: str, data: dict[str, Any], block: Block) -> None:
        storage = block.storage or {}
        changes = []
        for key in data["keys"]:
            value = storage.get(key)
            if value != data["last"].get(key):
                changes.append([hexstr(key), hexstr(value) if value is not None else None])
                data["last"][key] = value
        if changes:
            conn.notify(sub_id, {"block": hexstr(block.hash), "changes": changes})

    # -- connections
    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Conn(ws, self)
        self.conns.add(conn)
        writer = asyncio.create_task(conn.writer())
        try:
            async for raw in ws:
                if conn.closing:
                    break
                self._on_message(conn, raw)
                if writer.done():
                    break
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            conn.out.put_nowait(None)
            with contextlib.suppress(Exception):
                await writer
            for sub_id, (kind, data) in conn.subs.items():
                if kind == "extrinsic":
                    self._drop_watcher(data, conn, sub_id)

    def drop_connections(self) -> int:
        """Close every client socket now (fault injection); returns how many were closed."""
        n = 0
        for conn in list(self.conns):
            conn.out.put_nowait(None)
            asyncio.ensure_future(conn.ws.close(1011, "devnet fault: connections dropped"))
            n += 1
        return n

    def _drop_watcher(self, tx_hash: bytes, conn: _Conn, sub_id: str) -> None:
        lst = self.watchers.get(tx_hash, [])
        self.watchers[tx_hash] = [(c, s) for c, s in lst if not (c is conn and s == sub_id)]
        if not self.watchers[tx_hash]:
            del self.watchers[tx_hash]

    def _on_message(self, conn: _Conn, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            conn.push({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
            return
        if isinstance(msg, list):
            if not msg:
                conn.push(
                    {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid request"}}
                )
                return
            results = [self._call(conn, m) for m in msg]
            replies = [r for r, _ in results if r is not None]
            if replies:
                conn.push(replies)
            for _, after in results:
                if after is not None:
                    after()
            return
        reply, after = self._call(conn, msg)
        if reply is not None:
            conn.push(reply)
        if after is not None:
            after()

    def _call(self, conn: _Conn, msg: Any) -> tuple[dict[str, Any] | None, Any]:
        reply, after = self._call_inner(conn, msg)
        if isinstance(msg, dict) and "id" not in msg:
            return None, after  # a notification gets no answer
        return reply, after

    def _call_inner(self, conn: _Conn, msg: Any) -> tuple[dict[str, Any], Any]:
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            return {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": "Invalid request"},
            }, None
        req_id = msg.get("id")
        method = msg["method"]
        params = msg.get("params") or []
        handler = getattr(self, "rpc_" + method, None)
        if handler is None:
            return {
                "jsonrpc": "2.0",
                "id": req_id,
                "error": {"code": -32601, "message": "Method not found"},
            }, None
        if isinstance(params, dict):
            params = [params]
        try:
            result = handler(conn, *params)
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": req_id, "error": exc.to_json()}, None
        except _Deferred as deferred:
            # the reply must precede the notifications that `after` queues
            return {"jsonrpc": "2.0", "id": req_id, "result": deferred.result}, deferred.after
        except (TypeError, ValueError, KeyError, MalformedExtrinsic) as exc:
            return {
                "jsonrpc": "2.0",
                "id": req_id,
                "error": {"code": -32602, "message": f"Invalid params: {exc}"},
            }, None
        except Exception as exc:  # keep serving: an internal bug answers with -32603, the node stays up
            log.exception("rpc %s failed", method)
            return {
                "jsonrpc": "2.0",
                "id": req_id,
                "error": {"code": -32603, "message": f"Internal error: {exc}"},
            }, None
        return {"jsonrpc": "2.0", "id": req_id, "result": result}, None

    def _subscribe(self, conn: _Conn, kind: str, data: Any = None) -> str:
        sub_id = f"{next(self._ids):016x}"
        conn.subs[sub_id] = (kind, data)
        return sub_id

    def _unsubscribe(self, conn: _Conn, sub_id: Any) -> bool:
        entry = conn.subs.pop(str(sub_id), None)
        if entry is not None and entry[0] == "extrinsic":
            self._drop_watcher(entry[1], conn, str(sub_id))
        return entry is not None

    # -- helpers
    def _block(self, at: Any) -> Block:
        if at is None:
            return self.chain.best
        block = self.chain.by_hash.get(unhex(at))
        if block is None:
            raise RpcError(4003, "Client error: UnknownBlock", f"Header was not found in the database: {at}")
        return block

    def _storage(self, at: Any) -> dict[bytes, bytes]:
        return self.chain.storage_at(None if at is None else unhex(at))

    # -- system
    def rpc_system_chain(self, conn: _Conn) -> str:
        return "Development"

    def rpc_system_name(self, conn: _Conn) -> str:
        return "Substrate Contracts Node"

    def rpc_system_version(self, conn: _Conn) -> str:
        return "0.42.0-ami-devnet"

    def rpc_system_chainType(self, conn: _Conn) -> str:
        return "Development"

    def rpc_system_properties(self, conn: _Conn) -> dict[str, Any]:
        return {"ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "UNIT"}

    def rpc_system_health(self, conn: _Conn) -> dict[str, Any]:
        return {"peers": 0, "isSyncing": False, "shouldHavePeers": False}

    def rpc_system_nodeRoles(self, conn: _Conn) -> list[str]:
        return ["Authority"]

    def rpc_system_peers(self, conn: _Conn) -> list[Any]:
        return []

    def rpc_system_localPeerId(self, conn: _Conn) -> str:
        return "12D3KooWAmiDevnetLocalPeer"

    def rpc_system_localListenAddresses(self, conn: _Conn) -> list[str]:
        return []

    def rpc_system_syncState(self, conn: _Conn) -> dict[str, int]:
        n = self.chain.best.number
        return {"startingBlock": 0, "currentBlock": n, "highestBlock": n}

    def rpc_system_accountNextIndex(self, conn: _Conn, address: str) -> int:
        return self.chain.next_index(account_bytes(address))

    rpc_account_nextIndex = rpc_system_accountNextIndex

    def rpc_rpc_methods(self, conn: _Conn) -> dict[str, Any]:
        methods = sorted(set(self.chain.rt.rpc_methods) | set(EXTRA_METHODS))
        return {"version": 1, "methods": methods}

    # -- chain
    def rpc_chain_getHead(self, conn: _Conn, *_: Any) -> str:
        return hexstr(self.chain.best.hash)

    def rpc_chain_getFinalizedHead(self, conn: _Conn) -> str:
        return hexstr(self.chain.finalized.hash)

    rpc_chain_getFinalisedHead = rpc_chain_getFinalizedHead

    def rpc_chain_getBlockHash(self, conn: _Conn, number: Any = None) -> Any:
        if isinstance(number, list):
            return [self.rpc_chain_getBlockHash(conn, n) for n in number]
        if number is None:
            return hexstr(self.chain.best.hash)
        n = int(number, 16) if isinstance(number, str) else int(number)
        block = self.chain.block_by_number(n)
        return hexstr(block.hash) if block else None

    def rpc_chain_getHeader(self, conn: _Conn, at: Any = None) -> Any:
        if at is not None and unhex(at) not in self.chain.by_hash:
            return None
        return self._block(at).header_json()

    def rpc_chain_getBlock(self, conn: _Conn, at: Any = None) -> Any:
        if at is not None and unhex(at) not in self.chain.by_hash:
            return None
        return self._block(at).block_json()

    def rpc_chain_subscribeNewHeads(self, conn: _Conn) -> str:
        sub_id = self._subscribe(conn, "newHeads")
        raise _Deferred(sub_id, lambda: conn.notify(sub_id, self.chain.best.header_json()))

    rpc_chain_subscribeNewHead = rpc_chain_subscribeNewHeads

    def rpc_chain_subscribeAllHeads(self, conn: _Conn) -> str:
        sub_id = self._subscribe(conn, "allHeads")
        raise _Deferred(sub_id, lambda: conn.notify(sub_id, self.chain.best.header_json()))

    def rpc_chain_subscribeFinalizedHeads(self, conn: _Conn) -> str:
        sub_id = self._subscribe(conn, "finalizedHeads")
        raise _Deferred(sub_id, lambda: conn.notify(sub_id, self.chain.finalized.header_json()))

    rpc_chain_subscribeFinalisedHeads = rpc_chain_subscribeFinalizedHeads

    def rpc_chain_unsubscribeNewHeads(self, conn: _Conn, sub_id: Any) -> bool:
        return self._unsubscribe(conn, sub_id)

    rpc_chain_unsubscribeNewHead = rpc_chain_unsubscribeNewHeads
    rpc_chain_unsubscribeAllHeads = rpc_chain_unsubscribeNewHeads
    rpc_chain_unsubscribeFinalizedHeads = rpc_chain_unsubscribeNewHeads
    rpc_chain_unsubscribeFinalisedHeads = rpc_chain_unsubscribeNewHeads

    # -- state
    def rpc_state_getRuntimeVersion(self, conn: _Conn, at: Any = None) -> dict[str, Any]:
        self._block(at)
        return self.chain.rt.runtime_version_json()

    rpc_chain_getRuntimeVersion = rpc_state_getRuntimeVersion

    def rpc_state_getMetadata(self, conn: _Conn, at: Any = None) -> str:
        self._block(at)
        return self.chain.rt.metadata_hex

    def rpc_state_getStorage(self, conn: _Conn, key: str, at: Any = None) -> str | None:
        value = self._storage(at).get(unhex(key))
        return hexstr(value) if value is not None else None

    rpc_state_getStorageAt = rpc_state_getStorage

    def rpc_state_getStorageHash(self, conn: _Conn, key: str, at: Any = None) -> str | None:
        value = self._storage(at).get(unhex(key))
        return hexstr(blake2_256(value)) if value is not None else None

    def rpc_state_getStorageSize(self, conn: _Conn, key: str, at: Any = None) -> int | None:
        value = self._storage(at).get(unhex(key))
        return len(value) if value is not None else None

    def rpc_state_getKeysPaged(
        self, conn: _Conn, prefix: str | None, count: int, start_key: str | None = None, at: Any = None
    ) -> list[str]:
        pre = unhex(prefix) if prefix else b""
        start = unhex(start_key) if start_key else b""
        keys = sorted(k for k in self._storage(at) if k.startswith(pre) and k > start)
        return [hexstr(k) for k in keys[: int(count)]]

    rpc_state_getKeysPagedAt = rpc_state_getKeysPaged

    def rpc_state_getKeys(self, conn: _Conn, prefix: str, at: Any = None) -> list[str]:
        pre = unhex(prefix)
        return [hexstr(k) for k in sorted(self._storage(at)) if k.startswith(pre)]

    def rpc_state_queryStorageAt(self, conn: _Conn, keys: list[str], at: Any = None) -> list[dict[str, Any]]:
        block = self._block(at)
        storage = self._storage(hexstr(block.hash))
        changes = []
        for key in keys:
            value = storage.get(unhex(key))
            changes.append([key, hexstr(value) if value is not None else None])
        return [{"block": hexstr(block.hash), "changes": changes}]

    def rpc_state_subscribeStorage(self, conn: _Conn, keys: list[str] | None = None) -> str:
        wanted = [unhex(k) for k in keys or []]
        data: dict[str, Any] = {"keys": wanted, "last": {}}
        sub_id = self._subscribe(conn, "storage", data)

        def first() -> None:
            storage = self.chain.best.storage or {}
            changes = []
            for key in wanted:
                value = storage.get(key)
                data["last"][key] = value
                changes.append([hexstr(key), hexstr(value) if value is not None else None])
            conn.notify(sub_id, {"block": hexstr(self.chain.best.hash), "changes": changes})

        raise _Deferred(sub_id, first)

    def rpc_state_unsubscribeStorage(self, conn: _Conn, sub_id: Any) -> bool:
        return self._unsubscribe(conn, sub_id)

    def rpc_state_subscribeRuntimeVersion(self, conn: _Conn) -> str:
        sub_id = self._subscribe(conn, "runtimeVersion")
        raise _Deferred(sub_id, lambda: conn.notify(sub_id, self.chain.rt.runtime_version_json()))

    rpc_chain_subscribeRuntimeVersion = rpc_state_subscribeRuntimeVersion

    def rpc_state_unsubscribeRuntimeVersion(self, conn: _Conn, sub_id: Any) -> bool:
        return self._unsubscribe(conn, sub_id)

    rpc_chain_unsubscribeRuntimeVersion = rpc_state_unsubscribeRuntimeVersion

    def rpc_state_call(self, conn: _Conn, method: str, data: str, at: Any = None) -> str:
        block = self._block(at)
        if block.hash != self.chain.best.hash and block.storage is None:
            self._storage(at)
        from ami_node.devnet import runtime_api

        return hexstr(runtime_api.call(self.chain, method, unhex(data)))

    rpc_state_callAt = rpc_state_call

    def rpc_payment_queryInfo(self, conn: _Conn, extrinsic: str, at: Any = None) -> dict[str, Any]:
        raw = unhex(extrinsic)
        ext = parse_extrinsic(raw)
        weight = self.chain.txpool.check_call(ext.call)
        return {
            "weight": {"ref_time": weight[0], "proof_size": weight[1]},
            "class": "normal",
            "partialFee": str(fee_for(weight, len(raw), 0)),
        }

    # -- author
    def rpc_author_submitExtrinsic(self, conn: _Conn, extrinsic: str) -> str:
        tx_hash = self.chain.submit(unhex(extrinsic))
        self._schedule_produce()
        return hexstr(tx_hash)

    def rpc_author_submitAndWatchExtrinsic(self, conn: _Conn, extrinsic: str) -> str:
        raw = unhex(extrinsic)
        tx_hash = blake2_256(raw)
        buffered: list[Any] = []
        # statuses raised during submit are held back until the subscription id has been sent
        sub_id = self._subscribe(conn, "buffer", buffered)
        self.watchers.setdefault(tx_hash, []).append((conn, sub_id))
        try:
            self.chain.submit(raw)
        except RpcError:
            conn.subs.pop(sub_id, None)
            self._drop_watcher(tx_hash, conn, sub_id)
            raise
        conn.subs[sub_id] = ("extrinsic", tx_hash)

        def after() -> None:
            for result in buffered:
                if sub_id in conn.subs:
                    conn.notify(sub_id, result)
            self._schedule_produce()

        raise _Deferred(sub_id, after)

    def rpc_author_unwatchExtrinsic(self, conn: _Conn, sub_id: Any) -> bool:
        return self._unsubscribe(conn, sub_id)

    def rpc_author_pendingExtrinsics(self, conn: _Conn) -> list[str]:
        return [hexstr(x) for x in self.chain.pending()]

    # -- dev
    def rpc_dev_newBlock(self, conn: _Conn, opts: dict[str, Any] | None = None) -> str:
        if opts is not None and not isinstance(opts, dict):
            raise ValueError("dev_newBlock takes one object, e.g. {\"count\": 3}")
        count = _bounded_int((opts or {}).get("count", 1), "count", 1, MAX_DEV_BLOCKS)
        for _ in range(count):
            self._produce()
        return hexstr(self.chain.best.hash)

    def rpc_devnet_advanceTime(self, conn: _Conn, ms: int) -> int:
        self.chain.advance_time(_bounded_int(ms, "ms", 0, MAX_ADVANCE_MS))
        return self.chain.now_ms()

    def rpc_devnet_setFaults(self, conn: _Conn, changes: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise ValueError("devnet_setFaults takes one object of switches")
        faults = self.chain.set_faults(**changes).to_json()
        if not self.chain.faults.hold_finality:
            self._schedule_produce()
        return faults

    def rpc_devnet_getFaults(self, conn: _Conn) -> dict[str, Any]:
        return self.chain.faults.to_json()

    def rpc_devnet_dropConnections(self, conn: _Conn) -> int:
        n = len(self.conns)
        asyncio.get_running_loop().call_soon(self.drop_connections)
        return n

    def rpc_devnet_reorg(self, conn: _Conn, depth: int, new_blocks: int | None = None) -> list[str]:
        depth = _bounded_int(depth, "depth", 1, MAX_DEV_BLOCKS)
        fresh = None if new_blocks is None else _bounded_int(new_blocks, "new_blocks", 0, MAX_DEV_BLOCKS)
        return [hexstr(b.hash) for b in self.chain.reorg(depth, new_blocks=fresh)]

    def rpc_devnet_finalize(self, conn: _Conn, number: int | None = None) -> str:
        best = self.chain.best.number
        self.chain.finalize(best if number is None else _bounded_int(number, "number", 0, best))
        return hexstr(self.chain.finalized.hash)

    def rpc_devnet_info(self, conn: _Conn) -> dict[str, Any]:
        return {
            "best": self.chain.best.number,
            "finalized": self.chain.finalized_number,
            "pool": len(self.chain.pool_by_hash),
            "genesis": hexstr(self.chain.genesis_hash),
            "blockTimeMs": self.block_time_ms,
            "faults": self.chain.faults.to_json(),
        }


def _bounded_int(value: Any, name: str, low: int, high: int) -> int:
    """`value` as an int in [low, high]; ValueError (answered as -32602 Invalid params) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, got {value}")
    return value


class _Deferred(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a handler whose reply must be sent before `after()` queues follow-up notifications."""

    def __init__(self, result: Any, after: Any) -> None:
        super().__init__("deferred")
        self.result = result
        self.after = after
