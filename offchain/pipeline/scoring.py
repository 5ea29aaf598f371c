"""The scoring stage's TrackScorer: the scoring rule run in a limited child process, one job at a time.

The rule itself (catalogue id, declared genre, decode, score_batch, duplicate/derivative verdicts, crash
replay against the catalogue prefix) is `offchain.scoring_rule.apply_rule`, the function the validator runs
too. The engine is CPU/GPU heavy, blocking and fed with hostile bytes, so it runs in a child process:

- with an address-space limit (RLIMIT_AS), so a file that decodes to gigabytes fails there with a
  MemoryError, not in the worker (the child then exits and a fresh one reloads the catalogue from disk);
- with a wall-clock limit per job: past it the child is killed and replaced, and the job fails with
  `ScoringTimedOut`;
- replaced automatically when it dies (OOM killer, `kill -9`): the job in flight fails with `ScorerCrashed`,
  the next one starts a fresh child;
- never orphaned: the child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG) and a
  watcher thread exits when the parent pid changes (the fallback where prctl is missing).

The catalogue lives in the child and is saved (atomically) in `<db folder>/catalogue/` whenever it grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import resource
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import structlog

from offchain import scoring_rule
from offchain.config import torch_device
from offchain.pipeline.ports import (
    ScoreOutcome,
    ScorerCrashed,
    ScorerInternalError,
    ScoringTimedOut,
    TrackRejected,
)
from offchain.scoring_rule import DeclaredGenre
from scoring.catalog import Catalogue

log = structlog.get_logger("ami.scorer")

_STATE: dict[str, Any] = {}

DEFAULT_MEMORY_LIMIT = 6 << 30
"""Address space of the scoring process in bytes. Measured with CPU torch: 0.73 GB mapped after start, 1.02 GB
after a 30 s track, 1.49 GB after the most samples the decoder accepts (15 min of 96 kHz stereo, decoded block
by block since stop 35; it took about 2 GB more while decoded at once). CUDA builds map more at start."""
DEFAULT_JOB_TIMEOUT_S = 600.0
"""Wall-clock seconds one track may take in the scoring process (start-up and catalogue load included)."""

_PR_SET_PDEATHSIG = 1


def _init(catalogue_dir: str, device: str) -> None:
    _STATE["dir"] = catalogue_dir
    _STATE["device"] = torch_device(device)
    _STATE["catalogue"] = None


def _catalogue() -> Any:
    from scoring.features import EMBEDDING_DIM  # the feature extractor: heavy (torch), loaded on first use

    if _STATE.get("catalogue") is None:
        _STATE["catalogue"] = Catalogue.open_or_create(_STATE["dir"], EMBEDDING_DIM, 12 * 38)
    return _STATE["catalogue"]


def score_in_process(token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> tuple[str, Any]:
    """("rejected", (reason, detail)) or ("scored", (novelty, quality, version, commitment, details)).

    The decision is `offchain.scoring_rule.apply_rule`'s (shared with the validator); this only saves the
    catalogue when the track entered it and shapes the answer for the worker.
    """
    cat = _catalogue()
    out = scoring_rule.apply_rule(cat, token_id, audio, declared, device=_STATE["device"])
    if out.added:
        cat.save(_STATE["dir"])
    if not out.publishable or out.score is None:
        return "rejected", (out.verdict, out.detail)
    ps = out.score
    return "scored", (ps.novelty_bp, ps.quality_bp, ps.model_version, ps.commitment, outcome_details(out))


def outcome_details(out: scoring_rule.RuleOutcome) -> dict[str, Any]:
    """The details the worker stores with a score (hashes, catalogue root, versions with the rule's, the
    engine's details, the genre the rule used); `out` must carry a score."""
    ps = out.score
    assert ps is not None
    return {
        "pcm_sha256": ps.pcm_sha256,
        "features_sha256": ps.features_sha256,
        "catalogue_root": ps.catalogue_root,
        "versions": {**ps.versions, "rule": out.details["rule"]},
        **dict(ps.details),
        **{k: v for k, v in out.details.items() if k != "rule"},
    }


def _die_with_parent(parent_pid: int) -> None:
    """Make sure this process never outlives `parent_pid` (which may be SIGKILLed, running no cleanup)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        # PDEATHSIG follows the parent *thread* that started us and is Linux-only; this covers the rest.
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _child_main(
    conn: Connection, catalogue_dir: str, device: str, memory_limit: int | None, parent_pid: int
) -> None:
    """The scoring process: answer (token, audio, declared) jobs on `conn` until it closes."""
    _die_with_parent(parent_pid)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    _init(catalogue_dir, device)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        token_id, audio, declared = job
        try:
            answer: tuple[str, Any] = score_in_process(token_id, audio, declared)
        except Exception as exc:
            if _out_of_memory(exc):
                # The catalogue in memory may be half-updated: answer, then exit so a fresh process
                # reloads it.
                limit = f"{memory_limit / 2**30:.1f} GiB" if memory_limit else "its"
                conn.send(("rejected", ("too_large", f"scoring needs more than the {limit} memory limit")))
                os._exit(0)
            # anything else is a bug or a broken install, never the track's verdict
            answer = ("error", f"{type(exc).__name__}: {exc}"[:500])
        conn.send(answer)


_CPU_ALLOCATOR_FAILURE = "DefaultCPUAllocator: can't allocate memory"
"""How torch's CPU allocator says that the address-space limit was reached: it raises RuntimeError, not
MemoryError (where numpy would have), so the track would read as an internal error instead of too large."""


def _out_of_memory(exc: BaseException) -> bool:
    """Whether scoring failed for want of memory in this process (numpy's MemoryError, or torch's CPU
    allocator's RuntimeError)."""
    return isinstance(exc, MemoryError) or _CPU_ALLOCATOR_FAILURE in str(exc)


def _running(proc: Any) -> bool:
    """Whether a scoring process still runs. `Process.is_alive` alone is not enough: it asks waitpid, and when
    something else reaped the child first (SIGCHLD ignored by a library, another waiter) waitpid fails and
    is_alive answers True for ever; the kernel's own view (/proc) settles it."""
    if not proc.is_alive():
        return False
    try:
        with open(f"/proc/{proc.pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


class EngineTrackScorer:
    """TrackScorer over scoring.engine in one limited child process; `close()` stops it.

    Args:
        catalogue_dir: where the catalogue is kept (created if missing).
        device: "cpu", "cuda" or "auto".
        memory_limit: address-space limit of the child in bytes (None: none).
        job_timeout_s: wall-clock seconds per track before the child is killed and replaced.
    """

    def __init__(
        self,
        catalogue_dir: Path | str,
        device: str = "auto",
        *,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
    ) -> None:
        Path(catalogue_dir).mkdir(parents=True, exist_ok=True)
        self.catalogue_dir = str(catalogue_dir)
        self.device = device
        self.memory_limit = memory_limit
        self.job_timeout_s = job_timeout_s
        # spawn, not fork: the parent runs threads (aiosqlite, substrate-interface) that fork copies mid-state
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        # One track at a time, in the order the worker asks: the catalogue order is scoring order.
        self._lock = asyncio.Lock()
        self.restarts = 0
        self.failure: str | None = None
        """Why the last job failed for the scorer's own sake (crash, timeout); None once a job succeeds."""

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs (for tests and operators)."""
        return self._proc.pid if self._proc is not None and _running(self._proc) else None

    def health(self) -> str | None:
        """None when the scorer works; otherwise why not (shown by /readyz until a fresh process runs)."""
        if self.failure is not None and self.pid is None:
            return self.failure
        return None

    async def ensure_running(self) -> None:
        """Replace a scoring process found dead between jobs (`kill -9`, OOM killer); never waits on a job."""
        if self._lock.locked():
            return
        dead = self._proc is not None and not _running(self._proc)
        if not dead and not (self._proc is None and self.failure is not None):
            return
        async with self._lock:
            if self._proc is not None and not _running(self._proc):
                self.failure = f"the scoring process died (exit code {self._proc.exitcode}); replacing it"
                log.warning("scorer.found_dead", exitcode=self._proc.exitcode)
                await asyncio.to_thread(self._stop_child)
                self.restarts += 1
            if self._proc is None and self.failure is not None:
                self._start()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_child_main,
            args=(child, self.catalogue_dir, self.device, self.memory_limit, os.getpid()),
            name="ami-scorer",
            daemon=True,
        )
        # Started from the event-loop thread, which lives as long as the worker: PDEATHSIG follows it.
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def _stop_child(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(5)

    def _roundtrip(self, conn: Connection, job: tuple[Any, ...]) -> tuple[str, Any]:
        try:
            conn.send(job)
            if not conn.poll(self.job_timeout_s):
                raise ScoringTimedOut(
                    "scoring_timeout", f"scoring took longer than {self.job_timeout_s:g} s; stopped"
                )
            answer: tuple[str, Any] = conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise ScorerCrashed(
                "scorer_crashed", f"the scoring process died ({type(exc).__name__}); it is replaced"
            ) from None
        return answer

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        async with self._lock:
            if self._proc is not None and not _running(self._proc):
                log.warning("scorer.found_dead", exitcode=self._proc.exitcode)
                self._stop_child()
                self.restarts += 1
            if self._proc is None or self._conn is None:
                self._start()
            assert self._conn is not None
            try:
                status, value = await asyncio.to_thread(
                    self._roundtrip, self._conn, (token_id, audio, declared)
                )
            except (ScorerCrashed, ScoringTimedOut) as exc:
                self.failure = str(exc)
                exitcode = self._proc.exitcode if self._proc is not None else None
                log.warning("scorer.replaced", token_id=token_id, reason=exc.reason, exitcode=exitcode)
                await asyncio.to_thread(self._stop_child)
                self.restarts += 1
                raise
            except asyncio.CancelledError:
                # The pipe may hold a half-sent job or an unread answer: start clean next time.
                await asyncio.shield(asyncio.to_thread(self._stop_child))
                raise
            self.failure = None
            if self._proc is not None and status == "rejected" and value[0] == "too_large":
                await asyncio.to_thread(self._stop_child)  # it exits by itself after a MemoryError
        if status == "error":
            raise ScorerInternalError("internal", str(value))
        if status == "rejected":
            raise TrackRejected(*value)
        novelty, quality, version, commitment, details = value
        return ScoreOutcome(int(novelty), int(quality), int(version), bytes(commitment), details)

    async def close(self) -> None:
        await asyncio.to_thread(self._stop_child)
