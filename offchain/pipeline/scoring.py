"""The scoring stage's TrackScorer: the protocol's scoring rule run in a separate process, in mint order.

The rule itself (catalogue id, declared genre, decode, score_batch, duplicate/derivative verdicts, crash
replay against the catalogue prefix) is `offchain.scoring_rule.apply_rule`, the function the validator runs
too. The engine is CPU/GPU heavy and blocking, so it runs in a one-process pool (the event loop never waits on
it); the catalogue lives there and is saved (atomically) in `<db folder>/catalogue/` whenever it grows.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from offchain.pipeline.ports import ScoreOutcome, TrackRejected
from offchain.scoring_rule import DeclaredGenre

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


def score_in_process(token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> tuple[str, Any]:
    """("rejected", (reason, detail)) or ("scored", (novelty, quality, version, commitment, details)).

    The decision is `offchain.scoring_rule.apply_rule`'s (shared with the validator); this only saves the
    catalogue when the track entered it and shapes the answer for the worker.
    """
    from offchain.scoring_rule import apply_rule

    cat = _catalogue()
    out = apply_rule(cat, token_id, audio, declared, device=_STATE["device"])
    if out.added:
        cat.save(_STATE["dir"])
    if not out.publishable or out.score is None:
        return "rejected", (out.verdict, out.detail)
    ps = out.score
    details = {
        "pcm_sha256": ps.pcm_sha256,
        "features_sha256": ps.features_sha256,
        "catalogue_root": ps.catalogue_root,
        "versions": {**ps.versions, "rule": out.details["rule"]},
        **dict(ps.details),
        **{k: v for k, v in out.details.items() if k != "rule"},
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

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        async with self._lock:
            loop = asyncio.get_running_loop()
            status, value = await loop.run_in_executor(
                self._pool, score_in_process, token_id, audio, declared
            )
        if status == "rejected":
            raise TrackRejected(*value)
        novelty, quality, version, commitment, details = value
        return ScoreOutcome(int(novelty), int(quality), int(version), bytes(commitment), details)

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)
