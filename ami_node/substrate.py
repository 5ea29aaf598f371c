"""ChainPort adapter on substrate-interface 1.8.1, for real Substrate nodes and the local devnet.

substrate-interface is synchronous: each of the two connections (one for watching blocks, one for composing,
signing and submitting) owns one SubstrateInterface used only from its own single worker thread, so the event
loop never blocks and the library's non-thread-safe state is never shared. Every call has a deadline; when the
websocket drops, the connection is rebuilt with exponential backoff (tenacity) until the deadline passes, then
ChainUnavailable is raised. Types come from the node's own metadata (nothing is hard-coded per runtime).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from hashlib import blake2b
from typing import Any, TypeVar

import structlog
from scalecodec.utils.ss58 import is_valid_ss58_address, ss58_encode
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ami_node.keys import Keypair
from ami_node.port import (
    Block,
    BlockRef,
    CallError,
    ChainError,
    ChainUnavailable,
    DryRun,
    PoolRejected,
    RawEvent,
    SignedTx,
    dispatch_error_text,
)
from pallets_spec.vocabulary import SS58_FORMAT

__all__ = ["SubstrateChainPort", "classify_pool_error"]

log = structlog.get_logger(__name__)
T = TypeVar("T")


# Substrate's author RPC error codes (sc-rpc-api author/error.rs).
_POOL_INVALID = 1010
_POOL_UNKNOWN = 1011
_POOL_BANNED = 1012
_POOL_ALREADY_IMPORTED = 1013
_POOL_PRIORITY_TOO_LOW = 1014
_TRANSIENT_INVALID_WORDS = ("outdated", "stale", "future", "exhausts the resources")


class _Disconnected(Exception):
    """The websocket failed; the connection must be rebuilt before retrying."""


def _is_connection_error(exc: BaseException) -> bool:
    from websocket import WebSocketException

    # websocket-client's recv() returns "" once the server has closed the socket; the library then fails to
    # parse it as JSON. Any unparsable frame means the stream can no longer be trusted: reconnect.
    return isinstance(
        exc, WebSocketException | OSError | EOFError | ConnectionError | TimeoutError | json.JSONDecodeError
    )


def _rpc_error(exc: BaseException) -> dict[str, Any] | None:
    """The JSON-RPC error object carried by a SubstrateRequestException, if any."""
    from substrateinterface.exceptions import SubstrateRequestException

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
    transient = code == _POOL_PRIORITY_TOO_LOW or (
        code == _POOL_INVALID and any(w in low for w in _TRANSIENT_INVALID_WORDS)
    )
    return PoolRejected(code, reason, transient)


class _Connection:
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
            self._si = _substrate_class()(
                url=self.url,
                ss58_format=SS58_FORMAT,
                # websocket-client checks UTF-8 in pure Python unless wsaccel is installed (~0.4 s per 400 KB
                # block of events); decoding the text frame as JSON validates it anyway.
                ws_options={"timeout": self.timeout_s, "skip_utf8_validation": True},
                auto_reconnect=True,
            )
            self.exec_result_type = None
        self._si.runtime_pinned = False  # each port call looks the latest runtime up once (_substrate_class)
        return self._si

    def _invoke(self, fn: Callable[[Any], T], started: list[bool]) -> T:
        started.append(True)
        try:
            si = self._ensure()
            return fn(si)
        except ChainError:
            raise
        except Exception as exc:
            if _is_connection_error(exc):
                self._broken = True
                raise _Disconnected(f"{type(exc).__name__}: {exc}") from exc
            # Callers handle ChainError only: an RPC refusal or a decoding failure in the library becomes one,
            # with the original kept as __cause__ for debugging.
            err = _rpc_error(exc)
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
                retry=retry_if_exception_type(_Disconnected),
                reraise=True,
            ):
                with attempt:
                    remaining = max(0.1, deadline - time.monotonic())
                    try:
                        return await asyncio.wait_for(
                            loop.run_in_executor(self._executor, self._invoke, fn, started), remaining
                        )
                    except _Disconnected as exc:
                        last = exc
                        log.info("chain connection lost, reconnecting", conn=self.name, url=self.url,
                                 error=str(exc))
                        raise
        except _Disconnected:
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


_SUBSTRATE_CLASS: Any = None


def _substrate_class() -> Any:
    """SubstrateInterface that resolves the latest runtime once per port call, not once per library call.

    The library calls init_runtime() (3 round trips: head, header, runtime version) inside nearly every
    method, so signing took ~12 messages; on a link that drops every few messages no call could finish, and
    one port call could mix two runtimes. Within one port call (see _Connection._invoke) the first unhashed
    init_runtime() does the work and later ones reuse it; calls for a given block hash are untouched.
    """
    global _SUBSTRATE_CLASS
    if _SUBSTRATE_CLASS is None:
        from substrateinterface import SubstrateInterface

        class _PinnedSubstrate(SubstrateInterface):  # type: ignore[misc]
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

        _SUBSTRATE_CLASS = _PinnedSubstrate
    return _SUBSTRATE_CLASS


def _rpc(si: Any, method: str, params: list[Any]) -> Any:
    return si.rpc_request(method, params).get("result")


def _header_number(header: dict[str, Any]) -> int:
    n = header["number"]
    return int(n, 16) if isinstance(n, str) else int(n)


def _hex(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    s = str(value)
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _event_parts(record: Any) -> tuple[str, str, Any, Any]:
    """(pallet, name, attributes value, attributes scale object) of an EventRecord scale object."""
    value = record.value
    pallet = value.get("module_id") or value["event"]["module_id"]
    name = value.get("event_id") or value["event"]["event_id"]
    attrs_value = value.get("attributes", value["event"].get("attributes"))
    attrs_obj = None
    with contextlib.suppress(Exception):
        event_obj = record.value_object["event"]
        _, pallet_event = event_obj.value_object
        _, attrs_obj = pallet_event.value_object
    return pallet, name, attrs_value, attrs_obj


def _raw_event(index: int, record: Any) -> RawEvent:
    pallet, name, attrs, attrs_obj = _event_parts(record)
    value = record.value
    topics = tuple(_hex(t) for t in (value.get("topics") or []))
    extrinsic_index = value.get("extrinsic_idx")
    contract: str | None = None
    data: bytes | None = None
    if pallet == "Contracts" and name == "ContractEmitted":
        # `.value` turns bytes that happen to be valid UTF-8 into text; the raw bytes live in value_object.
        fields = getattr(attrs_obj, "value_object", None)
        if isinstance(fields, dict) and "data" in fields:
            raw = fields["data"].value_object
            data = bytes(raw) if isinstance(raw, bytes | bytearray) else _hex(fields["data"].value)
            contract = str(fields["contract"].value)
        elif isinstance(attrs, dict):
            contract = str(attrs["contract"])
            data = _hex(attrs["data"])
    return RawEvent(
        index=index,
        pallet=str(pallet),
        name=str(name),
        attributes=attrs,
        topics=topics,
        extrinsic_index=int(extrinsic_index) if extrinsic_index is not None else None,
        contract=contract,
        data=data,
    )


# ------------------------------------------------------------------ System.Events decoding
#
# scalecodec builds a Python object tree for every field of every EventRecord, which made block() cost about
# 1 ms per event. Listens arrive as thousands of Contracts.ContractEmitted records per block, whose shape is
# tiny (phase, pallet/event index, AccountId32, Vec<u8>, Vec<H256>), so that one shape is parsed by hand here,
# with every index and type checked against the node's own metadata; any other record, or a runtime whose
# shapes differ, goes through scalecodec record by record. No library offers a partial SCALE fast path.


@dataclass(frozen=True)
class _EventLayout:
    """Where the hot EventRecord shape sits in one runtime's metadata."""

    record_type: str  # scalecodec type string of one EventRecord
    storage_key: str  # System.Events
    phase_sizes: dict[int, int]  # Phase variant index -> encoded size of its (fixed-size) fields
    apply_extrinsic: int | None  # Phase variant index of ApplyExtrinsic(u32)
    emitted: tuple[int, int] | None  # (pallet, event) index of Contracts.ContractEmitted, if its shape fits
    pallet_name: str = "Contracts"
    event_name: str = "ContractEmitted"
    # (pallet, event) index -> (pallet, event name, fields) of events whose named fields are all AccountId32
    # (size 0 below: SS58 text) or unsigned integers (size in bytes), e.g. Balances.Transfer, Withdraw.
    flat: dict[tuple[int, int], tuple[str, str, tuple[tuple[str, int], ...]]] = field(default_factory=dict)


