"""Decoding a block's System.Events storage into RawEvents, with a hand-written fast path for hot records.

scalecodec builds a Python object tree for every field of every EventRecord, which made block() cost about
1 ms per event. Listens arrive as thousands of Contracts.ContractEmitted records per block, whose shape is
tiny (phase, pallet/event index, AccountId32, Vec<u8>, Vec<H256>), so that one shape is parsed by hand here,
with every index and type checked against the node's own metadata; any other record, or a runtime whose
shapes differ, goes through scalecodec record by record. No library offers a partial SCALE fast path.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import Any

from scalecodec.base import ScaleBytes
from scalecodec.utils.ss58 import ss58_encode

from ami_node.port import ChainError, RawEvent

__all__ = ["EventLayout", "decode_events", "event_layout", "hex_bytes", "raw_event"]


def hex_bytes(value: Any) -> bytes:
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


def raw_event(index: int, record: Any) -> RawEvent:
    pallet, name, attrs, attrs_obj = _event_parts(record)
    value = record.value
    topics = tuple(hex_bytes(t) for t in (value.get("topics") or []))
    extrinsic_index = value.get("extrinsic_idx")
    contract: str | None = None
    data: bytes | None = None
    if pallet == "Contracts" and name == "ContractEmitted":
        # `.value` turns bytes that happen to be valid UTF-8 into text; the raw bytes live in value_object.
        fields = getattr(attrs_obj, "value_object", None)
        if isinstance(fields, dict) and "data" in fields:
            raw = fields["data"].value_object
            data = bytes(raw) if isinstance(raw, bytes | bytearray) else hex_bytes(fields["data"].value)
            contract = str(fields["contract"].value)
        elif isinstance(attrs, dict):
            contract = str(attrs["contract"])
            data = hex_bytes(attrs["data"])
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


@dataclass(frozen=True)
class EventLayout:
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


_PRIMITIVE_SIZES = {
    "u8": 1,
    "u16": 2,
    "u32": 4,
    "u64": 8,
    "u128": 16,
    "i8": 1,
    "i16": 2,
    "i32": 4,
    "i64": 8,
    "i128": 16,
    "bool": 1,
}


class _Registry:
    """The metadata's type registry, with the questions the layout asks of it."""

    def __init__(self, types: dict[int, dict[str, Any]]) -> None:
        self.types = types

    def unwrap(self, tid: int) -> dict[str, Any]:
        # Newtypes (AccountId32, H256) are composites of one unnamed field.
        d = self.types[tid]["def"]
        while "composite" in d and len(d["composite"]["fields"]) == 1:
            d = self.types[d["composite"]["fields"][0]["type"]]["def"]
        return dict(d)

    def is_u8(self, tid: int) -> bool:
        return self.unwrap(tid).get("primitive") == "u8"

    def is_bytes32(self, tid: int) -> bool:
        arr: dict[str, Any] = self.unwrap(tid).get("array") or {}
        return arr.get("len") == 32 and self.is_u8(arr["type"])

    def variants(self, tid: int) -> list[dict[str, Any]]:
        return list(self.types[tid]["def"].get("variant", {}).get("variants", []))

    def flat_field(self, tid: int) -> int | None:
        """0 for an AccountId32, the byte size of an unsigned integer, None for anything else."""
        if self.types[tid]["path"][-1:] == ["AccountId32"] and self.is_bytes32(tid):
            return 0
        prim = self.types[tid]["def"].get("primitive", "")
        return _PRIMITIVE_SIZES.get(prim) if prim.startswith("u") else None

    def is_contract_emitted(self, name: str, shape: list[tuple[str, int]]) -> bool:
        if name != "ContractEmitted" or [n for n, _ in shape] != ["contract", "data"]:
            return False
        data_seq = self.unwrap(shape[1][1]).get("sequence")
        return data_seq is not None and self.is_bytes32(shape[0][1]) and self.is_u8(data_seq["type"])


def _phases(reg: _Registry, phase_type: int) -> tuple[dict[int, int], int | None]:
    """Phase variant index -> size of its fixed-size fields, and the index of ApplyExtrinsic(u32)."""
    phase_sizes: dict[int, int] = {}
    apply_extrinsic: int | None = None
    for v in reg.variants(phase_type):
        prims = [reg.unwrap(f["type"]).get("primitive") for f in v["fields"]]
        sizes = [_PRIMITIVE_SIZES.get(p or "") for p in prims]
        if all(s is not None for s in sizes):
            phase_sizes[v["index"]] = sum(s for s in sizes if s is not None)
        if v["name"] == "ApplyExtrinsic" and prims == ["u32"]:
            apply_extrinsic = v["index"]
    return phase_sizes, apply_extrinsic


FlatShapes = dict[tuple[int, int], tuple[str, str, tuple[tuple[str, int], ...]]]


def _event_shapes(reg: _Registry, event_type: int) -> tuple[tuple[int, int] | None, FlatShapes]:
    """The (pallet, event) index of a ContractEmitted with the hot shape, and the flat events' shapes."""
    emitted: tuple[int, int] | None = None
    flat: FlatShapes = {}
    for pv in reg.variants(event_type):
        if len(pv["fields"]) != 1:
            continue
        for ev in reg.variants(pv["fields"][0]["type"]):
            shape = [(f["name"], f["type"]) for f in ev["fields"]]
            widths = tuple(
                (n, k) for n, k in ((n, reg.flat_field(t)) for n, t in shape) if n and k is not None
            )
            if shape and len(widths) == len(shape):
                flat[(pv["index"], ev["index"])] = (pv["name"], ev["name"], widths)
            if pv["name"] == "Contracts" and reg.is_contract_emitted(ev["name"], shape):
                emitted = (pv["index"], ev["index"])
    return emitted, flat


