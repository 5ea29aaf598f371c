"""`ami validate` serves the worker's endpoints: /healthz, /readyz and /metrics (with build_info and process
metrics), on the port it is given, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_validate_serves_health_readiness_and_metrics(deployed: Any, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **deployed.env,
        "AMI_KEY": "//Charlie",  # made validator by the fixture's `ami deploy --validator`
        "AMI_IPFS_API_URL": "http://127.0.0.1:9",
        "AMI_LOG_JSON": "true",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ami"),
            "validate",
            "--db",
            str(tmp_path / "v"),
            "--http-port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        address = None
        for line in proc.stderr:  # the line the validator prints once it listens (no fixed sleep)
            if '"validate.http"' in line:
                address = json.loads(line)["listening"][0]
                break
        assert address, "the validator exited before serving HTTP"
        base = f"http://{address}"
        assert get(f"{base}/healthz") == (200, '{"ok": true}')
        status, body = get(f"{base}/readyz")
        ready = json.loads(body)
        assert status in (200, 503) and ready["ready"] is (status == 200) and "processed_head" in ready
        status, metrics = get(f"{base}/metrics")
        assert status == 200
        assert 'ami_build_info{component="validator"' in metrics
        assert "ami_validator_processed_head " in metrics and "process_cpu_seconds_total " in metrics
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
