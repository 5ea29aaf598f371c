"""`ami audit` end to end over the in-memory world (only the node and IPFS adapters swapped for the memory
ones): JSON report with evidence and exit status 1 on a mismatch, a table, selection by token and by epoch."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from scripted_worker import ScriptedWorker, Tamper, nudge, run_scenario
from typer.testing import CliRunner
from validator_world import MODEL_VERSION, POLICY, HashRescorer, World

from ami_node.deployment import Deployment
from offchain.audit import service
from offchain.cli import app
from pallets_spec.vocabulary import PayoutKind


async def _world(tmp: Path) -> World:
    world = await World.create(tmp)
    await run_scenario(world, await ScriptedWorker.open(world, Tamper(score=nudge(2))))
    await world.close()
    return world


def test_ami_audit_reports_json_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = asyncio.run(_world(tmp_path))
    Deployment(
        url="ws://127.0.0.1:9944",
        genesis_hash="0x" + "00" * 32,
        nft=world.nft,
        rewards=world.rewards,
        deployer=world.oracle.address,
    ).save(tmp_path / "deployment.json")
    env = {
        "AMI_DEPLOYMENT": str(tmp_path / "deployment.json"),
        "AMI_EPOCH_BLOCKS": "20",
        "AMI_CAPS__LISTEN_REWARD_PER_WALLET": str(POLICY.listen_reward_per_wallet),
        **{f"AMI_BUDGETS__{k.name}": str(v) for k, v in POLICY.budgets.items()},
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from offchain.config import load_settings

    assert service.audit_options(load_settings()).policy == POLICY
    assert set(POLICY.budgets) == set(PayoutKind)
    real = service.open_validator

    def memory_validator(settings: Any, **kw: Any) -> AbstractAsyncContextManager[Any]:
        return real(
            settings, port=world.port, content=world.ipfs, rescorers={MODEL_VERSION: HashRescorer()}, **kw
        )

    monkeypatch.setattr(service, "open_validator", memory_validator)
    runner = CliRunner()
    db = ["--db", str(tmp_path / "v")]

    res = runner.invoke(app, ["audit", "--json", *db])
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    status = {s["subject"]: s["status"] for s in report["subjects"]}
    assert status["score:2:7"] == "mismatch" and status["score:1:7"] == "match"
    assert {status[f"epoch:{e}"] for e in (0, 1, 2)} == {"match"}
    bad = next(s for s in report["subjects"] if s["subject"] == "score:2:7")
    assert bad["findings"][0]["kind"] == "score_mismatch" and bad["evidence_commitment"].startswith("0x")

    res = runner.invoke(app, ["audit", "--epoch", "1", *db])
    assert res.exit_code == 0, res.output
    assert "epoch:1" in res.stdout and "match" in res.stdout and "score:" not in res.stdout

    res = runner.invoke(app, ["audit", "--token", "2", *db])
    assert res.exit_code == 1
    assert "score_mismatch" in res.stdout and "epoch:" not in res.stdout
    assert world.challenges_on_chain() == []  # `ami audit` never sends a transaction
