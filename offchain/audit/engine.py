"""The validator's `Rescorer` over the scoring engine: the shared scoring rule, as the worker scores.

A score only verifies when both sides measure the same track against the same catalogue with the same genre,
so the decision is `offchain.scoring_rule.apply_rule`, the very function the worker's scoring stage calls
(catalogue id, declared genre, decode, score_batch, duplicate/derivative verdicts). This class only keeps
the validator's catalogue and its evidence.

A catalogue entry (unit embedding, chroma 2D-FT, Chromaprint fingerprint, canonical PCM hash, chroma steps)
is kept as `.npz` bytes so the catalogue can be rebuilt from the validator's database after a restart.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from offchain import scoring_rule
from offchain.audit.rescore import Rescored, RescoreError, Rescorer
from offchain.scoring_rule import DeclaredGenre
from scoring.agreement import AGREEMENT_VERSION, library_differences
from scoring.catalog import STEP_WIDTH, steps_u8
from scoring.errors import ScoringError
from scoring.versions import MODEL_VERSION


def engine_track_id(token_id: int) -> str:
    """The catalogue id of a minted token (the shared rule's `catalogue_id`)."""
    return scoring_rule.catalogue_id(token_id)


def _gate(gate: object) -> dict[str, Any] | None:
    """The engine's ``details["gate"]`` ({"decision", "margin": float}) as float-free evidence (the margin in
    millionths); None when the engine does not report one (then no decision counts as borderline)."""
    if not isinstance(gate, dict):
        return None
    margin = gate.get("margin")
    if not isinstance(margin, int | float) or not math.isfinite(margin):  # NaN/inf: no margin
        return {"decision": str(gate.get("decision")), "margin_ppm": None}
    return {"decision": str(gate.get("decision")), "margin_ppm": int(round(float(margin) * 1_000_000))}


def _pack(emb: np.ndarray, c2d: np.ndarray, fp: np.ndarray, pcm_sha256: str, steps: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(
        buf,
        emb=np.asarray(emb, np.float32),
        c2d=np.asarray(c2d, np.float32),
        fp=np.asarray(fp, np.uint32),
        pcm=np.frombuffer(bytes.fromhex(pcm_sha256), np.uint8),
        steps=steps_u8(steps),  # as the catalogue stores them
    )
    return buf.getvalue()


def _unpack(entry: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, np.ndarray]:
    """(embedding, chroma 2D-FT, fingerprint, PCM hash hex, chroma steps uint8) of a packed entry.

    Raises:
        RescoreError: the bytes are not an entry of this layout (e.g. stored by an older validator, whose
            entries carry no PCM hash: its rescored rows must be dropped and redone).
    """
    try:
        with np.load(io.BytesIO(entry), allow_pickle=False) as z:
            pcm = bytes(z["pcm"].astype(np.uint8))
            if len(pcm) != 32:
                raise ValueError(f"PCM hash of {len(pcm)} bytes")
            steps = z["steps"]
            if steps.ndim != 2 or steps.shape[1] != STEP_WIDTH:
                raise ValueError(f"gate steps of shape {steps.shape}, not [n, {STEP_WIDTH}]")
            return z["emb"], z["c2d"], z["fp"], pcm.hex(), steps
    except (OSError, ValueError, KeyError) as exc:
        raise RescoreError(
            f"a stored catalogue entry is not a {_ENTRY_LAYOUT} one ({type(exc).__name__}: {exc});"
            " the validator database holds entries of an older version: rescore from scratch"
        ) from exc


_ENTRY_LAYOUT = "emb/c2d/fp/pcm/steps npz"


class EngineRescorer:
    """`Rescorer` for `scoring.versions.MODEL_VERSION` (see the module docstring)."""

    def __init__(self, device: str | None = None) -> None:
        self.model_version = MODEL_VERSION
        self.device = device
        self.catalogue = self._empty()
        # Library versions in which this machine differs from the ones pinned for the model version
        # (ami-agreement/1 rule 4): its recomputations are then unverifiable, never findings.
        self.version_differences = library_differences()

    @staticmethod
    def _empty() -> Any:
        from scoring.engine import new_catalogue  # heavy (torch): loaded when a rescorer is first built

        return new_catalogue()

    def rescore(self, token_id: int, audio: bytes, genre: DeclaredGenre | str | None) -> Rescored:
        track_id = engine_track_id(token_id)
        cat = self.catalogue
        if cat.position(track_id) is not None:
            raise RescoreError(f"{track_id} is already in the validator's catalogue (rescored twice?)")
        try:
            out = scoring_rule.apply_rule(cat, token_id, audio, genre, device=self.device)
        except ScoringError as exc:  # the genre reference itself is missing or damaged: not the track's fault
            raise RescoreError(f"the scoring rule cannot run: {exc}") from exc
        if out.verdict in ("undecodable", "unscorable"):
            info = {**out.details, "version_differences": list(self.version_differences)}
            return Rescored(accepted=False, reason=f"{out.verdict}: {out.detail}", inputs=info)
        ps, i = out.score, out.position
        assert ps is not None and i is not None  # a scored track is always in the catalogue
        entry = _pack(
            cat.embeddings[i], cat.chroma_2dft[i], cat.fingerprint(i), cat.pcm_sha256[i], cat.steps(i)
        )
        inputs: dict[str, Any] = {
            "pcm_sha256": ps.pcm_sha256,
            "features_sha256": ps.features_sha256,
            "catalogue_root": ps.catalogue_root,
            "catalogue_size": i,
            "duplicate_of": ps.duplicate_of,
            "derivative_of": ps.derivative_of,
            "versions": {**ps.versions, "rule": out.details["rule"]},
            "agreement": AGREEMENT_VERSION,
            "gate": _gate(ps.details.get("gate")),
            "version_differences": list(self.version_differences),
            **{k: v for k, v in out.details.items() if k != "rule"},
        }
        reason = None
        if ps.duplicate_of:
            reason = f"duplicate_of:{ps.duplicate_of}"
        elif ps.derivative_of:
            reason = f"derivative_of:{ps.derivative_of}"
        return Rescored(
            accepted=out.publishable,
            novelty_bp=ps.novelty_bp,
            quality_bp=ps.quality_bp,
            commitment=ps.commitment,
            reason=reason,
            inputs=inputs,
            entry=entry,
        )

    def commit(self, inputs: dict[str, Any], novelty_bp: int, quality_bp: int) -> bytes | None:
        from scoring.engine import commitment  # heavy (torch): loaded with the first rescorer

        try:
            return commitment(
                str(inputs["pcm_sha256"]),
                str(inputs["catalogue_root"]),
                int(novelty_bp),
                int(quality_bp),
                None,
                None,
                # what the engine committed: its versions, without the rule's (added here as evidence)
                {k: v for k, v in dict(inputs["versions"]).items() if k != "rule"},
                self.model_version,
            )
        except (KeyError, TypeError, ValueError, ScoringError):
            return None

    def accept(self, token_id: int, entry: bytes) -> None:
        track_id = engine_track_id(token_id)
        if self.catalogue.position(track_id) is not None:
            return  # rescore() already appended it, exactly as the engine does for the worker
        emb, c2d, fp, pcm, steps = _unpack(entry)
        self.catalogue.add(
            [track_id], emb[None, :], c2d[None, :], [fp], [None], pcm_sha256=[pcm], steps=[steps]
        )

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
            pcm_sha256=[u[3] for u in unpacked],
            steps=[u[4] for u in unpacked],
        )


def engine_rescorers(device: str | None = None) -> dict[int, Rescorer]:
    """The rescorers this installation can run, by model version (the scoring engine's current version)."""
    r = EngineRescorer(device=device)
    return {r.model_version: r}
