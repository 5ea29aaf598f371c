"""One client connection of the devnet's server: its ordered outgoing queue, its subscriptions, and the
slow-consumer and dropped-connection faults."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection

from ami_node.devnet.chain import Devnet

log = logging.getLogger("ami.devnet")

NOTIFY = {
    "newHeads": "chain_newHead",
    "allHeads": "chain_allHead",
    "finalizedHeads": "chain_finalizedHead",
    "storage": "state_storage",
    "runtimeVersion": "state_runtimeVersion",
    "extrinsic": "author_extrinsicUpdate",
}
# A client that does not read its replies and notifications must not grow the node's memory unboundedly: like
# a real node's per-connection buffer, past this many queued bytes the connection is closed (slow consumer).
MAX_QUEUED_BYTES = 16 * 1024 * 1024
SLOW_CONSUMER_CLOSE = 1008  # policy violation, with a reason the client can log


class ConnectionOwner(Protocol):
    """What a connection uses of its server (`server.DevnetServer`): the chain and the queue statistics."""

    chain: Devnet
    peak_queued_bytes: int
    slow_consumers_closed: int


class Connection:
    """A client's websocket, its queue of outgoing messages (in order) and its subscriptions by id."""

    def __init__(self, ws: ServerConnection, server: ConnectionOwner) -> None:
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
