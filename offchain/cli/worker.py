"""`ami` subcommands for the worker area: run, demo, config, status, requeue, rebuild-catalogue."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from offchain.cli.exits import EXIT_INPUT, EXIT_UNEXPECTED, EXIT_UNREACHABLE, exit_on
from offchain.cli.scoring import progress_bar
from offchain.cli.settings import worker_settings
from offchain.daemon import DaemonError, outbox_failures, outbox_path, rebuild, requeue, run_daemon
from offchain.demo import DemoError, run_demo
from offchain.logging import configure_logging
from offchain.pipeline.catalogue_rebuild import RebuildError
from offchain.sqlite import DatabaseLocked, instance_lock
from offchain.store import WorkerStore

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML or YAML file with worker settings (env AMI_* overrides it)."),
]


def run_cmd(
    config: ConfigOpt = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Node websocket URL (overrides node_url / AMI_NODE_URL).")
    ] = None,
) -> None:
    """Run the off-chain worker daemon until SIGTERM/SIGINT (scores, rewards, royalties, payouts)."""
    settings = worker_settings(config, node_url=url)
    configure_logging(settings.log_level, settings.log_json)
    # Both are the setup's fault (deployment, key, database): bad input, exit 2 as documented.
    # One daemon per database: a second `ami run` on the same file stops here, before any work.
    with (
        exit_on((DatabaseLocked, DaemonError), EXIT_INPUT, "ami run: "),
        instance_lock(settings.db_path, "ami run"),
    ):
        asyncio.run(run_daemon(settings))


def config_cmd(config: ConfigOpt = None) -> None:
    """Print the effective worker configuration as JSON (secrets masked), or what makes it invalid."""
    typer.echo(json.dumps(worker_settings(config).redacted(), indent=2))


def _table(title: str, headers: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> Table:
    # The first column (a name, a reason, an epoch) keeps its width whole; the others fold onto more
    # lines when the terminal is narrow, so nothing is ever cut to an ellipsis at 80 columns.
    out = Table(title=title)
    for i, name in enumerate(headers):
        out.add_column(name, no_wrap=i == 0, overflow="fold")
    for row in rows:
        out.add_row(*row)
    return out


def _due(retry_at: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(retry_at)) if retry_at else "now"


def _print_status(data: dict[str, Any]) -> None:
    """The status as tables: counts, epochs, rejected and retrying tracks, failures on chain."""
    console = Console()
    cp = data["checkpoint"]
    p = data["problems"]
    console.print(f"checkpoint: block #{cp[0]} ({cp[1]})" if cp else "checkpoint: none yet")
    console.print(_table("worker store", ("what", "count"), ((k, str(v)) for k, v in data["counts"].items())))
    epochs = (
        (
            str(ep["epoch"]),
            f"{ep['start_block']}..{ep['end_block']}",
            str(ep["payout_count"]),
            json.dumps(ep["paid"]),
            json.dumps(ep["unallocated"]),
        )
        for ep in data["epochs"]
    )
    console.print(_table("epochs", ("epoch", "blocks", "payouts", "paid", "unallocated"), epochs))
    rejected = ((reason, str(n)) for reason, n in p["rejected_by_reason"].items())
    console.print(_table("rejected tracks", ("reason", "tracks"), rejected))
    retrying = (
        (str(t["token_id"]), t["creator"], str(t["attempts"]), _due(t["retry_at"]), str(t["detail"])[:80])
        for t in p["retrying"]
    )
    headers = ("token", "creator", "attempts", "due", "last error")
    console.print(_table("tracks waiting for a retry", headers, retrying))
    failures = [("payout", item["id"], item["error"][:100]) for item in p["failed_payouts"]]
    failures += [("call", item["key"], item["error"][:100]) for item in p["failed_calls"]]
    console.print(
        _table("failed on chain (fix the cause, then `ami requeue`)", ("what", "id", "error"), failures)
    )


def status_cmd(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show the worker database: checkpoint, tracks, epochs and payouts (reads only)."""
    settings = worker_settings(config)
    if not settings.db_path.exists():
        typer.echo(f"no worker database at {settings.db_path} (has `ami run` started?)", err=True)
        raise typer.Exit(EXIT_INPUT)
    data = asyncio.run(_status(settings))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print_status(data)


