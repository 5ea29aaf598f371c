"""The building blocks of IDyOM-style expectation that the chord model (`scoring.structure`) and the interval
model (`scoring.intervals`) share: the contexts of the next symbol, PPM's escape method C over them, and the
entropy-weighted combination of a short-term and a long-term prediction (Pearce 2005).

Written by hand: no maintained library offers a PPM model over an arbitrary alphabet (IDyOM is Lisp).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def contexts(history: list[int], order: int) -> list[tuple[int, ...]]:
    """The contexts of the next symbol after ``history``, of lengths 0..``order`` (as far as the history
    goes), shortest first."""
    return [tuple(history[len(history) - k :]) for k in range(min(order, len(history)) + 1)]


def escape_c(floor: np.ndarray, tables: Iterable[np.ndarray]) -> np.ndarray:
    """PPM's escape method C (Moffat 1990), blending count tables from the shortest context up onto
    ``floor``: ``p(x) = (c(x) + t * p_lower(x)) / (n + t)``, with n the table's count and t its distinct
    symbols. An empty table passes p_lower on."""
    p = floor
    for c in tables:
        n, t = c.sum(), float(np.count_nonzero(c))
        if n > 0:
            p = (c + t * p) / (n + t)
    return p


def entropy_weighted(stm: np.ndarray, ltm: np.ndarray, hmax: float) -> np.ndarray:
    """IDyOM's combination of a short-term and a long-term prediction (Pearce 2005):
    ``P = sum_m w_m P_m / sum_m w_m`` with ``w_m = 1 / max(H_m / hmax, 0.001)``, H_m the prediction's
    entropy in bits and ``hmax`` the largest entropy it can have. The more certain model counts for more."""
    ws = []
    for dist in (stm, ltm):
        nz = dist[dist > 0]
        h = float(-(nz * np.log2(nz)).sum()) / hmax
        ws.append(1.0 / max(h, 1e-3))
    return (ws[0] * stm + ws[1] * ltm) / (ws[0] + ws[1])
