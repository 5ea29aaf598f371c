"""One recording under two file names is one piece: `recording_similarity` tells a remix of a recording
from another piece played on the same instruments, and `distinct_recordings` drops the remix from a
same-style set, caching what it measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from scoring.probes import soundtracks as S
from scoring.testsignals import tone

SR = 44100


def _melody(seed: int, seconds: float = 40.0, decay: float = 0.3) -> np.ndarray:
    """Decaying notes of a pentatonic scale at random moments (0.15..0.6 s apart), one seed one piece."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR))
    t = 0.0
    while t < seconds - 1.0:
        note = tone((float(rng.choice([60, 62, 64, 67, 69, 72])),), 0.8, SR, 0.3, 6, decay)
        i = int(t * SR)
        out[i : i + note.size] += note[: out.size - i]
        t += float(rng.uniform(0.15, 0.6))
    return out


def _remix(x: np.ndarray) -> np.ndarray:
    """The same performance mixed again: darker (low-pass at 2 kHz), 6 dB quieter, over a held pad."""
    b, a = signal.butter(4, 2000, fs=SR)
    pad = tone((48.0, 55.0), x.size / SR, SR, 0.1, 4, None)[: x.size]
    return 0.5 * signal.lfilter(b, a, x) + pad


def test_a_remix_reads_as_the_recording_and_another_piece_does_not() -> None:
    piece, other = _melody(1), _melody(2)
    assert S.recording_similarity(piece, piece, SR) == pytest.approx(1.0)
    remix = S.recording_similarity(_remix(piece), piece, SR)
    # the other piece shares instrument, scale and tempo: its spectra correlate only through them
    unrelated = S.recording_similarity(other, piece, SR)
    assert remix >= S.SAME_RECORDING + 0.2 and abs(unrelated) < 0.1, (remix, unrelated)
    # stereo [n, 2] reads as its mono mix; too short for one 10 s segment reads 0
    assert S.recording_similarity(np.stack([piece, piece], axis=1), piece, SR) == pytest.approx(1.0)
    assert S.recording_similarity(piece[: 5 * SR], piece[: 5 * SR], SR) == 0.0


def test_distinct_recordings_drops_the_remix_and_caches_each_pair(tmp_path: Path) -> None:
    files = {"track1": _melody(1), "track2": _melody(2), "track3": _remix(_melody(1))}
    tracks = []
    for name, x in files.items():
        path = tmp_path / f"{name}.wav"
        sf.write(path, (0.9 * x / np.max(np.abs(x))).astype(np.float32), SR, subtype="PCM_16")
        tracks.append(S.Soundtrack(name, "test", path, "test"))
    cache = tmp_path / "cache"
    assert [t.name for t in S.distinct_recordings(tracks, cache)] == ["track1", "track2"]
    index = json.loads((cache / "drascula_recordings.json").read_text())
    # each file against every one kept before it
    assert set(index) == {"track1.wav|track2.wav", "track1.wav|track3.wav", "track2.wav|track3.wav"}
    assert index["track1.wav|track3.wav"] >= S.SAME_RECORDING > index["track1.wav|track2.wav"]
    assert index["track2.wav|track3.wav"] < S.SAME_RECORDING
    # a second pass reads the cached values and decodes nothing: the audio may be gone
    for t in tracks:
        t.path.unlink()
    assert [t.name for t in S.distinct_recordings(tracks, cache)] == ["track1", "track2"]
