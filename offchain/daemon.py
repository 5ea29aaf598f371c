"""`ami run`: assemble the worker from the real adapters (chain, IPFS, scorer, submitter) and run it until
SIGTERM/SIGINT, serving /healthz, /readyz and /metrics on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ami_node.abi import ContractAbi
from ami_node.deployment import Deployment, DeploymentError
from ami_node.keys import load_keypair
from ami_node.port import ChainError
from ami_node.submitter import Submitter, SubmitterError
from ami_node.substrate import SubstrateChainPort
from offchain.config import WorkerSettings, torch_device
from offchain.http import bound_port, start_http
from offchain.ipfs.client import IpfsClient
from offchain.metrics import WorkerMetrics
from offchain.pipeline.adapters import (
    ChainBlockSource,
    IpfsContentFetcher,
    SubmitterPayoutSink,
    SubmitterScorePublisher,
)
from offchain.pipeline.catalogue_rebuild import (
    CatalogueUnusable,
    RebuildReport,
    catalogue_dir,
    check_catalogue,
    rebuild_catalogue,
)
from offchain.pipeline.options import WorkerOptions
from offchain.pipeline.scoring import EngineTrackScorer
from offchain.pipeline.worker import Worker
from offchain.sqlite import instance_lock
from offchain.store import StoreError, WorkerStore

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
    account: str = ""


def default_scorer(settings: WorkerSettings, worker_store: Any) -> Any:
    """The scoring stage's TrackScorer (scoring engine in a process pool): offchain/pipeline/scoring.py."""
    return EngineTrackScorer(catalogue_dir(settings.db_path), device=settings.device)


@contextlib.asynccontextmanager
async def assemble(
    settings: WorkerSettings,
    *,
    scorer_factory: Callable[[WorkerSettings, Any], Any] = default_scorer,
    metrics: WorkerMetrics | None = None,
) -> AsyncIterator[Assembled]:
    """Open every resource the worker needs, yield them wired together, close them all on exit."""
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
        if isinstance(scorer, EngineTrackScorer):
            # An older model's (or a damaged, or a lost) catalogue: refuse to start, naming the fix; scoring
            # would otherwise reject every new track or measure it against an empty catalogue.
            try:
                await check_catalogue(Path(scorer.catalogue_dir), store)
            except CatalogueUnusable as exc:
                raise DaemonError(str(exc)) from None
        worker = Worker(
            store,
            ChainBlockSource(port, abis, retry_delay_s=settings.backoff_initial_s),
            IpfsContentFetcher(ipfs),
            scorer,
            SubmitterScorePublisher(submitter, deployment.rewards),
            SubmitterPayoutSink(submitter),
            WorkerOptions.from_settings(settings),
            metrics=metrics or WorkerMetrics(),
        )
        yield Assembled(worker, submitter, port, ipfs, deployment, keypair.address)
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
    runner = await start_http(a.worker, settings.http_host, settings.http_port)
    log.info("daemon.http", host=settings.http_host, port=bound_port(runner))
    sub_stop = asyncio.Event()
    worker_task = asyncio.create_task(a.worker.run())
    sub_task = asyncio.create_task(a.submitter.run(sub_stop))
    watch_task = asyncio.create_task(watch_outbox(a, sub_stop))
    try:
        await stop.wait()
    finally:
        a.worker.stop()
        await worker_task
        sub_stop.set()
        await sub_task
        await watch_task
        await runner.cleanup()


def outbox_failures(path: Path) -> dict[str, list[dict[str, str]]]:
    """Payouts and contract calls (score submissions) the submitter gave up on, read-only from its outbox:
    {"payouts": [{"id", "error"}], "calls": [{"key", "error"}]}; empty lists when there is no outbox yet."""
    out: dict[str, list[dict[str, str]]] = {"payouts": [], "calls": []}
    if not path.exists():
        return out
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        with contextlib.suppress(sqlite3.OperationalError):  # an outbox whose tables do not exist yet
            for pid, err in conn.execute("SELECT id, error FROM payouts WHERE state='failed' ORDER BY seq"):
                out["payouts"].append({"id": "0x" + bytes(pid).hex(), "error": str(err)})
            for key, err in conn.execute("SELECT key, error FROM calls WHERE state='failed' ORDER BY seq"):
                out["calls"].append({"key": str(key), "error": str(err)})
    finally:
        conn.close()
    return out


