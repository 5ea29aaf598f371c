"""`ami run` as operators start it: a subprocess against the devnet; ready, metrics, SIGTERM exits cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import ami_process, http_get
from waiting import wait_until

from offchain.ipfs.node import free_port


def _epochs_settled(port: int) -> float:
    """The worker's ami_worker_epochs_settled_total, read from its /metrics."""
    metrics = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    m = re.search(r"^ami_worker_epochs_settled_total (\S+)$", metrics, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.slow
def test_ami_run_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    import asyncio

    from ami_node.deploy import default_bundles, deploy
    from ami_node.devnet.testing import running_devnet
    from ami_node.keys import load_keypair
    from ami_node.substrate import SubstrateChainPort

    with running_devnet() as dn:

        async def do_deploy() -> None:
            port = SubstrateChainPort(dn.url)
            try:
                dep = await deploy(port, load_keypair("//Alice"), dn.url, default_bundles(), 60)
                dep.save(tmp_path / "deployment.json")
            finally:
                await port.close()

        asyncio.run(do_deploy())
        http = free_port()
        env = {
            "AMI_NODE_URL": dn.url,
            "AMI_DEPLOYMENT": str(tmp_path / "deployment.json"),
            "AMI_DB_PATH": str(tmp_path / "w.sqlite"),
            "AMI_HTTP_PORT": str(http),
            "AMI_IPFS_API_URL": f"http://127.0.0.1:{free_port()}",  # nobody there: not needed without mints
            "AMI_EPOCH_BLOCKS": "2",
        }
        with ami_process("run", env=env, stdout=subprocess.DEVNULL) as proc:
            deadline = time.monotonic() + 60
            status, body = 0, ""
            while time.monotonic() < deadline:
                try:
                    status, body = http_get(f"http://127.0.0.1:{http}/readyz")
                except OSError:
                    status = 0
                if status == 200 and json.loads(body)["checkpoint"] is not None:
                    break
                time.sleep(0.3)
            assert status == 200, body
            assert json.loads(http_get(f"http://127.0.0.1:{http}/healthz")[1]) == {"ok": True}
            code, metrics = http_get(f"http://127.0.0.1:{http}/metrics")
            assert (
                code == 200
                and "ami_worker_last_block" in metrics
                and "ami_worker_blocks_behind_head" in metrics
            )
            dn.new_block(5)
            wait_until(lambda: _epochs_settled(http) >= 1, "an epoch settled (its metric)", 60)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        events = [rec["event"] for rec in lines]
        assert "daemon.start" in events and "daemon.stopped" in events
        assert "//Alice" not in err  # the signing key is never logged
        settled = [rec for rec in lines if rec["event"] == "worker.epoch_settled"]
        assert settled, events


@pytest.mark.slow
def test_ami_run_refuses_another_chains_deployment(tmp_path: Path) -> None:
    from ami_node.deployment import Deployment
    from ami_node.devnet.testing import running_devnet

    with running_devnet() as dn:
        Deployment(
            url=dn.url,
            genesis_hash="0x" + "ab" * 32,
            nft="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
            rewards="5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
            deployer="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
        ).save(tmp_path / "deployment.json")
        env = {
            **os.environ,
            "AMI_NODE_URL": dn.url,
            "AMI_DEPLOYMENT": str(tmp_path / "deployment.json"),
            "AMI_DB_PATH": str(tmp_path / "w.sqlite"),
            "AMI_HTTP_PORT": str(free_port()),
        }
        out = subprocess.run(
            [sys.executable, "-c", "from offchain.cli import main; main()", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 2  # a deployment for another chain is bad input
    assert "deployment file was written for 0xabab" in out.stderr
