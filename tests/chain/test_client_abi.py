"""ami_node.abi on the committed ink! v5 metadata, cross-checked with pallets_spec's independent codec."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from scalecodec.utils.ss58 import ss58_decode

from ami_node.abi import AbiError, ContractAbi
from ami_node.port import CallError, ContractReverted
from pallets_spec import runtime
from pallets_spec.abi import SpecAbi as ReferenceAbi
from pallets_spec.description import CONTRACTS

ALICE = bytes.fromhex("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
BOB = bytes.fromhex("8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48")
ALICE_SS58 = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"

# One sample per argument type used by the contracts; a new type makes test_every_message_encodes fail.
SAMPLES: dict[str, Any] = {
    "u16": 6_543,
    "u32": 70_001,
    "u64": 2**40 + 3,
    "Balance": 10**24 + 7,
    "String": "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    "AccountId": BOB,
    "[u8; 32]": bytes(range(32)),
    "Vec<(AccountId, u16)>": [(ALICE, 6_000), (BOB, 4_000)],
    "Vec<Payout>": [
        {"id": b"\x01" * 32, "to": ALICE, "amount": 5 * 10**18, "kind": 1},
        {"id": b"\x02" * 32, "to": BOB, "amount": 1, "kind": 4},
    ],
}


@pytest.fixture(scope="module", params=sorted(CONTRACTS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_message_encodes_like_the_reference_codec(name: str) -> None:
    abi = ContractAbi.load(name)
    ref = ReferenceAbi(name)
    spec = CONTRACTS[name]
    assert set(abi.messages) == {m.label for m in spec.messages}
    for message in spec.messages:
        args = {a.name: SAMPLES[a.type] for a in message.args}
        encoded = abi.encode_call(message.label, **args)
        expected_selector = hashlib.blake2b(message.label.encode(), digest_size=32).digest()[:4]
        assert abi.selector(message.label) == expected_selector
        assert encoded[:4] == expected_selector
        assert encoded == ref.encode_call(message.label, args), message.label


def test_constructor_selector(name: str) -> None:
    abi = ContractAbi.load(name)
    assert abi.constructor("new") == hashlib.blake2b(b"new", digest_size=32).digest()[:4]


def test_accounts_accept_ss58_or_bytes() -> None:
    abi = ContractAbi.load("ami_nft")
    by_ss58 = abi.encode_call("transfer", to=ALICE_SS58, token_id=9)
    assert by_ss58 == abi.encode_call("transfer", to=ALICE, token_id=9)


def test_bad_arguments_raise_call_error_saying_what_is_expected() -> None:
    abi = ContractAbi.load("ami_rewards")
    with pytest.raises(CallError, match=r"missing \['quality_bp'.*expected \(token_id: u64"):
        abi.encode_call("submit_score", token_id=1, novelty_bp=1)
    with pytest.raises(CallError, match=r"bad value for 'novelty_bp', expected u16"):
        abi.encode_call(
            "submit_score", token_id=1, novelty_bp=70_000, quality_bp=1, model_version=1, commitment=bytes(32)
        )
    with pytest.raises(CallError, match=r"bad value for 'to', expected AccountId"):
        abi.encode_call("transfer", to="not-an-address", amount=1)
    with pytest.raises(CallError, match=r"unknown \['bogus'\]"):
        abi.encode_call("transfer", to=ALICE, amount=1, bogus=2)
    with pytest.raises(CallError, match=r"no message 'steal'"):
        abi.encode_call("steal")


def test_revert_output_decodes_to_contract_reverted() -> None:
    ctor = ReferenceAbi("ami_rewards").encode_constructor("new")
    state, _ = runtime.instantiate("ami_rewards", ctor, ALICE)
    assert state is not None
    abi = ContractAbi.load("ami_rewards")
    data = abi.encode_call(
        "submit_score", token_id=1, novelty_bp=10, quality_bp=20, model_version=1, commitment=bytes(32)
    )
    out = runtime.call(state, data, BOB)  # Bob is not an oracle
    assert out.reverted
    with pytest.raises(ContractReverted) as info:
        abi.decode_return("submit_score", out.output)
    assert info.value.error == "NotOracle"
    assert abi.decode_error_output("submit_score", out.output) == "NotOracle"


def test_success_outputs_decode_to_values() -> None:
    state, _ = runtime.instantiate("ami_nft", ReferenceAbi("ami_nft").encode_constructor("new"), ALICE)
    assert state is not None
    abi = ContractAbi.load("ami_nft")
    minted = runtime.call(
        state,
        abi.encode_call("mint", audio_cid="a", metadata_cid="m", royalty_splits=[(ALICE, 10_000)]),
        ALICE,
    )
    assert abi.decode_return("mint", minted.output) == 1

    def query(label: str, **args: Any) -> Any:
        return abi.decode_return(label, runtime.call(state, abi.encode_call(label, **args), BOB).output)

    assert query("owner_of", token_id=1) == ALICE_SS58
    assert query("owner_of", token_id=2) is None
    assert query("total_supply") == 1
    info = query("token_info", token_id=1)
    assert info["creator"] == ALICE_SS58 and info["royalty_splits"] == [(ALICE_SS58, 10_000)]
    with pytest.raises(ContractReverted) as lang:
        abi.decode_return("total_supply", runtime.call(state, b"\xde\xad\xbe\xef", BOB).output)
    assert lang.value.error == "LangError::CouldNotReadInput"
    with pytest.raises(AbiError):
        abi.decode_return("total_supply", b"\x00\x01")  # too short for a u64


def _norm(v: Any) -> Any:
    """Both codecs' values as comparable plain data: accounts and byte arrays as bare hex."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, str) and v.startswith("0x"):
        return v[2:]
    if isinstance(v, str) and len(v) == 48 and v.startswith("5"):
        return ss58_decode(v)
    if isinstance(v, list | tuple):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def test_events_from_the_model_decode_with_all_fields() -> None:
    nft_ref, rw_ref = ReferenceAbi("ami_nft"), ReferenceAbi("ami_rewards")
    nft_state, _ = runtime.instantiate("ami_nft", nft_ref.encode_constructor("new"), ALICE)
    rw_state, _ = runtime.instantiate("ami_rewards", rw_ref.encode_constructor("new"), ALICE)
    assert nft_state is not None and rw_state is not None
    nft, rw = ContractAbi.load("ami_nft"), ContractAbi.load("ami_rewards")
    calls = [
        (nft, nft_state, "add_oracle", {"account": ALICE}),
        (
            nft,
            nft_state,
            "mint",
            {"audio_cid": "a1", "metadata_cid": "m1", "royalty_splits": [(ALICE, 7_000), (BOB, 3_000)]},
        ),
        (nft, nft_state, "listen", {"token_id": 1, "seconds": 30}),
        (nft, nft_state, "tag", {"token_id": 1, "tag": "lofi"}),
        (nft, nft_state, "create_playlist", {"name": "mix"}),
        (nft, nft_state, "add_to_playlist", {"playlist_id": 1, "token_id": 1}),
        (nft, nft_state, "transfer", {"to": BOB, "token_id": 1}),
        (rw, rw_state, "add_oracle", {"account": ALICE}),
        (rw, rw_state, "add_validator", {"account": ALICE}),
        (
            rw,
            rw_state,
            "submit_score",
            {
                "token_id": 1,
                "novelty_bp": 9_000,
                "quality_bp": 8_000,
                "model_version": 3,
                "commitment": b"\x09" * 32,
            },
        ),
        (rw, rw_state, "distribute", {"epoch": 4, "batch": 0, "payouts": SAMPLES["Vec<Payout>"]}),
        (rw, rw_state, "challenge", {"token_id": 1, "evidence": b"\x05" * 32}),
        (rw, rw_state, "transfer", {"to": BOB, "amount": 1}),
    ]
    seen: set[str] = set()
    for abi, state, label, args in calls:
        out = runtime.call(state, abi.encode_call(label, **args), ALICE)
        assert not out.reverted, (label, out.error)
        ref = nft_ref if abi is nft else rw_ref
        for ev in out.events:
            expected = ref.decode_event(ev.topics, ev.data)
            got_label, got_fields = abi.decode_event(ev.topics, ev.data)
            assert got_label == expected.label
            assert _norm(got_fields) == _norm(expected.fields)
            seen.add(got_label)
    assert {
        "Minted",
        "Listened",
        "Tagged",
        "PlaylistCreated",
        "PlaylistAdded",
        "Transferred",
        "OracleAdded",
        "ValidatorAdded",
        "ScoreSubmitted",
        "Paid",
        "BatchDistributed",
        "Challenged",
        "Transfer",
    } <= seen


