"""Generate the contracts' ink! v5 metadata and `.contract` bundles from the description.

`python -m pallets_spec.generate` writes pallets_spec/metadata/<name>.json,
pallets_spec/bundles/<name>.contract and pallets_spec/bundles/<name>.wasm; `--check` only compares them
with the committed files (exit 1 when they differ). Output is deterministic.

The layout follows what cargo-contract 5 emits: top level `source`, `contract`, `image`, then the ABI (`spec`,
`storage`, `types`, `version`) with sorted keys; a scale-info portable type registry whose ids are assigned in
registration order (storage layout, constructors, messages, events, lang_error, environment).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xxhash

from pallets_spec.abi import CONSTRUCTOR_RETURN, blake2_256, return_type, selector, signature_topic
from pallets_spec.description import (
    ALIASES,
    AUTHORS,
    CARGO_CONTRACT_VERSION,
    CONTRACT_VERSION,
    CONTRACTS,
    INK_VERSION,
    RUSTC_VERSION,
    Arg,
    Contract,
)
from pallets_spec.typeexpr import TypeExpr, parse_type
from pallets_spec.wasm import build_model_wasm

ROOT = Path(__file__).resolve().parent
METADATA_DIR = ROOT / "metadata"
BUNDLES_DIR = ROOT / "bundles"

_PRIMITIVES = {"u8", "u16", "u32", "u64", "u128", "bool"}


def storage_key(storage_name: str, field: str) -> int:
    """ink! 5's automatic storage key of a field: xxh32("<Struct>::<field>", seed 0)."""
    return xxhash.xxh32_intdigest(f"{storage_name}::{field}".encode(), 0)


def _key_hex(key: int) -> str:
    return "0x" + key.to_bytes(4, "little").hex()


