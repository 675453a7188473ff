"""Offline work on the whole dataset: the evaluation report and recommendation exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from movies.models import Rater
from recsys_site.csv_safety import csv_safe_cell, csv_writer
from training.ml.baselines import EASE, Popularity, tune_ease
from training.ml.data import History, Snapshot
from training.ml.evaluation import evaluate_model, paired_ndcg_difference
from training.ml.scoring import Scorer

from . import registry
from .pipeline import load_split
from .snapshots import movies_frame, ratings_frame
from .store import SERVABLE_ALGORITHMS, served_algorithm
from .store import models as served_models

EXPORT_POLICIES = ("popularity", "ease", *SERVABLE_ALGORITHMS, "active")
METRIC_COLUMNS = [
    "ndcg@10",
    "recall@10",
    "recall@20",
    "precision@10",
    "hit_rate@10",
    "map@10",
    "coverage@10",
    "novelty@10",
    "diversity@10",
]


class PolicyUnavailable(Exception):
    pass


def _loaded_scorer(algorithm: str, item_ids: np.ndarray) -> Scorer:
    version = registry.active_version(algorithm=algorithm)
    loaded = served_models.version(version) if version else None
    if loaded is None:
        raise PolicyUnavailable(f"No active {algorithm} version.")
    if not np.array_equal(loaded.item_ids, item_ids):
        raise PolicyUnavailable(
            f"{algorithm} v{loaded.version} was trained on another catalogue; retrain it."
        )
    return loaded.scorer


@dataclass
class EvaluationReport:
    table: pd.DataFrame  # one row per policy, one column per metric
    versus_ease: dict[str, dict[str, float]]  # per model: NDCG@10 minus EASE's, paired 95% interval


def evaluation_report(
    *, out: Path, include_ease: bool = True, progress: Callable[[str], None] = print
) -> EvaluationReport:
    """Popularity, EASE and every active model on the per-user temporal holdout; table, JSON and plots.

    With EASE, each active model's per-user NDCG@10 difference to it comes with a paired bootstrap
    95% interval: whether a gap between the two is more than the holdout's noise.
    """
    snapshot, split, movies, summary = load_split()
    progress(
        f"Holdout: {split.test.n_ratings:,} ratings of {len(split.relevant()):,} users with a relevant movie"
    )
    scorers: dict[str, Scorer] = {"popularity": Popularity.fit(split.train)}
    if include_ease:
        progress("Fitting EASE (lambda chosen on a validation split of train)")
        scorers["ease"], _ = tune_ease(split.train)
    for algorithm in SERVABLE_ALGORITHMS:
        try:
            scorers[algorithm] = _loaded_scorer(algorithm, snapshot.item_ids)
        except PolicyUnavailable as error:
            progress(f"skipping {algorithm}: {error}")
    rows = {}
    for name, scorer in scorers.items():
        progress(f"Evaluating {name}")
        rows[name] = evaluate_model(scorer, split, k_values=(10, 20), movies_genres=movies)
    table = pd.DataFrame.from_dict(rows, orient="index")
    versus_ease = {
        name: paired_ndcg_difference(scorer, scorers["ease"], split)
        for name, scorer in scorers.items()
        if "ease" in scorers and name not in ("popularity", "ease")
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(
        json.dumps(
            {
                "snapshot": summary,
                "holdout": split.holdout,
                "metrics": table.to_dict(orient="index"),
                "ndcg@10_minus_ease": versus_ease,
            },
            indent=2,
        )
    )
    table.rename(index=csv_safe_cell, columns=csv_safe_cell).to_csv(out / "metrics.csv")
    _plot_metrics(table, out / "metrics.png")
    _plot_genre_mix(scorers, split, movies, out / "genre_mix.png")
    return EvaluationReport(table, versus_ease)


def _plot_metrics(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    accuracy = [
        c
        for c in ["ndcg@10", "recall@10", "recall@20", "precision@10", "hit_rate@10", "map@10"]
        if c in table
    ]
    beyond = [c for c in ["coverage@10", "novelty@10", "diversity@10"] if c in table]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    long = table[accuracy].reset_index(names="policy").melt(id_vars="policy", var_name="metric")
    sns.barplot(long, x="metric", y="value", hue="policy", ax=axes[0])
    axes[0].set_title("Accuracy on the per-user temporal holdout")
    if beyond:
        normalised = table[beyond] / table[beyond].max().replace(0, 1)
        long = normalised.reset_index(names="policy").melt(id_vars="policy", var_name="metric")
        sns.barplot(long, x="metric", y="value", hue="policy", ax=axes[1], legend=False)
        axes[1].set_title("Beyond accuracy (relative to the best)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def genre_shares(lists: list[np.ndarray], genres: list[frozenset[str]]) -> pd.Series:
    counts: dict[str, float] = {}
    for items in lists:
        for item in items:
            names = genres[int(item)]
            for name in names:
                counts[name] = counts.get(name, 0.0) + 1.0 / len(names)
    series = pd.Series(counts, dtype=float)
    return series / series.sum() if series.sum() else series


def _plot_genre_mix(
    scorers: dict[str, Scorer], split, movies: pd.DataFrame, path: Path, users: int = 300
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from training.ml.data import item_genres
    from training.ml.evaluation import rank_users

    genres = item_genres(split.train, movies)
    sample = sorted(split.relevant())[:users]
    shares = {"users' histories": genre_shares([split.train.history(u).item_idx for u in sample], genres)}
    for name, scorer in scorers.items():
        shares[name] = genre_shares(list(rank_users(scorer, split, sample, 10).values()), genres)
    frame = pd.DataFrame(shares).fillna(0.0)
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(frame) + 1.5))
    sns.heatmap(
        frame.sort_values("users' histories", ascending=False), annot=True, fmt=".2f", cmap="YlOrBr", ax=ax
    )
    ax.set_title("Genre mix: top-10 recommendations vs users' histories")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def export_recommendations(
    *, policy: str, k: int, out: Path, progress: Callable[[int, int], None] | None = None
) -> int:
    """Write ``user_id,movie_id,rank,score`` for every dataset user; never a movie the user rated.

    Users are MovieLens user ids and movies MovieLens movie ids, as imported. Each user's history
    is every rating they have in the database.
    """
    if policy not in EXPORT_POLICIES:
        raise PolicyUnavailable(f"Unknown policy {policy!r}; choose one of {', '.join(EXPORT_POLICIES)}.")
    ratings = ratings_frame()
    snapshot = Snapshot.from_ratings(ratings, movies_frame())
    if policy == "active":
        policy = served_algorithm() or "popularity"
    if policy == "popularity":
        scorer: Scorer = Popularity.fit(snapshot)
        item_ids = snapshot.item_ids
    elif policy == "ease":
        scorer, item_ids = EASE.fit(snapshot), snapshot.item_ids
    else:
        version = registry.active_version(algorithm=policy)
        loaded = served_models.version(version) if version else None
        if loaded is None:
            raise PolicyUnavailable(f"No active {policy} version to export.")
        scorer, item_ids = loaded.scorer, loaded.item_ids
    dataset_users = dict(Rater.objects.filter(movielens_id__isnull=False).values_list("id", "movielens_id"))
    position = np.searchsorted(item_ids, snapshot.item_ids)
    position = np.minimum(position, len(item_ids) - 1)
    known = item_ids[position] == snapshot.item_ids  # snapshot index -> model index, where the model has it
    out.parent.mkdir(parents=True, exist_ok=True)
    users = [u for u in range(snapshot.n_users) if int(snapshot.user_keys[u]) in dataset_users]
    written = 0
    with out.open("w", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(["user_id", "movie_id", "rank", "score"])
        for n, user in enumerate(users, start=1):
            full = snapshot.history(user)
            mask = known[full.item_idx]
            history = History(position[full.item_idx[mask]], full.ratings[mask], full.timestamps[mask])
            rated = set(snapshot.item_ids[full.item_idx].tolist())
            best, scores = scorer.top_k(history, k=k + int((~mask).sum()), exclude_rated=True)
            rank = 0
            for item, score in zip(best.tolist(), scores.tolist(), strict=True):
                movie_id = int(item_ids[item])
                if movie_id in rated or not np.isfinite(score):
                    continue
                rank += 1
                writer.writerow(
                    [dataset_users[int(snapshot.user_keys[user])], movie_id, rank, f"{score:.6f}"]
                )
                written += 1
                if rank == k:
                    break
            if progress:
                progress(n, len(users))
    return written
