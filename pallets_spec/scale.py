"""SCALE encoding and decoding of the contracts' ABI values, driven by the description's type expressions.

Written by hand on purpose: the model must run without a chain client's type registry and its conventions
(scalecodec turns AccountIds into SS58 text and bytes into hex), and the subset needed is small. The tests
check it against scalecodec through substrate-interface's `ContractMetadata`.

Python values: unsigned ints -> int, bool -> bool, String -> str, AccountId / Hash / [u8; N] -> bytes,
Vec / other arrays -> list, tuples -> tuple, () -> None, Option -> None or the value, Result -> Ok / Err,
structs -> dict by field name, the contract's Error -> the variant name (str).
"""

from __future__ import annotations

from collections.abc import Callable
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
    """Encodes and decodes values of one contract's types (its structs and Error enum are known by name).

    Each kind of type (`_kind`) has one encoder `_enc_<kind>` and one decoder `_read_<kind>`."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._structs = {s.name: s for s in contract.structs}
        self._encoders: dict[str, Callable[[TypeExpr, str, Any, bytearray], None]] = {
            "uint": self._enc_uint,
            "bool": self._enc_bool,
            "String": self._enc_string,
            "bytes": self._enc_bytes,
            "array": self._enc_array,
            "Vec": self._enc_vec,
            "tuple": self._enc_tuple,
            "Option": self._enc_option,
            "Result": self._enc_result,
            "LangError": self._enc_lang_error,
            "Error": self._enc_error,
            "struct": self._enc_struct,
        }
        self._readers: dict[str, Callable[[TypeExpr, str, Reader], Any]] = {
            "uint": self._read_uint,
            "bool": self._read_bool,
            "String": self._read_string,
            "bytes": self._read_bytes,
            "array": self._read_array,
            "Vec": self._read_vec,
            "tuple": self._read_tuple,
            "Option": self._read_option,
            "Result": self._read_result,
            "LangError": self._read_lang_error,
            "Error": self._read_error,
            "struct": self._read_struct,
        }

    def _kind(self, t: TypeExpr) -> tuple[str, str]:
        """(kind, head) of a type: its head with ink!'s aliases resolved, and which codec handles it."""
        head = ALIASES.get(t.head, t.head) if not t.args else t.head
        if head in _UINT_BITS:
            return "uint", head
        if head in _BYTES32 or (head == "array" and t.args[0].head == "u8"):
            return "bytes", head
        if head in ("bool", "String", "array", "Vec", "tuple", "Option", "Result", "LangError", "Error"):
            return head, head
        if head in self._structs:
            return "struct", head
        raise ScaleError(f"unknown type {t}")

    # -- encoding -------------------------------------------------------------------------------------------
    def encode(self, ty: TypeExpr | str, value: Any) -> bytes:
        expr = parse_type(ty) if isinstance(ty, str) else ty
        out = bytearray()
        self._enc(expr, value, out)
        return bytes(out)

    def _enc(self, t: TypeExpr, v: Any, out: bytearray) -> None:
        kind, head = self._kind(t)
        self._encoders[kind](t, head, v, out)

    def _enc_uint(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        bits = _UINT_BITS[head]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << bits:
            raise ScaleError(f"{t} expects an integer in 0..2^{bits}, got {v!r}")
        out += v.to_bytes(bits // 8, "little")

    def _enc_bool(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if not isinstance(v, bool):
            raise ScaleError(f"bool expects True/False, got {v!r}")
        out.append(1 if v else 0)

    def _enc_string(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if not isinstance(v, str):
            raise ScaleError(f"String expects str, got {type(v).__name__}")
        raw = v.encode("utf-8")
        out += encode_compact(len(raw)) + raw

    def _enc_bytes(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        n = _BYTES32.get(head, t.length)
        if not isinstance(v, bytes | bytearray) or len(v) != n:
            raise ScaleError(f"{t} expects {n} bytes, got {v!r}")
        out += v

    def _enc_array(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if not isinstance(v, list | tuple) or len(v) != t.length:
            raise ScaleError(f"{t} expects {t.length} items")
        for item in v:
            self._enc(t.args[0], item, out)

    def _enc_vec(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if not isinstance(v, list | tuple):
            raise ScaleError(f"{t} expects a list, got {type(v).__name__}")
        out += encode_compact(len(v))
        for item in v:
            self._enc(t.args[0], item, out)

    def _enc_tuple(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        items = () if v is None and not t.args else v
        if not isinstance(items, list | tuple) or len(items) != len(t.args):
            raise ScaleError(f"{t} expects {len(t.args)} items, got {v!r}")
        for sub, item in zip(t.args, items, strict=True):
            self._enc(sub, item, out)

    def _enc_option(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if v is None:
            out.append(0)
        else:
            out.append(1)
            self._enc(t.args[0], v, out)

    def _enc_result(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if isinstance(v, Ok):
            out.append(0)
            self._enc(t.args[0], v.value, out)
        elif isinstance(v, Err):
            out.append(1)
            self._enc(t.args[1], v.value, out)
        else:
            raise ScaleError(f"{t} expects Ok(...) or Err(...), got {v!r}")

    def _enc_lang_error(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if v != "CouldNotReadInput":
            raise ScaleError(f"LangError has only CouldNotReadInput, got {v!r}")
        out.append(1)

    def _enc_error(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if v not in self.contract.errors:
            raise ScaleError(f"{self.contract.name} Error has no variant {v!r}")
        out.append(self.contract.errors.index(v))

    def _enc_struct(self, t: TypeExpr, head: str, v: Any, out: bytearray) -> None:
        if not isinstance(v, dict):
            raise ScaleError(f"{head} expects a dict, got {type(v).__name__}")
        for f in self._structs[head].fields:
            if f.name not in v:
                raise ScaleError(f"{head} misses field {f.name!r}")
            self._enc(f.expr, v[f.name], out)

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
        kind, head = self._kind(t)
        return self._readers[kind](t, head, r)

    def _read_uint(self, t: TypeExpr, head: str, r: Reader) -> Any:
        return int.from_bytes(r.take(_UINT_BITS[head] // 8), "little")

    def _read_bool(self, t: TypeExpr, head: str, r: Reader) -> Any:
        b = r.take(1)[0]
        if b > 1:
            raise ScaleError(f"invalid bool byte {b}")
        return b == 1

    def _read_string(self, t: TypeExpr, head: str, r: Reader) -> Any:
        raw = r.take(r.compact())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScaleError("String is not valid UTF-8") from exc

    def _read_bytes(self, t: TypeExpr, head: str, r: Reader) -> Any:
        return r.take(_BYTES32.get(head) or t.length or 0)

    def _read_array(self, t: TypeExpr, head: str, r: Reader) -> Any:
        return [self.read(t.args[0], r) for _ in range(t.length or 0)]

    def _read_vec(self, t: TypeExpr, head: str, r: Reader) -> Any:
        n = r.compact()
        if n > len(r.data) - r.pos:
            # Every element takes at least one byte here; refuse absurd lengths before allocating.
            raise ScaleError(f"Vec length {n} exceeds the input")
        return [self.read(t.args[0], r) for _ in range(n)]

    def _read_tuple(self, t: TypeExpr, head: str, r: Reader) -> Any:
        if not t.args:
            return None
        return tuple(self.read(a, r) for a in t.args)

    def _read_option(self, t: TypeExpr, head: str, r: Reader) -> Any:
        tag = r.take(1)[0]
        if tag > 1:
            raise ScaleError(f"invalid Option tag {tag}")
        return None if tag == 0 else self.read(t.args[0], r)

    def _read_result(self, t: TypeExpr, head: str, r: Reader) -> Any:
        tag = r.take(1)[0]
        if tag > 1:
            raise ScaleError(f"invalid Result tag {tag}")
        return Ok(self.read(t.args[0], r)) if tag == 0 else Err(self.read(t.args[1], r))

    def _read_lang_error(self, t: TypeExpr, head: str, r: Reader) -> Any:
        tag = r.take(1)[0]
        if tag != 1:
            raise ScaleError(f"invalid LangError variant {tag}")
        return "CouldNotReadInput"

    def _read_error(self, t: TypeExpr, head: str, r: Reader) -> Any:
        tag = r.take(1)[0]
        if tag >= len(self.contract.errors):
            raise ScaleError(f"invalid Error variant {tag}")
        return self.contract.errors[tag]

    def _read_struct(self, t: TypeExpr, head: str, r: Reader) -> Any:
        return {f.name: self.read(f.expr, r) for f in self._structs[head].fields}
