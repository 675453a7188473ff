"""Compare popularity, EASE and the Keras recommender on a per-user temporal holdout.

Usage::

    python -m training.ml.experiment_compare data/ml-latest-small [--holdout 0.2] [--seed 0]
        [--validation] [--set embedding_dim=96 ...] [--by-activity] [--more-seeds 1 2 ...]

``--validation`` evaluates on the tuning protocol instead of the test: the same temporal split
carved again from the train part (what EASE's lambda and the recommender's defaults are chosen
on), so the held-out test period is never looked at. ``--set`` overrides a RecommenderConfig field.
``--by-activity`` adds NDCG@10 per group of users by their number of train ratings.
``--more-seeds`` trains the recommender again with other seeds on the same split: differences
between settings smaller than the spread between seeds are noise.
"""

from __future__ import annotations

import argparse
import ast
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from training.ml.baselines import EASE, EASEConfig, Popularity, tune_ease
from training.ml.data import Snapshot, Split, read_movielens, temporal_split
from training.ml.evaluation import compare, ndcg_by_activity, paired_ndcg_difference
from training.ml.overrides import settable, settings_apply, settings_check
from training.ml.recommender import RecommenderConfig, train_recommender
from training.ml.scoring import Scorer


@dataclass
class ComparisonResult:
    """The metric table plus how long each policy took to fit."""

    table: pd.DataFrame  # one row per policy, one column per metric
    scorers: dict[str, Scorer]  # the fitted policies, by row name
    fit_seconds: dict[str, float] = field(default_factory=dict)  # wall-clock fit time per policy
    ease_validation: dict[float, float] = field(default_factory=dict)  # validation NDCG@10 per lambda
    split: Split | None = None  # the split the table was measured on


def run_comparison(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    holdout: float = 0.2,
    seed: int = 0,
    k_values: tuple[int, ...] = (10, 20),
    recommender_config: RecommenderConfig | None = None,
    ease_config: EASEConfig | None = None,
    validation: bool = False,
) -> ComparisonResult:
    """Split, fit the three policies on train (EASE's lambda picked on a split of train), evaluate.

    With ``validation`` the whole comparison runs inside the train part, split again the same way.
    """
    split = temporal_split(Snapshot.from_ratings(ratings, movies), holdout=holdout)
    if validation:
        split = temporal_split(split.train, holdout=holdout)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    popularity = Popularity.fit(split.train)
    seconds["popularity"] = time.perf_counter() - started

    started = time.perf_counter()
    ease, ease_validation = tune_ease(split.train, ease_config)
    seconds["ease (incl. lambda search)"] = time.perf_counter() - started

    config = replace(recommender_config or RecommenderConfig(), seed=seed)
    result = train_recommender(split.train, config, teacher=ease)
    seconds["recommender"] = result.train_seconds

    scorers: dict[str, Scorer] = {"popularity": popularity, "ease": ease, "recommender": result.scorer}
    table = compare(scorers, split, k_values, movies_genres=movies)
    return ComparisonResult(table, scorers, seconds, ease_validation, split)


def train_seeds(
    split: Split, config: RecommenderConfig, seeds: list[int], teacher: EASE | None = None
) -> dict[int, Scorer]:
    """The recommender trained on ``split.train`` once per distinct seed, otherwise as ``config``.

    ``teacher`` is the EASE teacher fitted on ``split.train`` (fitted once per seed without it).
    """
    return {
        seed: train_recommender(split.train, replace(config, seed=seed), teacher=teacher).scorer
        for seed in dict.fromkeys(seeds)
    }


def scorer_ndcg(scorer: Scorer, split: Split, movies: pd.DataFrame, k: int = 10) -> float:
    """One scorer's NDCG@k on ``split``, as the comparison table computes it."""
    return float(compare({"recommender": scorer}, split, (k,), movies).loc["recommender", f"ndcg@{k}"])


