"""Running the worker in tests: in this process (`running` a bare Worker, `serving_http` its endpoints,
`worker_running` the daemon's assembly), or as its own process, for tests that SIGKILL it or measure its
memory: the real assembly (devnet, IPFS, submitter, store) with the audio engine or `HashScorer`, a stand-in
that scores in microseconds.

    python tests/worker_process.py SETTINGS_JSON [hash|engine] [--check-oracle]

SETTINGS_JSON holds `load_settings` overrides; `--check-oracle` refuses to start, as `ami run` does, when the
signing key is no oracle; WORKER_LOG_LEVEL sets the log level (JSON lines on stderr, default warning).
SIGTERM stops it cleanly. Tests in the same process use `HashScorer` from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from offchain.config import WorkerSettings, load_settings
from offchain.daemon import Assembled, assemble, check_oracle, default_scorer, run_worker
from offchain.http import bound_port, start_http
from offchain.logging import configure_logging
from offchain.pipeline.ports import ScoreOutcome
from offchain.pipeline.worker import Worker
from offchain.scoring_rule import DeclaredGenre

WORKER_PROCESS = Path(__file__).resolve()  # run as [sys.executable, WORKER_PROCESS, settings, ...]


class HashScorer:
    """Scores from the audio's SHA-256 (no decoding): novelty 1000..8650 bp, quality 2000..9650 bp."""

    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        h = hashlib.sha256(audio).digest()
        return ScoreOutcome(1000 + h[0] * 30, 2000 + h[1] * 30, 1, h)


def worker_settings(node_url: str, ipfs_api_url: str, folder: Path, **overrides: Any) -> dict[str, Any]:
    """`load_settings` overrides for a test worker: deployment.json and worker.sqlite in `folder`, //Alice
    signs, backoff from 0.1 s; `overrides` (epoch_blocks, http_port, backoff_max_s, ...) come last."""
    return {
        "node_url": node_url,
        "ipfs_api_url": ipfs_api_url,
        "deployment": str(folder / "deployment.json"),
        "signing_key": "//Alice",
        "db_path": str(folder / "worker.sqlite"),
        "backoff_initial_s": 0.1,
        **overrides,
    }


@contextlib.asynccontextmanager
async def running(worker: Worker, stop_timeout: float | None = 10) -> AsyncIterator[asyncio.Task[None]]:
    """`worker.run()` as a task while the block runs; on the way out `worker.stop()`, and its end awaited
    (for `stop_timeout` s at most)."""
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.stop()
        await asyncio.wait_for(task, stop_timeout)


@contextlib.asynccontextmanager
async def serving_http(worker: Worker) -> AsyncIterator[str]:
    """The worker's HTTP endpoints (health, readiness, metrics, dashboard) on a free loopback port while the
    block runs; yields the base URL."""
    runner = await start_http(worker, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def worker_running(a: Assembled, settings: WorkerSettings) -> AsyncIterator[None]:
    """The assembled worker runs (worker, submitter, HTTP, as `ami run` does) until the block is left; it is
    then stopped and its in-flight work finishes before the block's exit returns."""
    stop = asyncio.Event()
    runner = asyncio.create_task(run_worker(a, settings, stop))
    try:
        yield
    finally:
        stop.set()
        await runner


async def main(argv: list[str]) -> None:
    settings = load_settings(None, **json.loads(argv[0]))
    engine = len(argv) > 1 and argv[1] == "engine"
    configure_logging(os.environ.get("WORKER_LOG_LEVEL", "warning"), json=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def factory(s: Any, st: Any) -> Any:
        return default_scorer(s, st) if engine else HashScorer()

    async with assemble(settings, scorer_factory=factory) as a:
        if "--check-oracle" in argv:
            await check_oracle(a)
        await run_worker(a, settings, stop)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
