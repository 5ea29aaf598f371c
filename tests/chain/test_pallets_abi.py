"""The three forms of the contracts agree: ink! sources, description/metadata, and the Python model.

The Rust side is read from pallets_spec/contracts/*/lib.rs; the metadata side from the committed JSON files;
the hashing rules are pinned to values published by the ink! project (flipper, erc20).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from pallets_spec import description as d
from pallets_spec import generate, inkparse, model
from pallets_spec.abi import blake2_256, selector, signature_topic
from pallets_spec.description import ALIASES, CONTRACTS, Contract
from pallets_spec.runtime import _METHOD_FOR_LABEL
from pallets_spec.typeexpr import TypeExpr, parse_type
from pallets_spec.wasm import read_model_id

SOURCES = inkparse.load_sources()
NAMES = sorted(CONTRACTS)


def metadata(name: str) -> dict[str, Any]:
    return json.loads((generate.METADATA_DIR / f"{name}.json").read_text())


def resolved(t: TypeExpr) -> TypeExpr:
    """Resolve the environment's aliases (Balance -> u128) everywhere in a type."""
    if not t.args and t.head in ALIASES:
        return parse_type(ALIASES[t.head])
    return TypeExpr(t.head, tuple(resolved(a) for a in t.args), t.length)


# -- hashing rules pinned to published ink! values --
def test_selector_rule_matches_ink() -> None:
    assert selector("flip").hex() == "633aa551"  # flipper
    assert selector("new").hex() == "9bae9d5e"
    assert selector("total_supply").hex() == "db6375a8"  # erc20


def test_signature_topic_rule_matches_ink() -> None:
    # erc20's Approval(owner: AccountId, spender: AccountId, value: Balance) in ink! 5 metadata
    approval = d.Event(
        "Approval", (d.Arg("owner", "AccountId"), d.Arg("spender", "AccountId"), d.Arg("value", "Balance"))
    )
    assert (
        signature_topic(approval).hex() == "1a35e726f5feffda199144f6097b2ba23713e549bfcbe090c0981e3bcdfbcc1d"
    )
    # types are written without spaces: "[u8; 32]" -> "[u8;32]"
    e = d.Event("MyEvent", (d.Arg("topic", "[u8; 32]", topic=True), d.Arg("field_1", "u32")))
    assert signature_topic(e) == hashlib.blake2b(b"MyEvent([u8;32],u32)", digest_size=32).digest()


def test_storage_key_rule_matches_ink() -> None:
    # erc20's `balances` mapping lives under ManualKey<639884519u32> in ink! 5 metadata
    assert generate.storage_key("Erc20", "balances") == 639884519
    assert generate.storage_key("Erc20", "allowances") == 3969917367


# -- Rust sources vs description --
@pytest.mark.parametrize("name", NAMES)
def test_rust_items_match_description(name: str) -> None:
    c, src = CONTRACTS[name], SOURCES[name]
    assert src.storage_name == c.storage_name
    assert [(f.name, f.type) for f in src.storage] == [(f.name, f.expr) for f in c.storage]
    assert src.errors == list(c.errors)
    assert {k: v for k, v in src.error_docs.items()} == {k: (c.error_docs[k],) for k in c.errors}
    assert list(src.structs) == [s.name for s in c.structs]
    for s in c.structs:
        assert [(f.name, f.type) for f in src.structs[s.name]] == [(f.name, f.expr) for f in s.fields]
        assert src.struct_docs[s.name] == tuple(s.docs.split("\n"))
    assert list(src.events) == [e.label for e in c.events]
    for e in c.events:
        rust = [(f.name, f.type, f.topic) for f in src.events[e.label]]
        assert rust == [(f.name, f.expr, f.topic) for f in e.fields], e.label
        assert src.event_docs[e.label] == tuple(e.docs.split("\n"))


@pytest.mark.parametrize("name", NAMES)
def test_rust_messages_match_description(name: str) -> None:
    c, src = CONTRACTS[name], SOURCES[name]
    assert [f.name for f in src.constructors] == [k.label for k in c.constructors]
    for k, f in zip(c.constructors, src.constructors, strict=True):
        assert [(a.name, a.type) for a in f.args] == [(a.name, a.expr) for a in k.args]
        assert f.docs == tuple(k.docs.split("\n"))
    assert [f.name for f in src.messages] == [m.label for m in c.messages]
    for m, f in zip(c.messages, src.messages, strict=True):
        assert [(a.name, a.type) for a in f.args] == [(a.name, a.expr) for a in m.args], m.label
        assert f.returns == parse_type(m.rust_return), m.label
        assert f.receiver == ("&mut self" if m.mutates else "&self"), m.label
        # no custom selector and no payable: the metadata's selector is the ink! default from the label
        assert f.attrs.strip() == "", m.label
        assert f.docs == tuple(m.docs.split("\n")), m.label


