"""Worker pipeline benchmark: listen events ingested per second, from devnet blocks and from encoded blocks,
and the worker's resident memory after 100,000 events.

    .venv/bin/python bench/pipeline.py [--events 100000] [--devnet-listens 5000]

Two measurements, each with a baseline from the same run:
1. devnet: listens submitted as Utility.batch_all of Contracts.call(listen) on the local devnet; then a fresh
   worker (real BlockFollower over substrate-interface, real SQLite store) catches up from block 1. Baseline:
   fetching the same blocks through the chain port without decoding or storing (the RPC floor).
2. encoded: `--events` ink! Listened events (real SCALE topics + data) in blocks of 500, decoded by
   ami_node.events.decode_block and written by a running Worker (batched transactions), as in production.
   Baseline: decoding alone (the chain layer's share). Then the process's resident memory (< 500 MB).
Targets: >= 5,000 listen events/s ingested on 2 cores; < 500 MB resident after 100,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def encoded_blocks(n_events: int, per_block: int, contract: str) -> list[Any]:
    from ami_node.port import Block, BlockRef, RawEvent
    from pallets_spec.abi import ContractAbi as SpecAbi

    spec = SpecAbi("ami_nft")
    ev = spec.contract.event("Listened")
    blocks = []
    n = 0
    number = 1
    while n < n_events:
        raws = []
        for i in range(min(per_block, n_events - n)):
            fields = {
                "token_id": 1 + n % 50,
                "listener": (n % 5000).to_bytes(32, "little"),
                "seconds": 30 + n % 200,
            }
            raws.append(
                RawEvent(
                    i,
                    "Contracts",
                    "ContractEmitted",
                    {},
                    tuple(spec.event_topics(ev, fields)),
                    0,
                    contract=contract,
                    data=spec.encode_event_data(ev, fields),
                )
            )
            n += 1
        blocks.append(Block(BlockRef(number, f"0x{number:064x}"), f"0x{number - 1:064x}", (), tuple(raws)))
        number += 1
    return blocks


class EncodedSource:
    """A BlockSource that decodes pre-encoded blocks as the real follower does (events.decode_block)."""

    def __init__(self, blocks: list[Any], abis: dict[str, Any]) -> None:
        self.raw = blocks
        self.abis = abis

    async def blocks(self, start_after: tuple[int, str] | None) -> Any:
        from ami_node.events import decode_block
        from ami_node.follower import FollowedBlock
        from offchain.pipeline.adapters import to_block_data

        for b in self.raw:
            if start_after and b.ref.number <= start_after[0]:
                continue
            yield to_block_data(FollowedBlock(b.ref, decode_block(b, self.abis), b))
            await asyncio.sleep(0)
        await asyncio.Event().wait()

    async def finalized_number(self) -> int:
        return len(self.raw)


async def bench_encoded(n_events: int) -> dict[str, Any]:
    from ami_node.abi import ContractAbi
    from ami_node.events import decode_block
    from ami_node.follower import FollowedBlock
    from offchain.pipeline.adapters import to_block_data
    from offchain.pipeline.worker import Worker, WorkerOptions
    from offchain.store import WorkerStore

    contract = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
    abis = {contract: ContractAbi.load("ami_nft")}
    blocks = encoded_blocks(n_events, 500, contract)
    with tempfile.TemporaryDirectory() as tmp:
        store = await WorkerStore.open(Path(tmp) / "a.sqlite")
        worker = Worker(
            store,
            EncodedSource(blocks, abis),
            None,
            None,
            None,
            None,  # type: ignore[arg-type]
            WorkerOptions(epoch_blocks=10**9, scoring_workers=1, poll_s=0.05),
        )
        t0 = time.perf_counter()
        task = asyncio.create_task(worker.run())
        while True:
            cp = await store.checkpoint()
            if cp and cp[0] >= len(blocks):
                break
            await asyncio.sleep(0.02)
        full = time.perf_counter() - t0
        rss = rss_mb()
        worker.stop()
        await asyncio.wait_for(task, 30)
        stored = (await store.counts())["listens"]
        await store.close()
        # Baseline: decoding alone, on the same blocks (the chain layer's share of the cost).
        t0 = time.perf_counter()
        for b in blocks[:40]:
            to_block_data(FollowedBlock(b.ref, decode_block(b, abis), b))
        decode_only = sum(len(b.events) for b in blocks[:40]) / (time.perf_counter() - t0)
    rate = stored / full
    return {
        "events": stored,
        "ingest_events_per_s": round(rate),
        "decode_only_events_per_s": round(decode_only),
        "ratio_vs_decode_only": round(rate / decode_only, 3),
        "target_events_per_s": 5000,
        "ratio_vs_target": round(rate / 5000, 2),
        "rss_mb_after": round(rss, 1),
        "rss_target_mb": 500,
    }


async def bench_devnet(n_listens: int, batch: int = 250) -> dict[str, Any]:
    from ami_node.devnet.testing import running_devnet
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort
    from ami_node.tx import send_call
    from offchain.cli.chain import _default_bundles, deploy
    from offchain.demo import Actor, DemoChain
    from offchain.pipeline.adapters import ChainBlockSource
    from offchain.pipeline.worker import Worker, WorkerOptions
    from offchain.store import WorkerStore

    alice, bob = load_keypair("//Alice"), load_keypair("//Bob")
    with running_devnet() as dn, tempfile.TemporaryDirectory() as tmp:
        port = SubstrateChainPort(dn.url)
        dep = await deploy(port, alice, dn.url, _default_bundles(), 120)
        chain = DemoChain(port, dep)
        token = await chain.nft_tx(
            Actor("Bob", bob),
            "mint",
            audio_cid="QmBench",
            metadata_cid="QmBench",
            royalty_splits=[(bob.address, 10000)],
        )
        data = chain.nft.encode_call("listen", token_id=int(token), seconds=45)
        dry = await port.contract_dry_run(dep.nft, data, alice.address)
        gas = (dry.gas_required[0] * 2, dry.gas_required[1] * 2)
        t0 = time.perf_counter()
        done = 0
        while done < n_listens:
            k = min(batch, n_listens - done)
            one = await port.contract_call(dep.nft, data, gas)
            await send_call(port, alice, await port.batch_all([one] * k), timeout_s=120)
            done += k
        submit_s = time.perf_counter() - t0
        head = (await port.finalized_head()).number
        abis = {dep.nft: chain.nft, dep.rewards: chain.rewards}

        t0 = time.perf_counter()
        for n in range(1, head + 1):
            await port.block(n)
        fetch_s = time.perf_counter() - t0

        store = await WorkerStore.open(Path(tmp) / "w.sqlite")
        worker = Worker(
            store,
            ChainBlockSource(port, abis),
            None,
            None,
            None,
            None,  # type: ignore[arg-type]
            WorkerOptions(epoch_blocks=10**9, scoring_workers=1),
        )
        t0 = time.perf_counter()
        task = asyncio.create_task(worker.run())
        while True:
            cp = await store.checkpoint()
            if cp and cp[0] >= head:
                break
            await asyncio.sleep(0.05)
        ingest_s = time.perf_counter() - t0
        listens = (await store.counts())["listens"]
        worker.stop()
        await asyncio.wait_for(task, 30)
        await store.close()
        await port.close()
    return {
        "listens": listens,
        "blocks": head,
        "submit_s": round(submit_s, 2),
        "ingest_events_per_s": round(listens / ingest_s),
        "rpc_fetch_only_events_per_s": round(listens / fetch_s),
        "ratio_vs_rpc_fetch_only": round(fetch_s / ingest_s, 3),
        "ratio_vs_target": round(listens / ingest_s / 5000, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--devnet-listens", type=int, default=5_000)
    args = ap.parse_args()
    from offchain.logging import configure_logging

    configure_logging("error")
    out: dict[str, Any] = {}
    if args.devnet_listens > 0:
        out["devnet"] = asyncio.run(bench_devnet(args.devnet_listens))
        print(json.dumps({"devnet": out["devnet"]}), flush=True)
    out["encoded"] = asyncio.run(bench_encoded(args.events))
    print(json.dumps({"encoded": out["encoded"]}), flush=True)


if __name__ == "__main__":
    main()
