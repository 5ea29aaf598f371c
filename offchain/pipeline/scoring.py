"""The scoring stage's TrackScorer: canonical decode and scoring.engine in a separate process, in mint order.

The engine is CPU/GPU heavy and blocking, so it runs in a one-process pool (the event loop never waits on it):
decode (scoring.decode.decode_bytes), then scoring.engine.score_batch against the catalogue of every decodable
track scored before it, which is then extended and saved (atomically) in `<db folder>/catalogue/`.

Crash safety: if the worker dies after the catalogue was saved but before the store recorded the score, the
track comes back as pending while its id is already in the catalogue; it is then scored against the catalogue
prefix before it - exactly the state it was first scored against - so the result is the same.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from offchain.pipeline.ports import ScoreOutcome, TrackRejected

_STATE: dict[str, Any] = {}


def _device(device: str) -> str | None:
    return None if device == "auto" else device


def _init(catalogue_dir: str, device: str) -> None:
    _STATE["dir"] = catalogue_dir
    _STATE["device"] = _device(device)
    _STATE["catalogue"] = None


def _catalogue() -> Any:
    from scoring.catalog import Catalogue
    from scoring.features import EMBEDDING_DIM

    if _STATE.get("catalogue") is None:
        _STATE["catalogue"] = Catalogue.open_or_create(_STATE["dir"], EMBEDDING_DIM, 12 * 38)
    return _STATE["catalogue"]


def _prefix(cat: Any, pos: int) -> Any:
    from scoring.catalog import Catalogue

    prefix = Catalogue(cat.dim, cat.c2d_dim)
    if pos:
        prefix.add(
            cat.ids[:pos],
            cat.embeddings[:pos],
            cat.chroma_2dft[:pos] if cat.c2d_dim else None,
            [cat.fingerprint(i) for i in range(pos)],
            cat.labels[:pos],
        )
    return prefix


def score_in_process(track_id: str, audio: bytes) -> tuple[str, Any]:
    """("rejected", (reason, detail)) or ("scored", (novelty, quality, version, commitment, details))."""
    from scoring.decode import decode_bytes
    from scoring.engine import TrackInput, score_batch
    from scoring.errors import AudioError, ScoringError

    try:
        canon = decode_bytes(audio)
    except AudioError as exc:
        return "rejected", ("undecodable", f"{type(exc).__name__}: {exc}")
    cat = _catalogue()
    pos = cat.position(track_id)
    try:
        if pos is not None:  # scored and saved before a crash: replay against the catalogue it saw
            (ps,) = score_batch(
                [TrackInput(track_id, canon, None)], _prefix(cat, pos), device=_STATE["device"]
            )
        else:
            (ps,) = score_batch(
                [TrackInput(track_id, canon, None)], cat, device=_STATE["device"], add_to_catalogue=True
            )
            cat.save(_STATE["dir"])
    except ScoringError as exc:
        return "rejected", ("unscorable", f"{type(exc).__name__}: {exc}")
    if ps.duplicate_of:
        return "rejected", ("duplicate", f"duplicate of {ps.duplicate_of}")
    if ps.derivative_of:
        return "rejected", ("derivative", f"derivative of {ps.derivative_of}")
    details = {
        "pcm_sha256": ps.pcm_sha256,
        "features_sha256": ps.features_sha256,
        "catalogue_root": ps.catalogue_root,
        "versions": ps.versions,
        **dict(ps.details),
    }
    return "scored", (ps.novelty_bp, ps.quality_bp, ps.model_version, ps.commitment, details)


class EngineTrackScorer:
    """TrackScorer over scoring.engine in one worker process; `close()` stops it."""

    def __init__(self, catalogue_dir: Path | str, device: str = "auto") -> None:
        Path(catalogue_dir).mkdir(parents=True, exist_ok=True)
        # spawn, not fork: the parent runs threads (aiosqlite, substrate-interface) that fork copies mid-state
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(str(catalogue_dir), device),
        )
        # One track at a time, in the order the worker asks (token order): the catalogue order is mint order.
        self._lock = asyncio.Lock()

    async def score(self, token_id: int, audio: bytes) -> ScoreOutcome:
        async with self._lock:
            loop = asyncio.get_running_loop()
            status, value = await loop.run_in_executor(
                self._pool, score_in_process, f"token:{token_id}", audio
            )
        if status == "rejected":
            raise TrackRejected(*value)
        novelty, quality, version, commitment, details = value
        return ScoreOutcome(int(novelty), int(quality), int(version), bytes(commitment), details)

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)
