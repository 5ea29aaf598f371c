"""The probe cache: slow probe audio kept as ``.npy`` files keyed by a hash of its recipe."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scoring.probes.probe import PROBES_VERSION

DEFAULT_CACHE = Path(".ami/probes")


class ProbeCache:
    """``.npy`` files of float32 PCM under ``root``, one per recipe (a JSON-able dict), written atomically."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else DEFAULT_CACHE

    def path(self, kind: str, name: str, recipe: dict[str, object]) -> Path:
        """Where the PCM for ``recipe`` lives: ``root/kind/name-<hash of version and recipe>.npy``."""
        blob = json.dumps({"v": PROBES_VERSION, **recipe}, sort_keys=True, default=str).encode()
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)
        return self.root / kind / f"{safe}-{hashlib.sha256(blob).hexdigest()[:12]}.npy"

    def get(
        self, kind: str, name: str, recipe: dict[str, object], make: Callable[[], np.ndarray]
    ) -> np.ndarray:
        """The cached PCM for ``recipe``, made by ``make()`` and stored on a miss."""
        path = self.path(kind, name, recipe)
        if path.is_file():
            return np.load(path).astype(np.float32, copy=False)
        pcm = np.ascontiguousarray(make(), dtype=np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, pcm)
        os.replace(tmp, path)
        return pcm


def _cache(cache: ProbeCache | str | Path | None) -> ProbeCache:
    return cache if isinstance(cache, ProbeCache) else ProbeCache(cache)
