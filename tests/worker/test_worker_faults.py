"""Fault tests on the devnet's switches and the real IPFS node: dropped connections, skipped and delayed
finality, pool rejections, the IPFS node stopped and restarted mid-run. The worker keeps going, every track
is scored once, every payout paid once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from chain_reads import finalized_paid_counts, paid_ids
from waiting import Calls, until
from worker_process import HashScorer, worker_running, worker_settings

from offchain.ipfs.node import JSNODE_DIR

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    """The js-ipfs node comes with scripts/setup.sh; without it this is a failure, not a skip."""
    if not (JSNODE_DIR / "node_modules").is_dir():
        pytest.fail("the js-ipfs npm folder is missing: run ./scripts/setup.sh")


def test_worker_rides_out_chain_and_ipfs_faults(tmp_path: Path) -> None:
    from ami_node.devnet.testing import running_devnet
    from offchain.ipfs.node import LocalIpfsNode

    with running_devnet() as dn, LocalIpfsNode(tmp_path / "ipfs") as node:
        asyncio.run(_scenario(dn, node, tmp_path))


async def _scenario(dn: Any, node: Any, tmp: Path) -> None:
    from ami_node.deploy import default_bundles, deploy
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort
    from offchain.config import load_settings
    from offchain.daemon import assemble
    from offchain.demo import Actor, DemoChain
    from offchain.ipfs.client import IpfsClient

    port = SubstrateChainPort(dn.url)
    dep = await deploy(port, load_keypair("//Alice"), dn.url, default_bundles(), 120)
    dep.save(tmp / "deployment.json")
    chain = DemoChain(port, dep)
    bob, ann, ben = (Actor(n, load_keypair(f"//{n}")) for n in ("Bob", "Charlie", "Dave"))
    async with IpfsClient(node.api_url) as ipfs:
        cids = [await ipfs.add(f"fault track {i}".encode() * 50) for i in range(5)]
    settings = load_settings(
        None, **worker_settings(dn.url, node.api_url, tmp, epoch_blocks=40, http_port=0, backoff_max_s=1.0)
    )
    async with assemble(settings, scorer_factory=lambda s, st: HashScorer()) as a:
        store = a.worker.store

        async def statuses() -> dict[int, str]:
            return {t.token_id: t.status for t in await store.tracks()}

        async with worker_running(a, settings):
            # 1. Dropped connections and skipped finality notices while two tracks are minted and scored.
            dn.set_faults(drop_every_n_messages=50, skip_finalized_notices=3)
            for cid in cids[:2]:
                await chain.nft_tx(
                    bob, "mint", audio_cid=cid, metadata_cid=cid, royalty_splits=[(bob.address, 10000)]
                )
            await until(lambda: _all(statuses, 2, "published"), "two tracks published", 60)
            dn.set_faults(drop_every_n_messages=0)
            # 2. The IPFS node goes away: new mints wait (never rejected), then score once it is back.
            await asyncio.to_thread(node.stop)
            for cid in cids[2:]:
                await chain.nft_tx(
                    bob, "mint", audio_cid=cid, metadata_cid=cid, royalty_splits=[(bob.address, 10000)]
                )
            await until(_ipfs_error(a), "the worker noticing IPFS is down", 30)
            assert all(s == "pending" for t, s in (await statuses()).items() if t > 2)
            await asyncio.to_thread(node.start)
            await until(lambda: _all(statuses, 5, "published"), "five tracks published", 90)
            # 3. Listens, then the epoch ends while finality is delayed and the pool rejects submissions.
            for who, tok in ((ann, 1), (ann, 2), (ben, 1), (ben, 3)):
                await chain.nft_tx(who, "listen", token_id=tok, seconds=90)
            dn.set_faults(finality_lag=3, reject_next=2, reject_code=1014)
            head = int(dn.call(lambda: dn.chain.best.number))
            dn.new_block(40 - head % 40 + 4)

            async def paid() -> bool:
                c = await store.counts()
                return c["epochs_settled"] >= 1 and c["payouts_pending"] == 0 and c["payouts_paid"] > 0

            async def paid_unfinalized() -> bool:
                """The epoch's Paid events are in blocks after the finalized head."""
                best, final = await port.best_head(), await port.finalized_head()
                unfinalized = range(final.number + 1, best.number + 1)
                return bool(await paid_ids(port, dep.rewards, chain.rewards, unfinalized))

            dn.set_faults(hold_finality=True)
            await until(paid_unfinalized, "the payouts landed in blocks that finality does not reach", 90)
            # Two more ticks of the submitter: one of them began after the payouts landed, and ran whole.
            await Calls(a.submitter, "tick").more(2, timeout=30)
            assert (await store.counts())["payouts_paid"] == 0  # nothing confirmed while finality is held
            dn.set_faults(hold_finality=False, finality_lag=0)
            dn.new_block(2)
            await until(paid, "payouts confirmed", 90)
        payouts = await store.payouts()
    # The chain's own Paid events: each of the worker's payouts exactly once.
    seen = await finalized_paid_counts(port, dep.rewards, chain.rewards)
    await port.close()
    assert seen == Counter("0x" + p.payout_id.hex() for p in payouts)
    assert {p.status for p in payouts} == {"paid"}


async def _all(statuses: Callable[[], Awaitable[dict[int, str]]], n: int, status: str) -> bool:
    got = await statuses()
    return len(got) >= n and sum(1 for s in got.values() if s == status) >= n


def _ipfs_error(a: Any) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return "ipfs" in a.worker.last_error

    return check
