"""Read the ABI out of the ink! sources (`contracts/*/lib.rs`) so a test can compare it with the description.

Not a Rust parser: it reads the few item shapes these contracts use (`#[ink(message)] pub fn`, `#[ink(event)]`
and `#[ink(storage)]` structs, `pub enum Error`, `pub struct` with `ink::scale_derive`, `pub const`), which is
all the cross-check needs. No Python library parses Rust items; syn-based tools need a Rust toolchain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pallets_spec.typeexpr import TypeExpr, parse_type

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"


class InkSourceError(ValueError):
    """The source has a shape this reader does not understand."""


@dataclass(frozen=True)
class RustField:
    name: str
    type: TypeExpr
    topic: bool = False


@dataclass(frozen=True)
class RustFn:
    name: str
    kind: str  # "message" | "constructor"
    receiver: str  # "&self" | "&mut self" | "" (constructor)
    args: tuple[RustField, ...]
    returns: TypeExpr | None
    attrs: str
    docs: tuple[str, ...]


@dataclass
class InkSource:
    module: str
    storage_name: str = ""
    storage: list[RustField] = field(default_factory=list)
    functions: list[RustFn] = field(default_factory=list)
    events: dict[str, list[RustField]] = field(default_factory=dict)
    event_docs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    structs: dict[str, list[RustField]] = field(default_factory=dict)
    struct_docs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    error_docs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    consts: dict[str, int] = field(default_factory=dict)

    @property
    def messages(self) -> list[RustFn]:
        return [f for f in self.functions if f.kind == "message"]

    @property
    def constructors(self) -> list[RustFn]:
        return [f for f in self.functions if f.kind == "constructor"]


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside any (), <>, [] or {} nesting; empty pieces are dropped."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "(<[{":
            depth += 1
        elif ch in ")>]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _matching(text: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index of the bracket closing the one at `start`."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_ch:
            depth += 1
        elif text[i] == close_ch:
            depth -= 1
            if depth == 0:
                return i
    raise InkSourceError(f"unbalanced {open_ch!r} at offset {start}")


def _docs_before(text: str, pos: int) -> tuple[str, ...]:
    """The `///` doc lines right above `pos` (skipping attribute lines), each without the `///`."""
    lines = text[:pos].rstrip("\n ").split("\n")
    docs: list[str] = []
    for line in reversed(lines):
        s = line.strip()
        if s.startswith("///"):
            docs.append(s[3:])
        elif s.startswith("#[") or s.startswith("#!") or not s:
            if docs or not s:
                break
        else:
            break
    return tuple(reversed(docs))


def _fields(body: str) -> list[RustField]:
    out = []
    for piece in split_top(body):
        topic = "#[ink(topic)]" in piece
        piece = re.sub(r"#\[[^\]]*\]", "", piece)
        piece = re.sub(r"^\s*(///[^\n]*\n\s*)*", "", piece).strip()
        m = re.fullmatch(r"(?:pub\s+)?(\w+)\s*:\s*(.+)", piece, re.S)
        if m is None:
            raise InkSourceError(f"cannot read field {piece!r}")
        out.append(RustField(m.group(1), parse_type(m.group(2)), topic))
    return out


def _struct_body(text: str, m: re.Match[str]) -> str:
    brace = text.index("{", m.end() - 1)
    return text[brace + 1 : _matching(text, brace, "{", "}")]


def parse_contract(path: Path) -> InkSource:
    text = path.read_text()
    # Unit tests are not part of the ABI.
    text = text.split("#[cfg(test)]")[0]
    mod = re.search(r"#\[ink::contract\]\s*pub mod (\w+)", text)
    if mod is None:
        raise InkSourceError(f"{path}: no #[ink::contract] module")
    src = InkSource(module=mod.group(1))

    for m in re.finditer(r"pub const (\w+)\s*:\s*\w+\s*=\s*([\d_]+)\s*;", text):
        src.consts[m.group(1)] = int(m.group(2).replace("_", ""))

    em = re.search(r"pub enum Error\s*\{", text)
    if em is None:
        raise InkSourceError(f"{path}: no Error enum")
    body = _struct_body(text, em)
    for vm in re.finditer(r"^\s*(\w+),\s*$", body, re.M):
        src.errors.append(vm.group(1))
        src.error_docs[vm.group(1)] = _docs_before(body, vm.start(1))

    for m in re.finditer(r"#\[ink\(storage\)\]\s*pub struct (\w+)\s*\{", text):
        src.storage_name = m.group(1)
        src.storage = _fields(_struct_body(text, m))

    for m in re.finditer(r"#\[ink\(event\)\]\s*pub struct (\w+)\s*\{", text):
        src.events[m.group(1)] = _fields(_struct_body(text, m))
        src.event_docs[m.group(1)] = _docs_before(text, m.start())

    for m in re.finditer(r"#\[ink::scale_derive\([^)]*\)\]\s*(?:#\[[^\n]*\]\s*)*pub struct (\w+)\s*\{", text):
        src.structs[m.group(1)] = _fields(_struct_body(text, m))
        start = text.rfind("\n", 0, text.rfind("#[derive", 0, m.start() + 1)) + 1
        src.struct_docs[m.group(1)] = _docs_before(text, start)

    for m in re.finditer(r"#\[ink\((message|constructor)([^)]*)\)\]\s*pub fn (\w+)\s*\(", text):
        kind, attrs, name = m.group(1), m.group(2), m.group(3)
        open_paren = m.end() - 1
        close = _matching(text, open_paren, "(", ")")
        params = split_top(text[open_paren + 1 : close])
        receiver = ""
        if params and "self" in params[0]:
            receiver = re.sub(r"\s+", " ", params.pop(0))
        args = tuple(_fields(",".join(params)))
        rest = text[close + 1 : text.index("{", close)]
        ret = rest.strip()
        returns = parse_type(ret[2:]) if ret.startswith("->") else None
        src.functions.append(
            RustFn(name, kind, receiver, args, returns, attrs, _docs_before(text, m.start()))
        )
    return src


def load_sources() -> dict[str, InkSource]:
    """Every contract under `contracts/`, by module name."""
    out = {}
    for lib in sorted(CONTRACTS_DIR.glob("*/lib.rs")):
        src = parse_contract(lib)
        out[src.module] = src
    return out
