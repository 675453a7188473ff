"""Simulated annotators answering comparison tasks through the same services as the web page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from feedback.services import comparison_record_simulated, comparison_task_create
from movies.models import Movie, Rater
from training.ml.norms import ListAttributes, NormsConfig, population_norms
from training.ml.simulator import OracleTaste, make_annotators
from training.ml.user_features import GENRES, canonical_genre

CHOICE_OF_OUTCOME = {"a": "left", "b": "right", "tie": "tie", "both_bad": "both_bad"}
NORMS_DEVIATION = 0.2  # the norms population's personal deviation (ExperimentConfig.norms_deviation)


class OracleFileError(Exception):
    pass


def read_oracle_ratings(path: Path) -> pd.DataFrame:
    """A MovieLens ratings file (ratings.csv with header, ratings.dat with ``::``, or u.data with tabs)."""
    if not path.is_file():
        raise OracleFileError(f"{path}: no such file")
    with path.open("rb") as handle:
        first = handle.readline().decode("latin-1")
    separator = "::" if "::" in first else ("\t" if "\t" in first else ",")
    header = 0 if not first.split(separator)[0].strip().isdigit() else None
    try:
        frame = pd.read_csv(
            path,
            sep=separator,
            header=header,
            names=["user", "item", "rating", "timestamp"],
            usecols=[0, 1, 2, 3],
            engine="python" if separator == "::" else "c",
            encoding="latin-1",
        )
        frame = frame.astype(
            {"user": np.int64, "item": np.int64, "rating": np.float64, "timestamp": np.int64}
        )
    except (ValueError, pd.errors.ParserError) as error:
        raise OracleFileError(f"{path}: not a MovieLens ratings file ({error})") from None
    if frame.empty:
        raise OracleFileError(f"{path}: no ratings")
    return frame


def simulate_feedback(
    *,
    oracle_path: Path,
    comparisons: int,
    annotators: int = 3,
    temperature: float = 0.1,
    seed: int = 0,
    k: int = 10,
    progress: Callable[[int, int], None] | None = None,
    population: str = "taste",
    noise: float | None = None,
) -> dict:
    """Create ``comparisons`` simulated tasks and judgments; returns counts by choice.

    The annotators' taste is the oracle file: for a dataset user of the database, a list's quality
    is its position-discounted oracle utility, and the choice follows Bradley-Terry with temperature.
    ``population="norms"`` adds list-level norms at per-annotator strengths (``training.ml.norms``);
    ``noise`` is each annotator's personal deviation from the oracle (default 0 for ``taste``, the
    calibrated ``ExperimentConfig.norms_deviation`` for ``norms``).
    """
    oracle_ratings = read_oracle_ratings(oracle_path)
    raters = dict(
        Rater.objects.filter(movielens_id__in=oracle_ratings["user"].unique().tolist()).values_list(
            "movielens_id", "pk"
        )
    )
    if not raters:
        raise OracleFileError(f"{oracle_path}: none of its users is a dataset user of the imported release")
    movie_ids = np.array(sorted(Movie.objects.values_list("id", flat=True)), np.int64)
    item_index = {int(m): i for i, m in enumerate(movie_ids)}
    genre_matrix = np.zeros((len(movie_ids), len(GENRES)))
    for movie_id, name in Movie.genres.through.objects.values_list("movie_id", "genre__name"):
        canonical = canonical_genre(name)
        if canonical is not None:
            genre_matrix[item_index[movie_id], GENRES.index(canonical)] = 1.0
    oracle = OracleTaste(oracle_ratings, len(movie_ids), genre_matrix=genre_matrix, item_index=item_index)
    norms = None
    if population == "norms":
        catalogue = dict(Movie.objects.values_list("id", "title"))
        years = dict(Movie.objects.values_list("id", "year"))
        attributes = ListAttributes.from_catalogue(
            genre_matrix,
            GENRES,
            np.array([np.nan if years[m] is None else float(years[m]) for m in movie_ids.tolist()]),
            [catalogue[m] for m in movie_ids.tolist()],
        )
        norms = population_norms(attributes, NormsConfig(), annotators, seed)
        noise = NORMS_DEVIATION if noise is None else noise
    elif population != "taste":
        raise ValueError(f"unknown population {population!r}: 'taste' or 'norms'")
    judges = make_annotators(
        oracle, annotators, temperature=temperature, seed=seed, noise=noise or 0.0, norms=norms
    )
    users = sorted(set(oracle.users) & set(raters))
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for n in range(comparisons):
        user = users[int(rng.integers(len(users)))]
        task = comparison_task_create(
            context_rater=Rater.objects.get(pk=raters[user]), k=k, simulated=True, rng=rng
        )
        j = n % annotators
        left = np.array([item_index[m] for m in task.left_items], np.int64)
        right = np.array([item_index[m] for m in task.right_items], np.int64)
        judgement = judges[j].compare(user, left, right)
        choice = CHOICE_OF_OUTCOME[judgement.outcome]
        comparison_record_simulated(
            task=task, simulator=f"oracle-s{seed}-a{j}", choice=choice, reason=judgement.reason or ""
        )
        counts[choice] = counts.get(choice, 0) + 1
        if progress:
            progress(n + 1, comparisons)
    return counts
