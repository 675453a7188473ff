"""The staff dashboard's plots, rendered once per state of what they show and kept as PNG files.

Rendering them took 3 to 6 s per dashboard view (issue 17). Each plot now has a key naming the data
it shows (the model versions' metrics, the served versions, a run's curves); its PNG is stored under
``ARTIFACTS_DIR/plots`` by that key and served from there until the key changes. Files, not the cache:
every web worker shares them, they survive a restart, and a Redis outage does not touch them.
``dashboard_plots_render`` renders them all ahead of the first view, after a training run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings

from movies.models import Movie, Rater, Rating

from .models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

VERSION_METRICS = {
    "ndcg@10": "Recommender NDCG@10 by version",
    "win_rate": "Policy win rate vs the incumbent (gate)",
    "accuracy": "Reward model held-out accuracy",
}
GENRE_MIX_RATERS = 60  # dataset raters whose histories and lists the genre mix compares
# The rating histogram moves slowly: it is drawn again after this many new ratings (or a new version).
RATINGS_REDRAW_EVERY = 1_000


def plots_dir() -> Path:
    return Path(settings.ARTIFACTS_DIR) / "plots"


def plot_stored(name: str, key: object, render: Callable[[], bytes]) -> bytes:
    """The PNG of plot ``name`` for ``key`` (any JSON-able value): read from its file, or rendered and
    written there; older files of the same plot are removed."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    folder = plots_dir()
    path = folder / f"{name}--{digest}.png"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = render()
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, path)  # atomic: a concurrent reader sees the whole file or none
    for old in folder.glob(f"{name}--*.png"):
        if old != path:
            old.unlink(missing_ok=True)
    return data


def versions_plot(metric: str) -> bytes:
    """One metric by model version; ``metric`` is a key of ``VERSION_METRICS``."""
    rows = [
        {
            "label": v.label,
            "algorithm": v.algorithm,
            "ndcg@10": v.metrics.get("ndcg@10"),
            "win_rate": v.metrics.get("gate/win_rate"),
            "accuracy": v.metrics.get("heldout/accuracy"),
        }
        for v in ModelVersion.objects.order_by("algorithm", "version")
    ]

    def render() -> bytes:
        import pandas as pd

        from . import plots  # matplotlib and seaborn load only when a plot is drawn

        frame = pd.DataFrame(rows)
        frame = frame.dropna(subset=[metric]) if not frame.empty else frame
        return plots.version_metric(frame, metric, VERSION_METRICS[metric])

    return plot_stored(f"versions-{metric.replace('@', '-at-')}", rows, render)


def ratings_plot() -> bytes:
    """The distribution of ratings, dataset against site accounts."""
    newest_rating = Rating.objects.order_by("-id").values_list("id", flat=True).first() or 0
    newest_version = ModelVersion.objects.order_by("-id").values_list("id", flat=True).first()
    key = {"ratings": newest_rating // RATINGS_REDRAW_EVERY, "version": newest_version}

    def render() -> bytes:
        import pandas as pd

        from . import plots

        rows = Rating.objects.values_list("rating", "rater__movielens_id")
        values = np.array(
            [(value, movielens_id is None) for value, movielens_id in rows.iterator(chunk_size=50_000)],
            dtype=float,
        )
        frame = pd.DataFrame(
            {
                "rating": values[:, 0] if len(values) else [],
                "source": np.where(values[:, 1] > 0, "site accounts", "dataset") if len(values) else [],
            }
        )
        return plots.rating_distribution(frame)

    return plot_stored("ratings", key, render)


def genre_mix_plot() -> bytes:
    """Genre shares of dataset raters' histories against each served policy's lists for them."""
    from training.ml.algorithms import ALGORITHMS

    active = sorted(
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("algorithm", "id")
    )
    key = {"active": active, "movies": Movie.objects.count()}

    def render() -> bytes:
        import pandas as pd

        from . import plots
        from .offline import genre_shares
        from .serving import recommend

        raters = list(
            Rater.objects.filter(movielens_id__isnull=False)
            .order_by("id")
            .values_list("id", flat=True)[:GENRE_MIX_RATERS]
        )
        genre_of: dict[int, set[str]] = {}
        for movie_id, name in Movie.genres.through.objects.values_list("movie_id", "genre__name").iterator(
            chunk_size=50_000
        ):
            genre_of.setdefault(movie_id, set()).add(name)
        index = {movie_id: i for i, movie_id in enumerate(genre_of)}
        genres = [frozenset(genre_of[m]) for m in genre_of]
        rated: dict[int, list[int]] = {}
        for rater_id, movie_id in Rating.objects.filter(rater_id__in=raters).values_list(
            "rater_id", "movie_id"
        ):
            if movie_id in index:
                rated.setdefault(rater_id, []).append(index[movie_id])
        history = [np.array(rated.get(r, []), np.int64) for r in raters]
        columns = {"users' histories": genre_shares(history, genres)}
        for policy in [a.name for a in ALGORITHMS if a.servable and a.has_stage]:  # base, ppo, qlearning
            lists = []
            for rater in raters:
                recs = recommend(rater_id=rater, policy=policy, k=10)
                if recs.policy != policy:
                    break
                lists.append(
                    np.array([index[item.movie.pk] for item in recs.items if item.movie.pk in index])
                )
            if lists:
                columns[policy] = genre_shares(lists, genres)
        frame = pd.DataFrame(columns).fillna(0.0).sort_values("users' histories", ascending=False)
        return plots.genre_mix(frame)

    return plot_stored("genre-mix", key, render)


def run_plot(run: TrainingRun) -> bytes:
    """A run's training curves; drawn again only when its history grows."""

    def render() -> bytes:
        from . import plots

        return plots.run_curves(run.history)

    return plot_stored(f"run-{run.pk}", run.history, render)


def dashboard_plots_render() -> None:
    """Draw every plot the dashboard shows, so that its first view after a run serves files.

    A plot that fails is logged and skipped: it is drawn on its first view instead.
    """
    latest_run = TrainingRun.objects.first()  # the dashboard's latest run (newest first)
    drawings: dict[str, Callable[[], bytes]] = {
        **{f"versions {metric}": (lambda metric=metric: versions_plot(metric)) for metric in VERSION_METRICS},
        "ratings": ratings_plot,
        "genre mix": genre_mix_plot,
    }
    if latest_run is not None and latest_run.history:
        drawings["latest run"] = lambda: run_plot(latest_run)
    for name, draw in drawings.items():
        try:
            draw()
        except Exception:  # a plot is a convenience; its failure must not fail what called this
            logger.exception("Could not draw the dashboard plot %s ahead of time", name)
