"""Build scoring/data/genre_reference.json: per-genre embedding statistics from real human-made music.

Classical and folk styles take several pieces from music21's corpus, renders the first EXCERPTS x SECONDS
seconds of each through FluidSynth (scoring.corpus), cuts them into SECONDS-long excerpts, decodes them
through the canonical path, extracts features, and stores per genre the unit mean direction of the
embeddings (centroid) and their RMS cosine distance to it (spread), with provenance. The audio is not kept.
Game-soundtrack genres (orchestral, ambient, chiptune, electronic) come from Debian's soundtrack packages,
the files listed in the training split of scripts/training_split.py (none of the validity benchmark's
files), cut the same way.

Run: .venv/bin/python scripts/build_genre_reference.py [--out PATH]   (about 2 minutes on 2 cores)"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from training_split import TRAIN_SOUNDTRACKS

from scoring import probes
from scoring.corpus import SamplePiece, find_soundfont, render_piece
from scoring.decode import SAMPLE_RATE, decode_bytes
from scoring.features import EMBEDDING_DIM, FEATURE_VERSION, extract_features
from scoring.novelty import REFERENCE_VERSION

SECONDS = 30.0
EXCERPTS = 2
_QUARTET = (40, 40, 41, 42)


def reference_pieces() -> list[SamplePiece]:
    """The pieces per style (fixed list, so the build is reproducible)."""
    bach = ["bwv1.6", "bwv10.7", "bwv11.6", "bwv13.6", "bwv14.5", "bwv153.1", "bwv244.40", "bwv59.3"]
    folk = [("essenFolksong/altdeu10", n) for n in (1, 2, 4, 5)] + [
        ("essenFolksong/altdeu20", n) for n in (1, 2)
    ]
    quartets = [
        "haydn/opus74no1/movement1",
        "haydn/opus74no1/movement3",
        "mozart/k155/movement1",
        "mozart/k156/movement1",
        "mozart/k458/movement1",
        "mozart/k80/movement1",
        "beethoven/opus18no1/movement1",
    ]
    rag = [("joplin/maple_leaf_rag", 90.0), ("leadSheet/berlinAlexandersRagtime", 110.0)]
    madrigals = [f"monteverdi/madrigal.3.{n}" for n in (1, 2, 3, 4, 5, 6, 7)]
    pieces = [SamplePiece(f"ref_{b}", "bach_chorale", f"bach/{b}", None, (19,), 80.0) for b in bach]
    pieces += [SamplePiece(f"ref_{p.split('/')[1]}_{n}", "folk_song", p, n, (73,), 110.0) for p, n in folk]
    pieces += [
        SamplePiece(f"ref_{q.replace('/', '_')}", "string_quartet", q, None, _QUARTET, 120.0)
        for q in quartets
    ]
    pieces += [SamplePiece(f"ref_{r.split('/')[1]}", "ragtime_piano", r, None, (0,), qpm) for r, qpm in rag]
    pieces += [SamplePiece(f"ref_{m.split('/')[1]}", "madrigal", m, None, (52,), 90.0) for m in madrigals]
    return pieces


def _excerpts(path: Path) -> list[np.ndarray]:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    step = int(SECONDS * rate)
    out = []
    for k in range(EXCERPTS):
        part = audio[k * step : (k + 1) * step]
        if part.shape[0] < int(10 * rate):
            break
        buf = io.BytesIO()
        sf.write(buf, part, rate, format="WAV", subtype="PCM_16")
        out.append(decode_bytes(buf.getvalue()).pcm)
    return out


def build() -> dict[str, object]:
    pieces = reference_pieces()
    embeddings: dict[str, list[np.ndarray]] = {}
    used: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="ami-genre-ref-") as tmp:
        for piece in pieces:
            wav = render_piece(piece, Path(tmp) / f"{piece.name}.wav", seconds=SECONDS * EXCERPTS)
            tracks = _excerpts(wav)
            feats = extract_features(tracks, SAMPLE_RATE, device="cpu")
            embeddings.setdefault(piece.style, []).extend(f.embedding.astype(np.float64) for f in feats)
            used.setdefault(piece.style, []).append(f"{piece.corpus_path}#{piece.number or 0} ({len(feats)})")
            print(f"{piece.style:16s} {piece.name:36s} excerpts={len(feats)}", flush=True)
    for track in TRAIN_SOUNDTRACKS:
        try:
            pcm = probes.soundtrack_excerpt(track, SECONDS * EXCERPTS)
        except probes.ProbeUnavailable as exc:
            print(f"skip {track.name}: {exc}", flush=True)
            continue
        step = int(SECONDS * SAMPLE_RATE)
        parts = [pcm[k * step : (k + 1) * step] for k in range(EXCERPTS) if len(pcm) >= (k + 1) * step]
        feats = extract_features(parts, SAMPLE_RATE, device="cpu")
        embeddings.setdefault(track.genre, []).extend(f.embedding.astype(np.float64) for f in feats)
        used.setdefault(track.genre, []).append(f"{track.package}:{track.path.name} ({len(feats)})")
        print(f"{track.genre:16s} {track.name:36s} excerpts={len(feats)}", flush=True)
    genres: dict[str, object] = {}
    for style, rows in sorted(embeddings.items()):
        m = np.stack(rows)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        centroid = m.mean(0)
        centroid /= np.linalg.norm(centroid)
        dist = 1.0 - m @ centroid
        genres[style] = {
            "centroid": [round(float(v), 6) for v in centroid],
            "spread": round(float(np.sqrt(np.mean(dist**2))), 6),
            "count": int(m.shape[0]),
            "pieces": used[style],
        }
    sf2 = find_soundfont()
    fluid = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True).stdout.splitlines()
    import music21

    return {
        "version": REFERENCE_VERSION,
        "feature_version": FEATURE_VERSION,
        "embedding_dim": EMBEDDING_DIM,
        "genres": genres,
        "provenance": {
            "script": "scripts/build_genre_reference.py",
            "excerpt_seconds": SECONDS,
            "excerpts_per_piece": EXCERPTS,
            "music21": music21.__version__,
            "fluidsynth": fluid[0] if fluid else "unknown",
            "soundfont": sf2.name,
            "soundfont_sha256": hashlib.sha256(sf2.read_bytes()).hexdigest(),
            "statistics": "centroid: unit mean of unit embeddings; spread: RMS of (1 - cos) to centroid",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "scoring" / "data" / "genre_reference.json"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()
    t0 = time.time()
    doc = build()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
