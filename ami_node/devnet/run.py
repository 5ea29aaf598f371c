"""Run a devnet in the foreground until SIGINT/SIGTERM (what `ami devnet` calls)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from ami_node.devnet.chain import DEV_SEEDS, Devnet
from ami_node.devnet.server import DevnetServer


async def _main(port: int, block_time_ms: int, finality_lag: int, state: Path | None) -> None:
    from substrateinterface import Keypair

    from ami_node.devnet.store import SqliteStore

    store = SqliteStore(state) if state is not None else None
    chain = Devnet(finality_lag=finality_lag, store=store)
    server = DevnetServer(chain, port=port, block_time_ms=block_time_ms)
    url = await server.start()
    print(f"AMI devnet (substrate-contracts-node look-alike) listening on {url}", flush=True)
    print(
        f"genesis 0x{chain.genesis_hash.hex()} best #{chain.best.number} finalized #{chain.finalized_number}"
    )
    mode = "instant" if block_time_ms == 0 else f"every {block_time_ms} ms"
    print(f"blocks: {mode}; finality lag: {finality_lag}; state: {state or 'in memory'}")
    print("dev accounts (funded):")
    for name in DEV_SEEDS:
        print(f"  //{name:<8} {Keypair.create_from_uri('//' + name).ss58_address}")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("stopping devnet", flush=True)
    await server.stop()


def serve_forever(*, port: int, block_time_ms: int, finality_lag: int, state: Path | None) -> int:
    """Serve until a signal arrives; returns the process exit code."""
    try:
        asyncio.run(_main(port, block_time_ms, finality_lag, state))
    except OSError as exc:
        print(f"error: cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0