def difference_line(seed: int, difference: dict[str, float]) -> str:
    """One printed line: the recommender's paired NDCG@10 difference to EASE for one seed."""
    return (
        f"  seed {seed}: {difference['mean']:+.4f} [{difference['low']:+.4f}, {difference['high']:+.4f}] "
        f"over {difference['n']} users"
    )


def config_overrides(config: Any, assignments: list[str], option: str = "--set") -> Any:
    """The dataclass ``config`` with ``FIELD=VALUE`` overrides (values are Python literals).

    ``seed`` is not overridable (``--seed`` sets it). Raises ValueError naming ``option`` and the
    assignment for an unknown field, a value that is not a literal, or one that does not fit the
    field (``training.ml.overrides.settings_check``).
    """
    names = settable(type(config))
    overrides = {}
    for assignment in assignments:
        name, _, text = assignment.partition("=")
        if name not in names or not text:
            raise ValueError(
                f"{option} {assignment!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(names))}"
            )
        try:
            overrides[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"{option} {assignment!r}: {text!r} is not a Python literal (a number, tuple or string)"
            ) from None
        try:
            settings_check(type(config), {name: overrides[name]}, type(config).__name__)
        except ValueError as error:
            raise ValueError(f"{option} {assignment!r}: {error}") from None
    return settings_apply(config, overrides)


def recommender_config(assignments: list[str], parser: argparse.ArgumentParser) -> RecommenderConfig:
    """RecommenderConfig with ``FIELD=VALUE`` overrides; a bad one is a usage error."""
    try:
        return config_overrides(RecommenderConfig(), assignments)
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of a MovieLens CSV release (ratings.csv, movies.csv)")
    parser.add_argument(
        "--holdout", type=float, default=0.2, help="share of each user's latest ratings held out"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the recommender")
    parser.add_argument(
        "--validation", action="store_true", help="evaluate on a split of the train part, never the test"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a RecommenderConfig field"
    )
    parser.add_argument(
        "--by-activity", action="store_true", help="also print NDCG@10 by users' number of train ratings"
    )
    parser.add_argument(
        "--more-seeds",
        type=int,
        nargs="+",
        default=[],
        metavar="S",
        help="also train the recommender with these seeds on the same split; print NDCG@10 per seed and the mean",
    )
    args = parser.parse_args(argv)
    config = recommender_config(args.set, parser)

    ratings, movies = read_movielens(args.data)
    result = run_comparison(
        ratings,
        movies,
        holdout=args.holdout,
        seed=args.seed,
        recommender_config=config,
        validation=args.validation,
    )
    where = "validation (a split of train)" if args.validation else "test"
    print(f"temporal holdout {args.holdout} on {where}, seed {args.seed}, {len(ratings)} ratings")
    if args.set:
        print("recommender overrides:", ", ".join(args.set))
    print("EASE validation NDCG@10 by lambda:", {k: round(v, 4) for k, v in result.ease_validation.items()})
    print("fit seconds:", {k: round(v, 1) for k, v in result.fit_seconds.items()})
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.precision", 4):
        print(result.table)
        if args.by_activity:
            print("\nNDCG@10 by number of train ratings:")
            print(ndcg_by_activity(result.scorers, result.split))
    ease = result.scorers["ease"]
    others = [s for s in args.more_seeds if s != args.seed]
    scorers = {args.seed: result.scorers["recommender"], **train_seeds(result.split, config, others, ease)}
    print("\nrecommender - EASE, NDCG@10 per user (mean, paired bootstrap 95% interval):")
    for seed, scorer in scorers.items():
        print(difference_line(seed, paired_ndcg_difference(scorer, ease, result.split)))
    if others:
        scores = {seed: scorer_ndcg(scorer, result.split, movies) for seed, scorer in scorers.items()}
        print(
            "\nrecommender NDCG@10 by seed:",
            ", ".join(f"{seed}: {score:.4f}" for seed, score in scores.items()),
            f"- mean {sum(scores.values()) / len(scores):.4f} over {len(scores)} seeds",
        )


if __name__ == "__main__":
    main()
