"""Offline evaluation of any scorer on a temporal split, and side-by-side comparison tables."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.ml.data import Split, item_genres
from training.ml.metrics import bootstrap_mean, evaluate_rankings, ndcg_at_k, popularity_probabilities
from training.ml.scoring import Scorer


def rank_users(
    scorer: Scorer, split: Split, users: Sequence[int], k: int, batch_size: int = 256
) -> dict[int, np.ndarray]:
    """Top-k catalogue indices per user from their train history, train movies excluded."""
    rankings: dict[int, np.ndarray] = {}
    for start in range(0, len(users), batch_size):
        batch = list(users[start : start + batch_size])
        histories = [split.train.history(u) for u in batch]
        scores = np.array(scorer.score_batch(histories), dtype=np.float32)
        for row, history in enumerate(histories):
            scores[row, history.item_idx] = -np.inf
        kth = min(k, scores.shape[1]) - 1
        best = np.argpartition(-scores, kth, axis=1)[:, : kth + 1]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        for user, ranked in zip(batch, np.take_along_axis(best, order, axis=1), strict=True):
            rankings[user] = ranked
    return rankings


def _genres_by_index(split: Split, movies_genres: object) -> list[frozenset[str]] | None:
    if movies_genres is None:
        return None
    if isinstance(movies_genres, pd.DataFrame):
        return item_genres(split.train, movies_genres)
    return [frozenset(g) for g in movies_genres]


def evaluate_model(
    scorer: Scorer,
    split: Split,
    k_values: Sequence[int] = (10, 20),
    movies_genres: pd.DataFrame | Sequence[frozenset[str]] | None = None,
    relevance_threshold: float = 4.0,
) -> dict[str, float]:
    """All metrics of ``metrics.evaluate_rankings`` for one scorer.

    Relevant movies are held-out ratings ``>= relevance_threshold``; users without any are
    skipped. ``movies_genres`` is the movies frame (``item``, ``genres``) or genre sets aligned
    to catalogue indices; without it diversity is not reported. Novelty uses train popularity.
    """
    relevant = split.relevant(relevance_threshold)
    users = sorted(relevant)
    rankings = rank_users(scorer, split, users, max(k_values))
    return evaluate_rankings(
        rankings,
        relevant,
        k_values,
        n_items=split.train.n_items,
        item_popularity=popularity_probabilities(split.train.item_counts(), split.train.n_users),
        item_genres=_genres_by_index(split, movies_genres),
    )


def compare(
    scorers: Mapping[str, Scorer],
    split: Split,
    k_values: Sequence[int] = (10, 20),
    movies_genres: pd.DataFrame | Sequence[frozenset[str]] | None = None,
) -> pd.DataFrame:
    """One row per scorer, one column per metric."""
    genres = _genres_by_index(split, movies_genres)
    rows = {name: evaluate_model(s, split, k_values, genres) for name, s in scorers.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def ndcg_by_activity(
    scorers: Mapping[str, Scorer],
    split: Split,
    edges: Sequence[int] = (20, 50, 100, 300),
    k: int = 10,
    relevance_threshold: float = 4.0,
) -> pd.DataFrame:
    """Mean NDCG@k per group of users by their number of train ratings, one column per scorer.

    ``edges`` split the users into ``[0, e0), [e0, e1), ..., [e_last, inf)``; the ``users`` column
    counts the users with a relevant held-out movie in each group.
    """
    relevant = split.relevant(relevance_threshold)
    users = sorted(relevant)
    activity = np.diff(split.train.indptr)[users]
    bounds = [0, *edges, None]
    labels = [f"{low}+" if high is None else f"{low}-{high - 1}" for low, high in itertools.pairwise(bounds)]
    group = np.searchsorted(np.asarray(edges), activity, side="right")
    table = pd.DataFrame(
        {"users": np.bincount(group, minlength=len(labels))}, index=pd.Index(labels, name="train ratings")
    )
    for name, scorer in scorers.items():
        rankings = rank_users(scorer, split, users, k)
        per_user = np.array([ndcg_at_k(rankings[user], relevant[user], k) for user in users])
        sums = np.bincount(group, weights=per_user, minlength=len(labels))
        table[name] = np.divide(
            sums,
            table["users"].to_numpy(),
            out=np.full(len(labels), np.nan),
            where=table["users"].to_numpy() > 0,
        )
    return table


def ndcg_difference(
    candidate: dict[int, np.ndarray],
    incumbent: dict[int, np.ndarray],
    relevant: dict[int, set[int]],
    k: int,
    bootstrap_rounds: int,
    seed: int,
) -> dict[str, float]:
    """Mean per-user NDCG@k of the candidate minus the incumbent, with a paired bootstrap 95% interval."""
    users = [u for u in candidate if relevant.get(u)]
    diff = [ndcg_at_k(candidate[u], relevant[u], k) - ndcg_at_k(incumbent[u], relevant[u], k) for u in users]
    return bootstrap_mean(diff, rounds=bootstrap_rounds, seed=seed)


def paired_ndcg_difference(
    candidate: Scorer,
    incumbent: Scorer,
    split: Split,
    k: int = 10,
    relevance_threshold: float = 4.0,
    bootstrap_rounds: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """``ndcg_difference`` of two scorers on ``split``'s held-out users: is a gap more than noise?"""
    relevant = split.relevant(relevance_threshold)
    users = sorted(relevant)
    return ndcg_difference(
        rank_users(candidate, split, users, k),
        rank_users(incumbent, split, users, k),
        relevant,
        k,
        bootstrap_rounds,
        seed,
    )