@pytest.mark.parametrize("name", NAMES)
def test_rust_constants_match_description(name: str) -> None:
    consts = SOURCES[name].consts
    expected = {
        "BASIS_POINTS": d.BASIS_POINTS,
        "MAX_SPLITS": d.MAX_SPLITS,
        "MAX_CID_LEN": d.MAX_CID_LEN,
        "MAX_TAG_LEN": d.MAX_TAG_LEN,
        "MAX_NAME_LEN": d.MAX_NAME_LEN,
        "PAYOUT_KINDS": len(d.PAYOUT_KINDS),
    }
    assert consts, "no constants found"
    for key, value in consts.items():
        assert value == expected[key], key


# -- metadata vs Rust sources --
def _shape(types: dict[int, dict[str, Any]], tid: int) -> TypeExpr:
    """Rebuild a Rust-like type from the metadata's scale-info registry, independently of the generator."""
    ty = types[tid]
    df = ty["def"]
    path = ty.get("path", [])
    if "primitive" in df:
        return TypeExpr("String" if df["primitive"] == "str" else df["primitive"])
    if "sequence" in df:
        return TypeExpr("Vec", (_shape(types, df["sequence"]["type"]),))
    if "array" in df:
        return TypeExpr("array", (_shape(types, df["array"]["type"]),), df["array"]["len"])
    if "tuple" in df:
        return TypeExpr("tuple", tuple(_shape(types, t) for t in df["tuple"]))
    if path in (["Option"], ["Result"]):
        return TypeExpr(path[0], tuple(_shape(types, p["type"]) for p in ty["params"]))
    return TypeExpr(path[-1])


@pytest.mark.parametrize("name", NAMES)
def test_metadata_matches_rust_sources(name: str) -> None:
    meta, src = metadata(name), SOURCES[name]
    types = {t["id"]: t["type"] for t in meta["types"]}
    assert sorted(types) == list(range(len(types)))
    spec = meta["spec"]
    assert [m["label"] for m in spec["messages"]] == [f.name for f in src.messages]
    for m, f in zip(spec["messages"], src.messages, strict=True):
        assert m["selector"] == "0x" + blake2_256(f.name.encode())[:4].hex()
        assert m["mutates"] == (f.receiver == "&mut self")
        assert [a["label"] for a in m["args"]] == [a.name for a in f.args]
        assert [_shape(types, a["type"]["type"]) for a in m["args"]] == [resolved(a.type) for a in f.args]
        ret = _shape(types, m["returnType"]["type"])
        assert ret == TypeExpr("Result", (resolved(f.returns), TypeExpr("LangError"))), f.name
        assert m["docs"] == list(f.docs)
    for k, f in zip(spec["constructors"], src.constructors, strict=True):
        assert k["label"] == f.name and k["selector"] == "0x" + blake2_256(f.name.encode())[:4].hex()
    assert [e["label"] for e in spec["events"]] == list(src.events)
    for e in spec["events"]:
        fields = src.events[e["label"]]
        sig = f"{e['label']}({','.join(f.type.compact() for f in fields)})"
        assert e["signature_topic"] == "0x" + blake2_256(sig.encode()).hex(), sig
        assert [(a["label"], a["indexed"]) for a in e["args"]] == [(f.name, f.topic) for f in fields]
        assert [_shape(types, a["type"]["type"]) for a in e["args"]] == [resolved(f.type) for f in fields]
        assert len([a for a in e["args"] if a["indexed"]]) < spec["environment"]["maxEventTopics"]
        assert e["module_path"] == f"{name}::{name}"
    errors = [t for t in types.values() if t.get("path") == [name, name, "Error"]]
    assert len(errors) == 1
    assert [v["name"] for v in errors[0]["def"]["variant"]["variants"]] == src.errors
    assert [v["index"] for v in errors[0]["def"]["variant"]["variants"]] == list(range(len(src.errors)))
    storage = meta["storage"]["root"]["layout"]["struct"]
    assert storage["name"] == src.storage_name
    assert [f["name"] for f in storage["fields"]] == [f.name for f in src.storage]


