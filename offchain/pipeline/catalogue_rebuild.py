"""A worker's catalogue across a scoring model change: refused at start when unusable, rebuilt from the store.

A catalogue written by an older model (or damaged) cannot be loaded, and a missing one would be recreated
empty, so the worker would publish novelty measured against nothing while tokens were already scored.
`check_catalogue` refuses both at start; `rebuild_catalogue` (`ami rebuild-catalogue`) rescores every token
whose verdict came from the shared scoring rule, in token order, from its verified audio and declared genre on
IPFS, through `offchain.scoring_rule.apply_rule` (so its root is the one a validator rescoring the same tokens
from scratch computes), writes the result beside the old folder and swaps it in, keeping the old one as a
backup. Scores already handed to the submitter keep their model version; scores not yet handed are replaced
by the current model's verdict.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offchain import scoring_rule
from offchain.ipfs.metadata import MAX_METADATA_BYTES
from offchain.pipeline.ports import ContentFetcher, FetchError, StorageUnavailable
from offchain.pipeline.scoring import outcome_details
from offchain.store import TrackRow, WorkerStore
from scoring.catalog import CatalogError, Catalogue

REBUILD_COMMAND = "ami rebuild-catalogue"
RULE_VERDICTS = ("duplicate", "derivative", "undecodable", "unscorable")
"""Rejection reasons that are the scoring rule's own verdict (the track reached the scorer)."""
_ENTERED = ("scored", "submitted", "published")


class CatalogueUnusable(Exception):
    """The worker's catalogue cannot be scored against (older model, damaged, missing); says what to run."""


class RebuildError(Exception):
    """The rebuild stopped (IPFS unreachable, audio missing); the old catalogue is untouched and in place."""


def catalogue_dir(db_path: Path) -> Path:
    """Where the worker keeps its catalogue: `<db folder>/catalogue`."""
    return db_path.parent / "catalogue"


def rule_decided(track: TrackRow) -> bool:
    """Whether `track` reached the scoring rule (scored, or rejected by the rule's own verdict)."""
    return track.status in _ENTERED or (track.status == "rejected" and track.reason in RULE_VERDICTS)


def _entered(track: TrackRow) -> bool:
    return track.status in _ENTERED or (track.status == "rejected" and track.reason in RULE_VERDICTS[:2])


async def check_catalogue(folder: Path, store: WorkerStore) -> int:
    """The number of entries of the catalogue in `folder`, once it is known to be usable for this store.

    Loads it fully (segment digests and root checked), which costs what the scorer's own load costs.

    Raises:
        CatalogueUnusable: it was written by another model or is damaged, or it is missing or shorter than
            the tracks the store says entered it; the message names `ami rebuild-catalogue`.
    """
    entered = sum(1 for t in await store.tracks() if _entered(t))
    if not (folder / "manifest.json").is_file():
        if entered:
            raise CatalogueUnusable(
                f"the scoring catalogue {folder} is missing, but {entered} scored tracks entered it: scoring"
                f" against an empty catalogue would publish wrong scores; stop, run `{REBUILD_COMMAND}`"
                " (it rescores them from IPFS), then start again"
            )
        return 0
    try:
        cat = await asyncio.to_thread(Catalogue.load, folder)
    except CatalogError as exc:
        raise CatalogueUnusable(
            f"cannot use the scoring catalogue: {exc}. Run `{REBUILD_COMMAND}`: it rebuilds the worker's"
            " catalogue from the database and IPFS with the current model and keeps the old one as a backup"
        ) from None
    if len(cat) < entered:
        raise CatalogueUnusable(
            f"the scoring catalogue {folder} holds {len(cat)} entries, but {entered} scored tracks entered it"
            f" (restored from an older copy?): run `{REBUILD_COMMAND}`"
        )
    return len(cat)


@dataclass
class RebuildReport:
    """What a rebuild did: the new catalogue's ids and root, where the old one went, what changed."""

    catalogue: Path
    backup: Path | None
    ids: list[str]
    root_hash: str
    rescored: int
    left_out: dict[int, str] = field(default_factory=dict)
    """Tokens the current model keeps out of the catalogue (undecodable, unscorable), with why."""
    rescored_unsubmitted: list[int] = field(default_factory=list)
    """Tokens whose score was not yet handed to the submitter: now carry the current model's verdict."""
    verdict_changes: dict[int, str] = field(default_factory=dict)
    """Tokens whose rule verdict differs under the current model (reported; on-chain scores stay)."""


Progress = Callable[[int, int], None]


def _backup_name(folder: Path) -> Path:
    """`catalogue.<its catalogue version>.bak` (or `.unreadable.bak`), numbered so nothing is overwritten."""
    try:
        version = str(json.loads((folder / "manifest.json").read_text()).get("version", "unknown"))
    except (OSError, ValueError, AttributeError):
        version = "unreadable"
    tag = "".join(c if c.isalnum() else "-" for c in version)
    base = folder.with_name(f"{folder.name}.{tag}.bak")
    path, n = base, 1
    while path.exists():
        path, n = base.with_name(f"{base.name}.{n}"), n + 1
    return path


