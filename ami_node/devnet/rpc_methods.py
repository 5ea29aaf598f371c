"""The devnet's RPC methods: substrate-contracts-node's system, chain, state, payment and author calls, and
the devnet's own dev_* / devnet_* controls. A method `rpc_<name>` answers the JSON-RPC method `<name>`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from ami_node.devnet import runtime_api
from ami_node.devnet.chain import Block, Devnet
from ami_node.devnet.connection import Connection
from ami_node.devnet.extrinsic import parse_extrinsic
from ami_node.devnet.fees import fee_for
from ami_node.devnet.meta import account_bytes, blake2_256, hexstr, unhex
from ami_node.devnet.state import RpcError

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
MAX_DEV_BLOCKS = 256  # dev_newBlock / devnet_reorg: blocks per call (~0.6 s: each call holds the event loop)
MAX_ADVANCE_MS = 10 * 365 * 24 * 3600 * 1000  # devnet_advanceTime: at most ten years per call


class RpcServer(Protocol):
    """What the methods use of their server (`server.DevnetServer`): subscriptions, watchers, production."""

    chain: Devnet
    conns: set[Connection]
    watchers: dict[bytes, list[tuple[Connection, str]]]
    block_time_ms: int

    def subscribe(self, conn: Connection, kind: str, data: Any = None) -> str: ...

    def unsubscribe(self, conn: Connection, sub_id: Any) -> bool: ...

    def drop_watcher(self, tx_hash: bytes, conn: Connection, sub_id: str) -> None: ...

    def produce(self) -> Block | None: ...

    def schedule_produce(self, delay: float = 0.0) -> None: ...

    def drop_connections(self) -> int: ...


class NodeRpc:
    """The RPC methods of one server's chain; subscriptions and block production go through the server."""

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.chain: Devnet = server.chain

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
    def rpc_system_chain(self, conn: Connection) -> str:
        return "Development"

    def rpc_system_name(self, conn: Connection) -> str:
        return "Substrate Contracts Node"

    def rpc_system_version(self, conn: Connection) -> str:
        return "0.42.0-ami-devnet"

    def rpc_system_chainType(self, conn: Connection) -> str:
        return "Development"

    def rpc_system_properties(self, conn: Connection) -> dict[str, Any]:
        return {"ss58Format": 42, "tokenDecimals": 12, "tokenSymbol": "UNIT"}

    def rpc_system_health(self, conn: Connection) -> dict[str, Any]:
        return {"peers": 0, "isSyncing": False, "shouldHavePeers": False}

    def rpc_system_nodeRoles(self, conn: Connection) -> list[str]:
        return ["Authority"]

    def rpc_system_peers(self, conn: Connection) -> list[Any]:
        return []

    def rpc_system_localPeerId(self, conn: Connection) -> str:
        return "12D3KooWAmiDevnetLocalPeer"

    def rpc_system_localListenAddresses(self, conn: Connection) -> list[str]:
        return []

    def rpc_system_syncState(self, conn: Connection) -> dict[str, int]:
        n = self.chain.best.number
        return {"startingBlock": 0, "currentBlock": n, "highestBlock": n}

    def rpc_system_accountNextIndex(self, conn: Connection, address: str) -> int:
        return self.chain.next_index(account_bytes(address))

    rpc_account_nextIndex = rpc_system_accountNextIndex

    def rpc_rpc_methods(self, conn: Connection) -> dict[str, Any]:
        methods = sorted(set(self.chain.rt.rpc_methods) | set(EXTRA_METHODS))
        return {"version": 1, "methods": methods}

    # -- chain
    def rpc_chain_getHead(self, conn: Connection, *_: Any) -> str:
        return hexstr(self.chain.best.hash)

    def rpc_chain_getFinalizedHead(self, conn: Connection) -> str:
        return hexstr(self.chain.finalized.hash)

    rpc_chain_getFinalisedHead = rpc_chain_getFinalizedHead

    def rpc_chain_getBlockHash(self, conn: Connection, number: Any = None) -> Any:
        if isinstance(number, list):
            return [self.rpc_chain_getBlockHash(conn, n) for n in number]
        if number is None:
            return hexstr(self.chain.best.hash)
        n = int(number, 16) if isinstance(number, str) else int(number)
        block = self.chain.block_by_number(n)
        return hexstr(block.hash) if block else None

    def rpc_chain_getHeader(self, conn: Connection, at: Any = None) -> Any:
        if at is not None and unhex(at) not in self.chain.by_hash:
            return None
        return self._block(at).header_json()

    def rpc_chain_getBlock(self, conn: Connection, at: Any = None) -> Any:
        if at is not None and unhex(at) not in self.chain.by_hash:
            return None
        return self._block(at).block_json()

    # -- subscriptions: each answers its id, then notifies the current value (`Deferred`) and every change
    def _subscribe(self, conn: Connection, kind: str, current: Callable[[], Any]) -> str:
        sub_id = self.server.subscribe(conn, kind)
        raise Deferred(sub_id, lambda: conn.notify(sub_id, current()))

    def _unsubscribe(self, conn: Connection, sub_id: Any) -> bool:
        return self.server.unsubscribe(conn, sub_id)

    def rpc_chain_subscribeNewHeads(self, conn: Connection) -> str:
        return self._subscribe(conn, "newHeads", lambda: self.chain.best.header_json())

    def rpc_chain_subscribeAllHeads(self, conn: Connection) -> str:
        return self._subscribe(conn, "allHeads", lambda: self.chain.best.header_json())

    def rpc_chain_subscribeFinalizedHeads(self, conn: Connection) -> str:
        return self._subscribe(conn, "finalizedHeads", lambda: self.chain.finalized.header_json())

    def rpc_state_subscribeRuntimeVersion(self, conn: Connection) -> str:
        return self._subscribe(conn, "runtimeVersion", lambda: self.chain.rt.runtime_version_json())

    rpc_chain_subscribeNewHead = rpc_chain_subscribeNewHeads
    rpc_chain_subscribeFinalisedHeads = rpc_chain_subscribeFinalizedHeads
    rpc_chain_subscribeRuntimeVersion = rpc_state_subscribeRuntimeVersion
    rpc_chain_unsubscribeNewHeads = rpc_chain_unsubscribeNewHead = _unsubscribe
    rpc_chain_unsubscribeAllHeads = _unsubscribe
    rpc_chain_unsubscribeFinalizedHeads = rpc_chain_unsubscribeFinalisedHeads = _unsubscribe
    rpc_state_unsubscribeRuntimeVersion = rpc_chain_unsubscribeRuntimeVersion = _unsubscribe
    rpc_state_unsubscribeStorage = _unsubscribe

    # -- state
    def rpc_state_getRuntimeVersion(self, conn: Connection, at: Any = None) -> dict[str, Any]:
        self._block(at)
        return self.chain.rt.runtime_version_json()

    rpc_chain_getRuntimeVersion = rpc_state_getRuntimeVersion

    def rpc_state_getMetadata(self, conn: Connection, at: Any = None) -> str:
        self._block(at)
        return self.chain.rt.metadata_hex

    def rpc_state_getStorage(self, conn: Connection, key: str, at: Any = None) -> str | None:
        value = self._storage(at).get(unhex(key))
        return hexstr(value) if value is not None else None

    rpc_state_getStorageAt = rpc_state_getStorage

    def rpc_state_getStorageHash(self, conn: Connection, key: str, at: Any = None) -> str | None:
        value = self._storage(at).get(unhex(key))
        return hexstr(blake2_256(value)) if value is not None else None

    def rpc_state_getStorageSize(self, conn: Connection, key: str, at: Any = None) -> int | None:
        value = self._storage(at).get(unhex(key))
        return len(value) if value is not None else None

    def rpc_state_getKeysPaged(
        self, conn: Connection, prefix: str | None, count: int, start_key: str | None = None, at: Any = None
    ) -> list[str]:
        pre = unhex(prefix) if prefix else b""
        start = unhex(start_key) if start_key else b""
        keys = sorted(k for k in self._storage(at) if k.startswith(pre) and k > start)
        return [hexstr(k) for k in keys[: int(count)]]

    rpc_state_getKeysPagedAt = rpc_state_getKeysPaged

    def rpc_state_getKeys(self, conn: Connection, prefix: str, at: Any = None) -> list[str]:
        pre = unhex(prefix)
        return [hexstr(k) for k in sorted(self._storage(at)) if k.startswith(pre)]

    def rpc_state_queryStorageAt(
        self, conn: Connection, keys: list[str], at: Any = None
    ) -> list[dict[str, Any]]:
        block = self._block(at)
        storage = self._storage(hexstr(block.hash))
        changes = []
        for key in keys:
            value = storage.get(unhex(key))
            changes.append([key, hexstr(value) if value is not None else None])
        return [{"block": hexstr(block.hash), "changes": changes}]

    def rpc_state_subscribeStorage(self, conn: Connection, keys: list[str] | None = None) -> str:
        wanted = [unhex(k) for k in keys or []]
        data: dict[str, Any] = {"keys": wanted, "last": {}}
        sub_id = self.server.subscribe(conn, "storage", data)

        def first() -> None:
            storage = self.chain.best.storage or {}
            changes = []
            for key in wanted:
                value = storage.get(key)
                data["last"][key] = value
                changes.append([hexstr(key), hexstr(value) if value is not None else None])
            conn.notify(sub_id, {"block": hexstr(self.chain.best.hash), "changes": changes})

        raise Deferred(sub_id, first)

    def rpc_state_call(self, conn: Connection, method: str, data: str, at: Any = None) -> str:
        block = self._block(at)
        if block.hash != self.chain.best.hash and block.storage is None:
            self._storage(at)
        return hexstr(runtime_api.call(self.chain, method, unhex(data)))

    rpc_state_callAt = rpc_state_call

    def rpc_payment_queryInfo(self, conn: Connection, extrinsic: str, at: Any = None) -> dict[str, Any]:
        raw = unhex(extrinsic)
        ext = parse_extrinsic(raw)
        weight = self.chain.txpool.check_call(ext.call)
        return {
            "weight": {"ref_time": weight[0], "proof_size": weight[1]},
            "class": "normal",
            "partialFee": str(fee_for(weight, len(raw), 0)),
        }

    # -- author
    def rpc_author_submitExtrinsic(self, conn: Connection, extrinsic: str) -> str:
        tx_hash = self.chain.submit(unhex(extrinsic))
        self.server.schedule_produce()
        return hexstr(tx_hash)

    def rpc_author_submitAndWatchExtrinsic(self, conn: Connection, extrinsic: str) -> str:
        raw = unhex(extrinsic)
        tx_hash = blake2_256(raw)
        buffered: list[Any] = []
        # statuses raised during submit are held back until the subscription id has been sent
        sub_id = self.server.subscribe(conn, "buffer", buffered)
        self.server.watchers.setdefault(tx_hash, []).append((conn, sub_id))
        try:
            self.chain.submit(raw)
        except RpcError:
            conn.subs.pop(sub_id, None)
            self.server.drop_watcher(tx_hash, conn, sub_id)
            raise
        conn.subs[sub_id] = ("extrinsic", tx_hash)

        def after() -> None:
            for result in buffered:
                if sub_id in conn.subs:
                    conn.notify(sub_id, result)
            self.server.schedule_produce()

        raise Deferred(sub_id, after)

    def rpc_author_unwatchExtrinsic(self, conn: Connection, sub_id: Any) -> bool:
        return self.server.unsubscribe(conn, sub_id)

    def rpc_author_pendingExtrinsics(self, conn: Connection) -> list[str]:
        return [hexstr(x) for x in self.chain.pending()]

    # -- dev
    def rpc_dev_newBlock(self, conn: Connection, opts: dict[str, Any] | None = None) -> str:
        if opts is not None and not isinstance(opts, dict):
            raise ValueError('dev_newBlock takes one object, e.g. {"count": 3}')
        count = _bounded_int((opts or {}).get("count", 1), "count", 1, MAX_DEV_BLOCKS)
        for _ in range(count):
            self.server.produce()
        return hexstr(self.chain.best.hash)

    def rpc_devnet_advanceTime(self, conn: Connection, ms: int) -> int:
        self.chain.advance_time(_bounded_int(ms, "ms", 0, MAX_ADVANCE_MS))
        return self.chain.now_ms()

    def rpc_devnet_setFaults(self, conn: Connection, changes: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise ValueError("devnet_setFaults takes one object of switches")
        faults = self.chain.set_faults(**changes).to_json()
        if not self.chain.faults.hold_finality:
            self.server.schedule_produce()
        return faults

    def rpc_devnet_getFaults(self, conn: Connection) -> dict[str, Any]:
        return self.chain.faults.to_json()

    def rpc_devnet_dropConnections(self, conn: Connection) -> int:
        n = len(self.server.conns)
        asyncio.get_running_loop().call_soon(self.server.drop_connections)
        return n

    def rpc_devnet_reorg(self, conn: Connection, depth: int, new_blocks: int | None = None) -> list[str]:
        depth = _bounded_int(depth, "depth", 1, MAX_DEV_BLOCKS)
        fresh = None if new_blocks is None else _bounded_int(new_blocks, "new_blocks", 0, MAX_DEV_BLOCKS)
        return [hexstr(b.hash) for b in self.chain.reorg(depth, new_blocks=fresh)]

    def rpc_devnet_finalize(self, conn: Connection, number: int | None = None) -> str:
        best = self.chain.best.number
        self.chain.finalize(best if number is None else _bounded_int(number, "number", 0, best))
        return hexstr(self.chain.finalized.hash)

    def rpc_devnet_info(self, conn: Connection) -> dict[str, Any]:
        return {
            "best": self.chain.best.number,
            "finalized": self.chain.finalized_number,
            "pool": len(self.chain.pool_by_hash),
            "genesis": hexstr(self.chain.genesis_hash),
            "blockTimeMs": self.server.block_time_ms,
            "faults": self.chain.faults.to_json(),
        }


def _bounded_int(value: Any, name: str, low: int, high: int) -> int:
    """`value` as an int in [low, high]; ValueError (answered as -32602 Invalid params) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, got {value}")
    return value


class Deferred(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a handler whose reply must be sent before `after()` queues follow-up notifications."""

    def __init__(self, result: Any, after: Any) -> None:
        super().__init__("deferred")
        self.result = result
        self.after = after