_PRIMITIVE_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "i8": 1, "i16": 2, "i32": 4, "i64": 8,
                    "i128": 16, "bool": 1}


def _event_layout(si: Any) -> _EventLayout | None:
    """Read the EventRecord layout from the node's metadata (V14+); None when it cannot be read."""
    try:
        versioned = si.metadata.value[1]
        meta = next(v for k, v in versioned.items() if k.startswith("V"))
        reg = {t["id"]: t["type"] for t in meta["types"]["types"]}
        system = next(p for p in meta["pallets"] if p["name"] == "System")
        entry = next(s for s in system["storage"]["entries"] if s["name"] == "Events")
        seq = reg[entry["type"]["Plain"]]["def"]["sequence"]["type"]
        fields = {f["name"]: f["type"] for f in reg[seq]["def"]["composite"]["fields"]}
        storage_key = si.create_storage_key("System", "Events").to_hex()
    except Exception:  # noqa: BLE001 - an unexpected metadata shape only disables the fast path
        return None

    def unwrap(tid: int) -> dict[str, Any]:
        # Newtypes (AccountId32, H256) are composites of one unnamed field.
        d = reg[tid]["def"]
        while "composite" in d and len(d["composite"]["fields"]) == 1:
            d = reg[d["composite"]["fields"][0]["type"]]["def"]
        return dict(d)

    def is_u8(tid: int) -> bool:
        return unwrap(tid).get("primitive") == "u8"

    def is_bytes32(tid: int) -> bool:
        arr: dict[str, Any] = unwrap(tid).get("array") or {}
        return arr.get("len") == 32 and is_u8(arr["type"])

    phase_sizes: dict[int, int] = {}
    apply_extrinsic: int | None = None
    for v in reg[fields["phase"]]["def"].get("variant", {}).get("variants", []):
        sizes = [_PRIMITIVE_SIZES.get(unwrap(f["type"]).get("primitive", "")) for f in v["fields"]]
        if all(s is not None for s in sizes):
            phase_sizes[v["index"]] = sum(s for s in sizes if s is not None)
        prims = [unwrap(f["type"]).get("primitive") for f in v["fields"]]
        if v["name"] == "ApplyExtrinsic" and prims == ["u32"]:
            apply_extrinsic = v["index"]

    def flat_field(tid: int) -> int | None:
        if reg[tid]["path"][-1:] == ["AccountId32"] and is_bytes32(tid):
            return 0
        prim = reg[tid]["def"].get("primitive", "")
        return _PRIMITIVE_SIZES.get(prim) if prim.startswith("u") else None

    emitted: tuple[int, int] | None = None
    flat: dict[tuple[int, int], tuple[str, str, tuple[tuple[str, int], ...]]] = {}
    topics = unwrap(fields["topics"]).get("sequence")
    if topics and is_bytes32(topics["type"]):
        for pv in reg[fields["event"]]["def"].get("variant", {}).get("variants", []):
            if len(pv["fields"]) != 1:
                continue
            for ev in reg[pv["fields"][0]["type"]]["def"].get("variant", {}).get("variants", []):
                shape = [(f["name"], f["type"]) for f in ev["fields"]]
                kinds = [(n, flat_field(t)) for n, t in shape]
                widths = tuple((n, k) for n, k in kinds if n and k is not None)
                if shape and len(widths) == len(shape):
                    flat[(pv["index"], ev["index"])] = (pv["name"], ev["name"], widths)
                if pv["name"] != "Contracts":
                    continue
                if ev["name"] == "ContractEmitted" and [n for n, _ in shape] == ["contract", "data"]:
                    data_seq = unwrap(shape[1][1]).get("sequence")
                    if is_bytes32(shape[0][1]) and data_seq and is_u8(data_seq["type"]):
                        emitted = (pv["index"], ev["index"])
    return _EventLayout(f"scale_info::{seq}", storage_key, phase_sizes, apply_extrinsic, emitted, flat=flat)


