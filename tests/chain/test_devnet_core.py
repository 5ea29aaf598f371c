"""Devnet core pieces without a socket: hand-written encodings agree with scalecodec, era arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scalecodec.base import ScaleBytes

from ami_node.devnet.extrinsic import Era, decode_compact, decode_era, encode_compact, encode_era
from ami_node.devnet.meta import runtime

RT = runtime()


@pytest.mark.parametrize(
    "record",
    [
        {
            "phase": {"ApplyExtrinsic": 3},
            "event": {"Contracts": {"ContractEmitted": {"contract": "0x" + "11" * 32, "data": "0x0102"}}},
            "topics": ["0x" + "22" * 32, "0x" + "33" * 32],
        },
        {
            "phase": "Finalization",
            "event": {
                "Contracts": {
                    "Called": {"caller": {"Signed": "0x" + "44" * 32}, "contract": "0x" + "11" * 32}
                }
            },
            "topics": [],
        },
        {"phase": {"ApplyExtrinsic": 70000}, "event": {"Utility": {"ItemCompleted": None}}, "topics": []},
        {"phase": "Initialization", "event": {"Utility": {"BatchCompleted": None}}, "topics": []},
    ],
)
def test_fast_event_encoding_equals_scalecodec(record: dict) -> None:
    assert RT.encode_events([record]) == RT.encode_storage_value("System", "Events", [record])


def test_block_hash_and_account_keys_equal_scalecodec() -> None:
    who = bytes(range(32))
    assert RT.account_key(who) == RT.storage_key("System", "Account", "0x" + who.hex())
    assert RT.block_hash_key(77) == RT.storage_key("System", "BlockHash", 77)


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_compact_matches_scalecodec(n: int) -> None:
    ours = encode_compact(n)
    assert ours == bytes(RT.rc.create_scale_object("Compact<u128>").encode(n).data)
    assert decode_compact(ours, 0) == (n, len(ours))


@given(
    st.integers(min_value=2, max_value=12), st.integers(min_value=0, max_value=10**6)
)  # no phase quantizing
def test_mortal_era_round_trip_and_window(exp: int, current: int) -> None:
    period = 1 << exp
    era = Era(period, current % period)
    raw = encode_era(era)
    decoded, _, _ = decode_era(raw, 0)
    assert decoded == era
    ref = RT.rc.create_scale_object("Era", data=ScaleBytes(raw))
    ref.decode()
    assert (ref.period, ref.phase) == (period, current % period)
    assert era.birth(current) == current and era.death(current) == current + period
    assert (
        era.birth(current + period) == current + period
    )  # a later cycle: the signed birth hash no longer fits


def _fields(pallet: str, call: str) -> list[str]:
    (p,) = [p for p in RT.metadata.pallets if p.name == pallet]
    (c,) = [c for c in p.calls if c.name == call]
    return [a["name"].value for a in c["fields"]]


def test_the_calls_the_project_uses_keep_the_shape_v042_has() -> None:
    """What the worker sends must not depend on what differs between this 2023 metadata and v0.42."""
    assert _fields("Contracts", "call") == ["dest", "value", "gas_limit", "storage_deposit_limit", "data"]
    assert _fields("Contracts", "instantiate_with_code") == [
        "value",
        "gas_limit",
        "storage_deposit_limit",
        "code",
        "data",
        "salt",
    ]
    assert _fields("Contracts", "instantiate") == [
        "value",
        "gas_limit",
        "storage_deposit_limit",
        "code_hash",
        "data",
        "salt",
    ]
    assert _fields("Contracts", "upload_code") == ["code", "storage_deposit_limit", "determinism"]
    assert _fields("Utility", "batch_all") == ["calls"]
    assert _fields("Balances", "transfer_keep_alive") == ["dest", "value"]


def test_known_differences_from_v042_are_pinned() -> None:
    """v0.42 dropped RandomnessCollectiveFlip and the *_old_weight calls and added Revive; this metadata is
    the older runtime. If these fail, the shipped metadata changed: update docs/devnet.md."""
    names = [p.name for p in RT.metadata.pallets]
    assert "RandomnessCollectiveFlip" in names and "Revive" not in names
    assert "call_old_weight" in [
        c.name for p in RT.metadata.pallets if p.name == "Contracts" for c in p.calls
    ]
    assert RT.spec_version == 100 and RT.transaction_version == 1
    # the ContractExecResult this runtime returns is the pre-`events` layout (scalecodec's To267)
    assert "events" not in dict(RT.rc.get_decoder_class("ContractExecResult").type_mapping)


def test_limits_used_by_the_devnet_are_the_metadatas() -> None:
    from ami_node.devnet import state

    weights = RT.constant("System", "BlockWeights")
    normal = weights["per_class"]["normal"]
    assert (normal["max_extrinsic"]["ref_time"], normal["max_extrinsic"]["proof_size"]) == state.MAX_EXTRINSIC
    assert (normal["max_total"]["ref_time"], normal["max_total"]["proof_size"]) == state.MAX_NORMAL_TOTAL
    assert normal["base_extrinsic"]["ref_time"] == state.BASE_EXTRINSIC
    assert RT.constant("Balances", "ExistentialDeposit") == state.EXISTENTIAL_DEPOSIT
    assert RT.constant("System", "BlockHashCount") == state.BLOCK_HASH_COUNT
    assert RT.constant("Contracts", "DepositPerByte") == state.CODE_DEPOSIT_PER_BYTE
    assert RT.constant("Contracts", "DepositPerItem") == state.CONTRACT_BASE_DEPOSIT
