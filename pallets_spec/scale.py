"""SCALE encoding and decoding of the contracts' ABI values, driven by the description's type expressions.

Written by hand on purpose: the model must run without a chain client's type registry and its conventions
(scalecodec turns AccountIds into SS58 text and bytes into hex), and the subset needed is small. The tests
check it against scalecodec through substrate-interface's `ContractMetadata`.

Python values: unsigned ints -> int, bool -> bool, String -> str, AccountId / Hash / [u8; N] -> bytes,
Vec / other arrays -> list, tuples -> tuple, () -> None, Option -> None or the value, Result -> Ok / Err,
structs -> dict by field name, the contract's Error -> the variant name (str).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pallets_spec.description import ALIASES, Contract
from pallets_spec.typeexpr import TypeExpr, parse_type

_UINT_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "u128": 128}
_BYTES32 = {"AccountId": 32, "Hash": 32}


class ScaleError(ValueError):
    """A value does not fit its type, or bytes do not decode as the expected type."""


@dataclass(frozen=True)
class Ok:
    value: Any = None


@dataclass(frozen=True)
class Err:
    value: Any = None


def encode_compact(n: int) -> bytes:
    if n < 0:
        raise ScaleError(f"compact integer must be >= 0, got {n}")
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30:
        return ((n << 2) | 2).to_bytes(4, "little")
    raw = n.to_bytes((n.bit_length() + 7) // 8, "little")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw


class Reader:
    """A cursor over bytes that raises ScaleError instead of reading past the end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            have = len(self.data) - self.pos
            raise ScaleError(f"input too short: need {n} bytes at offset {self.pos}, have {have}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def compact(self) -> int:
        first = self.take(1)[0]
        mode = first & 3
        if mode == 0:
            return first >> 2
        if mode == 1:
            return int.from_bytes(bytes([first]) + self.take(1), "little") >> 2
        if mode == 2:
            return int.from_bytes(bytes([first]) + self.take(3), "little") >> 2
        return int.from_bytes(self.take((first >> 2) + 4), "little")

    def done(self) -> bool:
        return self.pos == len(self.data)


class Codec:
    """Encodes and decodes values of one contract's types (its structs and Error enum are known by name)."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._structs = {s.name: s for s in contract.structs}

    # -- encoding -------------------------------------------------------------------------------------------
    def encode(self, ty: TypeExpr | str, value: Any) -> bytes:
        expr = parse_type(ty) if isinstance(ty, str) else ty
        out = bytearray()
        self._enc(expr, value, out)
        return bytes(out)

    def _enc(self, t: TypeExpr, v: Any, out: bytearray) -> None:
        head = ALIASES.get(t.head, t.head) if not t.args else t.head
        if head in _UINT_BITS:
            bits = _UINT_BITS[head]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << bits:
                raise ScaleError(f"{t} expects an integer in 0..2^{bits}, got {v!r}")
            out += v.to_bytes(bits // 8, "little")
        elif head == "bool":
            if not isinstance(v, bool):
                raise ScaleError(f"bool expects True/False, got {v!r}")
            out.append(1 if v else 0)
        elif head == "String":
            if not isinstance(v, str):
                raise ScaleError(f"String expects str, got {type(v).__name__}")
            raw = v.encode("utf-8")
            out += encode_compact(len(raw)) + raw
        elif head in _BYTES32 or (head == "array" and t.args[0].head == "u8"):
            n = _BYTES32.get(head, t.length)
            if not isinstance(v, bytes | bytearray) or len(v) != n:
                raise ScaleError(f"{t} expects {n} bytes, got {v!r}")
            out += v
        elif head == "array":
            if not isinstance(v, list | tuple) or len(v) != t.length:
                raise ScaleError(f"{t} expects {t.length} items")
            for item in v:
                self._enc(t.args[0], item, out)
        elif head == "Vec":
            if not isinstance(v, list | tuple):
                raise ScaleError(f"{t} expects a list, got {type(v).__name__}")
            out += encode_compact(len(v))
            for item in v:
                self._enc(t.args[0], item, out)
        elif head == "tuple":
            items = () if v is None and not t.args else v
            if not isinstance(items, list | tuple) or len(items) != len(t.args):
                raise ScaleError(f"{t} expects {len(t.args)} items, got {v!r}")
            for sub, item in zip(t.args, items, strict=True):
                self._enc(sub, item, out)
        elif head == "Option":
            if v is None:
                out.append(0)
            else:
                out.append(1)
                self._enc(t.args[0], v, out)
        elif head == "Result":
            if isinstance(v, Ok):
                out.append(0)
                self._enc(t.args[0], v.value, out)
            elif isinstance(v, Err):
                out.append(1)
                self._enc(t.args[1], v.value, out)
            else:
                raise ScaleError(f"{t} expects Ok(...) or Err(...), got {v!r}")
        elif head == "LangError":
            if v != "CouldNotReadInput":
                raise ScaleError(f"LangError has only CouldNotReadInput, got {v!r}")
            out.append(1)
        elif head == "Error":
            if v not in self.contract.errors:
                raise ScaleError(f"{self.contract.name} Error has no variant {v!r}")
            out.append(self.contract.errors.index(v))
        elif head in self._structs:
            if not isinstance(v, dict):
                raise ScaleError(f"{head} expects a dict, got {type(v).__name__}")
            for f in self._structs[head].fields:
                if f.name not in v:
                    raise ScaleError(f"{head} misses field {f.name!r}")
                self._enc(f.expr, v[f.name], out)
        else:
            raise ScaleError(f"unknown type {t}")

    # -- decoding -------------------------------------------------------------------------------------------
    def decode(self, ty: TypeExpr | str, data: bytes) -> Any:
        """Decode exactly `data` (trailing bytes are an error)."""
        expr = parse_type(ty) if isinstance(ty, str) else ty
        r = Reader(data)
        value = self.read(expr, r)
        if not r.done():
            raise ScaleError(f"{len(data) - r.pos} trailing bytes after {expr}")
        return value

    def read(self, t: TypeExpr, r: Reader) -> Any:
        head = ALIASES.get(t.head, t.head) if not t.args else t.head
        if head in _UINT_BITS:
            return int.from_bytes(r.take(_UINT_BITS[head] // 8), "little")
        if head == "bool":
            b = r.take(1)[0]
            if b > 1:
                raise ScaleError(f"invalid bool byte {b}")
            return b == 1
        if head == "String":
            raw = r.take(r.compact())
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ScaleError("String is not valid UTF-8") from exc
        if head in _BYTES32 or (head == "array" and t.args[0].head == "u8"):
            return r.take(_BYTES32.get(head) or t.length or 0)
        if head == "array":
            return [self.read(t.args[0], r) for _ in range(t.length or 0)]
        if head == "Vec":
            n = r.compact()
            if n > len(r.data) - r.pos:
                # Every element takes at least one byte here; refuse absurd lengths before allocating.
                raise ScaleError(f"Vec length {n} exceeds the input")
            return [self.read(t.args[0], r) for _ in range(n)]
        if head == "tuple":
            if not t.args:
                return None
            return tuple(self.read(a, r) for a in t.args)
        if head in ("Option", "Result", "LangError", "Error"):
            tag = r.take(1)[0]
            if head == "Option":
                if tag > 1:
                    raise ScaleError(f"invalid Option tag {tag}")
                return None if tag == 0 else self.read(t.args[0], r)
            if head == "Result":
                if tag > 1:
                    raise ScaleError(f"invalid Result tag {tag}")
                return Ok(self.read(t.args[0], r)) if tag == 0 else Err(self.read(t.args[1], r))
            if head == "LangError":
                if tag != 1:
                    raise ScaleError(f"invalid LangError variant {tag}")
                return "CouldNotReadInput"
            if tag >= len(self.contract.errors):
                raise ScaleError(f"invalid Error variant {tag}")
            return self.contract.errors[tag]
        if head in self._structs:
            return {f.name: self.read(f.expr, r) for f in self._structs[head].fields}
        raise ScaleError(f"unknown type {t}")