# The shortest EventRecord: a fieldless phase, pallet and event index, an empty topics vector.
_MIN_RECORD = 4


def _compact(raw: bytes, o: int) -> tuple[int, int]:
    """SCALE Compact<u> at offset o -> (value, next offset)."""
    mode = raw[o] & 3
    if mode == 0:
        return raw[o] >> 2, o + 1
    if mode == 1:
        return int.from_bytes(raw[o:o + 2], "little") >> 2, o + 2
    if mode == 2:
        return int.from_bytes(raw[o:o + 4], "little") >> 2, o + 4
    n = (raw[o] >> 2) + 4
    return int.from_bytes(raw[o + 1:o + 1 + n], "little"), o + 1 + n


def _bytes_value(b: bytes) -> str:
    # scalecodec's Bytes.value: the text when the bytes are UTF-8, else 0x-hex. Kept identical on purpose.
    try:
        return b.decode()
    except UnicodeDecodeError:
        return "0x" + b.hex()


def _fast_emitted(layout: _EventLayout, raw: bytes, o: int, index: int, ss58: int | None
                  ) -> tuple[RawEvent, int] | None:
    """Parse a ContractEmitted record at offset o, or None when the record has another shape."""
    if layout.emitted is None:
        return None
    phase = raw[o]
    size = layout.phase_sizes.get(phase)
    if size is None:
        return None
    ext = int.from_bytes(raw[o + 1:o + 5], "little") if phase == layout.apply_extrinsic else None
    p = o + 1 + size
    if raw[p:p + 2] != bytes(layout.emitted):
        return None
    account = raw[p + 2:p + 34]
    n, q = _compact(raw, p + 34)
    data = raw[q:q + n]
    q += n
    nt, q = _compact(raw, q)
    end = q + 32 * nt
    if end > len(raw) or len(account) != 32 or len(data) != n:
        raise ChainError("System.Events storage is truncated")
    topics = tuple(raw[q + 32 * k:q + 32 * k + 32] for k in range(nt))
    contract = ss58_encode(account, ss58) if ss58 is not None else "0x" + account.hex()
    attrs = {"contract": contract, "data": _bytes_value(data)}
    return RawEvent(index, layout.pallet_name, layout.event_name, attrs, topics, ext, contract, data), end


