"""The client's `Payout`: the vocabulary's `Payout`, checked when it is made so that nothing bad is queued."""

from __future__ import annotations

import functools
from typing import Any

from scalecodec.utils.ss58 import ss58_decode

from pallets_spec import vocabulary
from pallets_spec.vocabulary import PAYOUT_ID_LEN, U128_MAX, PayoutKind

__all__ = ["Payout"]


class Payout(vocabulary.Payout):
    """One reward payment as the submitter queues it: `distribute`'s `Payout { id, to, amount, kind }`.

    `id`: the 32-byte deterministic payout id (bytes, or 64 hex digits with or without "0x"); the contract
    pays each id at most once. `to`: the payee, SS58. `amount`: MINT base units, 1..=u128::MAX. `kind`: a
    `PayoutKind` (0 create, 1 listen, 2 discovery, 3 engagement, 4 royalty). ValueError names what is wrong.
    """

    def __init__(self, *, id: Any, to: str, amount: int, kind: int) -> None:  # noqa: A002 (the ABI's name)
        super().__init__(id=_payout_id(id), to=to, amount=amount, kind=kind)
        if not isinstance(to, str) or not _is_ss58(to):
            raise ValueError(f"{to!r} is not an SS58 address")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= U128_MAX:
            raise ValueError(f"amount must be an integer in 1..=u128::MAX, got {amount!r}")
        if isinstance(kind, bool) or not isinstance(kind, int) or kind not in PayoutKind._value2member_map_:
            raise ValueError(f"kind must be a payout kind {vocabulary.PAYOUT_KIND_LABELS}, got {kind!r}")


def _payout_id(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise ValueError("payout id must be 32 bytes or 64 hex digits") from None
    if not isinstance(value, bytes | bytearray) or len(value) != PAYOUT_ID_LEN:
        raise ValueError("payout id must be exactly 32 bytes")
    return bytes(value)


@functools.lru_cache(maxsize=65536)
def _is_ss58(value: str) -> bool:
    """Cached: an epoch's payouts go to few accounts many times."""
    try:
        ss58_decode(value)
    except Exception:
        return False
    return True
