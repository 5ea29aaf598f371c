"""`ami` subcommands for the worker area: run, demo, config, status, requeue."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML or YAML file with worker settings (env AMI_* overrides it)."),
]


def _settings(config: Path | None, **overrides: Any) -> Any:
    from offchain.config import ConfigError, load_settings

    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""

    @app.command("run")
    def run_cmd(
        config: ConfigOpt = None,
        url: Annotated[
            str | None, typer.Option("--url", help="Node websocket URL (overrides node_url / AMI_NODE_URL).")
        ] = None,
    ) -> None:
        """Run the off-chain worker daemon until SIGTERM/SIGINT (scores, rewards, royalties, payouts)."""
        from offchain.daemon import DaemonError, run_daemon
        from offchain.logging import configure_logging
        from offchain.sqlite import DatabaseLocked, instance_lock

        settings = _settings(config, node_url=url)
        configure_logging(settings.log_level, settings.log_json)
        try:
            # One daemon per database: a second `ami run` on the same file stops here, before any work.
            with instance_lock(settings.db_path, "ami run"):
                asyncio.run(run_daemon(settings))
        except (DatabaseLocked, DaemonError) as exc:
            # Both are the setup's fault (deployment, key, database): bad input, exit 2 as documented.
            typer.echo(f"ami run: {exc}", err=True)
            raise typer.Exit(2) from None

    @app.command("config")
    def config_cmd(config: ConfigOpt = None) -> None:
        """Print the effective worker configuration as JSON (secrets masked), or what makes it invalid."""
        settings = _settings(config)
        typer.echo(json.dumps(settings.redacted(), indent=2))

    @app.command("status")
    def status_cmd(
        config: ConfigOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    ) -> None:
        """Show the worker database: checkpoint, tracks, epochs and payouts (reads only)."""
        settings = _settings(config)
        if not settings.db_path.exists():
            typer.echo(f"no worker database at {settings.db_path} (has `ami run` started?)", err=True)
            raise typer.Exit(2)
        data = asyncio.run(_status(settings))
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        console = Console()

        def table(title: str, *headers: str) -> Table:
            # The first column (a name, a reason, an epoch) keeps its width whole; the others fold onto more
            # lines when the terminal is narrow, so nothing is ever cut to an ellipsis at 80 columns.
            out = Table(title=title)
            for i, name in enumerate(headers):
                out.add_column(name, no_wrap=i == 0, overflow="fold")
            return out

        cp = data["checkpoint"]
        console.print(f"checkpoint: block #{cp[0]} ({cp[1]})" if cp else "checkpoint: none yet")
        t = table("worker store", "what", "count")
        for k, v in data["counts"].items():
            t.add_row(k, str(v))
        console.print(t)
        e = table("epochs", "epoch", "blocks", "payouts", "paid", "unallocated")
        for ep in data["epochs"]:
            e.add_row(
                str(ep["epoch"]),
                f"{ep['start_block']}..{ep['end_block']}",
                str(ep["payout_count"]),
                json.dumps(ep["paid"]),
                json.dumps(ep["unallocated"]),
            )
        console.print(e)
        p = data["problems"]
        r = table("rejected tracks", "reason", "tracks")
        for reason, n in p["rejected_by_reason"].items():
            r.add_row(reason, str(n))
        console.print(r)
        w = table("tracks waiting for a retry", "token", "creator", "attempts", "due", "last error")
        for t in p["retrying"]:
            due = time.strftime("%H:%M:%S", time.localtime(t["retry_at"])) if t["retry_at"] else "now"
            w.add_row(str(t["token_id"]), t["creator"], str(t["attempts"]), due, str(t["detail"])[:80])
        console.print(w)
        f = table("failed on chain (fix the cause, then `ami requeue`)", "what", "id", "error")
        for item in p["failed_payouts"]:
            f.add_row("payout", item["id"], item["error"][:100])
        for item in p["failed_calls"]:
            f.add_row("call", item["key"], item["error"][:100])
        console.print(f)

    @app.command("requeue")
    def requeue_cmd(config: ConfigOpt = None) -> None:
        """Send again every payout and score submission that failed on chain (e.g. NotOracle before the
        role was granted): the running `ami run` picks them up. Each payout is still paid exactly once."""
        from offchain.daemon import DaemonError, requeue

        settings = _settings(config)
        try:
            out = asyncio.run(requeue(settings))
        except DaemonError as exc:
            typer.echo(f"ami requeue: {exc}", err=True)
            raise typer.Exit(1) from None
        for item in out["payouts"]:
            typer.echo(f"payout {item['id']}: was {item['error']}")
        for item in out["calls"]:
            typer.echo(f"call {item['key']}: was {item['error']}")
        typer.echo(f"requeued {out['requeued']} failed payouts and calls")

    @app.command("demo")
    def demo_cmd(
        workdir: Annotated[
            Path | None, typer.Option(help="Keep the demo's files here (default: a temporary folder).")
        ] = None,
        epoch_blocks: Annotated[int, typer.Option(min=20, help="Epoch length in blocks.")] = 60,
        track_seconds: Annotated[
            float, typer.Option(min=6.0, max=120.0, help="Seconds of each track.")
        ] = 20.0,
        as_json: Annotated[
            bool, typer.Option("--json", help="Write the report as JSON to stdout; the tables go to stderr.")
        ] = False,
        serve: Annotated[
            bool,
            typer.Option(
                "--serve", help="Then keep the services and the dashboard up until Ctrl-C (prints its URL)."
            ),
        ] = False,
    ) -> None:
        """Run the whole platform locally: devnet + IPFS, contracts, sample tracks, listeners (and a sybil
        farm), the worker for three epochs; then print each track's scores and each account's pay, and why."""
        from offchain.demo import DemoError, run_demo

        try:
            report = run_demo(
                workdir=workdir,
                epoch_blocks=epoch_blocks,
                track_seconds=track_seconds,
                to_stderr=as_json,
                serve=serve,
            )
        except DemoError as exc:
            typer.echo(f"ami demo: {exc}", err=True)
            raise typer.Exit(1) from None
        if as_json:
            typer.echo(json.dumps(report, indent=2, default=str))


async def _status(settings: Any) -> dict[str, Any]:
    from offchain.daemon import outbox_failures, outbox_path
    from offchain.store import WorkerStore

    store = await WorkerStore.open(settings.db_path)
    try:
        failed = await asyncio.to_thread(outbox_failures, outbox_path(settings))
        return {
            "checkpoint": await store.checkpoint(),
            "counts": await store.counts(),
            "epochs": await store.epochs(),
            "problems": {
                **await store.track_problems(),
                "failed_payouts": failed["payouts"],
                "failed_calls": failed["calls"],
            },
        }
    finally:
        await store.close()
