"""Chaos: the worker killed with SIGKILL at random moments >= 20 times over >= 2,000 listens and 50 mints.

At the end the chain's Paid events must equal the payouts the policy computes from the chain's own events:
none missing, none doubled. Takes about 1.5 to 5 minutes, so it carries the `slow` marker (`-m "not slow"`
leaves it out while iterating); the full suite and CI run it. What it exercises (store idempotence, restarts,
outbox, submitter confirmation) also has fast tests in this folder.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from worker_process import WORKER_PROCESS, worker_settings

pytestmark = [pytest.mark.slow]

KILLS = 20
LISTENS_PER_ROUND = 110
MINTS = 50
EPOCH = 12


def _db_state(db: Path) -> dict[str, Any]:
    if not db.exists():
        return {"epochs": [], "pending": -1}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        epochs = [r[0] for r in con.execute("SELECT epoch FROM epochs ORDER BY epoch")]
        pending = con.execute("SELECT COUNT(*) FROM payouts WHERE status!='paid'").fetchone()[0]
        cp = con.execute("SELECT block_number FROM checkpoint").fetchone()
    except sqlite3.OperationalError:
        return {"epochs": [], "pending": -1}
    finally:
        con.close()
    return {"epochs": epochs, "pending": pending, "checkpoint": cp[0] if cp else None}


def test_sigkill_chaos_pays_every_payout_exactly_once(tmp_path: Path) -> None:
    from ami_node.devnet.testing import running_devnet
    from offchain.ipfs.node import LocalIpfsNode

    rng = random.Random(20261127)
    with running_devnet() as dn, LocalIpfsNode(tmp_path / "ipfs") as node:
        world = asyncio.run(_setup(dn.url, node.api_url, tmp_path))
        settings = worker_settings(
            dn.url, node.api_url, tmp_path, epoch_blocks=EPOCH, http_port=0, backoff_max_s=1.0
        )

        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [sys.executable, str(WORKER_PROCESS), json.dumps(settings)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        listens = 0
        for _ in range(KILLS):
            proc = spawn()
            listens += asyncio.run(_listen_round(dn.url, world, rng, LISTENS_PER_ROUND))
            if rng.random() < 0.5:
                dn.new_block(rng.randint(1, EPOCH))
            time.sleep(rng.uniform(0.2, 2.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert listens >= 2000
        # Let the last epoch end, then one clean run until everything settled is paid.
        dn.new_block(EPOCH + 1)
        head = int(dn.call(lambda: dn.chain.finalized.number))
        last_complete = (head + 1) // EPOCH - 1
        proc = spawn()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                st = _db_state(tmp_path / "worker.sqlite")
                if st["epochs"] and st["epochs"][-1] >= last_complete and st["pending"] == 0:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"worker did not settle and pay in time: {st}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        settled = st["epochs"]
        expected, paid = asyncio.run(_truth(dn.url, world, settled))
    counts = Counter(pid for pid, _, _ in paid)
    assert not [pid for pid, n in counts.items() if n > 1], "a payout id was paid twice"
    assert {pid: (to, amount) for pid, to, amount in paid} == expected
    assert len(expected) > 50


async def _setup(url: str, ipfs_url: str, tmp: Path) -> dict[str, Any]:
    from ami_node.deploy import default_bundles, deploy
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort
    from ami_node.tx import send_call
    from offchain.demo import Actor, DemoChain
    from offchain.ipfs.client import IpfsClient

    port = SubstrateChainPort(url)
    try:
        dep = await deploy(port, load_keypair("//Alice"), url, default_bundles(), 120)
        dep.save(tmp / "deployment.json")
        chain = DemoChain(port, dep)
        listeners = [Actor(f"L{i}", load_keypair(f"//Listener{i}")) for i in range(12)]
        await chain.fund(Actor("Ferdie", load_keypair("//Ferdie")), listeners, 10**15)
        bob, charlie = load_keypair("//Bob"), load_keypair("//Charlie")
        calls = []
        async with IpfsClient(ipfs_url) as ipfs:
            for i in range(MINTS):
                cid = await ipfs.add(f"chaos track {i}".encode() * 20)
                splits = [(bob.address, 10000)] if i % 3 else [(bob.address, 6000), (charlie.address, 4000)]
                data = chain.nft.encode_call("mint", audio_cid=cid, metadata_cid=cid, royalty_splits=splits)
                dry = await port.contract_dry_run(dep.nft, data, bob.address)
                calls.append(
                    await port.contract_call(
                        dep.nft, data, (dry.gas_required[0] * 2, dry.gas_required[1] * 2)
                    )
                )
        await send_call(port, bob, await port.batch_all(calls), timeout_s=120)
        total = await chain.query("nft", "total_supply", Actor("Bob", bob))
        assert int(total) == MINTS
        return {
            "nft": dep.nft,
            "rewards": dep.rewards,
            "tokens": list(range(1, MINTS + 1)),
            "listeners": [f"//Listener{i}" for i in range(12)],
        }
    finally:
        await port.close()


async def _listen_round(url: str, world: dict[str, Any], rng: random.Random, n: int) -> int:
    from ami_node.abi import ContractAbi
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort
    from ami_node.tx import send_call

    nft = ContractAbi.load("ami_nft")
    port = SubstrateChainPort(url)
    try:
        who = load_keypair(rng.choice(world["listeners"]))
        calls = []
        gas = None
        for _ in range(n):
            data = nft.encode_call(
                "listen", token_id=rng.choice(world["tokens"][:20]), seconds=rng.randint(5, 300)
            )
            if gas is None:
                dry = await port.contract_dry_run(world["nft"], data, who.address)
                gas = (dry.gas_required[0] * 2, dry.gas_required[1] * 2)
            calls.append(await port.contract_call(world["nft"], data, gas))
        await send_call(port, who, await port.batch_all(calls), timeout_s=120)
        return n
    finally:
        await port.close()


async def _truth(
    url: str, world: dict[str, Any], epochs: list[int]
) -> tuple[dict[str, tuple[str, int]], list[tuple[str, str, int]]]:
    """(payouts the policy computes from the chain's events, Paid events actually on chain)."""
    import tempfile

    from ami_node.abi import ContractAbi
    from ami_node.events import Paid, decode_block
    from ami_node.follower import FollowedBlock
    from ami_node.substrate import SubstrateChainPort
    from offchain.config import WorkerSettings
    from offchain.economics import settle_epoch
    from offchain.pipeline.adapters import to_block_data
    from offchain.pipeline.worker import WorkerOptions
    from offchain.store import WorkerStore

    abis = {world["nft"]: ContractAbi.load("ami_nft"), world["rewards"]: ContractAbi.load("ami_rewards")}
    port = SubstrateChainPort(url)
    paid: list[tuple[str, str, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = await WorkerStore.open(Path(tmp) / "ref.sqlite")
        try:
            head = (await port.finalized_head()).number
            for n in range(1, head + 1):
                block = await port.block(n)
                events = decode_block(block, abis)
                paid += [(e.payout_id, e.to, e.amount) for e in events if isinstance(e, Paid)]
                await store.ingest([to_block_data(FollowedBlock(block.ref, events, block))])
            opts = WorkerOptions.from_settings(WorkerSettings(epoch_blocks=EPOCH))
            expected: dict[str, tuple[str, int]] = {}
            for e in epochs:
                s = settle_epoch(await store.epoch_input(e, EPOCH), opts.policy)
                expected.update({"0x" + p.payout_id.hex(): (p.account, p.amount) for p in s.payouts})
        finally:
            await store.close()
            await port.close()
    return expected, paid
