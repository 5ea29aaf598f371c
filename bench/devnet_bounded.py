"""Bench: the devnet's memory under a client that never reads, and how long one dev_newBlock call holds it.

Starts `ami devnet` in its own process, sends REQUESTS `state_getMetadata` requests from a client that reads
nothing (every reply ~112 kB), and prints the devnet's peak RSS growth against what the replies would take
if they were all queued (the unbounded queue before issue 13 grew 116 MB -> 2.49 GB this way). Then times
the largest allowed `dev_newBlock` and checks an over-limit count is refused.

    .venv/bin/python bench/devnet_bounded.py [REQUESTS]
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ami_node.devnet.connection import MAX_QUEUED_BYTES
from ami_node.devnet.meta import METADATA_FILE
from ami_node.devnet.rpc_methods import MAX_DEV_BLOCKS

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def main(requests: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "ami"), "devnet", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "listening on ..."
        url = f"ws://127.0.0.1:{port}"
        base = _rss_mb(proc.pid)
        reply_mb = (len(METADATA_FILE.read_text().strip()) + 64) / 2**20
        request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "state_getMetadata", "params": []})
        peak = base
        with connect(url, max_queue=1) as hog:
            hog.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            with contextlib.suppress(ConnectionClosed, OSError):
                for i in range(requests):
                    hog.send(request)
                    if i % 50 == 0:
                        peak = max(peak, _rss_mb(proc.pid))
            time.sleep(1.0)  # let the devnet process what it received before the last reading
            peak = max(peak, _rss_mb(proc.pid))
        unbounded = requests * reply_mb
        print(f"never-reading client: {requests} metadata requests ({unbounded:.0f} MB of replies)")
        cap = MAX_QUEUED_BYTES >> 20
        print(f"devnet RSS {base:.0f} MB -> peak {peak:.0f} MB (+{peak - base:.0f} MB; queue cap {cap} MB)")
        print(f"growth / unqueued replies: {(peak - base) / unbounded:.3f} (1.0 = everything kept)")
        with connect(url) as c:
            t0 = time.monotonic()
            c.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "dev_newBlock",
                        "params": [{"count": MAX_DEV_BLOCKS}],
                    }
                )
            )
            assert "result" in json.loads(c.recv(timeout=120))
            held = time.monotonic() - t0
            c.send(
                json.dumps(
                    {"jsonrpc": "2.0", "id": 3, "method": "dev_newBlock", "params": [{"count": 30000}]}
                )
            )
            refused = json.loads(c.recv(timeout=30))["error"]["message"]
        print(f"dev_newBlock count {MAX_DEV_BLOCKS}: loop held {held:.2f} s; count 30000: {refused}")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