def event_layout(si: Any) -> EventLayout | None:
    """Read the EventRecord layout from the node's metadata (V14+); None when it cannot be read."""
    try:
        versioned = si.metadata.value[1]
        meta = next(v for k, v in versioned.items() if k.startswith("V"))
        reg = _Registry({t["id"]: t["type"] for t in meta["types"]["types"]})
        system = next(p for p in meta["pallets"] if p["name"] == "System")
        entry = next(s for s in system["storage"]["entries"] if s["name"] == "Events")
        seq = reg.types[entry["type"]["Plain"]]["def"]["sequence"]["type"]
        fields = {f["name"]: f["type"] for f in reg.types[seq]["def"]["composite"]["fields"]}
        storage_key = si.create_storage_key("System", "Events").to_hex()
    except Exception:  # noqa: BLE001 - an unexpected metadata shape only disables the fast path
        return None
    phase_sizes, apply_extrinsic = _phases(reg, fields["phase"])
    emitted: tuple[int, int] | None = None
    flat: FlatShapes = {}
    topics = reg.unwrap(fields["topics"]).get("sequence")
    if topics and reg.is_bytes32(topics["type"]):
        emitted, flat = _event_shapes(reg, fields["event"])
    return EventLayout(f"scale_info::{seq}", storage_key, phase_sizes, apply_extrinsic, emitted, flat=flat)


# The shortest EventRecord: a fieldless phase, pallet and event index, an empty topics vector.
_MIN_RECORD = 4


def _compact(raw: bytes, o: int) -> tuple[int, int]:
    """SCALE Compact<u> at offset o -> (value, next offset)."""
    mode = raw[o] & 3
    if mode == 0:
        return raw[o] >> 2, o + 1
    if mode == 1:
        return int.from_bytes(raw[o : o + 2], "little") >> 2, o + 2
    if mode == 2:
        return int.from_bytes(raw[o : o + 4], "little") >> 2, o + 4
    n = (raw[o] >> 2) + 4
    return int.from_bytes(raw[o + 1 : o + 1 + n], "little"), o + 1 + n


def _bytes_value(b: bytes) -> str:
    # scalecodec's Bytes.value: the text when the bytes are UTF-8, else 0x-hex. Kept identical on purpose.
    try:
        return b.decode()
    except UnicodeDecodeError:
        return "0x" + b.hex()


def _fast_emitted(
    layout: EventLayout, raw: bytes, o: int, index: int, ss58: int | None
) -> tuple[RawEvent, int] | None:
    """Parse a ContractEmitted record at offset o, or None when the record has another shape."""
    if layout.emitted is None:
        return None
    phase = raw[o]
    size = layout.phase_sizes.get(phase)
    if size is None:
        return None
    ext = int.from_bytes(raw[o + 1 : o + 5], "little") if phase == layout.apply_extrinsic else None
    p = o + 1 + size
    if raw[p : p + 2] != bytes(layout.emitted):
        return None
    account = raw[p + 2 : p + 34]
    n, q = _compact(raw, p + 34)
    data = raw[q : q + n]
    q += n
    nt, q = _compact(raw, q)
    end = q + 32 * nt
    if end > len(raw) or len(account) != 32 or len(data) != n:
        raise ChainError("System.Events storage is truncated")
    topics = tuple(raw[q + 32 * k : q + 32 * k + 32] for k in range(nt))
    contract = ss58_encode(account, ss58) if ss58 is not None else "0x" + account.hex()
    attrs = {"contract": contract, "data": _bytes_value(data)}
    return RawEvent(index, layout.pallet_name, layout.event_name, attrs, topics, ext, contract, data), end


def _fast_flat(
    layout: EventLayout, raw: bytes, o: int, index: int, ss58: int | None
) -> tuple[RawEvent, int] | None:
    """Parse a record whose event has only AccountId32 / unsigned fields (EventLayout.flat), else None."""
    phase = raw[o]
    size = layout.phase_sizes.get(phase)
    if size is None:
        return None
    p = o + 1 + size
    shape = layout.flat.get((raw[p], raw[p + 1])) if p + 1 < len(raw) else None
    if shape is None:
        return None
    ext = int.from_bytes(raw[o + 1 : o + 5], "little") if phase == layout.apply_extrinsic else None
    q = p + 2
    attrs: dict[str, Any] = {}
    for name, width in shape[2]:
        if width == 0:
            account = raw[q : q + 32]
            attrs[name] = ss58_encode(account, ss58) if ss58 is not None else "0x" + account.hex()
            q += 32
        else:
            attrs[name] = int.from_bytes(raw[q : q + width], "little")
            q += width
    nt, q = _compact(raw, q)
    end = q + 32 * nt
    if end > len(raw):
        raise ChainError("System.Events storage is truncated")
    topics = tuple(raw[q + 32 * k : q + 32 * k + 32] for k in range(nt))
    return RawEvent(index, shape[0], shape[1], attrs, topics, ext), end


def decode_events(si: Any, layout: EventLayout, raw: bytes) -> tuple[RawEvent, ...]:
    """The records of a block's raw System.Events storage, in order; ChainError when it is malformed."""
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
        key = raw[o : o + _MIN_RECORD]
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
            event = raw_event(i, record)
            if len(candidates) < 8:
                candidates.append((raw[o : stream.offset], event))
            o = stream.offset
        out.append(event)
    if o != len(raw):
        raise ChainError(f"System.Events storage has {len(raw) - o} unexpected trailing bytes")
    return tuple(out)
