"""The scoring process under attack (D3, D4 at the process level): killed mid-job or between jobs it is
replaced and the next track is answered; a job over the wall-clock limit is stopped; a track that needs more
memory than the address-space limit is rejected by the child, not the worker; and when the worker itself is
SIGKILLed, its scoring process and multiprocessing's resource tracker die with it."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from waiting import until
from worker_fakes import FakeChain, FakeIpfs
from worker_process import running

from offchain.pipeline.ports import ScorerCrashed, ScoringTimedOut, TrackRejected
from offchain.pipeline.scoring import EngineTrackScorer
from offchain.pipeline.worker import Worker, WorkerOptions
from offchain.store import WorkerStore


def _flac(seconds: float, rate: int = 48_000, channels: int = 2, quiet: bool = False) -> bytes:
    """Noise, or (`quiet`) a click a second, which FLAC stores in almost nothing."""
    buf = io.BytesIO()
    rng = np.random.default_rng(7)
    with sf.SoundFile(buf, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        block = (rng.standard_normal((rate, channels)) * 300).astype(np.int16)
        if quiet:
            block[:] = 0
            block[0, :] = 3000
        for start in range(0, int(rate * seconds), rate):
            f.write(block[: min(rate, int(rate * seconds) - start)])
    return buf.getvalue()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive"
        await asyncio.sleep(0.05)


async def test_a_killed_scoring_process_is_replaced(tmp_path: Path) -> None:
    scorer = EngineTrackScorer(tmp_path / "cat", "cpu")
    try:
        with pytest.raises(TrackRejected) as first:
            await scorer.score(1, b"not audio at all")
        assert first.value.reason == "undecodable"
        # Killed between jobs (OOM killer, kill -9): found dead and replaced without waiting for a job.
        old = scorer.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await _wait_gone(old)
        await scorer.ensure_running()
        assert scorer.pid not in (None, old) and scorer.restarts == 1 and scorer.health() is None
        # Killed in the middle of a job: that job fails as ScorerCrashed, the next one is answered.
        long_track = _flac(600)
        job = asyncio.create_task(scorer.score(2, long_track))
        victim = scorer.pid
        assert victim is not None
        await asyncio.sleep(0)  # the job is on its way to the child
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(ScorerCrashed):
            await job
        assert scorer.health() is not None  # /readyz says so until a fresh process runs
        await scorer.ensure_running()
        assert scorer.health() is None
        with pytest.raises(TrackRejected, match="undecodable"):
            await scorer.score(3, b"still not audio")
        assert scorer.restarts == 2
    finally:
        await scorer.close()


async def test_a_job_over_the_wall_clock_limit_is_stopped(tmp_path: Path) -> None:
    scorer = EngineTrackScorer(tmp_path / "cat", "cpu", job_timeout_s=0.5)
    try:
        await scorer.ensure_running()
        with pytest.raises(ScoringTimedOut):
            await scorer.score(1, _flac(900))  # decoding 15 minutes alone takes longer than 0.5 s
        assert scorer.pid is None and scorer.restarts == 1
    finally:
        await scorer.close()


def test_torch_and_numpy_allocation_failures_count_as_out_of_memory() -> None:
    import torch

    from offchain.pipeline import scoring as stage

    failures: list[BaseException] = []
    for allocate in (lambda: torch.empty(1 << 50, dtype=torch.uint8), lambda: np.empty(1 << 50, np.uint8)):
        with pytest.raises((RuntimeError, MemoryError)) as info:
            allocate()
        failures.append(info.value)
    assert all(stage._out_of_memory(exc) for exc in failures)
    assert not stage._out_of_memory(RuntimeError("a broken install"))
    assert not stage._out_of_memory(ValueError("can't allocate memory"))


def _vm_peak(pid: int) -> int:
    """The largest address space process `pid` has mapped, in bytes (what RLIMIT_AS bounds)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmPeak:"))


