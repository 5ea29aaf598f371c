"""Strict typing of call arguments against metadata, before anything is signed: no float to int, no bool to
int, integer ranges, unknown keys refused, account ids that parse.

`check_contract_args(abi, "listen", {"token_id": 1, "seconds": 30})` walks the ink! metadata's scale-info
portable registry; `check_no_floats(params)` is the type-free guard for pallet calls (SCALE has no fractions).
"""

from __future__ import annotations

from typing import Any

from ami_node.keys import KeyLoadError, address_info

__all__ = ["ArgumentError", "check_call_args", "check_contract_args", "check_no_floats"]


class ArgumentError(ValueError):
    """An argument does not fit the type the metadata declares; nothing was signed or sent."""


_INT_BITS = {f"{s}{n}": (s == "i", n) for s in "ui" for n in (8, 16, 32, 64, 128, 256)}


def _int_range(name: str) -> tuple[int, int]:
    signed, bits = _INT_BITS[name]
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, float):
        return f"the fraction {value!r}"
    if isinstance(value, int):
        return "an integer" if len(str(value)) > 40 else f"the integer {value}"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a JSON {type(value).__name__.replace('dict', 'object').replace('list', 'array')}"


class _Checker:
    """Walks a scale-info portable registry (id -> type) and checks JSON-like values against it strictly:
    integers are ints (never floats or booleans) within their type's range, unknown object keys are refused,
    account ids are valid SS58 addresses or 0x 32-byte keys."""

    def __init__(self, types: dict[int, dict[str, Any]], *, text_bytes: bool = False) -> None:
        self.types = types
        # substrate-interface encodes a plain string given for Vec<u8> as its UTF-8 bytes (e.g. a remark).
        self.text_bytes = text_bytes

    def check(self, type_id: int, value: Any, where: str) -> None:
        t = self.types[type_id]
        d = t["def"]
        path = t.get("path") or []
        name = path[-1] if path else ""
        if name in ("AccountId", "AccountId32"):
            self._account(value, where)
        elif name == "MultiAddress" and not isinstance(value, dict):
            self._account(value, where)  # substrate-interface takes an SS58 address for MultiAddress::Id
        elif name in ("RuntimeCall", "Call"):
            return  # nested calls use substrate-interface's own format; it checks them against the runtime
        elif "primitive" in d:
            self._primitive(d["primitive"], value, where)
        elif "compact" in d:
            self.check(d["compact"]["type"], value, where)
        elif "sequence" in d:
            self._sequence(d["sequence"]["type"], None, value, where)
        elif "array" in d:
            self._sequence(d["array"]["type"], int(d["array"]["len"]), value, where)
        elif "tuple" in d:
            self.check_tuple(list(d["tuple"]), value, where)
        elif "composite" in d:
            self._composite(d["composite"].get("fields", []), value, where)
        elif "variant" in d:
            self._variant(path, d["variant"].get("variants", []), value, where)

    def _primitive(self, name: str, value: Any, where: str) -> None:
        if name == "bool":
            if not isinstance(value, bool):
                raise ArgumentError(f"{where}: expected true or false, got {_what(value)}")
        elif name in ("str", "char"):
            if not isinstance(value, str):
                raise ArgumentError(f"{where}: expected a string, got {_what(value)}")
        elif name in _INT_BITS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentError(f"{where}: expected an integer ({name}), got {_what(value)}")
            lo, hi = _int_range(name)
            if not lo <= value <= hi:
                raise ArgumentError(f"{where}: {_what(value)} is out of range for {name} ({lo}..{hi})")

    def _account(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise ArgumentError(f"{where}: expected an SS58 address, got {_what(value)}")
        try:
            address_info(value)
        except KeyLoadError as exc:
            raise ArgumentError(f"{where}: {exc}") from None

    def _is_u8(self, type_id: int) -> bool:
        return self.types[type_id]["def"].get("primitive") == "u8"

    def _sequence(self, item: int, length: int | None, value: Any, where: str) -> None:
        if isinstance(value, str) and self._is_u8(item):
            if self.text_bytes and length is None and not value.startswith("0x"):
                return
            if not value.startswith("0x"):
                raise ArgumentError(f"{where}: expected bytes as 0x-hex, got a string without 0x")
            try:
                n = len(bytes.fromhex(value[2:]))
            except ValueError:
                raise ArgumentError(f"{where}: {value[:20]!r} is not hexadecimal") from None
            if length is not None and n != length:
                raise ArgumentError(f"{where}: expected {length} bytes, got {n}")
            return
        if not isinstance(value, list | tuple):
            raise ArgumentError(f"{where}: expected an array, got {_what(value)}")
        if length is not None and len(value) != length:
            raise ArgumentError(f"{where}: expected {length} items, got {len(value)}")
        for i, v in enumerate(value):
            self.check(item, v, f"{where}[{i}]")

    def _composite(self, fields: list[dict[str, Any]], value: Any, where: str) -> None:
        if fields and all(f.get("name") for f in fields):
            if not isinstance(value, dict):
                raise ArgumentError(f"{where}: expected an object, got {_what(value)}")
            self.fields(fields, value, where)
        elif len(fields) == 1:
            self.check(fields[0]["type"], value, where)  # a newtype: its one field
        elif fields:
            self.check_tuple([f["type"] for f in fields], value, where)

    def check_tuple(self, items: list[int], value: Any, where: str) -> None:
        if not isinstance(value, list | tuple) or len(value) != len(items):
            raise ArgumentError(f"{where}: expected an array of {len(items)} items, got {_what(value)}")
        for i, (tid, v) in enumerate(zip(items, value, strict=True)):
            self.check(tid, v, f"{where}[{i}]")

    def fields(self, fields: list[dict[str, Any]], value: dict[str, Any], where: str) -> None:
        names = [str(f["name"]) for f in fields]
        unknown = sorted(set(value) - set(names))
        missing = [n for n in names if n not in value]
        if unknown or missing:
            parts = [f"unknown {', '.join(unknown)}"] if unknown else []
            parts += [f"missing {', '.join(missing)}"] if missing else []
            raise ArgumentError(f"{where}: {'; '.join(parts)}")
        for f in fields:
            self.check(f["type"], value[f["name"]], f"{where}.{f['name']}" if where else str(f["name"]))

    def _variant(self, path: list[str], variants: list[dict[str, Any]], value: Any, where: str) -> None:
        by_name = {v["name"]: v for v in variants}
        if path and path[-1] == "Option" and set(by_name) == {"None", "Some"}:
            if value is not None:
                self.check(by_name["Some"]["fields"][0]["type"], value, where)
            return
        if isinstance(value, str) and value in by_name and not by_name[value].get("fields"):
            return
        if isinstance(value, dict) and len(value) == 1:
            ((name, inner),) = value.items()
            if name in by_name:
                fields = by_name[name].get("fields", [])
                self._composite(fields, inner, f"{where}.{name}")
                return
        raise ArgumentError(f"{where}: expected one of {', '.join(by_name)}, got {_what(value)}")


def check_contract_args(abi: Any, message: str, args: dict[str, Any]) -> dict[str, Any]:
    """`args` for `abi`'s `message`, checked strictly against its metadata (ArgumentError says what is wrong).

    The ink! metadata's `types` is a scale-info portable registry; every argument is walked against it.
    """
    spec = abi.message(message)
    types = {int(t["id"]): t["type"] for t in abi.metadata["types"]}
    fields = [{"name": a.label, "type": a.type_id, "typeName": a.display} for a in spec.args]
    return _check(_Checker(types), fields, args, f"{abi.name}.{message}")


def _check(
    checker: _Checker, fields: list[dict[str, Any]], args: dict[str, Any], where: str
) -> dict[str, Any]:
    """`args` against the named `fields` ({"name", "type", "typeName"}), errors prefixed with `where` and
    followed by what the call expects."""
    expected = ", ".join(f"{f['name']}: {f.get('typeName') or f['type']}" for f in fields) or "no arguments"
    try:
        checker.fields(fields, args, "")
    except ArgumentError as exc:
        detail = str(exc).lstrip(": ")
        raise ArgumentError(f"{where}: {detail}; expected ({expected})") from None
    return args


def check_no_floats(value: Any, where: str = "ARGS_JSON") -> None:
    """SCALE has no fractions: a JSON number with a fraction or exponent is never a valid call argument."""
    if isinstance(value, float):
        raise ArgumentError(f"{where}: {value!r} is not an integer; no call argument takes a fraction")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        raise ArgumentError(f"{where}: an integer of {value.bit_length()} bits; no argument is that wide")
    if isinstance(value, dict):
        for k, v in value.items():
            check_no_floats(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_no_floats(v, f"{where}[{i}]")


def check_call_args(
    types: dict[int, dict[str, Any]], fields: list[dict[str, Any]], args: dict[str, Any], where: str
) -> dict[str, Any]:
    """`args` of a runtime call, checked against its metadata; ArgumentError says what is wrong.

    `types` is the runtime's portable registry (id -> type), `fields` the call variant's {"name", "type"}.
    """
    return _check(_Checker(types, text_bytes=True), fields, args, where)
