"""Run a devnet in the foreground until SIGINT/SIGTERM (what `ami devnet` calls)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from substrateinterface import Keypair

from ami_node.devnet.chain import Devnet
from ami_node.devnet.server import DevnetServer
from ami_node.devnet.state import DEV_SEEDS
from ami_node.devnet.store import SqliteStore, StoreError


class StartError(RuntimeError):
    """The devnet could not start (port taken, unusable state directory)."""


def _say(line: str) -> None:
    # a closed stdout (`ami devnet | head`) must not stop the node
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(line, flush=True)


async def _main(port: int, block_time_ms: int, finality_lag: int, state: Path | None) -> None:
    try:
        store = SqliteStore(state) if state is not None else None
        chain = Devnet(finality_lag=finality_lag, store=store)
    except (OSError, StoreError) as exc:
        raise StartError(f"cannot use state directory {state}: {exc}") from exc
    server = DevnetServer(chain, port=port, block_time_ms=block_time_ms)
    try:
        url = await server.start()
    except OSError as exc:
        raise StartError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    _say(f"AMI devnet (substrate-contracts-node look-alike) listening on {url}")
    head = f"best #{chain.best.number} finalized #{chain.finalized_number}"
    _say(f"genesis 0x{chain.genesis_hash.hex()} {head}")
    mode = "instant" if block_time_ms == 0 else f"every {block_time_ms} ms"
    _say(f"blocks: {mode}; finality lag: {finality_lag}; state: {state or 'in memory'}")
    _say("dev accounts (funded):")
    for name in DEV_SEEDS:
        _say(f"  //{name:<8} {Keypair.create_from_uri('//' + name).ss58_address}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _say(f"stopping devnet at best #{chain.best.number}")
    await server.stop()


def serve_forever(*, port: int, block_time_ms: int, finality_lag: int, state: Path | None) -> int:
    """Serve until a signal arrives; returns the process exit code (2 when it cannot start)."""
    try:
        asyncio.run(_main(port, block_time_ms, finality_lag, state))
    except StartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