def test_event_decode_rejects_unknown_topic_and_trailing_bytes() -> None:
    abi = ContractAbi.load("ami_nft")
    topic = next(iter(abi.events.values())).signature_topic
    assert topic is not None
    with pytest.raises(AbiError, match="no event with signature topic"):
        abi.decode_event([b"\x00" * 32], b"")
    with pytest.raises(AbiError):
        abi.decode_event([abi.events["OracleAdded"].signature_topic or b""], ALICE + b"\x00")
    assert abi.decode_event([abi.events["OracleAdded"].signature_topic or b""], ALICE) == (
        "OracleAdded",
        {"account": ALICE_SS58},
    )


def test_load_errors_are_typed(tmp_path: Any) -> None:
    with pytest.raises(AbiError, match="does not exist"):
        ContractAbi.load(tmp_path / "missing.json")
    bad_files = (("bad.json", "{not json", "not valid JSON"), ("v4.json", '{"version": "4"}', "version"))
    for name, text, says in bad_files:
        (tmp_path / name).write_text(text)
        with pytest.raises(AbiError, match=says):
            ContractAbi.load(tmp_path / name)


def test_bundle_carries_the_wasm() -> None:
    from ami_node.abi import metadata_dir

    bundle = metadata_dir().parent / "bundles" / "ami_nft.contract"
    abi = ContractAbi.load(bundle)
    assert abi.wasm is not None and abi.wasm[:4] == b"\x00asm"
    assert abi.messages.keys() == ContractAbi.load("ami_nft").messages.keys()
