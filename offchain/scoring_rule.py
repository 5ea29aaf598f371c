"""The protocol's scoring rule in one place: how a minted token is scored, shared by worker and validator.

A published score only verifies when the worker (offchain/pipeline/scoring.py) and every validator
(offchain/audit/engine.py) measure the same track against the same catalogue with the same genre, so the rule
lives here and both call `apply_rule`; neither restates it. The rule:

- the catalogue id of token N is `token:N` (ids are part of the catalogue root);
- the audio is decoded with `scoring.decode.decode_bytes`; undecodable audio is rejected and stays out of
  the catalogue, as does audio the engine cannot score;
- each track is scored alone, in token order, with `scoring.engine.score_batch(add_to_catalogue=True)`, so
  every scored track enters the catalogue, duplicates and derivatives included;
- the genre is the creator's DECLARED genre from the track metadata on IPFS, normalised (`normalise_genre`)
  to a name the shipped genre reference knows; an unknown, missing or unreadable genre scores as None, and
  the score details say why;
- a duplicate or derivative verdict means the score is never published;
- crash replay: a track already in the catalogue (saved before a crash, not yet recorded) is scored again
  against the catalogue prefix before it, the exact state it was first scored against.

`RULE_VERSION` goes into every score's details (`versions["rule"]`) and the validator's evidence, so a change
of rule is visible on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from offchain.ipfs.metadata import MetadataError, TrackMetadata
from scoring.catalog import Catalogue
from scoring.errors import AudioError, ScoringError

if TYPE_CHECKING:  # types only: the engine and the genre references are heavy, imported where they run
    from scoring.engine import PublishedScore
    from scoring.novelty import GenreReference

RULE_VERSION = "ami-score-rule/2"
"""Version of this rule (1: genre always None; 2: the declared genre, normalised)."""

Verdict = Literal["scored", "duplicate", "derivative", "undecodable", "unscorable"]


def catalogue_id(token_id: int) -> str:
    """The catalogue id of a minted token."""
    return f"token:{token_id}"


@dataclass(frozen=True)
class DeclaredGenre:
    """The genre a creator declared in the track metadata (`value`), or None and `note` saying why not."""

    value: str | None = None
    note: str | None = None


def declared_genre(metadata: bytes) -> DeclaredGenre:
    """The declared genre of a metadata document read from IPFS; malformed metadata gives None and why."""
    try:
        return DeclaredGenre(TrackMetadata.from_json(metadata).genre)
    except MetadataError as exc:
        return DeclaredGenre(None, f"metadata_invalid: {exc}"[:300])


def no_metadata(reason: str, detail: str) -> DeclaredGenre:
    """No genre because the metadata could not be read (`reason` a stable word, e.g. "not_found")."""
    return DeclaredGenre(None, f"metadata_{reason}: {detail}"[:300])


def _key(name: str) -> str:
    # Creators write "Bach chorale", "bach-chorale" or "BACH_CHORALE"; the reference's names are snake_case.
    return re.sub(r"[\s_-]+", "_", name.strip().casefold())


def normalise_genre(declared: DeclaredGenre, reference: GenreReference) -> tuple[str | None, str | None]:
    """(genre the engine scores with, note): a genre the reference knows, else None and the reason."""
    if declared.value is None:
        return None, declared.note or "no_genre_declared"
    key = _key(declared.value)
    for name in reference.names():
        if _key(name) == key:
            return name, None
    return None, f"unknown_genre: {declared.value[:64]!r} is not in the genre reference"


@dataclass
class RuleOutcome:
    """What the rule decided for one token.

    `score` is set unless the audio was undecodable or unscorable; `position` is the track's index in the
    catalogue when it is there (always, once scored); `added` says the catalogue grew (the caller saves it);
    `details` are JSON-able: the rule version, the declared and used genre, the note when genre is None.
    """

    verdict: Verdict
    detail: str = ""
    score: PublishedScore | None = None
    position: int | None = None
    added: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def publishable(self) -> bool:
        return self.verdict == "scored"


def _prefix(cat: Catalogue, pos: int) -> Catalogue:
    prefix = Catalogue(cat.dim, cat.c2d_dim)
    if pos:
        prefix.add(
            cat.ids[:pos],
            cat.embeddings[:pos],
            cat.chroma_2dft[:pos] if cat.c2d_dim else None,
            [cat.fingerprint(i) for i in range(pos)],
            cat.labels[:pos],
            pcm_sha256=cat.pcm_sha256[:pos],
            steps=[cat.steps(i) for i in range(pos)],
        )
    return prefix


def apply_rule(
    catalogue: Catalogue,
    token_id: int,
    audio: bytes,
    declared: DeclaredGenre | str | None,
    device: str | None = None,
    reference: GenreReference | None = None,
) -> RuleOutcome:
    """Score minted token `token_id` (its verified audio bytes) against `catalogue`, by the rule above.

    `declared` is the metadata's genre (a plain string is taken as declared; None: none declared).
    The catalogue grows by this track unless it is already there (crash replay) or was rejected before
    scoring. Raises nothing for a bad track; the genre reference failing to load raises `ScoringError`.
    """
    from scoring.decode import decode_bytes  # the audio decoding stack: heavy, loaded on first use
    from scoring.engine import TrackInput, score_batch  # the scoring engine: heavy (torch), on first use
    from scoring.novelty import load_reference  # the genre references: heavy, loaded on first use

    if not isinstance(declared, DeclaredGenre):
        declared = DeclaredGenre(declared)
    ref = reference if reference is not None else load_reference()
    genre, note = normalise_genre(declared, ref)
    info: dict[str, Any] = {
        "rule": RULE_VERSION,
        "declared_genre": declared.value,
        "scored_genre": genre,
    }
    if note is not None:
        info["genre_note"] = note
    try:
        canon = decode_bytes(audio)
    except AudioError as exc:
        return RuleOutcome("undecodable", f"{type(exc).__name__}: {exc}", details=info)
    track_id = catalogue_id(token_id)
    pos = catalogue.position(track_id)
    added = pos is None
    item = TrackInput(track_id, canon, genre)
    try:
        if pos is not None:  # saved before a crash: replay against the catalogue it was first scored against
            (ps,) = score_batch([item], _prefix(catalogue, pos), device=device, reference=ref)
        else:
            (ps,) = score_batch([item], catalogue, device=device, reference=ref, add_to_catalogue=True)
            pos = catalogue.position(track_id)
    except ScoringError as exc:
        return RuleOutcome("unscorable", f"{type(exc).__name__}: {exc}", details=info)
    if ps.duplicate_of:
        return RuleOutcome("duplicate", f"duplicate of {ps.duplicate_of}", ps, pos, added, info)
    if ps.derivative_of:
        return RuleOutcome("derivative", f"derivative of {ps.derivative_of}", ps, pos, added, info)
    return RuleOutcome("scored", "", ps, pos, added, info)
