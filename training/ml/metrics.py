"""Top-k ranking metrics (accuracy and beyond-accuracy) on plain NumPy arrays.

Conventions, stated once:
- ``ranked`` is a user's recommendation list, best first, already without the movies the user
  rated in train; only its first ``k`` entries count.
- Recall@k divides the hits by ``min(k, |relevant|)`` (the convention of the Mult-VAE and EASE
  papers, Liang et al. 2018, Steck 2019), so a perfect list scores 1 even when a user has more
  relevant movies than ``k``. Precision@k divides by ``k``.
- MAP@k averages precision at each hit position over ``min(k, |relevant|)``.
- NDCG@k uses binary gains and the ideal DCG of ``min(k, |relevant|)`` hits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def _hits(ranked: np.ndarray, relevant: set[int], k: int) -> np.ndarray:
    """1.0 where the i-th recommendation is relevant, for the first k positions."""
    return np.array([item in relevant for item in np.asarray(ranked)[:k].tolist()], dtype=float)


def ndcg_at_k(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance."""
    hits = _hits(ranked, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, len(relevant))].sum()
    return float((hits * discounts[: len(hits)]).sum() / ideal) if ideal > 0 else 0.0


def recall_at_k(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """Relevant movies found in the top k, over ``min(k, |relevant|)``."""
    denominator = min(k, len(relevant))
    return float(_hits(ranked, relevant, k).sum() / denominator) if denominator else 0.0


def precision_at_k(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """Relevant movies found in the top k, over k."""
    return float(_hits(ranked, relevant, k).sum() / k)


def hit_rate_at_k(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """1 if any relevant movie is in the top k."""
    return float(_hits(ranked, relevant, k).any())


def average_precision_at_k(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """Mean of precision@i over the hit positions i, over ``min(k, |relevant|)``."""
    hits = _hits(ranked, relevant, k)
    denominator = min(k, len(relevant))
    if denominator == 0:
        return 0.0
    precision_at_position = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision_at_position * hits).sum() / denominator)


def catalogue_coverage(lists: Sequence[np.ndarray], n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    shown = {item for ranked in lists for item in np.asarray(ranked)[:k].tolist()}
    return len(shown) / n_items


def novelty(lists: Sequence[np.ndarray], item_popularity: np.ndarray, k: int) -> float:
    """Mean self-information ``-log2 p(item)`` of recommended movies.

    ``item_popularity`` is the probability that a user rated the movie (fraction of train users);
    it must be positive, see ``popularity_probabilities``.
    """
    information = [-np.log2(item_popularity[np.asarray(ranked)[:k]]) for ranked in lists]
    return float(np.mean(np.concatenate(information))) if information else 0.0


def popularity_probabilities(item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """Fraction of users who rated each movie; movies nobody rated count as rated once."""
    return np.maximum(np.asarray(item_counts, float), 1.0) / max(n_users, 1)


def jaccard_distance(a: frozenset[str], b: frozenset[str]) -> float:
    """1 - |a & b| / |a | b|; two genre-less movies are at distance 0."""
    union = len(a | b)
    return 1.0 - len(a & b) / union if union else 0.0


def intra_list_diversity(lists: Sequence[np.ndarray], item_genres: Sequence[frozenset[str]], k: int) -> float:
    """Mean pairwise Jaccard distance between the genre sets of each top-k list, averaged over lists.

    Genre sets become bit masks so each list costs a few vector operations (same result as
    ``jaccard_distance`` on every pair).
    """
    vocabulary = sorted({genre for genres in item_genres for genre in genres})
    if len(vocabulary) > 64:
        raise ValueError("intra_list_diversity supports at most 64 distinct genres")
    bit = {genre: np.uint64(1) << np.uint64(i) for i, genre in enumerate(vocabulary)}
    masks = np.array([sum((bit[g] for g in genres), np.uint64(0)) for genres in item_genres], dtype=np.uint64)
    per_list = []
    for ranked in lists:
        m = masks[np.asarray(ranked)[:k]]
        if len(m) < 2:
            continue
        upper = np.triu_indices(len(m), 1)
        inter = np.bitwise_count(m[:, None] & m[None, :])[upper].astype(float)
        union = np.bitwise_count(m[:, None] | m[None, :])[upper].astype(float)
        distance = np.where(union > 0, 1.0 - inter / np.maximum(union, 1.0), 0.0)
        per_list.append(distance.mean())
    return float(np.mean(per_list)) if per_list else 0.0


ACCURACY_METRICS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "hit_rate": hit_rate_at_k,
    "map": average_precision_at_k,
}


def evaluate_rankings(
    topk: Mapping[int, np.ndarray],
    relevant: Mapping[int, set[int]],
    k_values: Sequence[int] = (10,),
    *,
    n_items: int | None = None,
    item_popularity: np.ndarray | None = None,
    item_genres: Sequence[frozenset[str]] | None = None,
) -> dict[str, float]:
    """Average every metric over users that have a list and at least one relevant movie.

    Keys are ``"<metric>@<k>"`` plus ``"n_users"``. Coverage, novelty and diversity are computed
    on the same users' lists and only when ``n_items``, ``item_popularity`` or ``item_genres`` is
    given.
    """
    users = [u for u in topk if relevant.get(u)]
    lists = [np.asarray(topk[u]) for u in users]
    results: dict[str, float] = {"n_users": float(len(users))}
    for k in k_values:
        for name, metric in ACCURACY_METRICS.items():
            values = [metric(ranked, relevant[u], k) for u, ranked in zip(users, lists, strict=True)]
            results[f"{name}@{k}"] = float(np.mean(values)) if values else 0.0
        if n_items is not None:
            results[f"coverage@{k}"] = catalogue_coverage(lists, n_items, k)
        if item_popularity is not None:
            results[f"novelty@{k}"] = novelty(lists, item_popularity, k)
        if item_genres is not None:
            results[f"diversity@{k}"] = intra_list_diversity(lists, item_genres, k)
    return results


def bootstrap_mean(values: Sequence[float], *, rounds: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean of ``values`` with a percentile bootstrap 95% interval: ``{"mean", "low", "high", "n"}``."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    means = values[np.random.default_rng(seed).integers(0, len(values), size=(rounds, len(values)))].mean(
        axis=1
    )
    return {
        "mean": float(values.mean()),
        "low": float(np.percentile(means, 2.5)),
        "high": float(np.percentile(means, 97.5)),
        "n": len(values),
    }


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default): honest at small n, where
    1 right out of 1 is [0.21, 1.0], not 1.0. ``successes`` may be fractional (ties count half).
    (nan, nan) when n is 0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
