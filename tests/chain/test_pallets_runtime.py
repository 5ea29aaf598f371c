"""The runtime dispatcher (bytes in, bytes out) and the SCALE codec, checked against substrate-interface.

substrate-interface's ContractMetadata loads the committed metadata and encodes calls / decodes outputs and
events with scalecodec: an implementation independent of pallets_spec's own codec.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset
from substrateinterface.contracts import ContractCode, ContractEvent, ContractMetadata

from pallets_spec import runtime
from pallets_spec.abi import Err, Ok, SpecAbi, decode_error, selector, topic_of_encoded
from pallets_spec.description import CONTRACTS
from pallets_spec.generate import BUNDLES_DIR, METADATA_DIR, wasm_for
from pallets_spec.scale import Codec, ScaleError, encode_compact
from pallets_spec.typeexpr import TypeExpr, TypeSyntaxError, parse_type
from pallets_spec.wasm import WasmError, build_model_wasm, custom_sections, read_model_id

ALICE, BOB = b"\xd4" * 32, b"\x8e" * 32
NFT, RW = SpecAbi("ami_nft"), SpecAbi("ami_rewards")


class OfflineSubstrate:
    """The part of SubstrateInterface that ContractMetadata uses, without a node."""

    def __init__(self) -> None:
        self.runtime_config = RuntimeConfigurationObject()
        self.runtime_config.update_type_registry(load_type_registry_preset("core"))

    def init_runtime(self) -> None:
        pass

    def encode_scale(self, type_string: str, value: Any) -> ScaleBytes:
        return self.runtime_config.create_scale_object(type_string).encode(value)

    def create_scale_object(self, type_string: str, data: ScaleBytes | None = None, **kw: Any) -> Any:
        return self.runtime_config.create_scale_object(type_string, data=data, **kw)


@pytest.fixture(scope="module")
def substrate() -> OfflineSubstrate:
    return OfflineSubstrate()


@pytest.fixture(scope="module")
def si_meta(substrate: OfflineSubstrate) -> dict[str, ContractMetadata]:
    return {
        n: ContractMetadata.create_from_file(str(METADATA_DIR / f"{n}.json"), substrate) for n in CONTRACTS
    }


def sample(c: Any, t: TypeExpr, seed: int) -> Any:
    """A deterministic, non-trivial value of type `t` (pallets_spec conventions)."""
    head = t.head
    if head in ("u8", "u16", "u32", "u64", "u128", "Balance"):
        bits = {"u8": 8, "u16": 16, "u32": 32, "u64": 64}.get(head, 128)
        return (seed * 2654435761 + 7) % (1 << bits)
    if head == "bool":
        return seed % 2 == 1
    if head == "String":
        return f"s{seed}-é" * (seed % 3 + 1)
    if head in ("AccountId", "Hash") or (head == "array" and t.args[0].head == "u8"):
        return bytes((seed + i) % 256 for i in range(32))
    if head == "Vec":
        return [sample(c, t.args[0], seed + i + 1) for i in range(2)]
    if head == "Option":
        return sample(c, t.args[0], seed)
    if head == "tuple":
        return tuple(sample(c, a, seed + i) for i, a in enumerate(t.args))
    if head in c.structs_by_name:
        return {f.name: sample(c, f.expr, seed + i) for i, f in enumerate(c.structs_by_name[head].fields)}
    raise AssertionError(f"no sample for {t}")


def to_si(v: Any) -> Any:
    """pallets_spec value -> what scalecodec accepts/returns (bytes as 0x-hex)."""
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, list):
        return [to_si(x) for x in v]
    if isinstance(v, tuple):
        return tuple(to_si(x) for x in v)
    if isinstance(v, dict):
        return {k: to_si(x) for k, x in v.items()}
    return v


class _C:
    def __init__(self, name: str) -> None:
        self.structs_by_name = {s.name: s for s in CONTRACTS[name].structs}


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_call_encoding_equals_substrate_interface(name: str, si_meta: dict[str, ContractMetadata]) -> None:
    abi, c = SpecAbi(name), _C(name)
    for i, m in enumerate(CONTRACTS[name].messages):
        args = {a.name: sample(c, a.expr, i * 10 + j) for j, a in enumerate(m.args)}
        theirs = si_meta[name].generate_message_data(m.label, to_si(args)).data
        assert abi.encode_call(m.label, args) == bytes(theirs), m.label
        decoded = abi.decode_args(m.args, bytes(theirs)[4:])
        assert decoded == args, m.label


def _si_decode(substrate: OfflineSubstrate, meta: ContractMetadata, label: str, output: bytes) -> Any:
    obj = substrate.create_scale_object(
        meta.get_return_type_string_for_message(label), data=ScaleBytes(output)
    )
    return obj.decode()


def _si_event(
    substrate: OfflineSubstrate, meta: ContractMetadata, ev: runtime.EmittedEvent
) -> dict[str, Any]:
    event_id = meta.get_event_id_by_topic("0x" + ev.topics[0].hex())
    assert event_id is not None
    obj = ContractEvent(
        data=ScaleBytes(bytes([event_id]) + ev.data),
        runtime_config=substrate.runtime_config,
        contract_metadata=meta,
    )
    value = obj.decode()
    return {"name": value["name"], **{a["label"]: a["value"] for a in value["args"]}}


def test_round_trip_through_substrate_interface(
    substrate: OfflineSubstrate, si_meta: dict[str, ContractMetadata]
) -> None:
    nft_meta, rw_meta = si_meta["ami_nft"], si_meta["ami_rewards"]
    state, out = runtime.instantiate(
        wasm_for(CONTRACTS["ami_nft"]), bytes(nft_meta.generate_constructor_data("new").data), ALICE
    )
    assert state is not None and out.output == b"\x00" and not out.reverted
    splits = [("0x" + ALICE.hex(), 6000), ("0x" + BOB.hex(), 4000)]
    data = nft_meta.generate_message_data(
        "mint", {"audio_cid": "bafyA", "metadata_cid": "bafyM", "royalty_splits": splits}
    )
    out = runtime.call(state, bytes(data.data), ALICE)
    assert not out.reverted
    assert _si_decode(substrate, nft_meta, "mint", out.output) == {"Ok": {"Ok": 1}}
    (ev,) = out.events
    assert _si_event(substrate, nft_meta, ev) == {
        "name": "Minted",
        "token_id": 1,
        "creator": "0x" + ALICE.hex(),
        "audio_cid": "bafyA",
        "metadata_cid": "bafyM",
        "royalty_splits": splits,
    }
    # indexed fields become topics: u64 zero-padded, AccountId as is
    assert ev.topics[1:] == [(1).to_bytes(8, "little") + bytes(24), ALICE]
    info = _si_decode(
        substrate,
        nft_meta,
        "token_info",
        runtime.call(
            state, bytes(nft_meta.generate_message_data("token_info", {"token_id": 1}).data), BOB
        ).output,
    )
    assert info["Ok"]["royalty_splits"] == splits and info["Ok"]["owner"] == "0x" + ALICE.hex()
    # a revert: Ok(Err(InvalidSplits)), flagged, no events, state untouched
    before = state.to_dict()
    bad = nft_meta.generate_message_data(
        "mint", {"audio_cid": "a", "metadata_cid": "b", "royalty_splits": splits[:1]}
    )
    out = runtime.call(state, bytes(bad.data), ALICE)
    assert out.reverted and out.events == [] and out.error == "InvalidSplits"
    assert _si_decode(substrate, nft_meta, "mint", out.output) == {"Ok": {"Err": "InvalidSplits"}}
    assert state.to_dict() == before

    rw, _ = runtime.instantiate("ami_rewards", bytes(rw_meta.generate_constructor_data("new").data), ALICE)
    assert rw is not None
    runtime.call(
        rw, bytes(rw_meta.generate_message_data("add_oracle", {"account": "0x" + ALICE.hex()}).data), ALICE
    )
    payouts = [{"id": "0x" + "01" * 32, "to": "0x" + BOB.hex(), "amount": 10**20, "kind": 4}]
    call = bytes(
        rw_meta.generate_message_data("distribute", {"epoch": 7, "batch": 1, "payouts": payouts}).data
    )
    out = runtime.call(rw, call, ALICE)
    assert [e["name"] for e in (_si_event(substrate, rw_meta, ev) for ev in out.events)] == [
        "Paid",
        "BatchDistributed",
    ]
    assert _si_event(substrate, rw_meta, out.events[0])["amount"] == 10**20
    assert out.events[0].topics[1:] == [b"\x01" * 32, BOB]
    again = runtime.call(rw, call, ALICE)
    assert again.reverted and _si_decode(substrate, rw_meta, "distribute", again.output) == {
        "Ok": {"Err": "BatchAlreadyPaid"}
    }
    bal = runtime.call(
        rw, bytes(rw_meta.generate_message_data("balance_of", {"account": "0x" + BOB.hex()}).data), BOB
    )
    assert _si_decode(substrate, rw_meta, "balance_of", bal.output) == {"Ok": 10**20}


def test_bundles_load_in_substrate_interface(substrate: OfflineSubstrate) -> None:
    for name in CONTRACTS:
        code = ContractCode.create_from_contract_files(
            str(BUNDLES_DIR / f"{name}.wasm"), str(METADATA_DIR / f"{name}.json"), substrate
        )
        assert "0x" + code.code_hash.hex() == code.metadata.metadata_dict["source"]["hash"]
        assert runtime.model_id_of(code.wasm_bytes) == f"{name}@1"
        meta = ContractMetadata.create_from_file(str(BUNDLES_DIR / f"{name}.contract"), substrate)
        assert meta.metadata_version == 5
        assert meta.generate_message_data("owner").data == selector("owner")


# -- dispatch semantics --
def _nft() -> Any:
    state, _ = runtime.instantiate("ami_nft", NFT.encode_constructor(), ALICE)
    return state


def test_unknown_selector_and_bad_input_are_lang_errors() -> None:
    state = _nft()
    good = NFT.encode_call("listen", {"token_id": 1, "seconds": 5})
    for data in (b"", b"\x01\x02", b"\xde\xad\xbe\xef", good[:-1], good + b"\x00"):
        out = runtime.call(state, data, ALICE)
        assert (out.output, out.reverted, out.error, out.events) == (
            b"\x01\x01",
            True,
            "CouldNotReadInput",
            [],
        )
        assert decode_error("ami_nft", out.output) == "CouldNotReadInput"
    state2, out = runtime.instantiate("ami_nft", b"\x00\x00\x00\x00", ALICE)
    assert state2 is None and out.reverted and out.output == b"\x01\x01"


def test_value_sent_to_non_payable_message_traps() -> None:
    state = _nft()
    out = runtime.call(state, NFT.encode_call("total_supply"), ALICE, value=1)
    assert out.trapped and out.reverted
    state2, out = runtime.instantiate("ami_nft", NFT.encode_constructor(), ALICE, value=5)
    assert state2 is None and out.trapped


def test_dry_run_never_changes_state() -> None:
    state = _nft()
    mint = NFT.encode_call(
        "mint", {"audio_cid": "a", "metadata_cid": "b", "royalty_splits": [(ALICE, 10000)]}
    )
    out = runtime.dry_run(state, mint, ALICE)
    assert not out.reverted and len(out.events) == 1
    assert NFT.decode_output(
        "total_supply", runtime.dry_run(state, NFT.encode_call("total_supply"), ALICE).output
    ) == Ok(0)
    runtime.call(state, mint, ALICE)
    assert NFT.decode_output(
        "total_supply", runtime.call(state, NFT.encode_call("total_supply"), ALICE).output
    ) == Ok(1)


def test_every_error_variant_decodes_by_name() -> None:
    for name, c in CONTRACTS.items():
        abi = SpecAbi(name)
        for variant in c.errors:
            for m in (m for m in c.messages if m.fallible):
                output = abi.encode_output(m, Ok(Err(variant)))
                assert decode_error(name, output) == variant
                assert decode_error(name, output, m.label) == variant
        for m in c.messages:
            if not m.fallible:
                value = sample(_C(name), parse_type(m.returns), 3)
                assert decode_error(name, abi.encode_output(m, Ok(value))) is None, m.label


def test_owner_query_and_model_ids() -> None:
    state = _nft()
    assert NFT.decode_output("owner", runtime.call(state, NFT.encode_call("owner"), BOB).output) == Ok(ALICE)
    assert runtime.model_id_of("ami_nft") == "ami_nft@1"
    assert runtime.model_id_of(build_model_wasm("ami_rewards@1")) == "ami_rewards@1"
    with pytest.raises(runtime.UnknownModel):
        runtime.model_id_of(build_model_wasm("ami_nft@2"))
    with pytest.raises(runtime.UnknownModel):
        runtime.model_id_of(b"not wasm")
    with pytest.raises(runtime.UnknownModel):
        runtime.instantiate("erc20", NFT.encode_constructor(), ALICE)


def test_state_dump_and_load_preserve_behaviour() -> None:
    state = _nft()
    runtime.call(
        state,
        NFT.encode_call("mint", {"audio_cid": "a", "metadata_cid": "b", "royalty_splits": [(BOB, 10000)]}),
        BOB,
    )
    restored = runtime.load_state(runtime.dump_state(state))
    out = runtime.call(restored, NFT.encode_call("owner_of", {"token_id": 1}), ALICE)
    assert NFT.decode_output("owner_of", out.output) == Ok(BOB)


def test_decode_event_with_own_abi() -> None:
    state = _nft()
    out = runtime.call(state, NFT.encode_call("create_playlist", {"name": "late"}), BOB)
    ev = NFT.decode_event(out.events[0].topics, out.events[0].data)
    assert (ev.label, ev.fields) == ("PlaylistCreated", {"playlist_id": 1, "owner": BOB, "name": "late"})
    with pytest.raises(ValueError):
        NFT.decode_event([b"\x00" * 32], b"")


# -- codec and Wasm details --
@pytest.mark.parametrize("n", [0, 1, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**64, 2**128 - 1])
def test_compact_matches_scalecodec(n: int, substrate: OfflineSubstrate) -> None:
    assert encode_compact(n) == bytes(substrate.encode_scale("Compact<u128>", n).data)


def test_codec_refuses_bad_values_and_bytes() -> None:
    codec = Codec(CONTRACTS["ami_rewards"])
    for ty, value in [
        ("u8", 256),
        ("u16", -1),
        ("bool", 1),
        ("AccountId", b"\x00" * 31),
        ("String", b"x"),
        ("Payout", {"id": b"\x00" * 32}),
        ("Error", "Nope"),
    ]:
        with pytest.raises(ScaleError):
            codec.encode(ty, value)
    for ty, data in [
        ("u32", b"\x00"),
        ("bool", b"\x02"),
        ("Option<u8>", b"\x02"),
        ("String", b"\x04\xff"),
        ("Vec<u8>", b"\xfc\xff\xff\xff"),
        ("u8", b"\x00\x00"),
        ("Error", b"\x63"),
    ]:
        with pytest.raises(ScaleError):
            codec.decode(ty, data)
    with pytest.raises(TypeSyntaxError):
        parse_type("Vec<u8")


def test_long_topics_are_hashed() -> None:
    assert topic_of_encoded(b"\x01" * 33) != (b"\x01" * 33)[:32]
    assert len(topic_of_encoded(b"\x01" * 33)) == 32
    assert topic_of_encoded(b"\x07") == b"\x07" + bytes(31)


def test_model_wasm_sections() -> None:
    code = build_model_wasm("ami_nft@1")
    assert code[:8] == b"\x00asm\x01\x00\x00\x00"
    assert custom_sections(code) == {"ami-model": b"ami_nft@1"}
    with pytest.raises(WasmError):
        read_model_id(b"\x00asm\x01\x00\x00\x00")
    with pytest.raises(WasmError):
        read_model_id(code[:-3])  # truncated section


def test_model_wasm_is_valid_for_a_real_wasm_engine(tmp_path: Path) -> None:
    assert shutil.which("node"), "node (Node.js 20, which the project's set-up needs) is not on PATH"
    path = tmp_path / "m.wasm"
    path.write_bytes(build_model_wasm("ami_rewards@1"))
    script = (
        "const m=new WebAssembly.Module(require('fs').readFileSync(process.argv[1]));"
        "console.log(JSON.stringify([WebAssembly.Module.exports(m).map(e=>e.name),"
        "WebAssembly.Module.imports(m).map(i=>i.module+'.'+i.name),"
        "Buffer.from(WebAssembly.Module.customSections(m,'ami-model')[0]).toString()]))"
    )
    out = subprocess.run(
        ["node", "-e", script, str(path)], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == '[["deploy","call"],["env.memory"],"ami_rewards@1"]'


_payout = st.fixed_dictionaries(
    {
        "id": st.binary(min_size=32, max_size=32),
        "to": st.binary(min_size=32, max_size=32),
        "amount": st.integers(0, 2**128 - 1),
        "kind": st.integers(0, 255),
    }
)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.lists(_payout, max_size=70))
def test_distribute_encoding_equals_scalecodec_for_any_batch(
    si_meta: dict[str, ContractMetadata], epoch: int, batch: int, payouts: list[dict[str, Any]]
) -> None:
    args = {"epoch": epoch, "batch": batch, "payouts": payouts}
    theirs = bytes(si_meta["ami_rewards"].generate_message_data("distribute", to_si(args)).data)
    assert RW.encode_call("distribute", args) == theirs
    assert RW.decode_args(CONTRACTS["ami_rewards"].message("distribute").args, theirs[4:]) == args


def test_caller_must_be_an_account_id() -> None:
    state = _nft()
    with pytest.raises(ValueError, match="32-byte"):
        runtime.call(state, NFT.encode_call("owner"), b"short")
    with pytest.raises(ValueError, match="32-byte"):
        runtime.instantiate("ami_nft", NFT.encode_constructor(), b"")