def _fast_flat(layout: _EventLayout, raw: bytes, o: int, index: int, ss58: int | None
               ) -> tuple[RawEvent, int] | None:
    """Parse a record whose event has only AccountId32 / unsigned fields (_EventLayout.flat), else None."""
    phase = raw[o]
    size = layout.phase_sizes.get(phase)
    if size is None:
        return None
    p = o + 1 + size
    shape = layout.flat.get((raw[p], raw[p + 1])) if p + 1 < len(raw) else None
    if shape is None:
        return None
    ext = int.from_bytes(raw[o + 1:o + 5], "little") if phase == layout.apply_extrinsic else None
    q = p + 2
    attrs: dict[str, Any] = {}
    for name, width in shape[2]:
        if width == 0:
            account = raw[q:q + 32]
            attrs[name] = ss58_encode(account, ss58) if ss58 is not None else "0x" + account.hex()
            q += 32
        else:
            attrs[name] = int.from_bytes(raw[q:q + width], "little")
            q += width
    nt, q = _compact(raw, q)
    end = q + 32 * nt
    if end > len(raw):
        raise ChainError("System.Events storage is truncated")
    topics = tuple(raw[q + 32 * k:q + 32 * k + 32] for k in range(nt))
    return RawEvent(index, shape[0], shape[1], attrs, topics, ext), end


