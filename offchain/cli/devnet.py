"""`ami devnet`: run the local substrate-contracts-node emulator (ami_node.devnet) on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import typer

from ami_node.devnet.run import serve_forever


def devnet(
    port: int = typer.Option(9944, "--port", help="TCP port on 127.0.0.1 (0 picks a free one)."),
    block_time_ms: int = typer.Option(
        0, "--block-time-ms", help="0: a block as soon as transactions arrive; N: one block every N ms."
    ),
    finality_lag: int = typer.Option(0, "--finality-lag", help="Finalize the best block minus N."),
    state: Path | None = typer.Option(
        None, "--state", help="Directory to persist the chain in; a restart continues it."
    ),
) -> None:
    """Start a local contracts node (substrate-contracts-node --dev look-alike) until Ctrl-C/SIGTERM."""
    if block_time_ms < 0 or finality_lag < 0:
        raise typer.BadParameter("--block-time-ms and --finality-lag must be >= 0")
    raise typer.Exit(
        serve_forever(port=port, block_time_ms=block_time_ms, finality_lag=finality_lag, state=state)
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""
    app.command("devnet")(devnet)
