"""The devnet's websocket JSON-RPC 2.0 server: connections, request framing, subscriptions and block
production timing over the chain core; the methods themselves are in `rpc_methods`.

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

from ami_node.devnet.chain import Block, Devnet
from ami_node.devnet.connection import Connection
from ami_node.devnet.extrinsic import MalformedExtrinsic
from ami_node.devnet.meta import hexstr
from ami_node.devnet.rpc_methods import Deferred, NodeRpc
from ami_node.devnet.state import RpcError

log = logging.getLogger("ami.devnet")

TERMINAL = ("finalized", "usurped", "dropped", "invalid", "finalityTimeout")


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
        self.conns: set[Connection] = set()
        self.watchers: dict[bytes, list[tuple[Connection, str]]] = {}
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._produce_pending = False
        self._last_with_txs = 0
        self.peak_queued_bytes = 0  # the most bytes any one connection had queued (for tests and benches)
        self.slow_consumers_closed = 0
        self.rpc = NodeRpc(self)
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
            self.produce()

    # -- block production
    def schedule_produce(self, delay: float = 0.0) -> None:
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
            self.produce()
        elif (
            self.chain.faults.finality_lag > 0
            and not self.chain.faults.hold_finality
            and self._last_with_txs > self.chain.finalized_number
        ):
            # instant mode with a finality lag: empty blocks follow until finality reaches the last tx
            self.produce()

    def produce(self) -> Block | None:
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
            self.schedule_produce(0.0 if self.chain.has_ready() else self.lag_block_ms / 1000)
        return block

    # -- chain events
    def _on_chain(self, kind: str, payload: Any) -> None:
        if kind == "new_head":
            self._on_new_head(payload)
        elif kind == "finalized":
            self._notify_all(("finalizedHeads",), payload.header_json())
        elif kind == "tx":
            self._on_tx(*payload)

    def _notify_all(self, kinds: tuple[str, ...], result: Any) -> None:
        for conn in list(self.conns):
            for sub_id, (sk, _) in list(conn.subs.items()):
                if sk in kinds:
                    conn.notify(sub_id, result)

    def _on_new_head(self, block: Block) -> None:
        for conn in list(self.conns):
            for sub_id, (sk, data) in list(conn.subs.items()):
                if sk in ("newHeads", "allHeads"):
                    conn.notify(sub_id, block.header_json())
                elif sk == "storage":
                    self._storage_notice(conn, sub_id, data, block)

    def _on_tx(self, tx_hash: bytes, status: Any) -> None:
        """Tell the extrinsic's watchers its new status; a terminal status ends their subscriptions."""
        terminal = (status if isinstance(status, str) else next(iter(status))) in TERMINAL
        for conn, sub_id in list(self.watchers.get(tx_hash, [])):
            if sub_id not in conn.subs:
                continue
            if conn.subs[sub_id][0] == "buffer":
                conn.subs[sub_id][1].append(status)
                continue
            conn.notify(sub_id, status)
            if terminal:
                conn.subs.pop(sub_id, None)
        if terminal:
            self.watchers.pop(tx_hash, None)

    def _storage_notice(self, conn: Connection, sub_id: str, data: dict[str, Any], block: Block) -> None:
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
        conn = Connection(ws, self)
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
                    self.drop_watcher(data, conn, sub_id)

    def drop_connections(self) -> int:
        """Close every client socket now (fault injection); returns how many were closed."""
        n = 0
        for conn in list(self.conns):
            conn.out.put_nowait(None)
            asyncio.ensure_future(conn.ws.close(1011, "devnet fault: connections dropped"))
            n += 1
        return n

    def drop_watcher(self, tx_hash: bytes, conn: Connection, sub_id: str) -> None:
        lst = self.watchers.get(tx_hash, [])
        self.watchers[tx_hash] = [(c, s) for c, s in lst if not (c is conn and s == sub_id)]
        if not self.watchers[tx_hash]:
            del self.watchers[tx_hash]

    def _on_message(self, conn: Connection, raw: str | bytes) -> None:
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

    def _call(self, conn: Connection, msg: Any) -> tuple[dict[str, Any] | None, Any]:
        reply, after = self._call_inner(conn, msg)
        if isinstance(msg, dict) and "id" not in msg:
            return None, after  # a notification gets no answer
        return reply, after

    def _call_inner(self, conn: Connection, msg: Any) -> tuple[dict[str, Any], Any]:
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            return {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": "Invalid request"},
            }, None
        req_id = msg.get("id")
        method = msg["method"]
        params = msg.get("params") or []
        handler = getattr(self.rpc, "rpc_" + method, None)
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
        except Deferred as deferred:
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

    def subscribe(self, conn: Connection, kind: str, data: Any = None) -> str:
        sub_id = f"{next(self._ids):016x}"
        conn.subs[sub_id] = (kind, data)
        return sub_id

    def unsubscribe(self, conn: Connection, sub_id: Any) -> bool:
        entry = conn.subs.pop(str(sub_id), None)
        if entry is not None and entry[0] == "extrinsic":
            self.drop_watcher(entry[1], conn, str(sub_id))
        return entry is not None
