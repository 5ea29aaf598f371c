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
