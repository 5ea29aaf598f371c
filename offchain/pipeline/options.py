"""The worker pipeline's knobs, with the settings model's defaults (one configuration path, one set of them).

Every knob `WorkerSettings` (offchain/config.py) also has takes its default from there; the others (lanes,
deadlines, polling) exist only here. `WorkerOptions.from_settings` is how the daemons build them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from offchain.config import DEFAULTS, WorkerSettings
from offchain.economics import PolicyParams

# The knobs that are settings fields of the same name.
_FROM_SETTINGS = (
    "epoch_blocks",
    "max_audio_bytes",
    "block_queue_size",
    "scoring_queue_size",
    "ingest_batch_blocks",
    "scoring_workers",
    "payout_batch_size",
    "backoff_initial_s",
    "backoff_max_s",
)


@dataclass
class WorkerOptions:
    """The pipeline's knobs (see offchain/config.py for the meaning of those the settings have)."""

    epoch_blocks: int = DEFAULTS.epoch_blocks
    policy: PolicyParams = field(default_factory=DEFAULTS.policy)
    max_audio_bytes: int = DEFAULTS.max_audio_bytes
    block_queue_size: int = DEFAULTS.block_queue_size
    scoring_queue_size: int = DEFAULTS.scoring_queue_size
    ingest_batch_blocks: int = DEFAULTS.ingest_batch_blocks
    scoring_workers: int = DEFAULTS.scoring_workers
    payout_batch_size: int = DEFAULTS.payout_batch_size
    fetch_attempts: int = 5
    backoff_initial_s: float = DEFAULTS.backoff_initial_s
    backoff_max_s: float = DEFAULTS.backoff_max_s
    poll_s: float = 1.0
    # The scoring stage's lanes (see `Worker.score_one`): tracks never tried go to the main lane, served by
    # `fetch_workers` tasks one creator at a time (at most `per_creator_slots` tasks each); tracks whose
    # content was missing (or slow) wait in the retry lane (`retry_workers` tasks) for
    # retry_initial_s * 2**(attempt-1) seconds (at most retry_max_s), up to `fetch_attempts`; then they are
    # rejected and looked for again every `readmit_after_s`.
    fetch_workers: int = 4
    retry_workers: int = 1
    fetch_deadline_s: float = 60.0
    retry_initial_s: float = 5.0
    retry_max_s: float = 300.0
    readmit_after_s: float = 3600.0
    # A fetched track waits at most this long for earlier tokens still being fetched, so that the catalogue
    # stays in mint order when content is healthy, and a slow or hostile earlier mint delays it by seconds.
    order_wait_s: float = 5.0
    per_creator_slots: int = 2

    @classmethod
    def from_settings(cls, s: WorkerSettings) -> WorkerOptions:
        return cls(policy=s.policy(), **{name: getattr(s, name) for name in _FROM_SETTINGS})
