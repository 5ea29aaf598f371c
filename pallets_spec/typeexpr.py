"""Rust type expressions as the ink! sources write them (`Vec<(AccountId, u16)>`, `[u8; 32]`), as trees.

The description, the metadata generator, the SCALE codec and the ABI test all speak about types through these
trees, so a type is spelled once (in the description) and compared structurally everywhere else.
A tiny recursive-descent parser is written by hand here: no library parses this small subset of Rust types.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*"
_TOKEN = re.compile(rf"\s*(?:(?P<ident>{_IDENT})|(?P<num>\d+)|(?P<sym>[<>(),\[\];]))")


class TypeSyntaxError(ValueError):
    """A type expression could not be parsed."""


@dataclass(frozen=True)
class TypeExpr:
    """One node of a Rust type: `head` is an identifier (`u64`, `Vec`, `Payout`), `"tuple"` or `"array"`."""

    head: str
    args: tuple[TypeExpr, ...] = ()
    length: int | None = None

    def rust(self) -> str:
        """The expression as rustfmt writes it: `Vec<(AccountId, u16)>`, `[u8; 32]`."""
        if self.head == "tuple":
            inner = ", ".join(a.rust() for a in self.args)
            return f"({inner},)" if len(self.args) == 1 else f"({inner})"
        if self.head == "array":
            return f"[{self.args[0].rust()}; {self.length}]"
        if self.args:
            return f"{self.head}<{', '.join(a.rust() for a in self.args)}>"
        return self.head

    def compact(self) -> str:
        """The expression with every space removed, as ink! writes field types into event signatures."""
        return self.rust().replace(" ", "")

    def __str__(self) -> str:
        return self.rust()


@functools.lru_cache(maxsize=1024)
def parse_type(text: str) -> TypeExpr:
    """Parse a Rust type expression; raise TypeSyntaxError on anything outside the supported subset."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise TypeSyntaxError(f"cannot parse type {text!r} at offset {pos}")
        tokens.append(m.group("ident") or m.group("num") or m.group("sym"))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    expr, rest = _parse(tokens, 0, text)
    if rest != len(tokens):
        raise TypeSyntaxError(f"trailing tokens in type {text!r}")
    return expr


def _expect(tokens: list[str], i: int, tok: str, text: str) -> int:
    if i >= len(tokens) or tokens[i] != tok:
        raise TypeSyntaxError(f"expected {tok!r} in type {text!r}")
    return i + 1


def _parse(tokens: list[str], i: int, text: str) -> tuple[TypeExpr, int]:
    if i >= len(tokens):
        raise TypeSyntaxError(f"unexpected end of type {text!r}")
    tok = tokens[i]
    if tok == "(":
        items: list[TypeExpr] = []
        i += 1
        while tokens[i] != ")":
            item, i = _parse(tokens, i, text)
            items.append(item)
            if tokens[i] == ",":
                i += 1
        return TypeExpr("tuple", tuple(items)), i + 1
    if tok == "[":
        elem, i = _parse(tokens, i + 1, text)
        i = _expect(tokens, i, ";", text)
        if i >= len(tokens) or not tokens[i].isdigit():
            raise TypeSyntaxError(f"array length missing in {text!r}")
        length = int(tokens[i])
        i = _expect(tokens, i + 1, "]", text)
        return TypeExpr("array", (elem,), length), i
    if not re.match(r"[A-Za-z_]", tok):
        raise TypeSyntaxError(f"unexpected {tok!r} in type {text!r}")
    head = tok.split("::")[-1]
    i += 1
    if i < len(tokens) and tokens[i] == "<":
        args: list[TypeExpr] = []
        i += 1
        while True:
            arg, i = _parse(tokens, i, text)
            args.append(arg)
            if i < len(tokens) and tokens[i] == ",":
                i += 1
                continue
            i = _expect(tokens, i, ">", text)
            break
        return TypeExpr(head, tuple(args)), i
    return TypeExpr(head), i
