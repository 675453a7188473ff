"""Off-policy evaluation of ranking policies on logged lists: which list would a candidate have
shown, and what did people do with the movies the logged lists showed?

The logging policy explores: for a share of requests it samples the list from a Plackett-Luce
distribution over its best candidates (softmax of standardised scores / temperature) instead of
showing its top k. Each shown movie is logged with its propensity: the probability that the
logging policy puts that movie at that position, estimated from Gumbel-top-k draws.

The estimator assumes the item-position model (a movie's reward at a position does not depend
on the other movies in the list), as in Li et al., "Offline Evaluation of Ranking Policies with
Click Models" (KDD 2018). For a deterministic candidate whose list is ``c``:

    V(c) = sum_j w_j * mean over logs of [ r_j * 1(c_j == logged_j) / p_j ]      (IPS)

with ``w_j`` the DCG position weights, ``r_j`` the reward of the logged movie at position j and
``p_j`` its propensity, each ratio clipped at ``clip``. The self-normalised form (SNIPS) divides
each position's sum by the sum of its importance weights instead of the number of logs. The
logging policy's own value (the mean of sum_j w_j r_j) is reported beside it, as the reference a
candidate must beat. Intervals bootstrap over logs (users' lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_DRAWS = 200


def _logits(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Standardised scores over temperature: the same spread whatever the scorer's scale."""
    scores = np.asarray(scores, np.float64)
    spread = scores.std()
    z = (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)
    return z / max(temperature, 1e-6)


def plackett_luce_sample(
    scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """k candidate indices in order, drawn from Plackett-Luce(softmax(z(scores) / temperature)).

    The Gumbel-top-k trick: adding Gumbel noise to the logits and taking the k largest draws an
    ordered sample without replacement from exactly that distribution.
    """
    logits = _logits(scores, temperature)
    noisy = logits + rng.gumbel(size=logits.shape)
    return np.argsort(-noisy, kind="stable")[: min(k, len(logits))]


def position_marginals(
    scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator, draws: int = 2000
) -> np.ndarray:
    """``[len(scores), k]``: the probability that each candidate is shown at each position, from
    ``draws`` Gumbel-top-k samples (vectorised). A probability no draw reached is ``1 / draws``:
    the estimate's floor, so that no logged movie gets an infinite weight."""
    draws = max(int(draws), MIN_DRAWS)
    logits = _logits(scores, temperature)
    k = min(k, len(logits))
    noisy = logits[None, :] + rng.gumbel(size=(draws, len(logits)))
    top = np.argsort(-noisy, axis=1, kind="stable")[:, :k]
    counts = np.zeros((len(logits), k), np.float64)
    for position in range(k):
        counts[:, position] = np.bincount(top[:, position], minlength=len(logits))
    return np.maximum(counts / draws, 1.0 / draws)


def dcg_weights(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


@dataclass(frozen=True)
class LoggedList:
    """One list the logging policy showed: movies in order, each one's propensity at its position,
    and what the user did with it (1 for a good outcome, 0 otherwise)."""

    movies: Sequence[int]
    propensities: Sequence[float]
    rewards: Sequence[float]


def item_position_ips(
    logs: Sequence[LoggedList],
    candidate_lists: Sequence[Sequence[int]],
    *,
    k: int = 10,
    clip: float = 50.0,
    self_normalised: bool = True,
    rounds: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """The candidate's estimated value on the logs (``candidate_lists[i]`` is what it would have
    shown for ``logs[i]``), the logging policy's own value, and bootstrap 95% intervals of both
    and of their difference. ``matches`` counts (log, position) pairs where the candidate would
    have shown the logged movie; ``ess`` is the effective sample size of the weights."""
    n = len(logs)
    if n == 0:
        nan = float("nan")
        return {"n": 0, "matches": 0, "ess": 0.0, "estimate": nan, "logging": nan, "difference": nan,
                "estimate_low": nan, "estimate_high": nan, "logging_low": nan, "logging_high": nan,
                "difference_low": nan, "difference_high": nan}  # fmt: skip
    weights = dcg_weights(k)
    ratio = np.zeros((n, k))  # importance weights, 0 where the candidate shows another movie
    reward = np.zeros((n, k))
    shown = np.zeros((n, k))
    for i, (log, candidate) in enumerate(zip(logs, candidate_lists, strict=True)):
        for j in range(min(k, len(log.movies))):
            reward[i, j] = float(log.rewards[j])
            shown[i, j] = 1.0
            if j < len(candidate) and int(candidate[j]) == int(log.movies[j]):
                ratio[i, j] = min(clip, 1.0 / max(float(log.propensities[j]), 1e-12))

    def values(rows: np.ndarray) -> tuple[float, float]:
        r, w, s = ratio[rows], reward[rows], shown[rows]
        if self_normalised:
            total = r.sum(axis=0)
            per_position = np.divide((r * w).sum(axis=0), total, out=np.zeros(k), where=total > 0)
        else:
            per_position = (r * w).sum(axis=0) / len(rows)
        logged = np.divide((w * s).sum(axis=0), s.sum(axis=0), out=np.zeros(k), where=s.sum(axis=0) > 0)
        return float(per_position @ weights), float(logged @ weights)

    estimate, logging = values(np.arange(n))
    rng = np.random.default_rng(seed)
    boot = np.array([values(rng.integers(0, n, n)) for _ in range(rounds)])
    difference = boot[:, 0] - boot[:, 1]
    flat = ratio[ratio > 0]
    ess = float(flat.sum() ** 2 / (flat**2).sum()) if len(flat) else 0.0
    return {
        "n": n,
        "matches": int((ratio > 0).sum()),
        "ess": ess,
        "estimate": estimate,
        "estimate_low": float(np.percentile(boot[:, 0], 2.5)),
        "estimate_high": float(np.percentile(boot[:, 0], 97.5)),
        "logging": logging,
        "logging_low": float(np.percentile(boot[:, 1], 2.5)),
        "logging_high": float(np.percentile(boot[:, 1], 97.5)),
        "difference": estimate - logging,
        "difference_low": float(np.percentile(difference, 2.5)),
        "difference_high": float(np.percentile(difference, 97.5)),
    }
