"""The worker's scoring stage: lanes of tasks that claim pending tracks, fetch, score and record each one.

Tracks never tried go to the main lane (one creator at a time, at most `per_creator_slots` tasks each), tracks
whose content was missing or slow wait in the retry lane with exponential backoff, and missing content is
looked for again later (readmission). Every track ends in one verdict: scored (then published), rejected with
a reason, or pending again with a retry time. `ScoringLanes` is a part of `offchain.pipeline.worker.Worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any, TypeVar

import structlog

from offchain.ipfs.metadata import MAX_METADATA_BYTES
from offchain.metrics import WorkerMetrics
from offchain.pipeline.options import WorkerOptions
from offchain.pipeline.ports import (
    ContentFetcher,
    ContentNotFound,
    FetchError,
    ScoreOutcome,
    ScorePublisher,
    ScorerCrashed,
    ScorerFailure,
    StorageUnavailable,
    TrackRejected,
    TrackScorer,
)
from offchain.scoring_rule import DeclaredGenre, declared_genre, no_metadata
from offchain.store import TrackRow, WorkerStore

log = structlog.get_logger("ami.worker")

T = TypeVar("T")
# Rejections that are looked at again later: the content may still appear on IPFS.
READMIT_REASONS = ("not_found", "timeout")


class ScoringLanes:
    """The scoring stage of the worker (its store, ports, options and metrics are the worker's)."""

    store: WorkerStore
    fetcher: ContentFetcher
    scorer: TrackScorer
    publisher: ScorePublisher
    opt: WorkerOptions
    metrics: WorkerMetrics
    last_error: dict[str, str]
    _stop: asyncio.Event
    _wake_scoring: asyncio.Event

    def _init_lanes(self) -> None:
        # Scoring tasks pull their next track from the store when they are free (no queue in between), so
        # that the per-creator order is applied at the last moment: a track minted after a thousand others
        # is the next one taken if its creator has nothing else in the lane.
        self._in_flight: dict[int, str] = {}  # token -> creator, for every track a scoring task holds
        self._claiming = asyncio.Lock()
        self._work = asyncio.Condition()
        # Main-lane tokens whose content is being fetched, with the monotonic time the fetch began.
        self._fetching: dict[int, float] = {}
        self._fetch_done = asyncio.Condition()
        self._score_slots = asyncio.Semaphore(self.opt.scoring_workers)

    def _lanes(self) -> list[bool]:
        """The lane of each scoring task (True: retry lane): `fetch_workers` main, `retry_workers` retry."""
        return [False] * self.opt.fetch_workers + [True] * self.opt.retry_workers

    async def _feed_scoring(self) -> None:
        while not self._stop.is_set():
            for t in await self.store.tracks(status="scored"):
                await self._publish(t.token_id, t.novelty_bp, t.quality_bp, t.model_version, t.commitment)
            readmitted = await self.store.readmit_due(
                READMIT_REASONS, time.time(), self.opt.fetch_attempts - 1, self.opt.scoring_queue_size
            )
            if readmitted:
                log.info("worker.tracks_readmitted", tokens=readmitted[:20], count=len(readmitted))
            async with self._work:
                self._work.notify_all()
            await self._check_scorer()
            self.last_error.pop("scoring-feed", None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_scoring.wait(), timeout=self.opt.poll_s)
            self._wake_scoring.clear()

    async def _claim(self, retry_lane: bool) -> int | None:
        """The next due track of a lane, one creator at a time (see `WorkerStore.fair_pending`), now ours.

        A creator holds at most `per_creator_slots` tasks at once, so the others' tracks always find one
        free: a thousand mints of one creator whose content never comes cannot fill every slot.
        """
        async with self._claiming:
            held = Counter(self._in_flight.values())
            due = await self.store.fair_pending(
                2 * len(self._in_flight) + 8, retry_lane=retry_lane, now=time.time()
            )
            for t in due:
                if t.token_id not in self._in_flight and held[t.creator] < self.opt.per_creator_slots:
                    self._in_flight[t.token_id] = t.creator
                    if not retry_lane:  # from the claim on, later tokens wait for it (`_wait_for_earlier`)
                        self._fetching[t.token_id] = time.monotonic()
                    return t.token_id
        return None

    async def _or_stop(self, aw: Awaitable[T], timeout: float) -> T | None:
        """`aw` within `timeout` seconds (TimeoutError past it), or None as soon as the worker is stopping:
        a fetch that may wait for minutes is dropped at SIGTERM (the track stays pending)."""
        task = asyncio.ensure_future(aw)
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                {task, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopping.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if self._stop.is_set():
            return None
        raise TimeoutError

    async def _check_scorer(self) -> None:
        """Restart a scoring process found dead, and show the scorer's health in /readyz."""
        # Duck-typed: the real EngineTrackScorer has these, in-memory fakes need not.
        ensure = getattr(self.scorer, "ensure_running", None)
        if ensure is not None:
            await ensure()
        health = getattr(self.scorer, "health", None)
        problem = health() if health is not None else None
        if problem:
            self.last_error["scorer"] = problem
        else:
            self.last_error.pop("scorer", None)

    async def _publish(
        self, token_id: int, novelty: Any, quality: Any, version: Any, commitment: Any
    ) -> None:
        outcome = ScoreOutcome(int(novelty), int(quality), int(version), bytes.fromhex(str(commitment)[2:]))
        try:
            await self.publisher.publish_score(token_id, outcome)
        except Exception:
            self.metrics.submit_failures.labels("score").inc()
            raise
        await self.store.mark_score_submitted(token_id)

    async def _score_loop(self, retry_lane: bool, stage: str) -> None:
        """One scoring lane, supervised as ``stage``: a store error stops it; its supervisor restarts it."""
        while not self._stop.is_set():
            token_id = await self._claim(retry_lane)
            # The store answered again: the failure the supervisor recorded for this lane (a locked file, a
            # full disk) is over, so /readyz must stop reporting it.
            self.last_error.pop(stage, None)
            if token_id is None:
                async with self._work:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._work.wait(), timeout=self.opt.poll_s)
                continue
            self.metrics.queue_depth.labels("scoring").set(len(self._in_flight))
            try:
                await self._score_isolated(token_id)
            finally:
                self._in_flight.pop(token_id, None)
                await self._fetched(token_id)

    async def _score_isolated(self, token_id: int) -> str:
        """`score_one`, where anything unexpected rejects the track (`internal`) instead of stopping the lane.

        Store failures (a full disk, a locked file) are not the track's: they go to the stage's supervisor.
        """
        try:
            return await self.score_one(token_id)
        except (OSError, sqlite3.Error):
            raise
        except Exception as exc:
            log.exception("worker.track_internal_error", token_id=token_id)
            return await self._reject(token_id, "internal", f"{type(exc).__name__}: {exc}")

    async def score_one(self, token_id: int) -> str:
        """Fetch, verify, score and record one pending track; returns its new status.

        Every track ends in one verdict: "scored" (then published), "rejected" with a reason, or "pending"
        again with a retry time (content missing or too slow to come; the scorer process died under it).
        """
        track = await self.store.track(token_id)
        if track is None or track.status != "pending":
            return track.status if track else "unknown"
        main_lane = track.attempts == 0
        started = time.monotonic()
        try:
            fetched = await self._fetch_audio(track)
            declared = None if isinstance(fetched, str) else await self._declared_genre(track.metadata_cid)
        finally:
            await self._fetched(token_id)
        if isinstance(fetched, str):
            return fetched
        self.metrics.fetch_seconds.observe(time.monotonic() - started)
        if declared is None:
            return "pending"
        self.last_error.pop("ipfs", None)
        if main_lane:
            await self._wait_for_earlier(token_id)
        try:
            async with self._score_slots:
                started, result = time.monotonic(), "failed"
                try:
                    outcome = await self.scorer.score(token_id, fetched, declared)
                    result = "scored"
                except TrackRejected:
                    result = "rejected"
                    raise
                finally:
                    self.metrics.score_seconds.labels(result).observe(time.monotonic() - started)
        except TrackRejected as exc:
            return await self._reject(token_id, exc.reason, exc.detail)
        except ScorerCrashed as exc:
            # The process died under this track (or under no fault of it): try again later, a few times.
            self.metrics.scorer_restarts.inc()
            return await self._retry_later(track, exc.reason, exc.detail)
        except ScorerFailure as exc:  # timed out (the track's doing) or an internal engine error
            if exc.reason != "internal":
                self.metrics.scorer_restarts.inc()
            return await self._reject(token_id, exc.reason, exc.detail)
        self.last_error.pop("scorer", None)
        await self.store.record_score(
            token_id,
            outcome.novelty_bp,
            outcome.quality_bp,
            outcome.model_version,
            outcome.commitment,
            outcome.details,
        )
        self.metrics.tracks_scored.labels("scored").inc()
        log.info(
            "worker.track_scored",
            token_id=token_id,
            novelty_bp=outcome.novelty_bp,
            quality_bp=outcome.quality_bp,
            model_version=outcome.model_version,
        )
        self._wake_scoring.set()
        return "scored"

    async def _fetch_audio(self, track: TrackRow) -> bytes | str:
        """The verified audio of `track`, or its new status when there is none (rejected or pending)."""
        token_id = track.token_id
        delay = self.opt.backoff_initial_s
        while True:
            try:
                audio = await self._or_stop(
                    self.fetcher.fetch(track.audio_cid, self.opt.max_audio_bytes), self.opt.fetch_deadline_s
                )
                return "pending" if audio is None else audio
            except TimeoutError:
                detail = f"the audio did not arrive within {self.opt.fetch_deadline_s:g} s"
                return await self._retry_later(track, "timeout", detail)
            except StorageUnavailable as exc:
                # The IPFS node is down: wait it out, never count it against the track.
                self.last_error["ipfs"] = str(exc)
                self.metrics.source_errors.labels("ipfs").inc()
                log.warning("worker.ipfs_unavailable", token_id=token_id, retry_in_s=round(delay, 2))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                if self._stop.is_set():
                    return "pending"
                delay = min(delay * 2, self.opt.backoff_max_s)
            except ContentNotFound as exc:
                return await self._retry_later(track, exc.reason, exc.detail)
            except FetchError as exc:
                return await self._reject(token_id, exc.reason, exc.detail)

    async def _retry_later(self, track: TrackRow, reason: str, detail: str) -> str:
        """Count a failed attempt; the track waits in the retry lane, or is rejected once attempts run out
        (missing content is then looked for again every `readmit_after_s`)."""
        attempts = track.attempts + 1
        wait = min(self.opt.retry_initial_s * 2 ** (attempts - 1), self.opt.retry_max_s)
        attempts = await self.store.schedule_retry(track.token_id, f"{reason}: {detail}", time.time() + wait)
        self.metrics.tracks_retried.labels(reason).inc()
        if attempts < self.opt.fetch_attempts:
            log.info(
                "worker.track_retry", token_id=track.token_id, reason=reason, attempts=attempts, in_s=wait
            )
            self._wake_scoring.set()
            return "pending"
        if reason in READMIT_REASONS:
            await self.store.reject_until(
                track.token_id, reason, detail, time.time() + self.opt.readmit_after_s
            )
            self.metrics.tracks_scored.labels("rejected").inc()
            log.info("worker.track_rejected", token_id=track.token_id, reason=reason, readmit=True)
            return "rejected"
        return await self._reject(track.token_id, reason, detail)

    async def _fetched(self, token_id: int) -> None:
        """`token_id` no longer holds back later tokens (its content is in, or it has its verdict)."""
        if self._fetching.pop(token_id, None) is not None:
            async with self._fetch_done:
                self._fetch_done.notify_all()

    async def _wait_for_earlier(self, token_id: int) -> None:
        """Wait while an earlier mint is still being fetched, for at most `order_wait_s` after its start."""
        async with self._fetch_done:
            while True:
                now = time.monotonic()
                ends = [
                    start + self.opt.order_wait_s
                    for tok, start in self._fetching.items()
                    if tok < token_id and start + self.opt.order_wait_s > now
                ]
                if not ends or self._stop.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._fetch_done.wait(), timeout=min(ends) - now)

    async def _declared_genre(self, metadata_cid: str) -> DeclaredGenre | None:
        """The genre declared in the track's metadata (verified read, capped); None only when stopping.

        Metadata is advisory: anything wrong with it (not found, too slow, too large, bad CID, malformed)
        scores the track with no genre and records why, by the shared rule. Only an unreachable IPFS node is
        waited out, as for the audio, so an outage never changes the genre a track is scored with.
        """
        delay = self.opt.backoff_initial_s
        while True:
            try:
                raw = await self._or_stop(
                    self.fetcher.fetch(metadata_cid, MAX_METADATA_BYTES), self.opt.fetch_deadline_s
                )
                if raw is None:
                    return None
            except TimeoutError:
                return no_metadata("timeout", f"no answer within {self.opt.fetch_deadline_s:g} s")
            except StorageUnavailable as exc:
                self.last_error["ipfs"] = str(exc)
                self.metrics.source_errors.labels("ipfs").inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                if self._stop.is_set():
                    return None
                delay = min(delay * 2, self.opt.backoff_max_s)
            except FetchError as exc:
                return no_metadata(exc.reason, exc.detail)
            else:
                return declared_genre(raw)

    async def _reject(self, token_id: int, reason: str, detail: str) -> str:
        await self.store.record_rejection(token_id, reason, detail)
        self.metrics.tracks_scored.labels("rejected").inc()
        self.metrics.tracks_rejected.labels(reason).inc()
        log.info("worker.track_rejected", token_id=token_id, reason=reason, detail=detail[:200])
        return "rejected"