def _decode_events(si: Any, layout: _EventLayout, raw: bytes) -> tuple[RawEvent, ...]:
    from scalecodec.base import ScaleBytes

    count, o = _compact(raw, 0) if raw else (0, 0)
    ss58 = si.runtime_config.ss58_format
    out: list[RawEvent] = []
    stream: Any = None
    # Records decoded by scalecodec, by their first bytes: a batch repeats identical records
    # (Contracts.Called, Utility.ItemCompleted of one extrinsic). SCALE decoding reads a record's bytes front
    # to back and nothing else, so when the stream at o starts with the exact bytes of a decoded record, the
    # record at o is that record. (Attributes objects are then shared between RawEvents: read-only values.)
    seen: dict[bytes, list[tuple[bytes, RawEvent]]] = {}
    for i in range(count):
        fast = _fast_emitted(layout, raw, o, i, ss58) or _fast_flat(layout, raw, o, i, ss58)
        if fast is not None:
            event, o = fast
            out.append(event)
            continue
        key = raw[o:o + _MIN_RECORD]
        candidates = seen.setdefault(key, [])
        hit = next((c for c in candidates if raw.startswith(c[0], o)), None)
        if hit is not None:
            event = replace(hit[1], index=i)
            o += len(hit[0])
        else:
            if stream is None:
                stream = ScaleBytes(raw)
            stream.offset = o
            record = si.runtime_config.create_scale_object(
                layout.record_type, data=stream, metadata=si.metadata
            )
            record.decode(check_remaining=False)
            event = _raw_event(i, record)
            if len(candidates) < 8:
                candidates.append((raw[o:stream.offset], event))
            o = stream.offset
        out.append(event)
    if o != len(raw):
        raise ChainError(f"System.Events storage has {len(raw) - o} unexpected trailing bytes")
    return tuple(out)


def _weight_pair(value: Any) -> tuple[int, int]:
    if isinstance(value, dict):
        return int(value.get("ref_time", 0)), int(value.get("proof_size", 0))
    return int(value), 0


