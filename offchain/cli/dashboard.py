"""`ami dashboard`: serve the read-only web dashboard over a worker's database or a validator's folder."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from offchain.cli.exits import exit_on
from offchain.dashboard.pages import DashboardConfig, serve_dashboard
from offchain.dashboard.sources import DashboardError, resolve_source


def dashboard_cmd(
    db: Annotated[
        Path,
        typer.Option(
            "--db",
            help="A worker's database (worker.sqlite, its catalogue/ beside it) or a validator's folder.",
        ),
    ],
    validator: Annotated[
        Path | None, typer.Option(help="A validator's folder whose findings to show with a worker's db.")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback unless you mean to share it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 9616,
    epoch_blocks: Annotated[
        int | None, typer.Option(min=1, help="Epoch length when no epoch is settled yet.")
    ] = None,
    ipfs_api_url: Annotated[
        str | None, typer.Option(help="IPFS RPC API to stream tracks' audio from (verified by CID).")
    ] = None,
) -> None:
    """Serve the dashboard (tracks, epochs, accounts, map, distributions, findings) until Ctrl-C."""
    with exit_on(DashboardError, prefix="ami dashboard: "):
        source = resolve_source(db, validator)
    config = DashboardConfig(source, epoch_blocks=epoch_blocks, ipfs_api_url=ipfs_api_url)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_dashboard(
            config,
            host,
            port,
            stop,
            lambda p: typer.echo(f"dashboard: http://{host}:{p}/", err=False),
        )

    with exit_on(DashboardError, prefix="ami dashboard: "):
        asyncio.run(main())


def register(app: typer.Typer) -> None:
    """Add this area's command to the `ami` app."""
    app.command("dashboard")(dashboard_cmd)
