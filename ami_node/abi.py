"""ink! v5 contract ABI: the ONLY module that knows ink!; encodes calls, decodes return values and events.

Built on scalecodec's scale-info support (the same machinery substrate-interface's ContractMetadata uses), but
with a private type registry per contract so that it works offline, without a node connection.
Values: AccountId as SS58 string (prefix 42), fixed byte arrays as "0x"-hex strings (bytes accepted on
input), integers as int, Vec as list, tuples as tuples (lists accepted on input), Option as value-or-None,
structs as dicts, enums as the variant name or {name: value}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

import pallets_spec
from ami_node.port import CallError, ContractReverted
from pallets_spec.vocabulary import SS58_FORMAT

__all__ = ["AbiError", "ArgSpec", "ContractAbi", "EventSpec", "MessageSpec", "metadata_dir"]


class AbiError(ValueError):
    """Metadata could not be loaded, or bytes could not be decoded with it."""


@dataclass(frozen=True)
class ArgSpec:
    label: str
    type_id: int
    display: str
    indexed: bool = False


@dataclass(frozen=True)
class MessageSpec:
    label: str
    selector: bytes
    args: tuple[ArgSpec, ...]
    return_type_id: int | None
    mutates: bool
    payable: bool


@dataclass(frozen=True)
class EventSpec:
    label: str
    signature_topic: bytes | None
    args: tuple[ArgSpec, ...]


def metadata_dir() -> Path:
    """Where pallets_spec keeps the contracts' ink! metadata files."""
    return Path(pallets_spec.__file__).resolve().parent / "metadata"


