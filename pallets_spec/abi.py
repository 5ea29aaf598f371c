"""ink! 5 ABI rules applied to the description: selectors, event signature topics, topic encodings, call data.

- selector: the first 4 bytes of blake2b-256(label) (ink! 5 default for messages and constructors);
- event signature topic: blake2b-256 of `Name(T1,T2,...)`, types as written in the source without spaces;
- an indexed field's topic: its SCALE encoding zero-padded to 32 bytes, or blake2b-256 of it when longer;
- event data: the SCALE encoding of all fields in order (no variant index in ink! 5).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pallets_spec.description import CONTRACTS, Contract, Event, Message
from pallets_spec.scale import Codec, Err, Ok, Reader, ScaleError
from pallets_spec.typeexpr import TypeExpr, parse_type


class AbiError(ValueError):
    """Unknown contract, message or event, or arguments that do not match the ABI."""


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def selector(label: str) -> bytes:
    return blake2_256(label.encode())[:4]


def event_signature(event: Event) -> str:
    return f"{event.label}({','.join(f.expr.compact() for f in event.fields)})"


def signature_topic(event: Event) -> bytes:
    return blake2_256(event_signature(event).encode())


def topic_of_encoded(encoded: bytes) -> bytes:
    if len(encoded) <= 32:
        return encoded + bytes(32 - len(encoded))
    return blake2_256(encoded)


def return_type(message: Message) -> TypeExpr:
    """The metadata returnType: `Result<Result<T, Error>, LangError>`, or `Result<T, LangError>` (queries)."""
    return parse_type(f"Result<{message.rust_return}, LangError>")


CONSTRUCTOR_RETURN = parse_type("Result<(), LangError>")


@dataclass(frozen=True)
class DecodedEvent:
    label: str
    fields: dict[str, Any]


class SpecAbi:
    """One contract's ABI computed from the description alone (no metadata file): encodes calls, decodes
    outputs and events. The client's ABI, read from ink! metadata files, is `ami_node.abi.ContractAbi`."""

    def __init__(self, contract: Contract | str) -> None:
        self.contract = CONTRACTS[contract] if isinstance(contract, str) else contract
        self.codec = Codec(self.contract)
        self.messages_by_selector = {selector(m.label): m for m in self.contract.messages}
        self.constructors_by_selector = {selector(c.label): c for c in self.contract.constructors}
        self.events_by_topic = {signature_topic(e): e for e in self.contract.events}

    def _message(self, label: str) -> Message:
        try:
            return self.contract.message(label)
        except KeyError as exc:
            raise AbiError(str(exc.args[0])) from None

    def encode_call(self, label: str, args: dict[str, Any] | None = None) -> bytes:
        """Selector + SCALE arguments of a message (args by name)."""
        msg = self._message(label)
        return selector(label) + self._encode_args(msg.args, args or {}, label)

    def encode_constructor(self, label: str = "new", args: dict[str, Any] | None = None) -> bytes:
        for c in self.contract.constructors:
            if c.label == label:
                return selector(label) + self._encode_args(c.args, args or {}, label)
        raise AbiError(f"{self.contract.name} has no constructor {label!r}")

    def _encode_args(self, spec: tuple, args: dict[str, Any], label: str) -> bytes:
        extra = set(args) - {a.name for a in spec}
        if extra:
            raise AbiError(f"{label}: unexpected arguments {sorted(extra)}")
        out = b""
        for a in spec:
            if a.name not in args:
                raise AbiError(f"{label}: missing argument {a.name!r}")
            try:
                out += self.codec.encode(a.expr, args[a.name])
            except ScaleError as exc:
                raise AbiError(f"{label}: argument {a.name!r}: {exc}") from None
        return out

    def decode_args(self, args_spec: tuple, data: bytes) -> dict[str, Any]:
        """Decode SCALE arguments (after the selector); raises ScaleError on short or trailing input."""
        r = Reader(data)
        out = {a.name: self.codec.read(a.expr, r) for a in args_spec}
        if not r.done():
            raise ScaleError(f"{len(data) - r.pos} trailing bytes after the arguments")
        return out

    def decode_output(self, label: str, output: bytes) -> Any:
        """Decode a message's raw output into Ok/Err values (outer Result = LangError level)."""
        return self.codec.decode(return_type(self._message(label)), output)

    def encode_output(self, message: Message, value: Any) -> bytes:
        return self.codec.encode(return_type(message), value)

    def event_topics(self, event: Event, fields: dict[str, Any]) -> list[bytes]:
        topics = [signature_topic(event)]
        for f in event.fields:
            if f.topic:
                topics.append(topic_of_encoded(self.codec.encode(f.expr, fields[f.name])))
        return topics

    def encode_event_data(self, event: Event, fields: dict[str, Any]) -> bytes:
        return b"".join(self.codec.encode(f.expr, fields[f.name]) for f in event.fields)

    def decode_event(self, topics: list[bytes], data: bytes) -> DecodedEvent:
        """Decode a ContractEmitted event from its record topics (topics[0] = signature) and data."""
        if not topics or topics[0] not in self.events_by_topic:
            first = topics[0].hex() if topics else None
            raise AbiError(f"{self.contract.name}: no event with signature topic {first}")
        event = self.events_by_topic[topics[0]]
        return DecodedEvent(event.label, self.decode_args(event.fields, data))


def decode_error(contract: Contract | str, output: bytes, label: str | None = None) -> str | None:
    """The error variant name a message output carries (`NotOracle`, `CouldNotReadInput`), or None on success.

    With `label` the output is fully decoded as that message's return type. Without it the rule is: a
    `Result<Result<T, Error>, LangError>` that is `Ok(Err(e))` is exactly three bytes `00 01 e`; no successful
    output of these contracts has that shape (the shortest ones are `00 01` and `00 00 ..` with 8+ bytes).
    """
    c = CONTRACTS[contract] if isinstance(contract, str) else contract
    if label is not None:
        value = SpecAbi(c).decode_output(label, output)
        if isinstance(value, Err):
            return str(value.value)
        inner = value.value
        return str(inner.value) if isinstance(inner, Err) else None
    if not output:
        raise ScaleError("empty output")
    if output[0] == 1:
        if output[1:] != b"\x01":
            raise ScaleError(f"invalid LangError in output {output.hex()}")
        return "CouldNotReadInput"
    if output[0] != 0:
        raise ScaleError(f"invalid Result tag {output[0]}")
    if len(output) == 3 and output[1] == 1:
        idx = output[2]
        if idx >= len(c.errors):
            raise ScaleError(f"invalid Error variant {idx}")
        return c.errors[idx]
    return None


__all__ = [
    "AbiError",
    "SpecAbi",
    "DecodedEvent",
    "Err",
    "Ok",
    "blake2_256",
    "decode_error",
    "event_signature",
    "return_type",
    "selector",
    "signature_topic",
    "topic_of_encoded",
    "CONSTRUCTOR_RETURN",
]
