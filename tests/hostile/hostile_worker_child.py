"""The worker as a separate process for the hostile-mint scenario (so its peak RSS is its own): the real
daemon assembly (devnet, js-ipfs, submitter, store, oracle check) with either the real scoring process
(`engine`) or a hash stand-in (`hash`) that scores in microseconds."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from typing import Any

from offchain.config import load_settings
from offchain.daemon import assemble, check_oracle, default_scorer, run_worker
from offchain.logging import configure_logging
from offchain.pipeline.ports import ScoreOutcome
from offchain.scoring_rule import DeclaredGenre


class HashScorer:
    async def score(self, token_id: int, audio: bytes, declared: DeclaredGenre | None = None) -> ScoreOutcome:
        h = hashlib.sha256(audio).digest()
        return ScoreOutcome(1000 + h[0] * 30, 2000 + h[1] * 30, 1, h)


async def main() -> None:
    settings = load_settings(None, **json.loads(sys.argv[1]))
    scorer = sys.argv[2]
    configure_logging(os.environ.get("HOSTILE_LOG_LEVEL", "warning"), json=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def factory(s: Any, st: Any) -> Any:
        return default_scorer(s, st) if scorer == "engine" else HashScorer()

    async with assemble(settings, scorer_factory=factory) as a:
        await check_oracle(a)
        await run_worker(a, settings, stop)


if __name__ == "__main__":
    asyncio.run(main())
