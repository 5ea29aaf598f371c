"""`ami run`: assemble the worker from the real adapters (chain, IPFS, scorer, submitter) and run it until
SIGTERM/SIGINT, serving /healthz, /readyz and /metrics on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from offchain.config import WorkerSettings
from offchain.metrics import WorkerMetrics
from offchain.pipeline.worker import Worker, WorkerOptions

log = structlog.get_logger("ami.daemon")


class DaemonError(Exception):
    """The worker cannot start (no deployment file, bad key, unusable database...); the message says why."""


def outbox_path(settings: WorkerSettings) -> Path:
    """The submitter's own outbox database, next to the worker's (one per signing key)."""
    return settings.db_path.with_name(settings.db_path.stem + ".outbox.sqlite")


@dataclass
class Assembled:
    worker: Worker
    submitter: Any
    port: Any
    ipfs: Any
    deployment: Any


def default_scorer(settings: WorkerSettings, worker_store: Any) -> Any:
    """The scoring stage's TrackScorer (scoring engine in a process pool): offchain/pipeline/scoring.py."""
    from offchain.pipeline.scoring import EngineTrackScorer

    return EngineTrackScorer(settings.db_path.parent / "catalogue", device=settings.device)


@contextlib.asynccontextmanager
async def assemble(
    settings: WorkerSettings,
    *,
    scorer_factory: Callable[[WorkerSettings, Any], Any] = default_scorer,
    metrics: WorkerMetrics | None = None,
) -> AsyncIterator[Assembled]:
    """Open every resource the worker needs, yield them wired together, close them all on exit."""
    from ami_node.abi import ContractAbi
    from ami_node.deployment import Deployment, DeploymentError
    from ami_node.keys import load_keypair
    from ami_node.submitter import Submitter
    from ami_node.substrate import SubstrateChainPort
    from offchain.ipfs.client import IpfsClient
    from offchain.pipeline.adapters import (
        ChainBlockSource,
        IpfsContentFetcher,
        SubmitterPayoutSink,
        SubmitterScorePublisher,
    )
    from offchain.store import StoreError, WorkerStore

    try:
        deployment = Deployment.load(settings.deployment)
    except (DeploymentError, OSError, ValueError) as exc:
        msg = f"cannot read the deployment file {settings.deployment}: {exc} (run `ami deploy`)"
        raise DaemonError(msg) from None
    try:
        password = settings.signing_key_password.get_secret_value() if settings.signing_key_password else None
        keypair = load_keypair(settings.signing_key.get_secret_value(), password)
    except Exception as exc:  # the key loader's own message never contains the secret
        raise DaemonError(f"cannot load the signing key: {type(exc).__name__}: {exc}") from None
    try:
        store = await WorkerStore.open(settings.db_path)
    except StoreError as exc:
        raise DaemonError(str(exc)) from exc
    port = SubstrateChainPort(settings.node_url)
    ipfs = IpfsClient(settings.ipfs_api_url)
    submitter = Submitter(port, keypair, outbox_path(settings), rewards=deployment.rewards)
    scorer = None
    try:
        await submitter.open()
        abis = {
            deployment.nft: ContractAbi.load("ami_nft"),
            deployment.rewards: ContractAbi.load("ami_rewards"),
        }
        scorer = scorer_factory(settings, store)
        worker = Worker(
            store,
            ChainBlockSource(port, abis, retry_delay_s=settings.backoff_initial_s),
            IpfsContentFetcher(ipfs),
            scorer,
            SubmitterScorePublisher(submitter, deployment.rewards),
            SubmitterPayoutSink(submitter),
            WorkerOptions.from_settings(settings),
            metrics=metrics,
        )
        yield Assembled(worker, submitter, port, ipfs, deployment)
    finally:
        if scorer is not None and hasattr(scorer, "close"):
            with contextlib.suppress(Exception):
                await scorer.close()
        await submitter.close()
        await ipfs.close()
        await port.close()
        await store.close()


async def run_worker(a: Assembled, settings: WorkerSettings, stop: asyncio.Event) -> None:
    """Run worker + submitter + HTTP until `stop` is set; then let the in-flight batch finish."""
    from offchain.http import bound_port, start_http

    runner = await start_http(a.worker, settings.http_host, settings.http_port)
    log.info("daemon.http", host=settings.http_host, port=bound_port(runner))
    sub_stop = asyncio.Event()
    worker_task = asyncio.create_task(a.worker.run())
    sub_task = asyncio.create_task(a.submitter.run(sub_stop))
    try:
        await stop.wait()
    finally:
        a.worker.stop()
        await worker_task
        sub_stop.set()
        await sub_task
        await runner.cleanup()


async def run_daemon(settings: WorkerSettings) -> None:
    """`ami run`: until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("daemon.start", config=settings.redacted())
    async with assemble(settings) as a:
        await check_chain(a)
        await run_worker(a, settings, stop)
    log.info("daemon.stopped")


async def check_chain(a: Assembled) -> None:
    """Refuse to start on another chain than the deployment's (an unreachable node is waited out later)."""
    from ami_node.port import ChainError

    try:
        genesis = await a.port.block_hash(0)
    except ChainError as exc:
        log.warning("daemon.genesis_unchecked", error=str(exc))
        return
    if genesis is not None and genesis.lower() != a.deployment.genesis_hash.lower():
        raise DaemonError(
            f"the node at {a.deployment.url} has genesis {genesis}, but the deployment file was written for "
            f"{a.deployment.genesis_hash}: point node_url at the deployment's chain or run `ami deploy`"
        )
