"""Item feedback on a shown list (like, dislike, not interested), folded into the user's profile at request time.

A reaction is a cheap signal a rating does not give before the user has watched the film: the user
saw the list and said "yes", "no" or "not for me". At request time it joins the user's history as a
pseudo-rating (``like_rating``, ``dislike_rating``, ``not_interested_rating``), so the recommender's
fold-in moves the whole list, not only the movie reacted to; every reacted movie is then excluded
from what is recommended (it was shown already).

The experiment (``item_feedback_experiment``): per seed the recommender is trained on the train
period; each loop user is shown the recommender's top 10 from their train history; they react to
the shown movies they rated in the feedback period (``reaction_of``); the next list, with and
without the reactions in the profile, is judged by NDCG@10 on the test period. Reacted movies are
excluded from both lists, so the two differ only by what the profile knows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from training.ml.data import History, Snapshot
from training.ml.metrics import bootstrap_mean, ndcg_at_k

LIKE, DISLIKE, NOT_INTERESTED = "up", "down", "not_interested"  # the product's ItemFeedback kinds


@dataclass
class ItemFeedbackConfig:
    """How reactions enter the profile and how simulated users react."""

    like_rating: float = 4.5  # pseudo-rating of a liked movie (a clear "yes" on the 0.5-5 scale)
    dislike_rating: float = 2.0  # pseudo-rating of a disliked movie
    not_interested_rating: float = 1.5  # pseudo-rating of a "not interested" movie (also never shown again)
    like_at_least: float = 4.0  # simulated: a shown movie the user rates this or more is liked
    not_interested_at_most: float = 2.0  # simulated: rated this or less is "not interested"
    dislike_at_most: float = 3.0  # simulated: rated in (not_interested_at_most, this] is disliked
    slate_size: int = 10  # movies shown, and K of NDCG@K


def fold_reactions(
    history: History, reactions: Mapping[int, str], config: ItemFeedbackConfig, now: int = 0
) -> History:
    """The history with each reacted movie (catalogue index -> kind) added as a pseudo-rating.

    A movie already in the history keeps its real rating: a reaction never overrides a rating.
    """
    value = {
        LIKE: config.like_rating,
        DISLIKE: config.dislike_rating,
        NOT_INTERESTED: config.not_interested_rating,
    }
    rated = set(np.asarray(history.item_idx).tolist())
    extra = [(item, value[kind]) for item, kind in sorted(reactions.items()) if item not in rated]
    if not extra:
        return history
    items, ratings = zip(*extra, strict=True)
    return History(
        np.concatenate([history.item_idx, np.asarray(items, np.int32)]),
        np.concatenate([history.ratings, np.asarray(ratings, np.float32)]),
        np.concatenate([history.timestamps, np.full(len(items), now, np.int64)]),
    )


def reaction_of(rating: float, config: ItemFeedbackConfig) -> str | None:
    """What a simulated user says about a shown movie they would rate ``rating`` (None: nothing)."""
    if rating >= config.like_at_least:
        return LIKE
    if rating <= config.not_interested_at_most:
        return NOT_INTERESTED
    if rating <= config.dislike_at_most:
        return DISLIKE
    return None


def recommend_excluding(recommender: object, history: History, excluded: set[int], k: int) -> np.ndarray:
    """The recommender's top k for ``history`` without its rated movies nor ``excluded``."""
    items, _ = recommender.top_k(history, k + len(excluded), exclude_rated=True)
    items = np.asarray(items, np.int64)
    return items[~np.isin(items, list(excluded))][:k]


