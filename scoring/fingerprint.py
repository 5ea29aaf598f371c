"""Chromaprint fingerprints of canonical PCM (through the `fpcalc` tool) and their similarity.

Chromaprint matches transcodes, gain changes and added noise (similarity ~0.99..1.0) but not key or tempo
changes (those fall to the level of unrelated music, ~0.6); the key- and tempo-invariant check is the chroma
2D-FT in `scoring.novelty`/`scoring.engine`. We fingerprint the canonical PCM, never the file, so that every
node gets the same fingerprint from the same audio whatever container it came in.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from scoring.errors import ScoringError

FINGERPRINT_VERSION = "chromaprint-alg2-s16le/1"
"""Version of the fingerprint recipe: fpcalc algorithm 2 over canonical PCM as s16le mono."""

ITEMS_PER_SECOND = 11025 / 1365
"""Chromaprint emits one 32-bit item per 1365 samples at its internal 11025 Hz rate (~8.08 items/s)."""

MAX_OFFSET_ITEMS = 120
"""Largest alignment shift tried when comparing, in items (~15 s)."""

MIN_OVERLAP_ITEMS = 40
"""Alignments that overlap fewer items than this (~5 s) are not compared."""


class FingerprintError(ScoringError):
    """fpcalc is missing, failed, or returned no fingerprint."""


def fingerprint_pcm(pcm: np.ndarray, sample_rate: int, timeout_s: float = 120.0) -> np.ndarray:
    """Chromaprint raw fingerprint of mono PCM.

    Args:
        pcm: mono float samples in [-1, 1], shape [n].
        sample_rate: rate of ``pcm`` in Hz.
        timeout_s: fpcalc wall-clock limit in seconds.

    Returns:
        uint32 array [m], m ~= duration_s * ITEMS_PER_SECOND (the whole track, no 120 s cut).

    Raises:
        FingerprintError: fpcalc is missing or failed.
    """
    fpcalc = shutil.which("fpcalc")
    if fpcalc is None:
        raise FingerprintError("fpcalc not found on PATH (install Debian package libchromaprint-tools)")
    x = np.asarray(pcm, dtype=np.float64).reshape(-1)
    # Round half to even (np.rint) so the s16 conversion is exact and platform independent.
    data = np.rint(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    try:
        proc = subprocess.run(
            [
                fpcalc,
                "-raw",
                "-format",
                "s16le",
                "-rate",
                str(int(sample_rate)),
                "-channels",
                "1",
                "-length",
                "0",
                "-",
            ],
            input=data,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise FingerprintError(f"fpcalc took longer than {timeout_s} s") from exc
    values: list[int] = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        if line.startswith("FINGERPRINT="):
            body = line.split("=", 1)[1].strip()
            values = [int(v) for v in body.split(",") if v]
    if not values:
        err = proc.stderr.decode(errors="replace").strip()[:300]
        raise FingerprintError(f"fpcalc returned no fingerprint (exit {proc.returncode}): {err}")
    return np.asarray(values, dtype=np.uint32)


def similarity(
    a: np.ndarray, b: np.ndarray, max_offset: int = MAX_OFFSET_ITEMS, min_overlap: int = MIN_OVERLAP_ITEMS
) -> float:
    """Best-alignment bit agreement of two Chromaprint fingerprints.

    ``sim(a, b) = max_{|o| <= max_offset} 1 - popcount(a[i] XOR b[i + o]) / (32 n_o)``
    summed over the n_o overlapping items, for alignments with n_o >= min(min_overlap, len(a), len(b)).

    Returns:
        similarity in [0, 1]: ~1.0 for the same recording, ~0.5..0.65 for unrelated music; 0.0 when either
        fingerprint is empty. Symmetric: sim(a, b) == sim(b, a).
    """
    a = np.asarray(a, dtype=np.uint32)
    b = np.asarray(b, dtype=np.uint32)
    if a.size == 0 or b.size == 0:
        return 0.0
    need = min(min_overlap, a.size, b.size)
    best = 0.0
    for offset in range(-max_offset, max_offset + 1):
        if offset >= 0:
            x, y = a[: max(0, b.size - offset)], b[offset:]
        else:
            x, y = a[-offset:], b
        n = min(x.size, y.size)
        if n < need or n == 0:
            continue
        bits = int(np.bitwise_count(x[:n] ^ y[:n]).sum())
        best = max(best, 1.0 - bits / (32.0 * n))
    return best
