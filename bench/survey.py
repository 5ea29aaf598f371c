"""Whole-file survey of real music: score every music file of some Debian packages or folders as a
creator would upload it, minting each package's files in order into one catalogue to count the gate's flags.

The validity benchmark scores excerpts and 18 whole files of six soundtrack packages it knows by name; this
script takes any package or folder, so music the models never saw can be read the same way:

    .venv/bin/python bench/survey.py --package wesnoth-1.16-music --package freedroidrpg-data
    .venv/bin/python bench/survey.py --folder ~/music/album --json survey.json

Per file it prints the novelty scored alone (the file as the first mint of an empty catalogue:
``10000 * G * P`` from the published parts, see `scoring.novelty`), the coherence M, the predictability
gate P and the quality. Per package it prints how many files score under 500 (near zero) and under 6000,
and every file the gate names as a duplicate or derivative of an earlier file of the same package (distinct
pieces of one soundtrack should be flagged by none; a piece that really is one recorded twice, or a reprise,
may be). For each flag it prints the gate's figures and where the compared passages lie in both files
(``listen``, seconds), so a person can play them and judge. Files that `scoring.decode` refuses (module
formats, too short, too long) are listed as skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before bench/: its scoring.py would hide the scoring package

AUDIO_SUFFIXES = (".ogg", ".oga", ".mp3", ".flac", ".wav", ".opus")
NEAR_ZERO_BP = 500
GOOD_BP = 6000


@dataclass
class FileRow:
    """One surveyed file: novelty alone, its parts, quality, and the gate's verdict among its package (with
    the margin of the deciding statistic over its threshold)."""

    source: str
    name: str
    seconds: float
    novelty_alone: int
    coherence: float
    predictability: float
    ic_bits: float
    quality_bp: int
    flagged_as: str | None
    flagged_of: str | None
    margin: float | None
    match: dict[str, object] | None  # the gate's figures against flagged_of: fp, composition, shift, tempo
    listen: dict[str, list[float]] | None  # where the compared passages lie: {"file": [s, e], "of": [s, e]}


def _credit(d: dict[str, object]) -> float:
    """G x P x T of the harmony view that counted, times the evidence E (T is 1 in reports older than model
    11, E in those older than model 12)."""
    parts = (
        d["coherence_gate"],
        d["predictability_gate"],
        d.get("harmony_view_trust", 1.0),
        d.get("evidence", 1.0),
    )
    return math.prod(float(p) for p in parts)  # type: ignore[arg-type]


def package_files(package: str) -> list[Path]:
    """The audio files a Debian package installed, in name order.

    Raises:
        SystemExit: the package is not installed.
    """
    res = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(
            f"package {package} is not installed (apt-get install {package}): {res.stderr.strip()}"
        )
    paths = [Path(line) for line in res.stdout.splitlines() if line.lower().endswith(AUDIO_SUFFIXES)]
    return sorted(p for p in paths if p.is_file())


def folder_files(folder: Path) -> list[Path]:
    """The audio files under a folder, in name order."""
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def survey_source(
    source: str, files: list[Path], min_seconds: float, device: str | None
) -> tuple[list[FileRow], list[str]]:
    """Score ``files`` in order, each against the earlier ones of the same source (one new catalogue)."""
    from scoring.decode import decode_file
    from scoring.engine import TrackInput, new_catalogue, score_batch
    from scoring.errors import ScoringError

    cat = new_catalogue()
    rows: list[FileRow] = []
    skipped: list[str] = []
    for path in files:
        try:
            audio = decode_file(path, min_seconds=min_seconds)
        except ScoringError as exc:
            skipped.append(f"{path.name}: {exc}")
            print(f"  skipped {skipped[-1]}", flush=True)
            continue
        (s,) = score_batch([TrackInput(path.name, audio)], cat, device=device, add_to_catalogue=True)
        d = s.details
        gate = d.get("gate") or {}
        flagged_of = s.duplicate_of or s.derivative_of
        rows.append(
            FileRow(
                source,
                path.name,
                round(audio.duration_s, 1),
                int(round(10000.0 * _credit(d))),
                float(d["coherence"]),  # type: ignore[arg-type]
                float(d["predictability_gate"]),  # type: ignore[arg-type]
                float(d["information_content_bits"]),  # type: ignore[arg-type]
                s.quality_bp,
                "duplicate" if s.duplicate_of else "derivative" if s.derivative_of else None,
                flagged_of,
                gate.get("margin") if flagged_of and isinstance(gate, dict) else None,
                dict(d["matches"][flagged_of]) if flagged_of else None,  # type: ignore[index,call-overload]
                _passages(cat, path.name, flagged_of) if flagged_of else None,
            )
        )
        print(
            f"  {rows[-1].name:<44} {rows[-1].seconds:6.0f} s  novelty {rows[-1].novelty_alone:5d}  "
            f"M {rows[-1].coherence:.3f}  P {rows[-1].predictability:.2f}  IC {rows[-1].ic_bits:.2f}  "
            f"quality {s.quality_bp:5d}"
            + (
                f"  {rows[-1].flagged_as} of {flagged_of} (margin {rows[-1].margin}; {rows[-1].match}; "
                f"listen: {rows[-1].listen})"
                if flagged_of
                else ""
            ),
            flush=True,
        )
    return rows, skipped


def _passages(cat: Any, name: str, of: str) -> dict[str, list[float]]:
    """Where the gate's best window lies in the flagged file and in the one it names, in seconds of each
    (`scoring.derivative.locate` on the catalogue's stored steps), so both passages can be played."""
    from scoring.derivative import locate, match

    q, r = cat.steps(cat.position(name)), cat.steps(cat.position(of))
    at = locate(q, r, match(q, r))
    return {"file": [at.query_start_s, at.query_end_s], "of": [at.ref_start_s, at.ref_end_s]}


def summary(source: str, rows: list[FileRow], skipped: list[str]) -> str:
    """One line per source: counts under the two marks, the median, and the gate's flags."""
    if not rows:
        return f"{source}: no file scored ({len(skipped)} skipped)"
    nov = [r.novelty_alone for r in rows]
    flags = [f"{r.name} -> {r.flagged_of}" for r in rows if r.flagged_of]
    return (
        f"{source}: {len(rows)} files ({len(skipped)} skipped), median novelty {statistics.median(nov):.0f}, "
        f"under {NEAR_ZERO_BP}: {sum(v < NEAR_ZERO_BP for v in nov)}, under {GOOD_BP}: "
        f"{sum(v < GOOD_BP for v in nov)}, gate flags among them: {len(flags)}"
        + (f" ({'; '.join(flags)})" if flags else "")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", action="append", default=[], help="a Debian package's audio files")
    ap.add_argument("--folder", action="append", default=[], type=Path, help="a folder's audio files")
    ap.add_argument("--min-seconds", type=float, default=20.0, help="skip shorter files (sound effects)")
    ap.add_argument("--device", default=None, help="torch device (default: CUDA when present)")
    ap.add_argument("--json", type=Path, help="also write every row as JSON to this file")
    args = ap.parse_args(argv)
    sources = [(p, package_files(p)) for p in args.package] + [(str(f), folder_files(f)) for f in args.folder]
    if not sources:
        ap.error("name at least one --package or --folder")
    t0 = time.perf_counter()
    lines: list[str] = []
    every: list[FileRow] = []
    for source, files in sources:
        print(f"{source}: {len(files)} audio files", flush=True)
        rows, skipped = survey_source(source, files, args.min_seconds, args.device)
        every += rows
        lines.append(summary(source, rows, skipped))
    print()
    for line in lines:
        print(line)
    print(summary("all", every, []))
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in every], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
