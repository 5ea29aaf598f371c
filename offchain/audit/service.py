"""Assemble a validator from configuration: chain port, deployment, IPFS, ledgers, rescorers, challenger.

The validator reads the worker's own settings (`offchain.config.WorkerSettings`: node, IPFS, deployment,
epoch length, budgets and caps), because it must resettle epochs under exactly the policy the worker runs.
Its own state lives in `db_dir` (validator.sqlite: audits and challenges; ledger.sqlite: the worker-store
ledger of chain events it resettles epochs from).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from ami_node.abi import ContractAbi
from ami_node.deployment import Deployment, DeploymentError
from ami_node.keys import KeyLoadError, Keypair, load_keypair
from ami_node.substrate import SubstrateChainPort
from offchain.audit.auditor import AuditOptions, Auditor
from offchain.audit.db import ValidatorDb, ValidatorDbError
from offchain.audit.rescore import RescoreError, Rescorer
from offchain.audit.validator import ContractChallenger, Validator
from offchain.config import WorkerSettings, torch_device
from offchain.ipfs.client import IpfsClient
from offchain.metrics import add_standard_collectors
from offchain.store import StoreError, WorkerStore

log = structlog.get_logger("ami.audit")

DEFAULT_DB_DIR = Path(".ami/validator")


class ValidatorSetupError(Exception):
    """The validator cannot start (deployment missing, database unusable, bad key); the message says why."""


def audit_options(settings: WorkerSettings, grace_blocks: int | None = None) -> AuditOptions:
    """The worker's policy parameters, taken from its settings the way the worker takes them."""
    return AuditOptions(
        epoch_blocks=settings.epoch_blocks,
        policy=settings.policy(),
        max_audio_bytes=settings.max_audio_bytes,
        grace_blocks=grace_blocks,
    )


def default_rescorers(settings: WorkerSettings) -> tuple[dict[int, Rescorer], str | None]:
    """The scoring engine's rescorers, or none (with the reason) when the engine is not installed."""
    device = torch_device(settings.device)
    try:
        # The scoring engine is a heavy (torch) and separate part of the project: imported only here.
        from offchain.audit.engine import engine_rescorers
    except ImportError as exc:
        return {}, str(RescoreError(f"the scoring engine is not available: {exc}"))
    try:
        return dict(engine_rescorers(device)), None
    except RescoreError as exc:
        return {}, str(exc)


@asynccontextmanager
async def open_validator(
    settings: WorkerSettings,
    *,
    db_dir: Path = DEFAULT_DB_DIR,
    key: str | Keypair | None = None,
    grace_blocks: int | None = None,
    rescorers: Mapping[int, Rescorer] | None = None,
    port: Any = None,
    content: Any = None,
    metrics: ValidatorMetrics | None = None,
) -> AsyncIterator[Validator]:
    """A ready Validator over real adapters (or the given `port` / `content`), closed on exit.

    `key` (a Keypair, or a key string for `load_keypair`) None builds an audit-only validator that never
    challenges.
    """
    try:
        deployment = Deployment.load(settings.deployment)
    except DeploymentError as exc:
        raise ValidatorSetupError(str(exc)) from None
    keypair = key if isinstance(key, Keypair) else None
    if isinstance(key, str):
        try:
            keypair = load_keypair(key)
        except KeyLoadError as exc:
            raise ValidatorSetupError(f"validator key: {exc}") from None
    if rescorers is None:
        rescorers, why = default_rescorers(settings)
        if why:
            log.warning("audit.no_rescorer", reason=why, effect="every score is reported unverifiable")
    if metrics is not None:
        rescorers = {v: TimedRescorer(r, metrics.rescore_seconds) for v, r in rescorers.items()}
    own_port = port is None
    if own_port:
        port = SubstrateChainPort(settings.node_url)
    own_content = content is None
    if own_content:
        content = IpfsClient(settings.ipfs_api_url)
    closers: list[Any] = []
    try:
        try:
            db = await ValidatorDb.open(db_dir / "validator.sqlite")
            closers.append(db)
            ledger = await WorkerStore.open(db_dir / "ledger.sqlite")
            closers.append(ledger)
        except (StoreError, ValidatorDbError) as exc:
            raise ValidatorSetupError(str(exc)) from None
        abis = {"nft": ContractAbi.load("ami_nft"), "rewards": ContractAbi.load("ami_rewards")}
        contracts = {deployment.nft: abis["nft"], deployment.rewards: abis["rewards"]}
        auditor = Auditor(db, ledger, content, rescorers, audit_options(settings, grace_blocks))
        challenger = (
            ContractChallenger(port, keypair, deployment.rewards, abis["rewards"]) if keypair else None
        )
        yield Validator(
            port,
            contracts,
            auditor,
            challenger,
            retry_delay_s=settings.backoff_initial_s,
            backoff_max_s=settings.backoff_max_s,
        )
    finally:
        for c in reversed(closers):
            await c.close()
        if own_content:
            await content.close()
        if own_port:
            await port.close()


