"""The worker against hostile creators on the real local services (devnet + js-ipfs): a block of hostile
mints does not hold back another creator's honest track; a key without the oracle role is refused at start;
a payout that reverted is shown, and `ami requeue` pays it exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from chain_reads import finalized_paid_counts
from hostile_world import run_scenario
from waiting import until
from worker_process import HashScorer, worker_running, worker_settings

pytestmark = [pytest.mark.slow]


def test_hostile_block_does_not_hold_back_an_honest_track(tmp_path: Path) -> None:
    got = run_scenario(tmp_path, n=60, scorer="hash", timeout_s=300)
    verdicts = got["hostile_verdicts"]
    # When the honest track was published, the strings and directories had their verdicts already, and
    # most of the missing content was still waiting (node timeouts, then the retry lane): the honest track
    # did not queue behind them.
    assert verdicts.get("rejected:bad_cid") == 6, verdicts
    assert verdicts.get("rejected:not_a_file") == 12, verdicts
    assert verdicts.get("pending", 0) >= 30, verdicts
    assert got["readyz_at_publish"] == (200, [])  # directories and missing content jam nothing
    assert got["worker_exit"] == 0


def _settings(dn: Any, ipfs_url: str, tmp: Path, key: str = "//Alice") -> Any:
    from offchain.config import load_settings

    return load_settings(
        None,
        **worker_settings(
            dn.url, ipfs_url, tmp, signing_key=key, epoch_blocks=30, http_port=0, backoff_max_s=1.0
        ),
    )


async def _deploy(url: str, tmp: Path) -> Any:
    from ami_node.deploy import default_bundles, deploy
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort

    port = SubstrateChainPort(url)
    try:
        dep = await deploy(port, load_keypair("//Alice"), url, default_bundles(), 120)
        dep.save(tmp / "deployment.json")
        return dep
    finally:
        await port.close()


def test_a_key_without_the_oracle_role_is_refused_at_start(tmp_path: Path) -> None:
    from ami_node.devnet.testing import running_devnet
    from ami_node.keys import load_keypair
    from offchain.daemon import DaemonError, run_daemon
    from offchain.ipfs.node import free_port

    dave = load_keypair("//Dave").address
    with running_devnet() as dn:
        dep = asyncio.run(_deploy(dn.url, tmp_path))
        settings = _settings(dn, f"http://127.0.0.1:{free_port()}", tmp_path, key="//Dave")
        with pytest.raises(DaemonError) as info:
            asyncio.run(run_daemon(settings))
    message = str(info.value)
    assert dave in message and dep.rewards in message and "add_oracle" in message


def test_a_reverted_payout_is_shown_and_requeue_pays_it_exactly_once(tmp_path: Path) -> None:
    from ami_node.devnet.testing import running_devnet
    from offchain.ipfs.node import LocalIpfsNode

    with running_devnet() as dn, LocalIpfsNode(tmp_path / "ipfs") as node:
        asyncio.run(_requeue_scenario(dn, node.api_url, tmp_path))


async def _requeue_scenario(dn: Any, ipfs_url: str, tmp: Path) -> None:
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort
    from ami_node.tx import contract_tx
    from offchain.cli.worker import _status
    from offchain.daemon import assemble, outbox_failures, outbox_path, requeue
    from offchain.demo import Actor, DemoChain
    from offchain.ipfs.client import IpfsClient

    dep = await _deploy(dn.url, tmp)
    port = SubstrateChainPort(dn.url)
    chain = DemoChain(port, dep)
    # The contract owner (Alice) grants and revokes the role; the worker signs with its own key (Ferdie), so
    # that the two never race for one nonce.
    alice, ferdie = load_keypair("//Alice"), load_keypair("//Ferdie")
    role = {"account": ferdie.address}
    await contract_tx(port, alice, chain.rewards, dep.rewards, "add_oracle", role)
    bob, carol, dave = (Actor(n, load_keypair(f"//{n}")) for n in ("Bob", "Charlie", "Dave"))
    async with IpfsClient(ipfs_url) as ipfs:
        cid = await ipfs.add(b"an honest track " * 64)
    settings = _settings(dn, ipfs_url, tmp, key="//Ferdie")
    async with assemble(settings, scorer_factory=lambda s, st: HashScorer()) as a:
        store = a.worker.store
        async with worker_running(a, settings):
            await chain.nft_tx(
                bob, "mint", audio_cid=cid, metadata_cid=cid, royalty_splits=[(bob.address, 10000)]
            )

            async def published() -> bool:
                t = await store.track(1)
                return t is not None and t.status == "published"

            await until(published, "the track published", 120)
            for who in (carol, dave):
                await chain.nft_tx(who, "listen", token_id=1, seconds=120)
            # The worker's key loses its oracle role before the epoch's payouts are sent.
            await contract_tx(port, alice, chain.rewards, dep.rewards, "remove_oracle", role)
            head = int(dn.call(lambda: dn.chain.best.number))
            dn.new_block(30 - head % 30 + 2)

            async def failed() -> bool:
                return bool((await asyncio.to_thread(outbox_failures, outbox_path(settings)))["payouts"])

            await until(failed, "payouts failed on chain", 120)

            async def shown() -> bool:
                return "submitter" in a.worker.last_error

            await until(shown, "/readyz showing the failure", 10)
            assert "NotOracle" in a.worker.last_error["submitter"]
            metrics = a.worker.metrics.render().decode()
            assert 'ami_worker_submissions_failed{what="payouts"}' in metrics
            assert 'ami_worker_submissions_failed{what="payouts"} 0.0' not in metrics
            status = await _status(settings)
            failed_ids = {p["id"] for p in status["problems"]["failed_payouts"]}
            assert failed_ids and all("NotOracle" in p["error"] for p in status["problems"]["failed_payouts"])
            # The operator grants the role again and requeues.
            await contract_tx(port, alice, chain.rewards, dep.rewards, "add_oracle", role)
            out = await requeue(settings)
            assert out["requeued"] >= len(failed_ids)
            assert {p["id"] for p in out["payouts"]} == failed_ids

            async def all_paid() -> bool:
                c = await store.counts()
                return c["payouts_paid"] > 0 and c["payouts_pending"] == 0

            await until(all_paid, "the requeued payouts paid", 120)
            await until(lambda: _not_in(a.worker.last_error, "submitter"), "/readyz recovered", 10)
            assert (await requeue(settings))["requeued"] == 0  # a second requeue has nothing to send
        payouts = await store.payouts()
    seen = await finalized_paid_counts(port, dep.rewards, chain.rewards)
    await port.close()
    assert seen == Counter("0x" + p.payout_id.hex() for p in payouts)
    assert {"0x" + p.payout_id.hex() for p in payouts} >= failed_ids


async def _not_in(d: dict[str, str], key: str) -> bool:
    return key not in d