def item_feedback_round(
    recommender: object,
    histories: Mapping[int, History],
    feedback_ratings: Mapping[int, Mapping[int, float]],
    test_relevant: Mapping[int, set[int]],
    config: ItemFeedbackConfig,
    bootstrap_rounds: int = 1000,
    seed: int = 0,
) -> dict[str, object]:
    """One seed: NDCG@K on the test period of the next list, without and with the reactions folded in.

    ``feedback_ratings[u]`` maps catalogue index -> the user's feedback-period rating;
    ``test_relevant[u]`` are the test-period movies rated 4 or more. Users with no reaction or
    nothing relevant in the test period are left out (the two lists would be identical, or NDCG
    undefined).
    """
    k = config.slate_size
    without, with_reactions, reactions_per_user = [], [], []
    kinds = {LIKE: 0, DISLIKE: 0, NOT_INTERESTED: 0}
    for user, history in histories.items():
        relevant = test_relevant.get(user)
        if not relevant:
            continue
        shown = recommend_excluding(recommender, history, set(), k)
        rated = feedback_ratings.get(user, {})
        reactions = {
            int(i): kind
            for i in shown.tolist()
            if int(i) in rated and (kind := reaction_of(rated[int(i)], config)) is not None
        }
        if not reactions:
            continue
        for kind in reactions.values():
            kinds[kind] += 1
        excluded = set(reactions)
        targets = relevant - excluded
        if not targets:
            continue
        plain = recommend_excluding(recommender, history, excluded, k)
        folded = recommend_excluding(recommender, fold_reactions(history, reactions, config), excluded, k)
        without.append(ndcg_at_k(plain, targets, k))
        with_reactions.append(ndcg_at_k(folded, targets, k))
        reactions_per_user.append(len(reactions))
    difference = np.asarray(with_reactions) - np.asarray(without)
    return {
        "users": len(without),
        "reactions_per_user": float(np.mean(reactions_per_user)) if reactions_per_user else float("nan"),
        "reactions": kinds,
        "ndcg@10_without": float(np.mean(without)) if without else float("nan"),
        "ndcg@10_with": float(np.mean(with_reactions)) if with_reactions else float("nan"),
        "difference": bootstrap_mean(difference.tolist(), rounds=bootstrap_rounds, seed=seed),
    }


def item_feedback_experiment(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    seeds: list[int],
    config: ItemFeedbackConfig | None = None,
    log_line: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Every seed's ``item_feedback_round`` on the per-user split, and the across-seed summary."""
    from training.ml.experiment import (
        ExperimentConfig,
        relevant_items,
        seed_interval,
        seeded,
        split_periods,
    )
    from training.ml.recommender import train_recommender

    config = config or ItemFeedbackConfig()
    snapshot = Snapshot.from_ratings(ratings, movies)
    per_seed = []
    for seed in seeds:
        started = time.perf_counter()
        experiment = seeded(ExperimentConfig(seed=seed))
        periods = split_periods(
            snapshot, experiment.train_fraction, experiment.feedback_fraction, experiment.min_ratings
        )
        trained = train_recommender(periods.train, experiment.recommender)
        train, feedback = periods.train, periods.feedback
        users = np.flatnonzero(periods.eligible).tolist()
        feedback_ratings: dict[int, dict[int, float]] = {}
        for user, item, rating in zip(
            feedback.user_idx.tolist(), feedback.item_idx.tolist(), feedback.rating.tolist(), strict=True
        ):
            feedback_ratings.setdefault(user, {})[item] = rating
        result = item_feedback_round(
            trained.scorer,
            {u: train.history(u) for u in users},
            feedback_ratings,
            relevant_items(periods.test),
            config,
            seed=seed,
        )
        result["seed"] = seed
        result["seconds"] = time.perf_counter() - started
        per_seed.append(result)
        if log_line is not None:
            d = result["difference"]
            log_line(
                f"seed {seed}: {result['users']} users, NDCG@10 without {result['ndcg@10_without']:.4f}, "
                f"with {result['ndcg@10_with']:.4f}, difference {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
            )
    summary = {
        "ndcg@10_without": seed_interval([r["ndcg@10_without"] for r in per_seed]),
        "ndcg@10_with": seed_interval([r["ndcg@10_with"] for r in per_seed]),
        "difference": seed_interval([r["difference"]["mean"] for r in per_seed]),
        "per_user_half_width": float(
            np.mean([(r["difference"]["high"] - r["difference"]["low"]) / 2 for r in per_seed])
        ),
        "users": seed_interval([r["users"] for r in per_seed]),
        "reactions_per_user": seed_interval([r["reactions_per_user"] for r in per_seed]),
    }
    return {"config": asdict(config), "seeds": seeds, "per_seed": per_seed, "summary": summary}
