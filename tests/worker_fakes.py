"""In-memory fakes of the worker ports (a chain that lands the worker's calls as events, IPFS, a scorer), and
the content a creator mints (WAV bytes, track metadata)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf

from offchain.ipfs.cid import compute_cid
from offchain.ipfs.metadata import TrackMetadata
from offchain.pipeline.ports import (
    ContentInvalid,
    ContentNotFound,
    ContentTooLarge,
    ScoreOutcome,
    StorageUnavailable,
    TrackRejected,
)
from offchain.projection import BlockData, typed_event
from offchain.scoring_rule import DeclaredGenre
from offchain.store import OutboxPayout
from scoring.decode import SAMPLE_RATE

ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"


def wav_bytes(x: np.ndarray) -> bytes:
    """Mono float samples at the canonical rate as 16-bit WAV bytes."""
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def track_metadata(audio: bytes, genre: str, title: str = "Chorale", duration_s: float = 8.0) -> bytes:
    """The metadata document a creator (Alice) mints with `audio`, declaring `genre`."""
    return TrackMetadata.build(
        title=title,
        creator=ALICE,
        genre=genre,
        duration_s=duration_s,
        royalty_splits=[[ALICE, 10_000]],
        licence="CC-BY-4.0",
        audio_cid=compute_cid(audio, 1),
        audio_format="wav",
    ).to_json()


class FakeChain:
    """Finalized blocks 1..n; `land(...)` appends a block. Also the submitter: score calls and payouts land as
    ScoreSubmitted / Paid events, and a payout id is paid at most once, as the contract guarantees."""

    def __init__(self) -> None:
        self.history: list[BlockData] = []
        self._grew = asyncio.Event()
        self.paid: dict[bytes, tuple[str, int, int, int]] = {}
        self.scored: set[tuple[int, int]] = set()
        self.enqueue_calls = 0
        self.down = False
        self.auto_land = True
        self._queued: list[tuple[str, dict[str, Any]]] = []

    @property
    def head(self) -> int:
        return len(self.history)

    def land(self, *events: tuple[str, Mapping[str, Any]]) -> int:
        number = self.head + 1
        recs = [typed_event(k, i, f, block=number, contract="5Contract") for i, (k, f) in enumerate(events)]
        self.history.append(BlockData(number, f"0x{number:064x}", recs))
        self._grew.set()
        return number

    def land_empty_until(self, number: int) -> None:
        while self.head < number:
            self.land()

    def flush(self) -> int | None:
        """Land everything the worker queued (scores, payouts) in one block."""
        if not self._queued:
            return None
        events, self._queued = self._queued, []
        return self.land(*events)

    # BlockSource
    async def blocks(self, start_after: tuple[int, str] | None) -> AsyncIterator[BlockData]:
        n = start_after[0] + 1 if start_after else 1
        while True:
            if self.down:
                raise ConnectionError("fake node unreachable")
            if n <= self.head:
                yield self.history[n - 1]
                n += 1
                continue
            self._grew.clear()
            await self._grew.wait()

    async def finalized_number(self) -> int:
        if self.down:
            raise ConnectionError("fake node unreachable")
        return self.head

    # ScorePublisher
    async def publish_score(self, token_id: int, outcome: ScoreOutcome) -> None:
        self.enqueue_calls += 1
        key = (token_id, outcome.model_version)
        if key in self.scored:
            return
        self.scored.add(key)
        self._queued.append(
            (
                "ScoreSubmitted",
                {
                    "token_id": token_id,
                    "oracle": "5Oracle",
                    "novelty_bp": outcome.novelty_bp,
                    "quality_bp": outcome.quality_bp,
                    "model_version": outcome.model_version,
                    "commitment": "0x" + outcome.commitment.hex(),
                },
            )
        )
        if self.auto_land:
            self.flush()

    # PayoutSink
    async def enqueue_payouts(self, epoch: int, payouts: Sequence[OutboxPayout]) -> int:
        self.enqueue_calls += 1
        new = 0
        for p in payouts:
            if p.payout_id in self.paid:
                continue
            self.paid[p.payout_id] = (p.account, p.amount, int(p.kind), epoch)
            self._queued.append(
                (
                    "Paid",
                    {
                        "payout_id": "0x" + p.payout_id.hex(),
                        "to": p.account,
                        "amount": p.amount,
                        "kind": int(p.kind),
                        "epoch": epoch,
                    },
                )
            )
            new += 1
        if self.auto_land:
            self.flush()
        return new


class FakeIpfs:
    def __init__(self, content: Mapping[str, bytes]) -> None:
        self.content = dict(content)
        self.down = False
        self.fetches = 0

    async def fetch(self, cid: str, max_bytes: int) -> bytes:
        self.fetches += 1
        if self.down:
            raise StorageUnavailable("fake IPFS node unreachable")
        if not cid.startswith("Qm") and not cid.startswith("bafy"):
            raise ContentInvalid(f"{cid!r} is not a CID")
        if cid not in self.content:
            raise ContentNotFound(f"{cid} not found")
        data = self.content[cid]
        if len(data) > max_bytes:
            raise ContentTooLarge(f"{cid} is {len(data)} bytes, cap {max_bytes}")
        return data


class FakeScorer:
    """Scores from the audio's hash; b"corrupt..." is undecodable; identical audio is a duplicate."""

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        if audio.startswith(b"corrupt"):
            raise TrackRejected("undecodable", "not an audio file")
        digest = hashlib.sha256(audio).digest()
        if digest in self.seen and self.seen[digest] != token_id:
            raise TrackRejected("duplicate", f"same audio as token {self.seen[digest]}")
        self.seen[digest] = token_id
        return ScoreOutcome(5000, 6000, 1, digest)
