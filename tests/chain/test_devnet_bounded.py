"""The devnet stays bounded: a client that never reads is closed once its send queue passes the cap (as a
real node drops slow consumers), and dev_* / devnet_* parameters are range-checked before any work."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ami_node.devnet.connection import MAX_QUEUED_BYTES
from ami_node.devnet.meta import METADATA_FILE
from ami_node.devnet.rpc_methods import MAX_DEV_BLOCKS
from ami_node.devnet.testing import running_devnet


def _call(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    with connect(url) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        return dict(json.loads(ws.recv(timeout=30)))


def test_a_client_that_never_reads_is_closed_and_memory_stays_capped() -> None:
    reply_size = len(METADATA_FILE.read_text().strip()) + 64  # one state_getMetadata answer, JSON-wrapped
    requests = 3 * MAX_QUEUED_BYTES // reply_size  # three caps' worth, were nothing ever dropped
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "state_getMetadata", "params": []})
    with running_devnet() as dn:
        server = dn.server
        assert server is not None
        # a client that reads nothing: its library buffers one frame, then TCP pushes back on the devnet
        with connect(dn.url, max_queue=1) as hog:
            hog.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            with contextlib.suppress(ConnectionClosed):  # the devnet may close us while we still send
                for _ in range(requests):
                    hog.send(request)
            deadline = time.monotonic() + 60
            while not dn.call(lambda: server.slow_consumers_closed):
                assert time.monotonic() < deadline, "the devnet never closed the client that does not read"
                time.sleep(0.05)
            peak = dn.call(lambda: server.peak_queued_bytes)
        # never more than the cap plus the one reply that crossed it
        assert MAX_QUEUED_BYTES < peak <= MAX_QUEUED_BYTES + reply_size
        # the node keeps serving everyone else
        assert _call(dn.url, "system_chain", [])["result"] == "Development"


@pytest.mark.parametrize(
    ("method", "params", "words"),
    [
        ("dev_newBlock", [{"count": MAX_DEV_BLOCKS + 1}], f"count must be from 1 to {MAX_DEV_BLOCKS}"),
        ("dev_newBlock", [{"count": 0}], "count must be from 1"),
        ("dev_newBlock", [{"count": "30000"}], "count must be an integer"),
        ("dev_newBlock", [[5]], "takes one object"),
        ("devnet_advanceTime", [-5], "ms must be from 0"),
        ("devnet_advanceTime", [1.5], "ms must be an integer"),
        ("devnet_reorg", [10**9], f"depth must be from 1 to {MAX_DEV_BLOCKS}"),
        ("devnet_reorg", [1, MAX_DEV_BLOCKS + 1], f"new_blocks must be from 0 to {MAX_DEV_BLOCKS}"),
        ("devnet_finalize", [10**6], "number must be from 0 to 0"),
    ],
)
def test_dev_parameters_out_of_range_are_refused_and_change_nothing(
    method: str, params: list[Any], words: str
) -> None:
    with running_devnet() as dn:
        before = (dn.chain.best.number, dn.chain.finalized_number, dn.chain.now_ms() // 60_000)
        reply = _call(dn.url, method, params)
        assert reply["error"]["code"] == -32602 and words in reply["error"]["message"], reply
        assert dn.call(lambda: (dn.chain.best.number, dn.chain.finalized_number)) == before[:2]
        # the clock was not moved (a minute's resolution: the wall clock runs meanwhile)
        assert dn.call(lambda: dn.chain.now_ms() // 60_000) - before[2] <= 1
        # a count in range still works
        ok = _call(dn.url, "dev_newBlock", [{"count": 3}])
        assert "result" in ok and dn.call(lambda: dn.chain.best.number) == before[0] + 3