def requeue_cmd(config: ConfigOpt = None) -> None:
    """Send again every payout and score submission that failed on chain (e.g. NotOracle before the
    role was granted): the running `ami run` picks them up. Each payout is still paid exactly once."""
    with exit_on(DaemonError, EXIT_UNEXPECTED, "ami requeue: "):
        out = asyncio.run(requeue(worker_settings(config)))
    for item in out["payouts"]:
        typer.echo(f"payout {item['id']}: was {item['error']}")
    for item in out["calls"]:
        typer.echo(f"call {item['key']}: was {item['error']}")
    typer.echo(f"requeued {out['requeued']} failed payouts and calls")


def rebuild_catalogue_cmd(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Rebuild the worker's scoring catalogue with the current model (after a model upgrade, or when it is
    damaged or lost) from its database and IPFS; the old folder is kept as a backup. Stop `ami run` first.

    Every scored track is fetched again (CID verified) and rescored in token order by the shared rule: it
    costs a full rescoring. Scores on chain or handed to the submitter keep their model version; scores not
    yet handed are replaced by the current model's."""
    settings = worker_settings(config)
    if not settings.db_path.exists():
        typer.echo(f"error: no worker database at {settings.db_path}", err=True)
        raise typer.Exit(EXIT_INPUT)
    with (
        exit_on((DatabaseLocked, DaemonError), EXIT_INPUT, "ami rebuild-catalogue: "),
        exit_on(RebuildError, EXIT_UNREACHABLE, "ami rebuild-catalogue: "),
        progress_bar("rescoring") as update,
    ):
        report = asyncio.run(rebuild(settings, update))
    data = {
        "catalogue": str(report.catalogue),
        "backup": str(report.backup) if report.backup else None,
        "entries": len(report.ids),
        "root_hash": report.root_hash,
        "rescored": report.rescored,
        "left_out": report.left_out,
        "rescored_unsubmitted": report.rescored_unsubmitted,
        "verdict_changes": report.verdict_changes,
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"rescored {report.rescored} tracks: {len(report.ids)} entries, root {report.root_hash}")
    typer.echo(f"catalogue: {report.catalogue}; the old one is kept in {report.backup or '(there was none)'}")
    for token, why in report.left_out.items():
        typer.echo(f"token {token} stays out: {why[:120]}")
    if report.rescored_unsubmitted:
        typer.echo(f"scores not yet submitted, now from the current model: {report.rescored_unsubmitted}")
    for token, change in report.verdict_changes.items():
        typer.echo(f"token {token}: {change} under the current model (its published score stays)")


def demo_cmd(
    workdir: Annotated[
        Path | None, typer.Option(help="Keep the demo's files here (default: a temporary folder).")
    ] = None,
    epoch_blocks: Annotated[int, typer.Option(min=20, help="Epoch length in blocks.")] = 60,
    track_seconds: Annotated[float, typer.Option(min=6.0, max=120.0, help="Seconds of each track.")] = 20.0,
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
    with exit_on(DemoError, EXIT_UNEXPECTED, "ami demo: "):
        report = run_demo(
            workdir=workdir,
            epoch_blocks=epoch_blocks,
            track_seconds=track_seconds,
            to_stderr=as_json,
            serve=serve,
        )
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""
    app.command("run")(run_cmd)
    app.command("config")(config_cmd)
    app.command("status")(status_cmd)
    app.command("requeue")(requeue_cmd)
    app.command("rebuild-catalogue")(rebuild_catalogue_cmd)
    app.command("demo")(demo_cmd)


async def _status(settings: Any) -> dict[str, Any]:
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