async def test_a_track_over_the_memory_limit_is_rejected_by_the_child(tmp_path: Path) -> None:
    # The limit is what scoring a 30 s track takes in a child on this machine (torch maps more with more
    # cores), plus 150 MiB. 15 minutes of 96 kHz stereo, the most samples the decoder accepts, needs about
    # 470 MiB more here: decoded block by block, then 15 minutes of features and quality measures.
    short, longest = _flac(30, rate=96_000, quiet=True), _flac(900, rate=96_000, quiet=True)
    probe = EngineTrackScorer(tmp_path / "probe", "cpu", memory_limit=None)
    try:
        await probe.score(1, short)
        assert probe.pid is not None
        need = _vm_peak(probe.pid)
    finally:
        await probe.close()
    scorer = EngineTrackScorer(tmp_path / "cat", "cpu", memory_limit=need + (150 << 20))
    try:
        await scorer.score(1, short)  # a track that fits is scored under the limit
        with pytest.raises(TrackRejected) as info:
            await scorer.score(2, longest)
        assert info.value.reason == "too_large"
        with pytest.raises(TrackRejected, match="undecodable"):
            await scorer.score(3, b"the next track is answered by a fresh process")
    finally:
        await scorer.close()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from offchain.pipeline.scoring import EngineTrackScorer

    async def main():
        scorer = EngineTrackScorer(sys.argv[1], "cpu")
        try:
            await scorer.score(1, b"not audio")
        except Exception:
            pass
        print(scorer.pid, flush=True)
        await asyncio.sleep(3600)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().split(") ", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return out


async def test_no_orphans_when_the_worker_is_sigkilled(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(CHILD)
    parent = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "cat")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        scorer_pid = int(parent.stdout.readline())
        helpers = _children(parent.pid)
        # the scorer and multiprocessing's resource tracker
        assert scorer_pid in helpers and len(helpers) >= 2
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        for pid in helpers:
            await _wait_gone(pid)
    finally:
        if parent.poll() is None:
            parent.kill()


async def test_the_worker_replaces_a_dead_scoring_process_by_itself(tmp_path: Path) -> None:
    """No track needs to come along: the worker's feed loop finds the process dead and starts another, and
    /readyz (the worker's `last_error`) is clean again once it runs."""
    chain = FakeChain()
    chain.land()
    store = await WorkerStore.open(tmp_path / "w.sqlite")
    scorer = EngineTrackScorer(tmp_path / "cat", "cpu")
    worker = Worker(store, chain, FakeIpfs({}), scorer, chain, chain, WorkerOptions(poll_s=0.05))
    try:
        async with running(worker, stop_timeout=None):
            with pytest.raises(TrackRejected):
                await scorer.score(1, b"not audio")  # the process is up
            old = scorer.pid
            assert old is not None
            os.kill(old, signal.SIGKILL)
            await until(
                lambda: scorer.restarts >= 1 and scorer.pid is not None,
                "the dead scoring process replaced",
                30,
                interval=0.05,
            )
            assert scorer.pid != old and scorer.health() is None
            await until(lambda: "scorer" not in worker.last_error, "/readyz clean again", 30, interval=0.05)
    finally:
        await scorer.close()
        await store.close()


async def test_a_dead_scoring_process_is_found_even_when_something_else_reaped_it(tmp_path: Path) -> None:
    # With SIGCHLD ignored the kernel reaps children itself, and waitpid (so Process.is_alive) can no longer
    # see them die: the scorer must still find its process dead and replace it.
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    scorer = EngineTrackScorer(tmp_path / "cat", "cpu")
    try:
        with pytest.raises(TrackRejected):
            await scorer.score(1, b"not audio at all")
        old = scorer.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await _wait_gone(old)
        await scorer.ensure_running()
        assert scorer.restarts == 1 and scorer.pid not in (None, old)
    finally:
        await scorer.close()
        signal.signal(signal.SIGCHLD, previous)
