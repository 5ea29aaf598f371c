"""`ami score` and `ami catalog build|add|stats`: score audio files in mint order, manage the catalogue."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import typer
from rich.progress import Progress

from offchain.cli.exits import EXIT_UNEXPECTED, exit_on
from scoring.catalog import Catalogue
from scoring.decode import decode_file
from scoring.errors import ScoringError
from scoring.novelty import GenreReference, load_reference

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3")
CATALOG_ENV = "AMI_CATALOG"
CHUNK = 8

CatalogOpt = typer.Option(None, "--catalog", help="catalogue folder")
GenreLabelOpt = typer.Option(None, "--genre", help="label stored with every entry")
DeviceOpt = typer.Option(None, "--device")


def default_catalog_dir() -> Path:
    """``$AMI_CATALOG`` or ``~/.ami/catalog``."""
    return Path(os.environ.get(CATALOG_ENV) or Path.home() / ".ami" / "catalog")


def _engine() -> ModuleType:
    # Lazy: scoring.engine loads torch (seconds); `ami --help` and the chain commands must start fast.
    import scoring.engine

    return scoring.engine


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """`advance(n)`: a rich progress bar on a terminal, else a no-op (so pipes get clean JSON lines)."""
    with progress_bar(label) as update:
        yield lambda n: update(n, total, advance=True)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[..., None]]:
    """`update(done, total, advance=False)` (`advance`: add `done`): a rich progress bar on a terminal's
    stderr, else a no-op, so that pipes and --json get clean output."""
    if not sys.stderr.isatty():
        yield lambda done, total, advance=False: None
        return
    progress = Progress(transient=True)
    progress.start()
    task = progress.add_task(label, total=None)

    def update(done: int, total: int, advance: bool = False) -> None:
        if advance:
            progress.update(task, total=total, advance=done)
        else:
            progress.update(task, total=total, completed=done)

    try:
        yield update
    finally:
        progress.stop()


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


def _unique_id(name: str, taken: set[str]) -> str:
    track_id, n = name, 1
    while track_id in taken:
        n += 1
        track_id = f"{name}#{n}"
    taken.add(track_id)
    return track_id


def _open_for_scoring(folder: Path, genre: str | None) -> tuple[Catalogue, GenreReference]:
    """The catalogue in `folder` and the genre reference, `genre` checked against it; exit 2 if wrong."""
    with exit_on(ScoringError):  # no catalogue, an unknown genre
        cat = _engine().open_catalogue(str(folder))
        ref = load_reference()
        if genre is not None and genre not in ref.genres:
            raise ScoringError(f"unknown genre {genre!r}; known genres: {', '.join(ref.names())}")
    return cat, ref


def _score_chunk(
    chunk: list[Path],
    cat: Catalogue,
    ref: GenreReference,
    genre: str | None,
    device: str | None,
    taken: set[str],
    as_json: bool,
) -> bool:
    """Score one chunk of files against the catalogue (and the files before them), printing one line per
    file in order; True when any failed."""
    engine = _engine()
    items: list[Any] = []
    lines: list[dict[str, Any] | None] = []  # None: the next scored item
    failed = False
    for path in chunk:
        try:
            audio = decode_file(path)
        except (ScoringError, OSError) as exc:
            lines.append(_error_line(str(path), exc))
            failed = True
            continue
        items.append(engine.TrackInput(_unique_id(str(path), taken), audio, genre))
        lines.append(None)
    try:
        # add_to_catalogue on the in-memory copy: later chunks see earlier files (mint order).
        scores = engine.score_batch(items, cat, device=device, reference=ref, add_to_catalogue=True)
    except ScoringError as exc:
        for it in items:
            _emit(_error_line(it.track_id, exc), as_json)
        for line in lines:
            if line is not None:
                _emit(line, as_json)
        return True
    results = iter(zip(items, scores, strict=True))
    for line in lines:
        if line is None:
            it, sc = next(results)
            line = {"file": it.track_id, **sc.to_json(), "details": sc.details}
        _emit(line, as_json)
    return failed


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
    folder = catalog or default_catalog_dir()
    cat, ref = _open_for_scoring(folder, genre)
    failed = False
    taken = set(cat.ids)
    with _progress(len(files), "scoring") as advance:
        for start in range(0, len(files), CHUNK):
            chunk = files[start : start + CHUNK]
            failed = _score_chunk(chunk, cat, ref, genre, device, taken, as_json) or failed
            advance(len(chunk))
    if add:
        cat.save(folder)
    if failed:
        raise typer.Exit(EXIT_UNEXPECTED)


def _stderr_json(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj), err=True)


def _catalogue_chunk(
    chunk: list[Path], cat: Catalogue, genre: str | None, device: str | None, taken: set[str]
) -> bool:
    """Add one chunk of files to the catalogue, each failure a JSON line on stderr; True when any failed."""
    engine = _engine()
    items = []
    failed = False
    for path in chunk:
        try:
            audio = decode_file(path)
        except (ScoringError, OSError) as exc:
            _stderr_json(_error_line(str(path), exc))
            failed = True
            continue
        if str(path) in taken:
            _stderr_json({"file": str(path), "error": "AlreadyCatalogued"})
            failed = True
            continue
        taken.add(str(path))
        items.append(engine.TrackInput(str(path), audio, genre))
    try:
        engine.add_tracks(cat, items, device=device)
    except ScoringError as exc:
        for it in items:
            _stderr_json(_error_line(it.track_id, exc))
        failed = True
    return failed


def _add_files(folder: Path, paths: list[Path], genre: str | None, fresh: bool, device: str | None) -> None:
    with exit_on(ScoringError):  # no catalogue, an unknown genre
        cat = _engine().new_catalogue() if fresh else _engine().open_catalogue(str(folder))
    files = _collect(paths)
    taken = set(cat.ids)
    failed = False
    with _progress(len(files), "cataloguing") as advance:
        for start in range(0, len(files), CHUNK):
            chunk = files[start : start + CHUNK]
            failed = _catalogue_chunk(chunk, cat, genre, device, taken) or failed
            advance(len(chunk))
    cat.save(folder)
    typer.echo(json.dumps(cat.stats(), sort_keys=True))
    if failed:
        raise typer.Exit(EXIT_UNEXPECTED)


def _catalog_files_command(replace: bool, doc: str) -> Callable[..., None]:
    """`ami catalog build` (replace=True) and `ami catalog add`: the same options, one difference."""

    def command(
        files: list[Path] = typer.Argument(..., help="audio files or folders (searched recursively)"),
        genre: str | None = GenreLabelOpt,
        catalog: Path | None = CatalogOpt,
        device: str | None = DeviceOpt,
    ) -> None:
        _add_files(catalog or default_catalog_dir(), files, genre, replace, device)

    command.__doc__ = doc
    return command


build = _catalog_files_command(True, "Build a new catalogue from audio files (replacing the folder's).")
add_cmd = _catalog_files_command(False, "Append audio files to the catalogue.")


def stats(catalog: Path | None = CatalogOpt) -> None:
    """Print entry count, dimensions, root hash and label counts as JSON."""
    with exit_on(ScoringError):  # no catalogue, an unknown genre
        cat = Catalogue.load(catalog or default_catalog_dir())
    typer.echo(json.dumps(cat.stats(), sort_keys=True))


def register(app: typer.Typer) -> None:
    """Add `score` and the `catalog` group to the `ami` app."""
    app.command("score")(score)
    catalog_app = typer.Typer(help="Build, extend and inspect the track catalogue.", no_args_is_help=True)
    catalog_app.command("build")(build)
    catalog_app.command("add")(add_cmd)
    catalog_app.command("stats")(stats)
    app.add_typer(catalog_app, name="catalog")
