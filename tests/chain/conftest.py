"""Fixtures shared by the chain tests: one devnet per module (`dn`) with a substrate-interface client (`si`),
chopsticks running a real runtime offline (`chopsticks`), and concurrent `ami tx` processes with one key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from substrateinterface import SubstrateInterface
from websockets.sync.client import connect

from ami_node.devnet.testing import DevnetHandle, running_devnet
from ami_node.keys import load_keypair
from offchain.ipfs.node import free_port

REPO = Path(__file__).resolve().parents[2]
CHOPSTICKS_DIR = Path(__file__).resolve().parent / "chopsticks"  # its npm packages (scripts/setup.sh)
CHOPSTICKS = CHOPSTICKS_DIR / "node_modules" / ".bin" / "chopsticks"
ASSET_HUB_SPEC = (
    CHOPSTICKS_DIR / "node_modules/@substrate/connect-known-chains/dist/esm/specs/rococo_v2_2_asset_hub.js"
)


@pytest.fixture(scope="module")
def dn() -> Iterator[DevnetHandle]:
    """A devnet (instant blocks, no finality lag) shared by the tests of one module."""
    with running_devnet() as handle:
        yield handle


@pytest.fixture(scope="module")
def chopsticks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """chopsticks running Rococo Asset Hub from its genesis spec on loopback, blocks built instantly, //Alice
    funded (a real runtime's genesis has nothing for her); yields its ws:// URL. A missing install fails
    (run ./scripts/setup.sh), never skips."""
    if not CHOPSTICKS.exists():
        pytest.fail("chopsticks is not installed: run ./scripts/setup.sh")
    tmp = tmp_path_factory.mktemp("chopsticks")
    text = ASSET_HUB_SPEC.read_text(encoding="utf-8")  # `export const chainSpec = `{...}`;`
    spec = tmp / "spec.json"
    spec.write_text(text[text.index("`") + 1 : text.rindex("`")], encoding="utf-8")
    port = free_port()
    log = tmp / "chopsticks.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(CHOPSTICKS),
                f"--genesis={spec}",
                "--host=127.0.0.1",
                f"--port={port}",
                "--build-block-mode=Instant",
            ],
            cwd=tmp,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while b"RPC listening" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chopsticks did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        url = f"ws://127.0.0.1:{port}"
        alice = [[load_keypair("//Alice").address], {"providers": 1, "data": {"free": str(10**18)}}]
        with connect(url) as ws:  # chopsticks' dev RPC writes storage directly
            ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "dev_setStorage",
                        "params": [{"System": {"Account": [alice]}}],
                    }
                )
            )
            assert "result" in json.loads(ws.recv())
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def si(dn: DevnetHandle) -> Iterator[SubstrateInterface]:
    """A substrate-interface client of the module's devnet."""
    s = SubstrateInterface(url=dn.url)
    yield s
    s.close()


@dataclass(frozen=True)
class TxRun:
    """One finished `ami tx` process: its exit code, output, and the nonce it reported (None if none)."""

    code: int
    output: str

    @property
    def nonce(self) -> int | None:
        m = re.search(r"nonce (\d+)", self.output)
        return int(m.group(1)) if m else None


RunTxs = Callable[..., list[TxRun]]


@pytest.fixture
def concurrent_transfers() -> RunTxs:
    """Start one `ami tx Balances transfer_keep_alive` process per value at once, all signing with //Alice
    to `dest` on the node at `url`; wait for all of them and return what each reported."""

    def run(
        url: str, dest: str, values: list[int], rpc_timeout_s: float = 20.0, timeout_s: float = 120.0
    ) -> list[TxRun]:
        env = {**os.environ, "AMI_NODE_URL": url, "AMI_KEY": "//Alice", "AMI_RPC_TIMEOUT": str(rpc_timeout_s)}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from offchain.cli import main; main()",
                    "tx",
                    "Balances",
                    "transfer_keep_alive",
                    json.dumps({"dest": dest, "value": v}),
                    "--timeout",
                    str(timeout_s),
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for v in values
        ]
        try:
            outs = [p.communicate(timeout=timeout_s + 120)[0] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        return [TxRun(p.returncode, o) for p, o in zip(procs, outs, strict=True)]

    return run
