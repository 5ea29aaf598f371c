"""A CUDA worker audited by a CPU validator, and the reverse, under ami-agreement/1 (needs a lent GPU; run by
scripts/gpu_check.sh): zero findings, every commitment reproduced, every tamper past a tolerance found."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from agreement_world import score_run

from scoring.agreement import compare_runs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _check(published: list[Any], recomputed: list[Any]) -> None:
    run = compare_runs(published, recomputed)
    print(
        f"\n{run.tracks} tracks: findings {len(run.findings)}, max |d novelty| {run.max_novelty_diff} bp,"
        f" max |d quality| {run.max_quality_diff} bp, verdict flips {run.verdict_flips}"
        f" ({run.borderline_flips} in the guard band)"
    )
    assert [(i, f.kind.value, f.detail) for i, f in run.findings] == []
    assert run.commitments_equal == run.published
    assert run.verdict_flips == run.borderline_flips
    assert run.tampers_found == run.tampers > 0


def test_cuda_worker_cpu_validator(tracks, fingerprints, baseline) -> None:  # type: ignore[no-untyped-def]
    cuda = score_run(tracks, fingerprints, device="cuda")
    _check(cuda, baseline)  # the worker on CUDA publishes, the CPU validator recomputes
    _check(baseline, cuda)  # and the reverse
