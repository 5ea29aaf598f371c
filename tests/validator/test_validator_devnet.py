"""The validator through the real substrate-interface adapter against the devnet: a nudged score is found
and challenged on chain once, the honest one matches (assembled by `open_validator` as `ami validate` is)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from processes import ami_process
from scripted_worker import AUDIO
from validator_world import MODEL_VERSION, HashRescorer

from ami_node.abi import ContractAbi
from ami_node.devnet.testing import running_devnet
from ami_node.events import decode_block
from ami_node.keys import load_keypair
from ami_node.substrate import SubstrateChainPort
from ami_node.tx import contract_tx
from offchain.audit.model import Status
from offchain.audit.service import open_validator
from offchain.config import load_settings
from offchain.ipfs.store import MemoryContentStore

ALICE = load_keypair("//Alice")
BOB = load_keypair("//Bob")


async def _scenario(url: str, tmp: Path) -> None:
    from ami_node.deploy import default_bundles, deploy

    nft, rewards = ContractAbi.load("ami_nft"), ContractAbi.load("ami_rewards")
    ipfs = MemoryContentStore()
    async with SubstrateChainPort(url) as port:
        dep = await deploy(port, ALICE, url, default_bundles(), 60)  # Alice: oracle and validator
        dep.save(tmp / "deployment.json")
        scorer = HashRescorer()
        for name, nudge in (("a", 0), ("b", 1)):
            cid = await ipfs.add(AUDIO[name])
            res = await contract_tx(
                port,
                BOB,
                nft,
                dep.nft,
                "mint",
                {"audio_cid": cid, "metadata_cid": cid, "royalty_splits": [(BOB.address, 10_000)]},
            )
            token = int(res.value)
            r = scorer.rescore(token, AUDIO[name], None)
            assert r.entry is not None
            scorer.accept(token, r.entry)
            await contract_tx(
                port,
                ALICE,
                rewards,
                dep.rewards,
                "submit_score",
                {
                    "token_id": token,
                    "novelty_bp": (r.novelty_bp or 0) + nudge,
                    "quality_bp": r.quality_bp,
                    "model_version": MODEL_VERSION,
                    "commitment": r.commitment,
                },
            )
        contracts = {dep.nft: nft, dep.rewards: rewards}

        settings = load_settings(None, node_url=url, deployment=tmp / "deployment.json", epoch_blocks=1000)
        for _ in range(2):  # the second run is a restart: nothing new is sent
            async with open_validator(
                settings,
                db_dir=tmp / "v",
                key="//Alice",
                content=ipfs,
                rescorers={MODEL_VERSION: HashRescorer()},
            ) as v:
                await v.sync()
                await v.process()
                audits = {a.subject: a for a in await v.auditor.db.audits()}
        assert audits["score:1:7"].status == Status.MATCH
        assert audits["score:2:7"].status == Status.MISMATCH
        head = (await port.finalized_head()).number
        challenged = []
        for n in range(1, head + 1):
            challenged += [e for e in decode_block(await port.block(n), contracts) if e.label == "Challenged"]
        assert [(e.token_id, e.evidence) for e in challenged] == [  # type: ignore[attr-defined]
            (2, audits["score:2:7"].evidence_commitment)
        ]


def test_devnet_nudged_score_challenged_once(tmp_path: Path) -> None:
    with running_devnet() as dn:
        asyncio.run(_scenario(dn.url, tmp_path))


def test_ami_validate_daemon_follows_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`ami validate` as a process: follows the devnet into its database, warns that //Charlie holds no
    validator role, and exits 0 on SIGTERM with a summary."""
    import signal
    import sqlite3
    import time

    from ami_node.deploy import default_bundles, deploy

    with running_devnet() as dn:

        async def setup() -> int:
            async with SubstrateChainPort(dn.url) as port:
                dep = await deploy(port, ALICE, dn.url, default_bundles(), 60)
                dep.save(tmp_path / "deployment.json")
                return (await port.finalized_head()).number

        head = asyncio.run(setup())
        env = {
            "AMI_NODE_URL": dn.url,
            "AMI_DEPLOYMENT": str(tmp_path / "deployment.json"),
            "AMI_LOG_JSON": "true",
        }
        with ami_process("validate", "--db", str(tmp_path / "v"), "--key", "//Charlie", env=env) as proc:
            deadline = time.monotonic() + 60
            db = tmp_path / "v" / "validator.sqlite"
            while True:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the validator never reached the head"
                if db.exists():
                    try:
                        with sqlite3.connect(db) as conn:
                            row = conn.execute("SELECT block_number FROM checkpoint").fetchone()
                    except sqlite3.OperationalError:  # the file exists before its schema is applied
                        row = None
                    if row and row[0] >= head:
                        break
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "is not a validator of the rewards contract" in err
        assert '"checkpoint"' in err and '"challenges"' in err