async def _fetch(fetcher: ContentFetcher, track: TrackRow, max_audio_bytes: int) -> tuple[bytes, Any]:
    """(verified audio, declared genre) of `track`; RebuildError naming the token when audio is missing."""
    try:
        audio = await fetcher.fetch(track.audio_cid, max_audio_bytes)
    except StorageUnavailable as exc:
        raise RebuildError(
            f"IPFS is unreachable at token {track.token_id} ({exc}); nothing was changed: start the IPFS node"
            f" and run `{REBUILD_COMMAND}` again"
        ) from None
    except FetchError as exc:
        raise RebuildError(
            f"the audio of token {track.token_id} ({track.audio_cid}) cannot be read: {exc.reason}:"
            f" {exc.detail}; nothing was changed: make it available on the IPFS node and run it again"
        ) from None
    try:
        raw = await fetcher.fetch(track.metadata_cid, MAX_METADATA_BYTES)
    except StorageUnavailable as exc:
        raise RebuildError(
            f"IPFS is unreachable at token {track.token_id}'s metadata ({exc}); nothing was changed"
        ) from None
    except FetchError as exc:  # metadata is advisory, exactly as when the worker scored it
        return audio, scoring_rule.no_metadata(exc.reason, exc.detail)
    return audio, scoring_rule.declared_genre(raw)


async def rebuild_catalogue(
    store: WorkerStore,
    folder: Path,
    fetcher: ContentFetcher,
    *,
    device: str | None = None,
    max_audio_bytes: int = 1 << 30,
    progress: Progress | None = None,
) -> RebuildReport:
    """Rebuild the catalogue in `folder` from `store` and IPFS with the current model (see the module doc).

    The caller holds the worker's instance lock, so no daemon scores meanwhile. The new catalogue is written
    to `<folder>.rebuild` first; only when every token was rescored is the old folder renamed to its backup
    and the new one renamed into place, then unsubmitted scores are replaced in one store transaction.

    Raises:
        RebuildError: a token's audio could not be fetched and verified; nothing was changed.
    """
    from scoring.engine import new_catalogue  # the scoring engine: heavy (torch), loaded when a rebuild runs
    from scoring.novelty import load_reference  # heavy: the genre reference, loaded once for every token

    tracks = [t for t in await store.tracks() if rule_decided(t)]
    reference = await asyncio.to_thread(load_reference)
    cat = new_catalogue()
    outcomes: dict[int, scoring_rule.RuleOutcome] = {}
    for i, track in enumerate(tracks):
        audio, declared = await _fetch(fetcher, track, max_audio_bytes)
        outcomes[track.token_id] = await asyncio.to_thread(
            scoring_rule.apply_rule, cat, track.token_id, audio, declared, device, reference
        )
        if progress is not None:
            progress(i + 1, len(tracks))
    staging = folder.with_name(folder.name + ".rebuild")
    shutil.rmtree(staging, ignore_errors=True)  # a rebuild stopped earlier left it: never read, only replaced
    await asyncio.to_thread(cat.save, staging)
    written = await asyncio.to_thread(Catalogue.load, staging)
    if written.root_hash() != cat.root_hash():
        raise RebuildError(f"the rebuilt catalogue in {staging} does not read back; nothing was changed")
    backup = _backup_name(folder) if folder.exists() else None
    if backup is not None:
        os.rename(folder, backup)
    os.rename(staging, folder)
    report = RebuildReport(folder, backup, list(cat.ids), cat.root_hash(), len(tracks))
    await _record(store, tracks, outcomes, report)
    return report


async def _record(
    store: WorkerStore,
    tracks: list[TrackRow],
    outcomes: dict[int, scoring_rule.RuleOutcome],
    report: RebuildReport,
) -> None:
    """Replace the scores not yet handed to the submitter by the current model's; report other changes."""
    scores: list[tuple[int, int, int, int, bytes, dict[str, Any]]] = []
    withdrawn: list[tuple[int, str, str]] = []
    for track in tracks:
        out = outcomes[track.token_id]
        if out.verdict in ("undecodable", "unscorable"):
            report.left_out[track.token_id] = f"{out.verdict}: {out.detail}"
        was = "scored" if track.status in _ENTERED else str(track.reason)
        if track.status == "scored":  # not handed yet: it is published with the current model
            ps = out.score
            if out.publishable and ps is not None:
                row = (ps.novelty_bp, ps.quality_bp, ps.model_version, ps.commitment, outcome_details(out))
                scores.append((track.token_id, *row))
            else:
                withdrawn.append((track.token_id, out.verdict, out.detail))
            report.rescored_unsubmitted.append(track.token_id)
        elif was != out.verdict:
            report.verdict_changes[track.token_id] = f"{was} -> {out.verdict}"
    await store.replace_unsubmitted_scores(scores, withdrawn)
