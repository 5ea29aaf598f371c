"""`ami validate` serves the worker's endpoints: /healthz, /readyz and /metrics (with build_info and process
metrics), on the port it is given, and stops on SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from processes import ami_process, http_get


def test_validate_serves_health_readiness_and_metrics(deployed: Any, tmp_path: Path) -> None:
    env = {
        **deployed.env,
        "AMI_KEY": "//Charlie",  # made validator by the fixture's `ami deploy --validator`
        "AMI_IPFS_API_URL": "http://127.0.0.1:9",
        "AMI_LOG_JSON": "true",
    }
    with ami_process("validate", "--db", str(tmp_path / "v"), "--http-port", "0", env=env) as proc:
        assert proc.stderr is not None
        address = None
        for line in proc.stderr:  # the line the validator prints once it listens (no fixed sleep)
            if '"validate.http"' in line:
                address = json.loads(line)["listening"][0]
                break
        assert address, "the validator exited before serving HTTP"
        base = f"http://{address}"
        assert http_get(f"{base}/healthz") == (200, '{"ok": true}')
        status, body = http_get(f"{base}/readyz")
        ready = json.loads(body)
        assert status in (200, 503) and ready["ready"] is (status == 200) and "processed_head" in ready
        status, metrics = http_get(f"{base}/metrics")
        assert status == 200
        assert 'ami_build_info{component="validator"' in metrics
        assert "ami_validator_processed_head " in metrics and "process_cpu_seconds_total " in metrics
        assert "ami_validator_rescore_seconds_bucket{" in metrics
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_rescoring_is_timed_into_a_seconds_histogram() -> None:
    from prometheus_client import generate_latest

    from offchain.audit.service import TimedRescorer, ValidatorMetrics

    class Recorder:
        """Stands in for the scoring engine: records what it is asked."""

        model_version = 7

        def __init__(self) -> None:
            self.accepted: list[tuple[int, bytes]] = []

        def rescore(self, token_id: int, audio: bytes, genre: Any) -> str:
            return f"scores of {token_id}"

        def accept(self, token_id: int, entry: bytes) -> None:
            self.accepted.append((token_id, entry))

    m = ValidatorMetrics()
    inner = Recorder()
    timed = TimedRescorer(inner, m.rescore_seconds)  # type: ignore[arg-type]
    assert timed.model_version == 7
    assert timed.rescore(3, b"audio", None) == "scores of 3"
    assert timed.rescore(4, b"audio", "jazz") == "scores of 4"
    timed.accept(3, b"entry")
    assert inner.accepted == [(3, b"entry")]  # everything but rescore goes straight through
    text = generate_latest(m.registry).decode()
    assert "ami_validator_rescore_seconds_count 2.0" in text
