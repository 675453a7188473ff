"""The training pipeline: database snapshot -> ML core -> artifact -> registry -> (maybe) serving.

Every step that can fail runs before anything is activated, and activation is one transaction,
so a failed or killed run leaves the serving models as they were.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import asdict

from training.ml.baselines import Popularity, tune_ease
from training.ml.data import Snapshot, Split, temporal_split
from training.ml.evaluation import evaluate_model
from training.ml.gate import recommender_verdict
from training.ml.overrides import settings_apply
from training.ml.recommender import RecommenderConfig, train_recommender

from . import registry
from .exceptions import NotEnoughData
from .models import ModelVersion, TrainingRun
from .publish import model_version_publish
from .runs import RunReporter
from .snapshots import movies_frame, ratings_frame, snapshot_summary
from .store import models as served_models

logger = logging.getLogger(__name__)

PRIMARY_METRIC = "ndcg@10"
MIN_RATINGS_TO_TRAIN = 100


def _jsonable(metrics: dict) -> dict:
    return {key: (round(float(value), 6) if value is not None else None) for key, value in metrics.items()}


def load_split(*, holdout: float = 0.2) -> tuple[Snapshot, Split, object, dict]:
    ratings = ratings_frame()
    if len(ratings) < MIN_RATINGS_TO_TRAIN:
        raise NotEnoughData(f"Only {len(ratings)} ratings in the database; import a dataset first.")
    movies = movies_frame()
    snapshot = Snapshot.from_ratings(ratings, movies)
    return snapshot, temporal_split(snapshot, holdout=holdout), movies, snapshot_summary(ratings)


def train_base(
    *,
    reporter: RunReporter,
    config: RecommenderConfig | None = None,
    span: tuple[float, float] = (0.0, 100.0),
) -> ModelVersion:
    """Train, evaluate and register a recommender; activate it if there is none or it is better."""
    run = reporter.run
    start, end = span
    config = settings_apply(config or RecommenderConfig(seed=run.seed), run.config.get("base"))
    reporter.progress(step="Reading ratings", percent=start, force=True)
    snapshot, split, movies, summary = load_split()
    reporter.log(
        f"Snapshot: {summary['ratings']:,} ratings, {summary['users']:,} raters, {snapshot.n_items:,} movies; "
        f"holdout {split.test.n_ratings:,} ratings"
    )

    def on_epoch(epoch: int, epochs: int, logs: dict) -> None:
        reporter.progress(
            step=f"Recommender epoch {epoch}/{epochs}", percent=start + (end - start) * 0.85 * epoch / epochs
        )
        reporter.record_history("recommender", {"epoch": epoch, **{k: float(v) for k, v in logs.items()}})

    teacher = None
    if config.teacher_weight > 0 or config.ease_weight > 0:
        reporter.progress(step="Fitting EASE", percent=start + (end - start) * 0.02, force=True)
        teacher, lambdas = tune_ease(split.train)
        by_lambda = ", ".join(f"{l2:g}: {score:.4f}" for l2, score in lambdas.items())
        reporter.log(
            f"EASE (teacher, item-item term): lambda {teacher.l2:g} (validation NDCG@10 by lambda: {by_lambda})"
        )
    result = train_recommender(split.train, config, progress=on_epoch, teacher=teacher)
    reporter.log(f"Trained the recommender in {result.train_seconds:.1f} s")
    reporter.progress(step="Evaluating", percent=start + (end - start) * 0.9, force=True)
    metrics = _jsonable(evaluate_model(result.scorer, split, movies_genres=movies))
    popularity = _jsonable(evaluate_model(Popularity.fit(split.train), split, movies_genres=movies))
    metrics["train_seconds"] = round(result.train_seconds, 2)
    baselines = {"popularity": popularity[PRIMARY_METRIC]}
    if teacher is not None:  # already fitted on the same train part: EASE's score costs one evaluation
        baselines["ease"] = float(evaluate_model(teacher, split, k_values=(10,))[PRIMARY_METRIC])
    reporter.log(
        f"Candidate {PRIMARY_METRIC}={metrics[PRIMARY_METRIC]:.4f} ("
        + ", ".join(f"{name} {score:.4f}" for name, score in baselines.items())
        + ")"
    )

    active = registry.active_version(algorithm="base")
    active_score = None
    if active is not None:
        loaded = served_models.version(active)
        if (
            loaded is not None
            and len(loaded.item_ids) == snapshot.n_items
            and (loaded.item_ids == snapshot.item_ids).all()
        ):
            active_score = evaluate_model(loaded.scorer, split)[PRIMARY_METRIC]
            reporter.log(
                f"Active base v{active.version} on the same holdout: {PRIMARY_METRIC}={active_score:.4f}"
            )
        else:
            reporter.log(
                f"Active base v{active.version} has another catalogue; comparing with its recorded metric"
            )
            active_score = active.metrics.get(PRIMARY_METRIC)

    verdict = recommender_verdict(
        metric=PRIMARY_METRIC,
        candidate=metrics[PRIMARY_METRIC],
        active=active_score,
        has_active=active is not None,
    )
    version = model_version_publish(
        algorithm="base",
        arrays=result.scorer.export_arrays(),
        item_ids=snapshot.item_ids,
        manifest={**result.manifest(), "metrics": metrics},
        metrics={**metrics, **{f"baseline/{name}_ndcg@10": score for name, score in baselines.items()}},
        config=asdict(config),
        seed=config.seed,
        data_snapshot={
            **summary,
            "fingerprint": snapshot.fingerprint(),
            "holdout_ratings": split.test.n_ratings,
        },
        run=run,
        verdict=verdict,
    )
    if verdict.serve:
        reporter.log(f"Activated base v{version.version}")
    else:
        reporter.log(f"Kept base v{active.version}: the candidate is {verdict.note}")
    reporter.progress(step="Recommender done", percent=end, force=True)
    return version


STAGES: dict[str, Callable] = {"base": train_base}


def training_run_execute(
    *, run_id: int, echo: Callable[[str], None] | None = None, on_progress=None, config=None
) -> TrainingRun:
    """Run a queued training run to completion; any error marks it failed and activates nothing."""
    run = TrainingRun.objects.get(pk=run_id)
    reporter = RunReporter(run, echo=echo, on_progress=on_progress)
    if not reporter.start():
        run.refresh_from_db()
        logger.warning("Training run %s is no longer queued (%s); not running it", run.pk, run.status)
        return run
    try:
        stage = STAGES.get(run.kind)
        if stage is None:
            from .rlhf import run_rlhf_stage

            version = run_rlhf_stage(kind=run.kind, reporter=reporter, configs=config)
        else:
            version = stage(reporter=reporter, config=config)
        versions = version if isinstance(version, list) else [version]
        reporter.succeed(metrics={v.label: v.metrics for v in versions if v is not None})
    except Exception as error:  # every failure is recorded on the run; nothing was activated
        logger.exception("Training run %s failed", run.pk)
        reporter.log(traceback.format_exc(limit=8))
        reporter.fail(error=f"{type(error).__name__}: {error}")
    return run