# ---------------------------------------------------------------- `ami validate`'s HTTP endpoints


class ValidatorMetrics:
    """The validator's Prometheus metrics (`ami_validator_*`), refreshed from its state at each scrape."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.processed_head = Gauge(
            "ami_validator_processed_head", "Last finalized block the validator audited up to", registry=r
        )
        self.checkpoint = Gauge(
            "ami_validator_checkpoint_block",
            "Last finalized block written to the validator's ledger",
            registry=r,
        )
        self.audits = Gauge("ami_validator_audits", "Audited subjects, by status", ["status"], registry=r)
        self.challenges = Gauge("ami_validator_challenges", "Challenges, by status", ["status"], registry=r)
        self.failing = Gauge(
            "ami_validator_failing", "1 while the last follow or audit pass failed (see /readyz)", registry=r
        )
        self.rescore_seconds = Histogram(
            "ami_validator_rescore_seconds",
            "Seconds to recompute one track's scores (decode, features, novelty, quality)",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
            registry=r,
        )
        add_standard_collectors(r, "validator")

    async def refresh(self, validator: Validator) -> dict[str, Any]:
        summary = await validator.summary()
        self.processed_head.set(validator.processed_head)
        checkpoint = summary.get("checkpoint")
        block = checkpoint[0] if isinstance(checkpoint, list | tuple) and checkpoint else checkpoint
        self.checkpoint.set(int(block) if isinstance(block, int) else 0)
        for status, n in summary["audits"].items():
            self.audits.labels(status=status).set(n)
        for status, n in summary["challenges"].items():
            self.challenges.labels(status=status).set(n)
        self.failing.set(1 if validator.last_error else 0)
        return summary


class TimedRescorer:
    """A Rescorer whose `rescore` calls are timed into a `_seconds` histogram; everything else is the
    wrapped rescorer's."""

    def __init__(self, inner: Rescorer, histogram: Any) -> None:
        self._inner = inner
        self._histogram = histogram
        self.model_version = inner.model_version

    def rescore(self, token_id: int, audio: bytes, genre: Any) -> Any:
        with self._histogram.time():
            return self._inner.rescore(token_id, audio, genre)

    def __getattr__(self, name: str) -> Any:  # commit, accept, restore and any extra the auditor uses
        return getattr(self._inner, name)


def make_validator_app(validator: Validator, metrics: ValidatorMetrics | None = None) -> Any:
    """/healthz (the loop answers), /readyz (no failing pass), /metrics: the worker's endpoints, for
    `ami validate`."""
    m = metrics or ValidatorMetrics()

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        reasons = [f"last pass failed: {validator.last_error}"] if validator.last_error else []
        try:
            summary = await m.refresh(validator)
        except Exception as exc:  # the database failing is exactly what readiness must report
            summary, reasons = {}, [*reasons, f"database: {exc}"]
        body = {
            "ready": not reasons,
            "processed_head": validator.processed_head,
            "checkpoint": summary.get("checkpoint"),
            "reasons": reasons,
        }
        return web.json_response(body, status=200 if not reasons else 503)

    async def metrics_view(_: web.Request) -> web.Response:
        try:
            await m.refresh(validator)
        except (
            Exception
        ) as exc:  # still serve the process metrics; the failure shows in ami_validator_failing
            log.warning("validate.metrics_refresh_failed", error=str(exc))
            m.failing.set(1)
        return web.Response(body=generate_latest(m.registry), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.add_routes(
        [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics_view)]
    )
    return app


async def start_validator_http(
    validator: Validator, host: str, port: int, metrics: ValidatorMetrics | None = None
) -> Any:
    """Serve make_validator_app on host:port (0 picks a free port); returns the aiohttp AppRunner."""
    runner = web.AppRunner(make_validator_app(validator, metrics), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
