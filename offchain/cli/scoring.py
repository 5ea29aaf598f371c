"""`ami score` and `ami catalog build|add|stats`: score audio files in mint order, manage the catalogue."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3")
CATALOG_ENV = "AMI_CATALOG"
CHUNK = 8


def default_catalog_dir() -> Path:
    """``$AMI_CATALOG`` or ``~/.ami/catalog``."""
    return Path(os.environ.get(CATALOG_ENV) or Path.home() / ".ami" / "catalog")


def _progress(total: int, label: str) -> Any:
    """A rich progress bar on a terminal, else a no-op stand-in (so pipes get clean JSON lines)."""
    if sys.stderr.isatty():
        from rich.progress import Progress

        progress = Progress(transient=True)
        progress.start()
        task = progress.add_task(label, total=total)
        return progress, task
    return None, None


def _advance(bar: tuple[Any, Any], n: int = 1) -> None:
    if bar[0] is not None:
        bar[0].advance(bar[1], n)


def _stop(bar: tuple[Any, Any]) -> None:
    if bar[0] is not None:
        bar[0].stop()


def _error_line(file: str, exc: Exception) -> dict[str, Any]:
    return {"file": file, "error": type(exc).__name__, "message": str(exc)}


def _emit(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj, sort_keys=True))
    elif "error" in obj:
        typer.echo(f"{obj['file']}: ERROR {obj['error']}: {obj['message']}", err=True)
    else:
        gate = (
            f"duplicate of {obj['duplicate_of']}"
            if obj["duplicate_of"]
            else f"derivative of {obj['derivative_of']}"
            if obj["derivative_of"]
            else "original"
        )
        typer.echo(f"{obj['file']}: novelty {obj['novelty_bp']} bp, quality {obj['quality_bp']} bp, {gate}")


def _collect(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            )
        else:
            out.append(path)
    return out


def _decode(path: Path) -> Any:
    from scoring.decode import decode_file

    return decode_file(path)


def _unique_id(name: str, taken: set[str]) -> str:
    track_id, n = name, 1
    while track_id in taken:
        n += 1
        track_id = f"{name}#{n}"
    taken.add(track_id)
    return track_id


def register(app: typer.Typer) -> None:
    """Add `score` and the `catalog` group to the `ami` app."""

    @app.command("score")
    def score(
        files: list[Path] = typer.Argument(..., help="audio files, taken in this order as minted"),
        genre: str | None = typer.Option(None, "--genre", help="declared genre of every file"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per file on stdout"),
        catalog: Path | None = typer.Option(
            None, "--catalog", help=f"catalogue folder (default ${CATALOG_ENV} or ~/.ami/catalog)"
        ),
        add: bool = typer.Option(False, "--add", help="append the scored files to the catalogue"),
        device: str | None = typer.Option(None, "--device", help="torch device (default: CUDA if present)"),
    ) -> None:
        """Score audio files: novelty, quality and the duplicate gate, one result per file.

        Each file is checked against the catalogue and against the files before it. Bad files print an error
        and the rest go on; the exit status is 1 if any file failed.
        """
        from scoring.engine import TrackInput, open_catalogue, score_batch
        from scoring.errors import ScoringError
        from scoring.novelty import load_reference

        folder = catalog or default_catalog_dir()
        try:
            cat = open_catalogue(str(folder))
            ref = load_reference()
            if genre is not None and genre not in ref.genres:
                raise ScoringError(f"unknown genre {genre!r}; known genres: {', '.join(ref.names())}")
        except ScoringError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        failed = False
        taken = set(cat.ids)
        bar = _progress(len(files), "scoring")
        try:
            for start in range(0, len(files), CHUNK):
                chunk = files[start : start + CHUNK]
                items: list[TrackInput] = []
                lines: list[dict[str, Any] | None] = []
                for path in chunk:
                    try:
                        audio = _decode(path)
                    except (ScoringError, OSError) as exc:
                        lines.append(_error_line(str(path), exc))
                        failed = True
                        continue
                    items.append(TrackInput(_unique_id(str(path), taken), audio, genre))
                    lines.append(None)
                try:
                    # add_to_catalogue on the in-memory copy: later chunks see earlier files (mint order).
                    scores = score_batch(items, cat, device=device, reference=ref, add_to_catalogue=True)
                except ScoringError as exc:
                    for it in items:
                        _emit(_error_line(it.track_id, exc), as_json)
                    failed = True
                    scores = []
                    items = []
                results = iter(zip(items, scores, strict=True))
                for line in lines:
                    if line is None:
                        it, sc = next(results)
                        out = {"file": it.track_id, **sc.to_json(), "details": sc.details}
                        _emit(out, as_json)
                    else:
                        _emit(line, as_json)
                    _advance(bar)
        finally:
            _stop(bar)
        if add:
            cat.save(folder)
        if failed:
            raise typer.Exit(1)

    catalog_app = typer.Typer(help="Build, extend and inspect the track catalogue.", no_args_is_help=True)

    def _add_files(
        folder: Path, paths: list[Path], genre: str | None, fresh: bool, device: str | None
    ) -> None:
        from scoring.engine import TrackInput, add_tracks, new_catalogue, open_catalogue
        from scoring.errors import ScoringError

        try:
            cat = new_catalogue() if fresh else open_catalogue(str(folder))
        except ScoringError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        files = _collect(paths)
        taken = set(cat.ids)
        failed = False
        bar = _progress(len(files), "cataloguing")
        try:
            for start in range(0, len(files), CHUNK):
                items = []
                for path in files[start : start + CHUNK]:
                    try:
                        audio = _decode(path)
                    except (ScoringError, OSError) as exc:
                        typer.echo(json.dumps(_error_line(str(path), exc)), err=True)
                        failed = True
                        continue
                    if str(path) in taken:
                        typer.echo(json.dumps({"file": str(path), "error": "AlreadyCatalogued"}), err=True)
                        failed = True
                        continue
                    taken.add(str(path))
                    items.append(TrackInput(str(path), audio, genre))
                try:
                    add_tracks(cat, items, device=device)
                except ScoringError as exc:
                    for it in items:
                        typer.echo(json.dumps(_error_line(it.track_id, exc)), err=True)
                    failed = True
                _advance(bar, len(files[start : start + CHUNK]))
        finally:
            _stop(bar)
        cat.save(folder)
        typer.echo(json.dumps(cat.stats(), sort_keys=True))
        if failed:
            raise typer.Exit(1)

    @catalog_app.command("build")
    def build(
        dirs: list[Path] = typer.Argument(..., help="folders (searched recursively) or files"),
        genre: str | None = typer.Option(None, "--genre", help="label stored with every entry"),
        catalog: Path | None = typer.Option(None, "--catalog", help="catalogue folder"),
        device: str | None = typer.Option(None, "--device"),
    ) -> None:
        """Build a new catalogue from audio files (replaces the one in the folder)."""
        _add_files(catalog or default_catalog_dir(), dirs, genre, True, device)

    @catalog_app.command("add")
    def add_cmd(
        files: list[Path] = typer.Argument(..., help="audio files or folders"),
        genre: str | None = typer.Option(None, "--genre", help="label stored with every entry"),
        catalog: Path | None = typer.Option(None, "--catalog", help="catalogue folder"),
        device: str | None = typer.Option(None, "--device"),
    ) -> None:
        """Append audio files to the catalogue."""
        _add_files(catalog or default_catalog_dir(), files, genre, False, device)

    @catalog_app.command("stats")
    def stats(catalog: Path | None = typer.Option(None, "--catalog", help="catalogue folder")) -> None:
        """Print entry count, dimensions, root hash and label counts as JSON."""
        from scoring.catalog import Catalogue
        from scoring.errors import ScoringError

        try:
            cat = Catalogue.load(catalog or default_catalog_dir())
        except ScoringError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(json.dumps(cat.stats(), sort_keys=True))

    app.add_typer(catalog_app, name="catalog")
