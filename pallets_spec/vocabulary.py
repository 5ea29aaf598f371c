"""The domain words every layer shares, declared once: the SS58 format, the payout kinds and the `Payout`.

This module imports nothing (not even the rest of `pallets_spec`), so that any layer may use it. The contract
events, the other shared word, are derived from the description in `pallets_spec.events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

SS58_FORMAT = 42
"""The SS58 address prefix of every chain the AMI node speaks to (42: generic Substrate)."""

U128_MAX = (1 << 128) - 1
PAYOUT_ID_LEN = 32


class PayoutKind(IntEnum):
    """The `kind` byte of the rewards contract's `Payout`: which reward (or royalty) a payout pays."""

    CREATE = 0
    LISTEN = 1
    DISCOVERY = 2
    ENGAGEMENT = 3
    ROYALTY = 4

    @property
    def label(self) -> str:
        """The kind's name as documents and logs write it: "create", "listen", ..."""
        return self.name.lower()


PAYOUT_KIND_LABELS: dict[int, str] = {int(k): k.label for k in PayoutKind}


@dataclass(frozen=True)
class Payout:
    """One payment of the rewards contract's `distribute`: `Payout { id, to, amount, kind }`.

    `id` is the 32-byte payout id the contract pays at most once; `to` the payee (a 32-byte AccountId on the
    model's side, SS58 text on the client's); `amount` MINT base units (u128); `kind` a `PayoutKind` value
    (a plain int here: the contract itself refuses an unknown kind). The client checks its payouts further
    (`ami_node.submit_codec.Payout`).
    """

    id: bytes
    to: Any
    amount: int
    kind: int

    @classmethod
    def coerce(cls, v: Payout | dict[str, Any]) -> Payout:
        """A Payout from itself or from the dict a SCALE decoder yields (`{"id", "to", "amount", "kind"}`)."""
        return v if isinstance(v, Payout) else cls(id=v["id"], to=v["to"], amount=v["amount"], kind=v["kind"])

    def abi_fields(self) -> dict[str, Any]:
        """The struct as an ABI encoder takes it."""
        return {"id": self.id, "to": self.to, "amount": self.amount, "kind": int(self.kind)}
