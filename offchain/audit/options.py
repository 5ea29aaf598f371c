"""The audit's options: the policy the worker runs under and the validator's own knobs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from offchain.config import DEFAULTS
from offchain.economics import POLICY_VERSION, EpochInput, PolicyParams

TrustProvider = Callable[[EpochInput], Mapping[str, int] | None]


@dataclass
class AuditOptions:
    """The policy the worker runs under (same values as its WorkerSettings) and the validator's own knobs."""

    epoch_blocks: int
    policy: PolicyParams
    policy_version: str = POLICY_VERSION
    max_audio_bytes: int = DEFAULTS.max_audio_bytes
    # Blocks after an epoch's end before unpaid expected payouts count as missing (the worker settles and the
    # submitter batches after the epoch ends).
    grace_blocks: int | None = None

    @property
    def grace(self) -> int:
        return self.epoch_blocks if self.grace_blocks is None else self.grace_blocks
