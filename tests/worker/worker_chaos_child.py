"""The worker as a separate process for the chaos test: the real daemon assembly (devnet, IPFS, submitter,
store) with a fast hash-based scorer instead of the audio engine, so that 50 mints score in milliseconds."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sys

from offchain.config import load_settings
from offchain.daemon import assemble, run_worker
from offchain.logging import configure_logging
from offchain.pipeline.ports import ScoreOutcome
from offchain.scoring_rule import DeclaredGenre


class HashScorer:
    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        h = hashlib.sha256(audio).digest()
        return ScoreOutcome(1000 + h[0] * 30, 2000 + h[1] * 30, 1, h)


async def main() -> None:
    settings = load_settings(None, **json.loads(sys.argv[1]))
    configure_logging("warning", json=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with assemble(settings, scorer_factory=lambda s, st: HashScorer()) as a:
        await run_worker(a, settings, stop)


if __name__ == "__main__":
    asyncio.run(main())
