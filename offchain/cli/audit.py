"""`ami` subcommands for validators: `audit` (one-shot report) and `validate` (the challenging daemon)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ami_node.follower import NonCanonicalBlock
from ami_node.keys import Keypair
from ami_node.port import ChainUnavailable
from offchain.audit import service
from offchain.audit.model import AuditReport
from offchain.audit.service import ValidatorMetrics, ValidatorSetupError, start_validator_http
from offchain.audit.validator import ContractChallenger
from offchain.cli.exits import EXIT_INPUT, EXIT_UNREACHABLE, fail_with
from offchain.cli.settings import worker_settings
from offchain.cli.signing import KeyFileOpt, KeyOpt, PasswordFileOpt, resolve_keypair
from offchain.logging import configure_logging
from offchain.sqlite import DatabaseLocked, instance_lock

EXIT_MISMATCH = 1  # `ami audit`: something audited does not match

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="The worker's TOML/YAML settings (policy, node, IPFS, deployment)."),
]
DbOpt = Annotated[
    Path,
    typer.Option("--db", envvar="AMI_VALIDATOR_DB", help="Directory of the validator's SQLite files."),
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="Node websocket URL (overrides node_url / AMI_NODE_URL).")
]
GraceOpt = Annotated[
    int | None,
    typer.Option(
        "--grace-blocks",
        min=0,
        help="Blocks after an epoch's end before unpaid payouts count as missing (default: one epoch).",
    ),
]


def _print_table(report: AuditReport) -> None:
    console = Console()
    table = Table(
        "subject",
        "status",
        "findings",
        "detail",
        "evidence",
        title=(f"audit of blocks {report.from_block}..{report.to_block} ({report.audit_version})"),
    )
    styles = {"match": "green", "mismatch": "bold red", "unverifiable": "yellow", "pending": "cyan"}
    for s in report.subjects:
        kinds = ", ".join(sorted({f.kind.value for f in s.findings}))
        detail = s.findings[0].detail if s.findings else s.reason
        if len(s.findings) > 1:
            detail += f" (+{len(s.findings) - 1} more)"
        ev = (s.evidence_commitment or "")[:18]
        table.add_row(s.subject, f"[{styles[s.status.value]}]{s.status.value}[/]", kinds, detail, ev)
    console.print(table)
    console.print(" ".join(f"{k}: {v}" for k, v in report.counts().items()))


def audit_cmd(
    token: Annotated[int | None, typer.Option("--token", min=0, help="Audit this token's scores.")] = None,
    from_block: Annotated[int, typer.Option("--from-block", min=0, help="First block of the range.")] = 0,
    to_block: Annotated[
        int | None, typer.Option("--to-block", min=0, help="Last block (default: finalized head).")
    ] = None,
    epoch: Annotated[int | None, typer.Option("--epoch", min=0, help="Audit this epoch.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    config: ConfigOpt = None,
    url: UrlOpt = None,
    db: DbOpt = Path(".ami/validator"),
    grace_blocks: GraceOpt = None,
) -> None:
    """Recompute published scores and epoch payouts from the chain and IPFS; report what differs.

    Exit status 0 when everything audited matches, 1 when something does not, 2 on bad input,
    3 when the node is unreachable. Never sends a transaction.
    """
    if to_block is not None and to_block < from_block:
        fail_with(f"--to-block {to_block} is before --from-block {from_block}", EXIT_INPUT)
    settings = worker_settings(config, node_url=url or None)
    configure_logging("warning", settings.log_json)  # logs go to stderr; stdout is the report
    report = _run(_audit(settings, db, grace_blocks, token, from_block, to_block, epoch))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_table(report)
    if report.counts()["mismatch"]:
        raise typer.Exit(EXIT_MISMATCH)


def validate_cmd(
    key: str | None = KeyOpt,
    key_file: Path | None = KeyFileOpt,
    password_file: Path | None = PasswordFileOpt,
    config: ConfigOpt = None,
    url: UrlOpt = None,
    db: DbOpt = Path(".ami/validator"),
    grace_blocks: GraceOpt = None,
    http_port: Annotated[
        int,
        typer.Option(
            "--http-port",
            min=0,
            max=65535,
            envvar="AMI_VALIDATOR_HTTP_PORT",
            help="Port of /healthz, /readyz, /metrics (on the settings' http_host); 0 picks a free one.",
        ),
    ] = 9616,
) -> None:
    """Follow finalized blocks, audit every score and settled epoch, challenge each difference once.

    The key (by the scheme of every command: --key-file, env AMI_KEY, a prompt) must be a validator of
    the rewards contract.
    """
    settings = worker_settings(config, node_url=url or None)
    keypair = resolve_keypair(key, key_file, settings.node_url, password_file)
    configure_logging(settings.log_level, settings.log_json)
    try:
        # One validator per database directory: a second one stops here, before any work.
        with instance_lock(db / "validator.sqlite", "ami validate"):
            _run(_validate(settings, db, grace_blocks, keypair, http_port))
    except DatabaseLocked as exc:
        fail_with(str(exc), EXIT_INPUT)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `ami` app."""
    app.command("audit")(audit_cmd)
    app.command("validate")(validate_cmd)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except ValidatorSetupError as exc:
        fail_with(str(exc), EXIT_INPUT)
    except ChainUnavailable as exc:
        fail_with(f"{exc} (is the node running? see --config / AMI_NODE_URL)", EXIT_UNREACHABLE)
    except NonCanonicalBlock as exc:
        fail_with(f"{exc}; the validator database follows another chain: use another --db", EXIT_INPUT)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _audit(
    settings: Any, db: Path, grace: int | None, token: int | None, lo: int, hi: int | None, epoch: int | None
) -> AuditReport:
    async with service.open_validator(settings, db_dir=db, grace_blocks=grace) as v:
        await v.sync()
        await v.auditor.rescore_pending()
        return await v.auditor.audit(token_id=token, from_block=lo, to_block=hi, epoch=epoch)


async def _validate(settings: Any, db: Path, grace: int | None, key: Keypair, http_port: int) -> None:
    metrics = ValidatorMetrics()
    async with service.open_validator(settings, db_dir=db, grace_blocks=grace, key=key, metrics=metrics) as v:
        if isinstance(v.challenger, ContractChallenger) and not await v.challenger.is_validator():
            typer.echo(
                f"warning: {v.challenger.keypair.address} is not a validator of the rewards contract; "
                "mismatches will be recorded but challenges refused (the contract owner adds validators)",
                err=True,
            )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, v.stop)
        try:
            runner = await start_validator_http(v, settings.http_host, http_port, metrics)
        except OSError as exc:
            raise ValidatorSetupError(
                f"cannot serve HTTP on {settings.http_host}:{http_port}: {exc.strerror} (see --http-port)"
            ) from None
        addresses = [f"{a[0]}:{a[1]}" for a in runner.addresses]
        typer.echo(json.dumps({"event": "validate.http", "listening": addresses}), err=True)
        try:
            await v.run()
        finally:
            await runner.cleanup()
        typer.echo(json.dumps(await v.summary()), err=True)