def _hex_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def _normalise(value: Any) -> Any:
    """Turn Python inputs into what scalecodec encodes: bytes -> 0x-hex, tuples -> lists."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, tuple | list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


class ContractAbi:
    """One contract's ink! v5 metadata: encoders and decoders for its messages, constructors and events."""

    def __init__(self, metadata: dict[str, Any], wasm: bytes | None = None) -> None:
        version = str(metadata.get("version", ""))
        if version != "5":
            raise AbiError(f"unsupported ink! metadata version {version!r}; expected 5")
        try:
            self.name: str = metadata["contract"]["name"]
            spec = metadata["spec"]
            self._types: dict[int, dict[str, Any]] = {t["id"]: t["type"] for t in metadata["types"]}
        except (KeyError, TypeError) as exc:
            raise AbiError(f"ink! metadata is missing {exc}") from None
        self.metadata = metadata
        self.wasm = wasm
        self._prefix = f"ink::{self.name}"
        self._rc = RuntimeConfigurationObject(ss58_format=SS58_FORMAT)
        self._rc.update_type_registry(load_type_registry_preset("core"))
        registry = self._rc.create_scale_object("PortableRegistry")
        registry.encode({"types": metadata["types"]})
        self._rc.update_from_scale_info_types(registry["types"], prefix=self._prefix)

        self.messages: dict[str, MessageSpec] = {m.label: m for m in map(self._message, spec["messages"])}
        self.constructors: dict[str, MessageSpec] = {
            c.label: c for c in map(self._message, spec["constructors"])
        }
        self.events: dict[str, EventSpec] = {}
        self._events_by_topic: dict[bytes, EventSpec] = {}
        for ev in spec.get("events", []):
            topic = _hex_to_bytes(ev["signature_topic"]) if ev.get("signature_topic") else None
            es = EventSpec(ev["label"], topic, tuple(self._arg(a) for a in ev["args"]))
            self.events[es.label] = es
            if topic is not None:
                self._events_by_topic[topic] = es

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, name_or_path: str | Path) -> ContractAbi:
        """Load by contract name ("ami_nft", from pallets_spec/metadata) or from a .json / .contract file."""
        path = Path(name_or_path)
        if path.suffix not in (".json", ".contract"):
            path = metadata_dir() / f"{name_or_path}.json"
        return _load_cached(str(path.resolve()))

    @classmethod
    def from_file(cls, path: Path) -> ContractAbi:
        if not path.is_file():
            raise AbiError(f"contract metadata file {str(path)!r} does not exist")
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except ValueError as exc:
            raise AbiError(f"{str(path)!r} is not valid JSON: {exc}") from None
        wasm = None
        source = data.get("source", {}) if isinstance(data, dict) else {}
        if isinstance(source, dict) and isinstance(source.get("wasm"), str):
            wasm = _hex_to_bytes(source["wasm"])
        return cls(data, wasm=wasm)

    # ---------------------------------------------------------------- specs

    def _type_display(self, type_id: int) -> str:
        t = self._types[type_id]
        d = t["def"]
        path = t.get("path") or []
        params = [p.get("type") for p in t.get("params", []) if p.get("type") is not None]
        if "primitive" in d:
            return "String" if d["primitive"] == "str" else str(d["primitive"])
        if "sequence" in d:
            return f"Vec<{self._type_display(d['sequence']['type'])}>"
        if "array" in d:
            return f"[{self._type_display(d['array']['type'])}; {d['array']['len']}]"
        if "tuple" in d:
            return "(" + ", ".join(self._type_display(i) for i in d["tuple"]) + ")"
        if "compact" in d:
            return f"Compact<{self._type_display(d['compact']['type'])}>"
        name = path[-1] if path else f"type#{type_id}"
        if params:
            name += "<" + ", ".join(self._type_display(p) for p in params) + ">"
        return name

    def _arg(self, raw: dict[str, Any]) -> ArgSpec:
        tid = int(raw["type"]["type"])
        return ArgSpec(raw["label"], tid, self._type_display(tid), bool(raw.get("indexed", False)))

    def _message(self, raw: dict[str, Any]) -> MessageSpec:
        rt = raw.get("returnType")
        return MessageSpec(
            label=raw["label"],
            selector=_hex_to_bytes(raw["selector"]),
            args=tuple(self._arg(a) for a in raw["args"]),
            return_type_id=int(rt["type"]) if rt else None,
            mutates=bool(raw.get("mutates", False)),
            payable=bool(raw.get("payable", False)),
        )

    def _type_string(self, type_id: int) -> str:
        return f"{self._prefix}::{type_id}"

    # ---------------------------------------------------------------- encoding

    def _encode(self, kind: str, spec: MessageSpec, args: dict[str, Any]) -> bytes:
        expected = ", ".join(f"{a.label}: {a.display}" for a in spec.args) or "no arguments"
        names = {a.label for a in spec.args}
        missing = [a.label for a in spec.args if a.label not in args]
        extra = sorted(set(args) - names)
        if missing or extra:
            what = "; ".join(
                p for p in (f"missing {missing}" if missing else "", f"unknown {extra}" if extra else "") if p
            )
            raise CallError(f"{self.name}.{spec.label} {kind}: {what}; expected ({expected})")
        out = bytearray(spec.selector)
        for a in spec.args:
            obj = self._rc.create_scale_object(self._type_string(a.type_id))
            try:
                out += bytes(obj.encode(_normalise(args[a.label])).data)
            except Exception as exc:
                raise CallError(
                    f"{self.name}.{spec.label}: bad value for {a.label!r}, expected {a.display} ({exc})"
                ) from None
        return bytes(out)

    def encode_call(self, message: str, **args: Any) -> bytes:
        """The input data of a Contracts.call: selector followed by the SCALE-encoded arguments."""
        spec = self.message(message)
        return self._encode("message", spec, args)

    def constructor(self, name: str, **args: Any) -> bytes:
        """The input data of Contracts.instantiate(_with_code) for constructor `name`."""
        spec = self.constructors.get(name)
        if spec is None:
            raise CallError(f"{self.name} has no constructor {name!r}; known: {sorted(self.constructors)}")
        return self._encode("constructor", spec, args)

    def message(self, label: str) -> MessageSpec:
        spec = self.messages.get(label)
        if spec is None:
            raise CallError(f"{self.name} has no message {label!r}; known: {sorted(self.messages)}")
        return spec

    def selector(self, label: str) -> bytes:
        return self.message(label).selector

    # ---------------------------------------------------------------- decoding

    def decode_type(self, type_id: int, data: bytes) -> Any:
        """Decode `data` as metadata type `type_id`; AbiError on malformed or trailing bytes."""
        obj = self._rc.create_scale_object(self._type_string(type_id), data=ScaleBytes(bytes(data)))
        try:
            value = obj.decode(check_remaining=True)
        except Exception as exc:
            what = self._type_display(type_id)
            raise AbiError(f"cannot decode {what} from {len(data)} bytes: {exc}") from None
        return value

    def _is_result(self, type_id: int) -> bool:
        return (self._types[type_id].get("path") or []) == ["Result"]

    def _result_arms(self, type_id: int) -> tuple[int | None, int | None]:
        ok = err = None
        for v in self._types[type_id]["def"]["variant"]["variants"]:
            field_type = v["fields"][0]["type"] if v.get("fields") else None
            if v["name"] == "Ok":
                ok = field_type
            elif v["name"] == "Err":
                err = field_type
        return ok, err

    def decode_return(self, message: str, output: bytes) -> Any:
        """The value a message returned, unwrapping ink!'s Result<Result<T, Error>, LangError>.

        Raises ContractReverted with the error variant's name (e.g. "NotOracle") when the message returned
        Err, or "LangError::<variant>" when ink! itself refused the call (e.g. unknown selector).
        """
        spec = self.message(message)
        if spec.return_type_id is None:
            return None
        value = self.decode_type(spec.return_type_id, output)
        tid = spec.return_type_id
        # Outer Result<_, LangError> (always present in ink! 5), then the contract's own Result<T, Error>.
        for layer in ("LangError::", ""):
            if not self._is_result(tid) or not isinstance(value, dict) or len(value) != 1:
                break
            ((arm, inner),) = value.items()
            ok_t, _ = self._result_arms(tid)
            if arm == "Err":
                variant = next(iter(inner)) if isinstance(inner, dict) else inner
                error = f"{layer}{variant}"
                raise ContractReverted(error, f"{self.name}.{message} reverted: {error}")
            value = inner
            if ok_t is None:
                break
            tid = ok_t
        return value

    def decode_error_output(self, message: str, output: bytes) -> str | None:
        """The ink! error variant in a reverted call's output, or None when it cannot be decoded."""
        try:
            self.decode_return(message, output)
        except ContractReverted as exc:
            return exc.error
        except AbiError:
            return None
        return None

    def event_for_topic(self, topic: bytes) -> EventSpec | None:
        return self._events_by_topic.get(bytes(topic))

    def decode_event(
        self, topics: tuple[bytes, ...] | list[bytes], data: bytes
    ) -> tuple[str, dict[str, Any]]:
        """(label, fields) of a ContractEmitted event, matched on its signature topic (topics[0])."""
        if not topics:
            raise AbiError(f"{self.name}: event without topics (anonymous events are not used)")
        spec = self.event_for_topic(bytes(topics[0]))
        if spec is None:
            raise AbiError(f"{self.name}: no event with signature topic 0x{bytes(topics[0]).hex()}")
        stream = ScaleBytes(bytes(data))
        fields: dict[str, Any] = {}
        try:
            for a in spec.args:
                obj = self._rc.create_scale_object(self._type_string(a.type_id), data=stream)
                fields[a.label] = obj.decode(check_remaining=False)
        except Exception as exc:
            raise AbiError(f"{self.name}: cannot decode event {spec.label}: {exc}") from None
        if stream.offset != len(stream.data):
            extra = len(stream.data) - stream.offset
            raise AbiError(f"{self.name}: event {spec.label} has {extra} trailing bytes")
        return spec.label, fields


@cache
def _load_cached(path: str) -> ContractAbi:
    return ContractAbi.from_file(Path(path))