@pytest.mark.parametrize("name", NAMES)
def test_metadata_has_cargo_contract_v5_layout(name: str) -> None:
    meta = metadata(name)
    assert list(meta) == ["source", "contract", "image", "spec", "storage", "types", "version"]
    assert meta["version"] == 5 and meta["image"] is None
    assert list(meta["source"]) == ["hash", "language", "compiler", "build_info"]
    assert meta["source"]["language"] == "ink! 5.1.1"
    assert meta["source"]["build_info"]["cargo_contract_version"].startswith("5.0.")
    assert meta["contract"]["name"] == name
    spec = meta["spec"]
    assert list(spec) == ["constructors", "docs", "environment", "events", "lang_error", "messages"]
    env = spec["environment"]
    assert env["maxEventTopics"] == 4 and env["staticBufferSize"] == 16384
    types = {t["id"]: t["type"] for t in meta["types"]}
    expected_env = {
        "accountId": ["ink_primitives", "types", "AccountId"],
        "hash": ["ink_primitives", "types", "Hash"],
        "chainExtension": ["ink_env", "types", "NoChainExtension"],
    }
    for key, path in expected_env.items():
        assert types[env[key]["type"]]["path"] == path
    assert types[env["balance"]["type"]]["def"] == {"primitive": "u128"}
    assert types[env["timestamp"]["type"]]["def"] == {"primitive": "u64"}
    assert types[env["blockNumber"]["type"]]["def"] == {"primitive": "u32"}
    assert types[spec["lang_error"]["type"]]["path"] == ["ink_primitives", "LangError"]
    for m in spec["messages"]:
        assert m["returnType"]["displayName"] == ["ink", "MessageResult"]
        assert list(m) == ["args", "default", "docs", "label", "mutates", "payable", "returnType", "selector"]
    for k in spec["constructors"]:
        assert k["returnType"]["displayName"] == ["ink_primitives", "ConstructorResult"]
    for e in spec["events"]:
        assert list(e) == ["args", "docs", "label", "module_path", "signature_topic"]
    # every type reference points into the registry
    text = json.dumps(meta)
    assert '"type": null' not in text
    selectors = [m["selector"] for m in spec["messages"]]
    assert len(set(selectors)) == len(selectors)


# -- model vs description --
@pytest.mark.parametrize("name", NAMES)
def test_model_matches_description(name: str) -> None:
    c: Contract = CONTRACTS[name]
    cls = next(s for s in model.STATE_CLASSES.values() if name == s.CONTRACT)
    for m in c.messages:
        method = getattr(cls, _METHOD_FOR_LABEL.get(m.label, m.label))
        params = list(inspect.signature(method).parameters)[1:]  # drop self
        expected = ["caller"] if m.mutates else []
        assert params == expected + [a.name for a in m.args], m.label
    events = model.EVENT_CLASSES[name]
    assert sorted(events) == sorted(e.label for e in c.events)
    for e in c.events:
        names = [f.name.rstrip("_") for f in dataclasses.fields(events[e.label])]
        assert names == [f.name for f in e.fields], e.label
    err = model.NftError if name == "ami_nft" else model.RewardsError
    assert err.variants == tuple(SOURCES[name].errors)


# -- generator and bundles --
def test_generator_is_deterministic_and_committed_files_are_current() -> None:
    first, second = generate.outputs(), generate.outputs()
    assert first == second
    for path, content in first.items():
        assert path.exists(), f"{path} missing: run python -m pallets_spec.generate"
        assert path.read_bytes() == content, f"{path} is stale: run python -m pallets_spec.generate"
    assert generate.main(["--check"]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_bundle_is_metadata_plus_model_wasm(name: str) -> None:
    bundle = json.loads((generate.BUNDLES_DIR / f"{name}.contract").read_text())
    wasm = bytes.fromhex(bundle["source"].pop("wasm")[2:])
    assert bundle == metadata(name)
    assert (generate.BUNDLES_DIR / f"{name}.wasm").read_bytes() == wasm
    assert read_model_id(wasm) == f"{name}@1"
    assert bundle["source"]["hash"] == "0x" + blake2_256(wasm).hex()


def test_generated_files_live_where_the_contract_interface_says() -> None:
    root = Path(generate.__file__).resolve().parent
    for name in ("ami_nft", "ami_rewards"):
        assert (root / "metadata" / f"{name}.json").is_file()
        assert (root / "bundles" / f"{name}.contract").is_file()