class SubstrateChainPort:
    """ChainPort over substrate-interface: `SubstrateChainPort("ws://127.0.0.1:9944", timeout_s=30.0)`.

    `timeout_s` bounds every call, reconnect attempts included. `poll_interval_s` is how often
    `finalized_heads()` asks for the finalized head.
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0, poll_interval_s: float = 0.5) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"node URL must start with ws:// or wss://, got {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self._watch = _Connection(url, "watch", timeout_s)
        self._submit = _Connection(url, "submit", timeout_s)
        # EventRecord layout per decoded runtime metadata object (kept alive beside its id).
        self._layouts: dict[int, tuple[Any, _EventLayout | None]] = {}

    async def __aenter__(self) -> SubstrateChainPort:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ reading

    async def _rpc_checked(self, conn: _Connection, method: str, params: list[Any]) -> Any:
        def run(si: Any) -> Any:
            try:
                return _rpc(si, method, params)
            except Exception as exc:
                err = _rpc_error(exc)
                if err is None:
                    raise
                raise ChainError(f"{method} failed: {err.get('message')} ({err.get('data', '')})") from None

        return await conn.call(run)

    async def genesis_hash(self) -> str:
        return str(await self._rpc_checked(self._watch, "chain_getBlockHash", [0]))

    async def finalized_head(self) -> BlockRef:
        def run(si: Any) -> BlockRef:
            h = _rpc(si, "chain_getFinalizedHead", [])
            return BlockRef(_header_number(_rpc(si, "chain_getHeader", [h])), h)

        return await self._watch.call(run)

    async def best_head(self) -> BlockRef:
        def run(si: Any) -> BlockRef:
            h = _rpc(si, "chain_getBlockHash", [])
            return BlockRef(_header_number(_rpc(si, "chain_getHeader", [h])), h)

        return await self._watch.call(run)

    async def block_hash(self, number: int) -> str | None:
        if number < 0:
            raise ValueError(f"block number must be >= 0, got {number}")
        result = await self._rpc_checked(self._watch, "chain_getBlockHash", [number])
        return str(result) if result else None

    async def block(self, number: int) -> Block:
        def run(si: Any) -> Block:
            h = _rpc(si, "chain_getBlockHash", [number])
            if not h:
                raise ChainError(f"block #{number} does not exist yet")
            signed = _rpc(si, "chain_getBlock", [h])
            if not signed:
                raise ChainError(f"block #{number} ({h}) is not available on the node (pruned?)")
            header = signed["block"]["header"]
            ext_hashes = tuple(
                "0x" + blake2b(_hex(x), digest_size=32).hexdigest() for x in signed["block"]["extrinsics"]
            )
            events = self._events(si, h)
            return Block(BlockRef(number, h), header["parentHash"], ext_hashes, events)

        return await self._watch.call(run)

    def _events(self, si: Any, block_hash: str) -> tuple[RawEvent, ...]:
        """The block's System.Events as RawEvents: raw storage bytes, decoded against the block's runtime."""
        si.init_runtime(block_hash=block_hash)
        cached = self._layouts.get(id(si.metadata))
        if cached is None or cached[0] is not si.metadata:
            cached = (si.metadata, _event_layout(si))
            self._layouts[id(si.metadata)] = cached
        layout = cached[1]
        if layout is None:
            return tuple(_raw_event(i, rec) for i, rec in enumerate(si.get_events(block_hash=block_hash)))
        raw = _rpc(si, "state_getStorage", [layout.storage_key, block_hash])
        return _decode_events(si, layout, _hex(raw) if raw else b"")

    async def finalized_heads(self) -> AsyncIterator[BlockRef]:
        """Poll the finalized head and yield each new one; rides out node outages (logs and keeps polling)."""
        last = -1
        while True:
            try:
                ref = await self.finalized_head()
            except ChainError as exc:  # unreachable, or a node mid-restart answering errors
                log.warning("finalized head unavailable, retrying", url=self.url, error=str(exc))
                await asyncio.sleep(min(5.0, self.poll_interval_s * 4))
                continue
            if ref.number > last:
                last = ref.number
                yield ref
            await asyncio.sleep(self.poll_interval_s)

    async def account_next_index(self, address: str) -> int:
        return int(await self._rpc_checked(self._submit, "system_accountNextIndex", [address]))

    async def account_nonce(self, address: str, at: str) -> int:
        def run(si: Any) -> int:
            if not is_valid_ss58_address(address):
                raise CallError(f"not an SS58 address: {address!r}")
            info = si.query("System", "Account", [address], block_hash=at)
            return int(info.value["nonce"])

        return await self._watch.call(run)

    async def free_balance(self, address: str) -> int:
        def run(si: Any) -> int:
            # Any SS58 prefix is accepted (the node's own prefix may not be 42); the key is what counts.
            if not is_valid_ss58_address(address):
                raise CallError(f"not an SS58 address: {address!r}")
            info = si.query("System", "Account", [address])
            return int(info.value["data"]["free"])

        return await self._watch.call(run)

    # ------------------------------------------------------------------ composing

    @staticmethod
    def _describe_call(si: Any, pallet: str, function: str) -> str | None:
        fn = si.get_metadata_call_function(pallet, function)
        if fn is None:
            return None
        args = fn.value.get("fields") or fn.value.get("args") or []
        parts = [f"{a.get('name')}: {a.get('typeName') or a.get('type')}" for a in args]
        return ", ".join(parts) or "no arguments"

    def _compose(self, si: Any, pallet: str, function: str, params: dict[str, Any]) -> Any:
        si.init_runtime()
        expected = self._describe_call(si, pallet, function)
        if expected is None:
            pallets = sorted(p.name for p in si.metadata.pallets)
            if pallet not in pallets:
                raise CallError(f"unknown pallet {pallet!r}; this node has: {', '.join(pallets)}")
            raise CallError(f"pallet {pallet} has no call {function!r}")
        try:
            return si.compose_call(pallet, function, params)
        except Exception as exc:
            if _is_connection_error(exc):
                raise
            raise CallError(f"bad arguments for {pallet}.{function} ({exc}); expected ({expected})") from None

    async def compose_call(self, pallet: str, function: str, params: dict[str, Any]) -> Any:
        return await self._submit.call(lambda si: self._compose(si, pallet, function, params))

    async def contract_call(
        self,
        contract: str,
        data: bytes,
        gas_limit: tuple[int, int],
        value: int = 0,
        storage_deposit_limit: int | None = None,
    ) -> Any:
        params = {
            "dest": contract,
            "value": value,
            "gas_limit": {"ref_time": gas_limit[0], "proof_size": gas_limit[1]},
            "storage_deposit_limit": storage_deposit_limit,
            "data": "0x" + bytes(data).hex(),
        }
        return await self.compose_call("Contracts", "call", params)

    async def batch_all(self, calls: Sequence[Any]) -> Any:
        if not calls:
            raise CallError("Utility.batch_all needs at least one call")
        return await self.compose_call("Utility", "batch_all", {"calls": [c.value for c in calls]})

    async def call_weight(self, call: Any, signer: str) -> tuple[int, int]:
        def run(si: Any) -> tuple[int, int]:
            from substrateinterface import Keypair as SiKeypair

            info = si.get_payment_info(call, SiKeypair(ss58_address=signer, ss58_format=SS58_FORMAT))
            return _weight_pair(info["weight"])

        return await self._submit.call(run)

    async def max_extrinsic_weight(self) -> tuple[int, int]:
        def run(si: Any) -> tuple[int, int]:
            bw = si.get_constant("System", "BlockWeights").value
            normal = bw["per_class"]["normal"]
            for candidate in (normal.get("max_extrinsic"), normal.get("max_total"), bw["max_block"]):
                if candidate:
                    return _weight_pair(candidate)
            raise ChainError("runtime BlockWeights constant has no usable limit")

        return await self._submit.call(run)

    # ------------------------------------------------------------------ contracts

    async def contract_dry_run(self, contract: str, data: bytes, origin: str, value: int = 0) -> DryRun:
        conn = self._submit

        def run(si: Any) -> DryRun:
            si.init_runtime()
            params = {
                "origin": origin,
                "dest": contract,
                "value": value,
                "gas_limit": None,
                "storage_deposit_limit": None,
                "input_data": "0x" + bytes(data).hex(),
            }
            # pallet-contracts added `events` to ContractResult (To269 layout); older nodes lack it. The
            # library picks one from a storage item real nodes do not expose, so try both and remember.
            candidates = [conn.exec_result_type] if conn.exec_result_type else [
                "ContractExecResultTo269", "ContractExecResultTo267"]
            last: Exception | None = None
            for type_name in candidates:
                si.runtime_config.update_type_registry_types({"ContractExecResult": type_name})
                try:
                    result = si.runtime_call("ContractsApi", "call", params)
                except Exception as exc:
                    if _is_connection_error(exc):
                        raise
                    err = _rpc_error(exc)
                    if err is not None:
                        detail = f"{err.get('message')} {err.get('data', '')}"
                        raise ChainError(f"contract dry run failed: {detail}") from None
                    last = exc
                    continue
                conn.exec_result_type = type_name
                return _dry_run_from(si, result)
            raise CallError(f"cannot dry-run a call to {contract}: {last}")

        return await conn.call(run)

    # ------------------------------------------------------------------ signing and submitting

    async def sign(self, call: Any, keypair: Keypair, nonce: int, era_period: int = 64) -> SignedTx:
        def run(si: Any) -> SignedTx:
            si.init_runtime()
            head_hash = _rpc(si, "chain_getFinalizedHead", [])
            current = _header_number(_rpc(si, "chain_getHeader", [head_hash]))
            best = _header_number(_rpc(si, "chain_getHeader", []))
            if best - current > era_period // 4:
                # Finality is lagging: an era born at the finalized head would be (nearly) over already.
                # Like polkadot-js, anchor on the best block instead (if it is retracted, the transaction
                # simply expires and is re-signed).
                current = best
            era = {"period": era_period, "current": current}
            era_obj = si.runtime_config.create_scale_object("Era")
            era_obj.encode(era)
            ext = si.create_signed_extrinsic(
                call=call, keypair=keypair.substrate_keypair, era=era, nonce=nonce
            )
            return SignedTx(
                hash="0x" + ext.extrinsic_hash.hex(),
                data=bytes(ext.data.data),
                signer=keypair.address,
                nonce=nonce,
                era_birth=int(era_obj.birth(current)),
                era_death=int(era_obj.death(current)),
            )

        return await self._submit.call(run)

    async def submit(self, tx: SignedTx) -> str:
        """author_submitExtrinsic. "Already imported" (1013) counts as accepted: the same bytes are pooled.

        When the connection dropped during an attempt, the node may have received it; a "stale" answer to the
        retry then may mean it landed, so it is reported as not transient (confirm by scanning blocks rather
        than re-signing with a fresh nonce).
        """
        attempts = 0

        def run(si: Any) -> str:
            nonlocal attempts
            attempts += 1
            try:
                return str(_rpc(si, "author_submitExtrinsic", ["0x" + tx.data.hex()]))
            except Exception as exc:
                err = _rpc_error(exc)
                if err is None:
                    raise
                code = int(err.get("code", 0) or 0)
                if code == _POOL_ALREADY_IMPORTED or (code == _POOL_BANNED and attempts > 1):
                    # After a drop mid-submit, "banned" means the pool already saw these exact bytes on the
                    # first attempt (and included or refused them): the caller confirms by scanning blocks
                    # until the mortal era ends, so it can neither be lost silently nor land twice.
                    return tx.hash
                rejected = classify_pool_error(err)
                if attempts > 1 and rejected.code == _POOL_INVALID and rejected.transient:
                    rejected = PoolRejected(
                        rejected.code,
                        f"{rejected.reason} (after a reconnect: the first attempt may have landed; "
                        "confirm by scanning blocks)",
                        False,
                    )
                raise rejected from None

        return await self._submit.call(run)

    async def close(self) -> None:
        await self._watch.close()
        await self._submit.close()


def _dry_run_from(si: Any, result: Any) -> DryRun:
    value = result.value
    gas_required = _weight_pair(value["gas_required"])
    deposit = value.get("storage_deposit") or {}
    storage_deposit = int(deposit.get("Charge", 0)) if isinstance(deposit, dict) else 0
    outcome = value["result"]
    if "Ok" in outcome:
        ok_obj = result.value_object["result"].value_object[1]
        raw = ok_obj.value_object["data"].value_object
        output = bytes(raw) if isinstance(raw, bytes | bytearray) else _hex(outcome["Ok"]["data"])
        flags = int.from_bytes(bytes(ok_obj.value_object["flags"].get_used_bytes()), "little")
        reverted = bool(flags & 1)  # pallet-contracts ReturnFlags::REVERT
        return DryRun(not reverted, output, "reverted" if reverted else None, gas_required, storage_deposit)
    error = dispatch_error_text(outcome.get("Error"), _metadata_error_namer(si))
    return DryRun(False, b"", error, gas_required, storage_deposit)


def _metadata_error_namer(si: Any) -> Callable[[int, int], str | None]:
    """Names a module error "Pallet::Error" (e.g. "Contracts::ContractTrapped") from the node's metadata."""

    def name(index: int, error_index: int) -> str | None:
        with contextlib.suppress(Exception):
            pallet = next(p for p in si.metadata.pallets if p["index"] == index)
            return f"{pallet.name}::{si.metadata.get_module_error(index, error_index).name}"
        return None

    return name
