"""Compare popularity, EASE and the Keras recommender on a per-user temporal holdout.

Usage::

    python -m training.ml.experiment_compare data/ml-latest-small [--holdout 0.2] [--seed 0]
        [--validation] [--set embedding_dim=96 ...] [--by-activity] [--more-seeds 1 2 ...]

``--validation`` evaluates on the tuning protocol instead of the test: the same temporal split
carved again from the train part (what EASE's lambda and the recommender's defaults are chosen
on), so the held-out test period is never looked at. ``--set`` overrides a RecommenderConfig field.
``--by-activity`` adds NDCG@10 per group of users by their number of train ratings.
``--more-seeds`` trains the recommender again with other seeds on the same split: differences
between settings smaller than the spread between seeds are noise. ``--unseen-users 0.2`` keeps a
random 20% of the evaluated users (the same ones for every seed) out of training altogether: they
are folded in from their train ratings at evaluation time, as a new account is at request time;
``--unseen-fold 0`` to ``4`` then hold out disjoint fifths, which together cover every user.
"""

from __future__ import annotations

import argparse
import ast
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from training.ml.baselines import EASE, EASEConfig, Popularity, tune_ease
from training.ml.data import Snapshot, Split, hold_out_users, read_movielens, temporal_split
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
    fit_on: Snapshot | None = None  # what the policies were fitted on: split.train without unseen users


def run_comparison(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    holdout: float = 0.2,
    seed: int = 0,
    k_values: tuple[int, ...] = (10, 20),
    recommender_config: RecommenderConfig | None = None,
    ease_config: EASEConfig | None = None,
    validation: bool = False,
    unseen_users: float = 0.0,
    unseen_fold: int = 0,
) -> ComparisonResult:
    """Split, fit the three policies on train (EASE's lambda picked on a split of train), evaluate.

    The split is :func:`comparison_split`'s; the rest is :func:`fit_and_compare`'s.
    """
    split, fit_on = comparison_split(ratings, movies, holdout, validation, unseen_users, unseen_fold)
    return fit_and_compare(split, fit_on, movies, seed, k_values, recommender_config, ease_config)


def comparison_split(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    holdout: float = 0.2,
    validation: bool = False,
    unseen_users: float = 0.0,
    unseen_fold: int = 0,
) -> tuple[Split, Snapshot]:
    """The split to evaluate on and the snapshot to fit on (its train part, unless users are unseen).

    With ``validation`` the whole comparison runs inside the train part, split again the same way.
    With ``unseen_users`` that share of the evaluated users (``unseen_fold`` says which of the
    disjoint shares) is left out of the fitting and only they are evaluated (``data.hold_out_users``).
    Raises ValueError for a holdout, share or fold that does not exist.
    """
    split = temporal_split(Snapshot.from_ratings(ratings, movies), holdout=holdout)
    if validation:
        split = temporal_split(split.train, holdout=holdout)
    if not unseen_users:
        return split, split.train
    return hold_out_users(split, unseen_users, fold=unseen_fold)


def fit_and_compare(
    split: Split,
    fit_on: Snapshot,
    movies: pd.DataFrame,
    seed: int = 0,
    k_values: tuple[int, ...] = (10, 20),
    recommender_config: RecommenderConfig | None = None,
    ease_config: EASEConfig | None = None,
) -> ComparisonResult:
    """Fit popularity, EASE and the recommender on ``fit_on`` and evaluate them on ``split``."""
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    popularity = Popularity.fit(fit_on)
    seconds["popularity"] = time.perf_counter() - started

    started = time.perf_counter()
    ease, ease_validation = tune_ease(fit_on, ease_config)
    seconds["ease (incl. lambda search)"] = time.perf_counter() - started

    config = replace(recommender_config or RecommenderConfig(), seed=seed)
    result = train_recommender(fit_on, config, teacher=ease)
    seconds["recommender"] = result.train_seconds

    scorers: dict[str, Scorer] = {"popularity": popularity, "ease": ease, "recommender": result.scorer}
    table = compare(scorers, split, k_values, movies_genres=movies)
    return ComparisonResult(table, scorers, seconds, ease_validation, split, fit_on)


def train_seeds(
    train: Snapshot, config: RecommenderConfig, seeds: list[int], teacher: EASE | None = None
) -> dict[int, Scorer]:
    """The recommender trained on ``train`` once per distinct seed, otherwise as ``config``.

    ``teacher`` is the EASE teacher fitted on ``train`` (fitted once per seed without it).
    """
    return {
        seed: train_recommender(train, replace(config, seed=seed), teacher=teacher).scorer
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
    parser.add_argument(
        "--unseen-users",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="keep this share of the evaluated users out of training; evaluate only them (folded in)",
    )
    parser.add_argument(
        "--unseen-fold",
        type=int,
        default=0,
        metavar="F",
        help="which share of users --unseen-users holds out: folds 0 to 1/SHARE - 1 are disjoint",
    )
    args = parser.parse_args(argv)
    if args.unseen_users and not 0.0 < args.unseen_users < 1.0:
        parser.error(f"--unseen-users {args.unseen_users}: expected a share between 0 and 1")
    if args.unseen_fold and not args.unseen_users:
        parser.error("--unseen-fold needs --unseen-users")
    config = recommender_config(args.set, parser)

    ratings, movies = read_movielens(args.data)
    try:
        split, fit_on = comparison_split(
            ratings, movies, args.holdout, args.validation, args.unseen_users, args.unseen_fold
        )
    except ValueError as error:
        parser.error(str(error))
    result = fit_and_compare(split, fit_on, movies, seed=args.seed, recommender_config=config)
    where = "validation (a split of train)" if args.validation else "test"
    print(f"temporal holdout {args.holdout} on {where}, seed {args.seed}, {len(ratings)} ratings")
    if args.unseen_users:
        print(
            f"unseen users: {len(np.unique(result.split.test.user_idx))} users held out of training "
            f"({args.unseen_users:.0%}, fold {args.unseen_fold}), folded in from their train ratings"
        )
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
    scorers = {args.seed: result.scorers["recommender"], **train_seeds(result.fit_on, config, others, ease)}
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
