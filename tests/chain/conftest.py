"""Fixtures shared by the chain tests: one devnet per module (`dn`) with a substrate-interface client (`si`),
and concurrent `ami tx` processes with one key (devnet, chopsticks)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from substrateinterface import SubstrateInterface

from ami_node.devnet.testing import DevnetHandle, running_devnet

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dn() -> Iterator[DevnetHandle]:
    """A devnet (instant blocks, no finality lag) shared by the tests of one module."""
    with running_devnet() as handle:
        yield handle


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
