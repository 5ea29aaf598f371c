"""The validator's `Rescorer` over the scoring engine (`scoring.engine.score_batch`), as the worker scores.

It mirrors the worker's scoring stage (`offchain.pipeline.scoring`) exactly, because a score only verifies
when both sides measure the same track against the same catalogue:
- decode with `scoring.decode.decode_bytes`; undecodable audio is rejected and stays out of the catalogue;
- score the track alone, in token order, against the catalogue of every earlier track that was scored
  (duplicates and derivatives included: the engine adds them before the gate's verdict is known), with
  the track id `token:<id>` (ids are part of the catalogue root) and no genre;
- a duplicate or derivative verdict means the track must not be published (`accepted` False).

A catalogue entry (unit embedding, chroma 2D-FT, Chromaprint fingerprint) is kept as `.npz` bytes so the
catalogue can be rebuilt from the validator's database after a restart.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np

from offchain.audit.rescore import Rescored, RescoreError


def engine_track_id(token_id: int) -> str:
    """The catalogue id of a minted token, as the worker's scoring stage names it."""
    return f"token:{token_id}"


def _pack(emb: np.ndarray, c2d: np.ndarray, fp: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(
        buf, emb=np.asarray(emb, np.float32), c2d=np.asarray(c2d, np.float32), fp=np.asarray(fp, np.uint32)
    )
    return buf.getvalue()


def _unpack(entry: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(entry), allow_pickle=False) as z:
        return z["emb"], z["c2d"], z["fp"]


class EngineRescorer:
    """`Rescorer` for `scoring.versions.MODEL_VERSION` (see the module docstring)."""

    def __init__(self, device: str | None = None) -> None:
        from scoring.versions import MODEL_VERSION

        self.model_version = MODEL_VERSION
        self.device = device
        self.catalogue = self._empty()

    @staticmethod
    def _empty() -> Any:
        from scoring.engine import new_catalogue

        return new_catalogue()

    def rescore(self, token_id: int, audio: bytes, genre: str | None) -> Rescored:
        from scoring.decode import decode_bytes
        from scoring.engine import TrackInput, score_batch
        from scoring.errors import AudioError, ScoringError

        try:
            canon = decode_bytes(audio)
        except AudioError as exc:
            return Rescored(accepted=False, reason=f"undecodable: {type(exc).__name__}: {exc}")
        track_id = engine_track_id(token_id)
        cat = self.catalogue
        if cat.position(track_id) is not None:
            raise RescoreError(f"{track_id} is already in the validator's catalogue (rescored twice?)")
        try:
            (ps,) = score_batch(
                [TrackInput(track_id, canon, genre)], cat, device=self.device, add_to_catalogue=True
            )
        except ScoringError as exc:
            return Rescored(accepted=False, reason=f"unscorable: {type(exc).__name__}: {exc}")
        i = cat.position(track_id)
        entry = _pack(cat.embeddings[i], cat.chroma_2dft[i], cat.fingerprint(i))
        inputs: dict[str, Any] = {
            "pcm_sha256": ps.pcm_sha256,
            "features_sha256": ps.features_sha256,
            "catalogue_root": ps.catalogue_root,
            "catalogue_size": i,
            "duplicate_of": ps.duplicate_of,
            "derivative_of": ps.derivative_of,
            "versions": dict(ps.versions),
        }
        reason = None
        if ps.duplicate_of:
            reason = f"duplicate_of:{ps.duplicate_of}"
        elif ps.derivative_of:
            reason = f"derivative_of:{ps.derivative_of}"
        return Rescored(
            accepted=reason is None,
            novelty_bp=ps.novelty_bp,
            quality_bp=ps.quality_bp,
            commitment=ps.commitment,
            reason=reason,
            inputs=inputs,
            entry=entry,
        )

    def accept(self, token_id: int, entry: bytes) -> None:
        track_id = engine_track_id(token_id)
        if self.catalogue.position(track_id) is not None:
            return  # rescore() already appended it, exactly as the engine does for the worker
        emb, c2d, fp = _unpack(entry)
        self.catalogue.add([track_id], emb[None, :], c2d[None, :], [fp], [None])

    def restore(self, entries: Iterable[tuple[int, bytes]]) -> None:
        self.catalogue = self._empty()
        items = list(entries)
        if not items:
            return
        unpacked = [_unpack(e) for _, e in items]
        self.catalogue.add(
            [engine_track_id(t) for t, _ in items],
            np.stack([u[0] for u in unpacked]),
            np.stack([u[1] for u in unpacked]),
            [u[2] for u in unpacked],
            [None] * len(items),
        )