class Registry:
    """A scale-info portable registry: each distinct type gets the next id the first time it is seen."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.types: list[dict[str, Any]] = []
        self._ids: dict[Any, int] = {}

    def _new(self, key: Any) -> tuple[int, bool]:
        if key in self._ids:
            return self._ids[key], False
        self._ids[key] = len(self.types)
        self.types.append({})
        return self._ids[key], True

    def _set(self, tid: int, ty: dict[str, Any]) -> int:
        self.types[tid] = {"id": tid, "type": ty}
        return tid

    def path(self, name: str) -> list[str]:
        return [self.contract.name, self.contract.name, name]

    def register(self, t: TypeExpr) -> int:
        """The id of type `t`, registering it (and the types it uses, first) when it is new."""
        if not t.args and t.head in ALIASES:
            return self.register(parse_type(ALIASES[t.head]))
        tid, fresh = self._new(("expr", t))
        if not fresh:
            return tid
        return self._set(tid, self._type_of(t))

    def _type_of(self, t: TypeExpr) -> dict[str, Any]:
        """The scale-info entry of `t` (registering the types it refers to)."""
        head = t.head
        if head in _PRIMITIVES:
            return {"def": {"primitive": head}}
        builders: dict[str, Callable[[TypeExpr], dict[str, Any]]] = {
            "String": lambda _: {"def": {"primitive": "str"}},
            "AccountId": self._bytes32,
            "Hash": self._bytes32,
            "array": lambda t: {"def": {"array": {"len": t.length, "type": self.register(t.args[0])}}},
            "Vec": lambda t: {"def": {"sequence": {"type": self.register(t.args[0])}}},
            "tuple": lambda t: {"def": {"tuple": [self.register(a) for a in t.args]}},
            "Option": self._option,
            "Result": self._result,
            "LangError": self._lang_error,
            "Error": self._error,
            "Mapping": self._mapping,
        }
        return builders.get(head, self._struct)(t)

    def _bytes32(self, t: TypeExpr) -> dict[str, Any]:
        arr = self.register(parse_type("[u8; 32]"))
        return {
            "def": {"composite": {"fields": [{"type": arr, "typeName": "[u8; 32]"}]}},
            "path": ["ink_primitives", "types", t.head],
        }

    def _option(self, t: TypeExpr) -> dict[str, Any]:
        inner = self.register(t.args[0])
        return {
            "def": {
                "variant": {
                    "variants": [
                        {"index": 0, "name": "None"},
                        {"fields": [{"type": inner}], "index": 1, "name": "Some"},
                    ]
                }
            },
            "params": [{"name": "T", "type": inner}],
            "path": ["Option"],
        }

    def _result(self, t: TypeExpr) -> dict[str, Any]:
        ok, err = self.register(t.args[0]), self.register(t.args[1])
        return {
            "def": {
                "variant": {
                    "variants": [
                        {"fields": [{"type": ok}], "index": 0, "name": "Ok"},
                        {"fields": [{"type": err}], "index": 1, "name": "Err"},
                    ]
                }
            },
            "params": [{"name": "T", "type": ok}, {"name": "E", "type": err}],
            "path": ["Result"],
        }

    def _lang_error(self, t: TypeExpr) -> dict[str, Any]:
        variants = [{"index": 1, "name": "CouldNotReadInput"}]
        return {"def": {"variant": {"variants": variants}}, "path": ["ink_primitives", "LangError"]}

    def _error(self, t: TypeExpr) -> dict[str, Any]:
        variants = []
        for i, name in enumerate(self.contract.errors):
            v: dict[str, Any] = {"index": i, "name": name}
            doc = self.contract.error_docs.get(name)
            if doc:
                v["docs"] = _docs(doc)
            variants.append(v)
        return {"def": {"variant": {"variants": variants}}, "path": self.path("Error")}

    def _mapping(self, t: TypeExpr) -> dict[str, Any]:
        raise ValueError("register a Mapping through register_mapping")

    def _struct(self, t: TypeExpr) -> dict[str, Any]:
        struct = self.contract.struct(t.head)
        return {
            "def": {"composite": {"fields": [self._field(f) for f in struct.fields]}},
            "docs": _docs(struct.docs),
            "path": self.path(t.head),
        }

    def _field(self, f: Arg) -> dict[str, Any]:
        return {"name": f.name, "type": self.register(f.expr), "typeName": f.expr.rust()}

    def register_mapping(self, t: TypeExpr, key: int) -> int:
        """`Mapping<K, V>` stored under the manual key `key` (ink!'s automatic key of that field)."""
        tid, fresh = self._new(("mapping", t, key))
        if not fresh:
            return tid
        k, v = self.register(t.args[0]), self.register(t.args[1])
        resolver, _ = self._new(("resolver", key))
        auto, auto_fresh = self._new(("auto",))
        if auto_fresh:
            self._set(auto, {"def": {"composite": {}}, "path": ["ink_storage_traits", "impls", "AutoKey"]})
        manual, _ = self._new(("manual", key))
        unit = self.register(parse_type("()"))
        self._set(
            manual,
            {
                "def": {"composite": {}},
                "params": [{"name": "ParentKey", "type": unit}],
                "path": ["ink_storage_traits", "impls", "ManualKey"],
            },
        )
        self._set(
            resolver,
            {
                "def": {"composite": {}},
                "params": [{"name": "L", "type": auto}, {"name": "R", "type": manual}],
                "path": ["ink_storage_traits", "impls", "ResolverKey"],
            },
        )
        return self._set(
            tid,
            {
                "def": {"composite": {}},
                "params": [
                    {"name": "K", "type": k},
                    {"name": "V", "type": v},
                    {"name": "KeyType", "type": resolver},
                ],
                "path": ["ink_storage", "lazy", "mapping", "Mapping"],
            },
        )


def _docs(text: str) -> list[str]:
    return text.split("\n") if text else []


def display_name(t: TypeExpr) -> list[str]:
    """The `displayName` ink! writes for a type as the source names it (`Vec`, `AccountId`, `Balance`)."""
    if t.head in ("tuple", "array"):
        return []
    return [t.head]


def _type_ref(reg: Registry, t: TypeExpr, display: list[str] | None = None) -> dict[str, Any]:
    return {"displayName": display_name(t) if display is None else display, "type": reg.register(t)}


def _value_layout(reg: Registry, t: TypeExpr, key: str) -> dict[str, Any]:
    """The layout of a Mapping value: a struct of leaves for the contract's structs, else one leaf."""
    structs = {s.name: s for s in reg.contract.structs}
    if not t.args and t.head in structs:
        fields = [
            {"layout": {"leaf": {"key": key, "ty": reg.register(f.expr)}}, "name": f.name}
            for f in structs[t.head].fields
        ]
        reg.register(t)
        return {"struct": {"fields": fields, "name": t.head}}
    return {"leaf": {"key": key, "ty": reg.register(t)}}


def _storage(reg: Registry, c: Contract) -> dict[str, Any]:
    fields = []
    struct_fields = []
    for f in c.storage:
        key = storage_key(c.storage_name, f.name)
        hint = (
            f"<{f.expr.rust()} as::ink::storage::traits::AutoStorableHint<::ink::storage::traits::"
            f"ManualKey<{key}u32, ()>,>>::Type"
        )
        if f.expr.head == "Mapping":
            value_layout = _value_layout(reg, f.expr.args[1], _key_hex(key))
            mapping = reg.register_mapping(f.expr, key)
            layout = {
                "root": {
                    "layout": value_layout,
                    "root_key": _key_hex(key),
                    "ty": mapping,
                }
            }
            struct_fields.append({"name": f.name, "type": mapping, "typeName": hint})
        else:
            ty = reg.register(f.expr)
            layout = {"leaf": {"key": "0x00000000", "ty": ty}}
            struct_fields.append({"name": f.name, "type": ty, "typeName": hint})
        fields.append({"layout": layout, "name": f.name})
    root_ty, _ = reg._new(("storage",))
    reg._set(root_ty, {"def": {"composite": {"fields": struct_fields}}, "path": reg.path(c.storage_name)})
    return {
        "root": {
            "layout": {"struct": {"fields": fields, "name": c.storage_name}},
            "root_key": "0x00000000",
            "ty": root_ty,
        }
    }


def build_abi(c: Contract) -> dict[str, Any]:
    """The ABI part of the metadata (`spec`, `storage`, `types`, `version`)."""
    reg = Registry(c)
    storage = _storage(reg, c)
    constructors = [
        {
            "args": [{"label": a.name, "type": _type_ref(reg, a.expr)} for a in k.args],
            "default": k.default,
            "docs": _docs(k.docs),
            "label": k.label,
            "payable": k.payable,
            "returnType": _type_ref(reg, CONSTRUCTOR_RETURN, ["ink_primitives", "ConstructorResult"]),
            "selector": "0x" + selector(k.label).hex(),
        }
        for k in c.constructors
    ]
    messages = [
        {
            "args": [{"label": a.name, "type": _type_ref(reg, a.expr)} for a in m.args],
            "default": False,
            "docs": _docs(m.docs),
            "label": m.label,
            "mutates": m.mutates,
            "payable": m.payable,
            "returnType": _type_ref(reg, return_type(m), ["ink", "MessageResult"]),
            "selector": "0x" + selector(m.label).hex(),
        }
        for m in c.messages
    ]
    events = [
        {
            "args": [
                {"docs": _docs(f.docs), "indexed": f.topic, "label": f.name, "type": _type_ref(reg, f.expr)}
                for f in e.fields
            ],
            "docs": _docs(e.docs),
            "label": e.label,
            "module_path": f"{c.name}::{c.name}",
            "signature_topic": "0x" + signature_topic(e).hex(),
        }
        for e in c.events
    ]
    lang_error = _type_ref(reg, parse_type("LangError"), ["ink", "LangError"])
    env: dict[str, Any] = {}
    for ty in ("AccountId", "Balance", "Hash", "Timestamp", "BlockNumber"):
        env[ty[0].lower() + ty[1:]] = _type_ref(reg, parse_type(ty), [ty])  # "AccountId" -> "accountId"
    nce, _ = reg._new(("chain_extension",))
    reg._set(nce, {"def": {"variant": {}}, "path": ["ink_env", "types", "NoChainExtension"]})
    env["chainExtension"] = {"displayName": ["ChainExtension"], "type": nce}
    env["maxEventTopics"] = 4
    env["staticBufferSize"] = 16384
    spec = {
        "constructors": constructors,
        "docs": [],
        "environment": env,
        "events": events,
        "lang_error": lang_error,
        "messages": messages,
    }
    return _sorted({"spec": spec, "storage": storage, "types": reg.types, "version": 5})


def _sorted(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _sorted(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v


def wasm_for(c: Contract) -> bytes:
    return build_model_wasm(c.model_id)


def build_metadata(c: Contract, with_wasm: bool = False) -> dict[str, Any]:
    """The full metadata; with `with_wasm` the `.contract` bundle (source.wasm added)."""
    wasm = wasm_for(c)
    source: dict[str, Any] = {
        "hash": "0x" + blake2_256(wasm).hex(),
        "language": f"ink! {INK_VERSION}",
        "compiler": RUSTC_VERSION,
    }
    if with_wasm:
        source["wasm"] = "0x" + wasm.hex()
    source["build_info"] = {
        "build_mode": "Release",
        "cargo_contract_version": CARGO_CONTRACT_VERSION,
        "rust_toolchain": "stable-x86_64-unknown-linux-gnu",
        "wasm_opt_settings": {"keep_debug_symbols": False, "optimization_passes": "Z"},
    }
    out: dict[str, Any] = {
        "source": source,
        "contract": {"name": c.name, "version": CONTRACT_VERSION, "authors": list(AUTHORS)},
        "image": None,
    }
    out.update(build_abi(c))
    return out


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, bytes]:
    """Every generated file and its exact content: per contract what cargo-contract writes to target/ink/
    (`.json` metadata, `.contract` bundle, `.wasm` code)."""
    files: dict[Path, bytes] = {}
    for c in CONTRACTS.values():
        files[METADATA_DIR / f"{c.name}.json"] = render(build_metadata(c)).encode()
        files[BUNDLES_DIR / f"{c.name}.contract"] = render(build_metadata(c, with_wasm=True)).encode()
        files[BUNDLES_DIR / f"{c.name}.wasm"] = wasm_for(c)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pallets_spec.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for path, content in outputs().items():
        current = path.read_bytes() if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT.parent)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
