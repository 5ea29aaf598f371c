"""Benchmark: payouts settled per second, Submitter vs one-by-one `ContractInstance.exec`, in one devnet run.

Starts a local devnet (`ami devnet`, instant blocks, its own process), deploys the contracts, then
  * baseline: substrate-interface's `ContractInstance.exec` (dry run + signed Contracts.call, waiting for
    inclusion) for one `distribute` with one payout at a time;
  * submitter: the same kind of payouts queued in the Submitter's outbox and drained until every `Paid` event
    is seen in a finalized block.
Prints both rates and their ratio (target >= 20x).

    .venv/bin/python bench/submit.py [--baseline 50] [--payouts 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from substrateinterface import SubstrateInterface
from substrateinterface.contracts import ContractInstance

from ami_node.abi import metadata_dir
from ami_node.deploy import default_bundles, deploy
from ami_node.keys import load_keypair
from ami_node.submitter import Payout, Submitter
from ami_node.substrate import SubstrateChainPort

RECIPIENTS = ["//Bob", "//Charlie", "//Dave", "//Eve", "//Ferdie"]


def _payouts(epoch: int, n: int) -> list[Payout]:
    to = [load_keypair(s).address for s in RECIPIENTS]
    return [
        Payout(
            id=hashlib.sha256(f"bench:{epoch}:{i}".encode()).digest(),
            to=to[i % len(to)],
            amount=1000 + i,
            kind=1,
        )
        for i in range(n)
    ]


def baseline(url: str, rewards: str, n: int) -> float:
    """One payout per extrinsic through substrate-interface's ContractInstance.exec; returns payouts/s."""
    si = SubstrateInterface(url=url, ss58_format=42)
    contract = ContractInstance.create_from_address(
        contract_address=rewards, metadata_file=str(metadata_dir() / "ami_rewards.json"), substrate=si
    )
    alice = load_keypair("//Alice").substrate_keypair
    payouts = _payouts(1, n)
    start = time.perf_counter()
    for i, p in enumerate(payouts):
        receipt = contract.exec(
            alice,
            "distribute",
            args={
                "epoch": 1,
                "batch": i,
                "payouts": [{"id": "0x" + p.id.hex(), "to": p.to, "amount": p.amount, "kind": p.kind}],
            },
            wait_for_inclusion=True,
        )
        if not receipt.is_success:
            raise SystemExit(f"baseline exec failed: {receipt.error_message}")
    elapsed = time.perf_counter() - start
    si.close()
    return n / elapsed


async def with_submitter(url: str, rewards: str, n: int, db: Path) -> tuple[float, int]:
    """All payouts through the Submitter; returns (payouts/s, extrinsics used)."""
    port = SubstrateChainPort(url)
    try:
        async with Submitter(port, load_keypair("//Alice"), db, rewards=rewards, poll_s=0.05) as sub:
            start = time.perf_counter()
            await sub.enqueue_payouts(2, _payouts(2, n))
            counts = await sub.drain(timeout_s=600)
            elapsed = time.perf_counter() - start
            if counts.confirmed != n:
                raise SystemExit(f"submitter confirmed {counts.confirmed} of {n}: {counts}")
            return n / elapsed, sub.stats["txs_submitted"]
    finally:
        await port.close()


async def _deploy(url: str) -> str:
    port = SubstrateChainPort(url)
    try:
        dep = await deploy(port, load_keypair("//Alice"), url, default_bundles(), 120)
    finally:
        await port.close()
    return dep.rewards


@contextlib.contextmanager
def devnet_process() -> Iterator[str]:
    """`ami devnet` in its own process, like a real node (not sharing the benchmark's interpreter)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-c", "from offchain.cli import main; main()", "devnet", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("ami devnet did not start") from None
                time.sleep(0.2)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=int, default=50, help="payouts sent one by one")
    parser.add_argument("--payouts", type=int, default=3000, help="payouts sent through the submitter")
    args = parser.parse_args()

    with devnet_process() as url, tempfile.TemporaryDirectory() as tmp:
        rewards = asyncio.run(_deploy(url))
        base = baseline(url, rewards, args.baseline)
        rate, txs = asyncio.run(with_submitter(url, rewards, args.payouts, Path(tmp) / "outbox.db"))
    print(f"baseline  ContractInstance.exec one by one: {args.baseline} payouts, {base:8.1f} payouts/s")
    print(f"submitter batched distribute + batch_all:  {args.payouts} payouts, {rate:8.1f} payouts/s")
    print(f"          ({txs} extrinsics)")
    print(f"ratio {rate / base:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
