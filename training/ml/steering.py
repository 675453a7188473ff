"""Request-time steering of a recommended list: more or less popular, more or less recent, a genre focus.

MovieLens lets its users nudge their list without retraining anything; this is that nudge. The served
policy recommends a larger pool than is shown, and the pool is re-ranked by

    score = z(rank score) + popularity * z(log(1 + num_ratings)) + recency * z(year) + focus_boost * in_genre

with ``popularity`` and ``recency`` in {-1, 0, +1} ("less", "as is", "more"). Every term is a z-score
over the pool, so one step of a control weighs as much as the policy's own order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POOL_FACTOR = 3  # the pool is k * POOL_FACTOR movies: room to steer, still the policy's picks
STEPS = {"less": -1, "": 0, "more": 1}


@dataclass(frozen=True)
class Steering:
    """What the user asked for; the default changes nothing."""

    popularity: int = 0  # -1 fewer well-known titles, +1 more; 0 leaves the policy's order
    recency: int = 0  # -1 older films, +1 newer ones
    genre: str = ""  # a genre name to focus on; "" for no focus
    focus_boost: float = (
        3.0  # z units added to movies of the focus genre: they lead unless the pool lacks them
    )

    @property
    def active(self) -> bool:
        return bool(self.popularity or self.recency or self.genre)


def zscore(values: np.ndarray) -> np.ndarray:
    """Standardised values; a constant column (or one value) is all zeros, and NaN counts as the mean."""
    values = np.asarray(values, dtype=np.float64)
    filled = np.where(np.isnan(values), np.nanmean(values) if np.any(~np.isnan(values)) else 0.0, values)
    spread = filled.std()
    if spread == 0 or not np.isfinite(spread):
        return np.zeros_like(filled)
    return (filled - filled.mean()) / spread


def steer(
    *,
    rank_scores: np.ndarray,
    num_ratings: np.ndarray,
    years: np.ndarray,
    in_genre: np.ndarray,
    steering: Steering,
    k: int,
) -> np.ndarray:
    """Positions (into the pool) of the k movies to show, best first.

    ``rank_scores`` are higher-is-better scores of the policy's order (e.g. minus the rank), ``years``
    may hold NaN for unknown years, ``in_genre`` is a boolean mask of the focus genre. Ties keep the
    policy's order.
    """
    rank_scores = np.asarray(rank_scores, dtype=np.float64)
    score = zscore(rank_scores)
    if steering.popularity:
        score = score + steering.popularity * zscore(np.log1p(np.asarray(num_ratings, dtype=np.float64)))
    if steering.recency:
        score = score + steering.recency * zscore(years)
    if steering.genre:
        score = score + steering.focus_boost * np.asarray(in_genre, dtype=np.float64)
    order = np.lexsort((-rank_scores, -score))  # last key first: score, then the policy's order
    return order[:k]
