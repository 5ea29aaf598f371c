"""A real Substrate runtime, offline: chopsticks runs Rococo Asset Hub from its genesis spec (npm packages in
this folder, installed by scripts/setup.sh). `ami tx` and the Submitter must land signed transfers and a
batch_all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ami_node.keys import load_keypair
from ami_node.submitter import Submitter
from ami_node.substrate import SubstrateChainPort
from offchain.cli import app

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob").address
CHARLIE = load_keypair("//Charlie").address

pytestmark = [pytest.mark.slow]


def _free(url: str, who: str) -> int:
    async def go() -> int:
        async with SubstrateChainPort(url) as port:
            return await port.free_balance(who)

    return asyncio.run(go())


def test_ami_tx_lands_a_signed_transfer(chopsticks: str) -> None:
    before = _free(chopsticks, BOB)
    value = 10**10
    result = CliRunner().invoke(
        app,
        ["tx", "Balances", "transfer_keep_alive", json.dumps({"dest": BOB, "value": value})],
        env={"AMI_NODE_URL": chopsticks},
    )
    assert result.exit_code == 0, result.output
    assert "Balances.Transfer " in result.output and "System.ExtrinsicSuccess" in result.output
    assert _free(chopsticks, BOB) == before + value


async def test_submitter_lands_a_batch(chopsticks: str, tmp_path: Path) -> None:
    async with SubstrateChainPort(chopsticks) as port:
        before = {who: await port.free_balance(who) for who in (BOB, CHARLIE)}
        async with Submitter(port, ALICE, tmp_path / "o.db", rewards=None, poll_s=0.1) as sub:
            for i, who in enumerate([BOB, CHARLIE, BOB]):
                await sub.enqueue_runtime_call(
                    f"pay:{i}", "Balances", "transfer_keep_alive", {"dest": who, "value": 10**10 * (i + 1)}
                )
            counts = await sub.drain(120)
            assert sub.stats["txs_submitted"] == 1  # all three in one Utility.batch_all
        assert counts.confirmed == 3 and counts.failed == 0
        assert await port.free_balance(BOB) == before[BOB] + 4 * 10**10
        assert await port.free_balance(CHARLIE) == before[CHARLIE] + 2 * 10**10


def test_ten_concurrent_ami_tx_with_one_key_all_land(
    chopsticks: str, concurrent_transfers: Callable[..., list[Any]]
) -> None:
    """chopsticks accepts a second transaction with a pooled nonce and drops it silently (no 1014, no era
    end under instant seal): each loser must see its nonce used, sign again, and land."""
    before = _free(chopsticks, CHARLIE)
    values = [10**9 * (i + 1) for i in range(10)]
    # ten clients load a real runtime's metadata from one chopsticks on two cores, and the last of them
    # needs ten rounds (one winner a nonce, each round a few wasm-executed blocks): allow it time
    runs = concurrent_transfers(chopsticks, CHARLIE, values, rpc_timeout_s=90.0, timeout_s=600.0)
    assert all(r.code == 0 for r in runs), [r.output[-600:] for r in runs if r.code]
    assert all("may still land" not in r.output for r in runs)
    assert len({r.nonce for r in runs}) == 10
    assert _free(chopsticks, CHARLIE) == before + sum(values)
