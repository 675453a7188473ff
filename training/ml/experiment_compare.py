"""Compare popularity, EASE and the Keras recommender on a per-user temporal holdout.

Usage: ``python -m training.ml.experiment_compare data/ml-latest-small [--holdout 0.2] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field, replace

import pandas as pd

from training.ml.baselines import EASEConfig, Popularity, tune_ease
from training.ml.data import Snapshot, read_movielens, temporal_split
from training.ml.evaluation import compare
from training.ml.recommender import RecommenderConfig, train_recommender
from training.ml.scoring import Scorer


@dataclass
class ComparisonResult:
    """The metric table plus how long each policy took to fit."""

    table: pd.DataFrame  # one row per policy, one column per metric
    scorers: dict[str, Scorer]  # the fitted policies, by row name
    fit_seconds: dict[str, float] = field(default_factory=dict)  # wall-clock fit time per policy
    ease_validation: dict[float, float] = field(default_factory=dict)  # validation NDCG@10 per lambda


def run_comparison(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    holdout: float = 0.2,
    seed: int = 0,
    k_values: tuple[int, ...] = (10, 20),
    recommender_config: RecommenderConfig | None = None,
    ease_config: EASEConfig | None = None,
) -> ComparisonResult:
    """Split, fit the three policies on train (EASE's lambda picked on a split of train), evaluate."""
    split = temporal_split(Snapshot.from_ratings(ratings, movies), holdout=holdout)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    popularity = Popularity.fit(split.train)
    seconds["popularity"] = time.perf_counter() - started

    started = time.perf_counter()
    ease, ease_validation = tune_ease(split.train, ease_config)
    seconds["ease (incl. lambda search)"] = time.perf_counter() - started

    config = replace(recommender_config or RecommenderConfig(), seed=seed)
    result = train_recommender(split.train, config)
    seconds["recommender"] = result.train_seconds

    scorers: dict[str, Scorer] = {"popularity": popularity, "ease": ease, "recommender": result.scorer}
    table = compare(scorers, split, k_values, movies_genres=movies)
    return ComparisonResult(table, scorers, seconds, ease_validation)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of a MovieLens CSV release (ratings.csv, movies.csv)")
    parser.add_argument(
        "--holdout", type=float, default=0.2, help="share of each user's latest ratings held out"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the recommender")
    args = parser.parse_args(argv)

    ratings, movies = read_movielens(args.data)
    result = run_comparison(ratings, movies, holdout=args.holdout, seed=args.seed)
    print(f"temporal holdout {args.holdout}, seed {args.seed}, {len(ratings)} ratings")
    print("EASE validation NDCG@10 by lambda:", {k: round(v, 4) for k, v in result.ease_validation.items()})
    print("fit seconds:", {k: round(v, 1) for k, v in result.fit_seconds.items()})
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.precision", 4):
        print(result.table)


if __name__ == "__main__":
    main()
