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
from typing import TYPE_CHECKING, Any

import structlog

from offchain.audit.auditor import AuditOptions, Auditor
from offchain.audit.db import ValidatorDb, ValidatorDbError
from offchain.audit.rescore import RescoreError, Rescorer, engine_rescorers
from offchain.audit.validator import ContractChallenger, Validator

if TYPE_CHECKING:
    from offchain.config import WorkerSettings

log = structlog.get_logger("ami.audit")

DEFAULT_DB_DIR = Path(".ami/validator")


class ValidatorSetupError(Exception):
    """The validator cannot start (deployment missing, database unusable, bad key); the message says why."""


def audit_options(settings: WorkerSettings, grace_blocks: int | None = None) -> AuditOptions:
    """The worker's policy parameters, taken from its settings the way the worker takes them."""
    from offchain.pipeline.worker import WorkerOptions

    wo = WorkerOptions.from_settings(settings)
    return AuditOptions(
        epoch_blocks=settings.epoch_blocks,
        policy=wo.policy(),
        max_audio_bytes=settings.max_audio_bytes,
        grace_blocks=grace_blocks,
    )


def default_rescorers(settings: WorkerSettings) -> tuple[dict[int, Rescorer], str | None]:
    """The scoring engine's rescorers, or none (with the reason) when the engine is not installed."""
    device = None if settings.device == "auto" else settings.device
    try:
        return dict(engine_rescorers(device)), None
    except RescoreError as exc:
        return {}, str(exc)


@asynccontextmanager
async def open_validator(
    settings: WorkerSettings,
    *,
    db_dir: Path = DEFAULT_DB_DIR,
    key: str | None = None,
    grace_blocks: int | None = None,
    rescorers: Mapping[int, Rescorer] | None = None,
    port: Any = None,
    content: Any = None,
) -> AsyncIterator[Validator]:
    """A ready Validator over real adapters (or the given `port` / `content`), closed on exit.

    `key` None builds an audit-only validator that never challenges.
    """
    from ami_node.abi import ContractAbi
    from ami_node.deployment import Deployment, DeploymentError
    from ami_node.keys import KeyLoadError, load_keypair
    from offchain.store import StoreError, WorkerStore

    try:
        deployment = Deployment.load(settings.deployment)
    except DeploymentError as exc:
        raise ValidatorSetupError(str(exc)) from None
    keypair = None
    if key is not None:
        try:
            keypair = load_keypair(key)
        except KeyLoadError as exc:
            raise ValidatorSetupError(f"validator key: {exc}") from None
    if rescorers is None:
        rescorers, why = default_rescorers(settings)
        if why:
            log.warning("audit.no_rescorer", reason=why, effect="every score is reported unverifiable")
    own_port = port is None
    if own_port:
        from ami_node.substrate import SubstrateChainPort

        port = SubstrateChainPort(settings.node_url)
    own_content = content is None
    if own_content:
        from offchain.ipfs.client import IpfsClient

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