async def watch_outbox(a: Assembled, stop: asyncio.Event, poll_s: float = 2.0) -> None:
    """Show reverted submissions in /metrics and /readyz until they are requeued (`ami requeue`)."""
    path = Path(a.submitter.db_path)
    while not stop.is_set():
        try:
            failed = await asyncio.to_thread(outbox_failures, path)
        except sqlite3.Error as exc:  # a locked or damaged outbox is reported, never fatal
            a.worker.last_error["submitter"] = f"cannot read the outbox: {exc}"
        else:
            a.worker.metrics.submissions_failed.labels("payouts").set(len(failed["payouts"]))
            a.worker.metrics.submissions_failed.labels("calls").set(len(failed["calls"]))
            if failed["payouts"] or failed["calls"]:
                first = (failed["payouts"] or failed["calls"])[0]["error"]
                a.worker.last_error["submitter"] = (
                    f"{len(failed['payouts'])} payouts and {len(failed['calls'])} contract calls failed on "
                    f"chain (first: {first[:200]}); see `ami status`, fix the cause, then `ami requeue`"
                )
            else:
                a.worker.last_error.pop("submitter", None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_s)


async def requeue(settings: WorkerSettings) -> dict[str, Any]:
    """`ami requeue`: put every failed payout and contract call of the worker's outbox back to pending, so
    that the running (or next) `ami run` sends it again. The contract refuses a payout id it has already
    paid, and the submitter closes a row only on its finalized event, so each is paid exactly once."""
    path = outbox_path(settings)
    if not path.exists():
        raise DaemonError(f"no outbox at {path} (has `ami run` started with this configuration?)")
    try:
        password = settings.signing_key_password.get_secret_value() if settings.signing_key_password else None
        keypair = load_keypair(settings.signing_key.get_secret_value(), password)
    except Exception as exc:  # the key loader's own message never contains the secret
        raise DaemonError(f"cannot load the signing key: {type(exc).__name__}: {exc}") from None
    failed = await asyncio.to_thread(outbox_failures, path)
    # The outbox is keyed by signer; requeueing needs no chain connection (the port is never used here).
    port = SubstrateChainPort(settings.node_url)
    sub = Submitter(port, keypair, path, rewards=None)
    try:
        await sub.open()
        n = await sub.requeue_failed()
    except SubmitterError as exc:
        raise DaemonError(str(exc)) from None
    finally:
        await sub.close()
        await port.close()
    return {"requeued": n, **failed}


async def rebuild(
    settings: WorkerSettings, progress: Callable[[int, int], None] | None = None
) -> RebuildReport:
    """`ami rebuild-catalogue`: rebuild the worker's catalogue from its database and IPFS with the current
    model, holding the daemon's instance lock throughout, so that `ami run` cannot start meanwhile (and a
    running one makes this stop with DatabaseLocked before anything is read)."""
    with instance_lock(settings.db_path, "ami run"):
        try:
            store = await WorkerStore.open(settings.db_path)
        except StoreError as exc:
            raise DaemonError(str(exc)) from exc
        ipfs = IpfsClient(settings.ipfs_api_url)
        try:
            return await rebuild_catalogue(
                store,
                catalogue_dir(settings.db_path),
                IpfsContentFetcher(ipfs),
                device=torch_device(settings.device),
                max_audio_bytes=settings.max_audio_bytes,
                progress=progress,
            )
        finally:
            await ipfs.close()
            await store.close()


async def run_daemon(settings: WorkerSettings) -> None:
    """`ami run`: until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("daemon.start", config=settings.redacted())
    async with assemble(settings) as a:
        await check_chain(a)
        await check_oracle(a)
        await run_worker(a, settings, stop)
    log.info("daemon.stopped")


async def check_chain(a: Assembled) -> None:
    """Refuse to start on another chain than the deployment's (an unreachable node is waited out later)."""
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


async def check_oracle(a: Assembled) -> None:
    """Refuse to start when the signing key is no oracle of the rewards contract: every score and payout it
    sent would revert with NotOracle. An unreachable node is waited out later, as for the genesis check."""
    abi = ContractAbi.load("ami_rewards")
    data = abi.encode_call("is_oracle", account=a.account)
    try:
        dry = await a.port.contract_dry_run(a.deployment.rewards, data, a.account)
    except ChainError as exc:
        log.warning("daemon.oracle_unchecked", error=str(exc))
        return
    is_oracle = bool(abi.decode_return("is_oracle", dry.output)) if dry.success else False
    if not is_oracle:
        raise DaemonError(
            f"the signing key's account {a.account} is not an oracle of the rewards contract "
            f"{a.deployment.rewards}, so every score and payout it sent would revert (NotOracle). Grant the "
            f"role with the contract owner's key: `ami call rewards add_oracle "
            f'\'{{"account": "{a.account}"}}\' --key <owner key>`, then start `ami run` again'
        )
