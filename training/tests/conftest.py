"""A small world with real structure: raters who each love one genre, and a trained-recommender helper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

GENRES = ["Action", "Comedy", "Drama", "Horror"]
MOVIES_PER_GENRE = 15
RATERS = 60


@pytest.fixture
def taste_world(db):
    """60 dataset raters over 60 movies; rater r loves genre r % 4 and rates it high, others low."""
    from movies.models import Genre, Movie, Rater, Rating
    from movies.stats import movie_stats_refresh

    rng = np.random.default_rng(7)
    genres = {name: Genre.objects.create(name=name) for name in GENRES}
    movies = []
    for g, name in enumerate(GENRES):
        for j in range(MOVIES_PER_GENRE):
            movie = Movie.objects.create(
                id=100 + g * MOVIES_PER_GENRE + j, title=f"{name} movie {j}", year=1980 + j
            )
            movie.genres.set([genres[name]])
            movies.append(movie)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    ratings = []
    for r in range(RATERS):
        rater = Rater.objects.create(movielens_id=1000 + r)
        loved = GENRES[r % len(GENRES)]
        picks = rng.choice(len(movies), size=18, replace=False)
        for step, index in enumerate(picks):
            movie = movies[index]
            in_taste = movie.title.startswith(loved)
            value = float(np.clip(np.round((4.5 if in_taste else 1.5) + rng.normal(0, 0.5)), 0.5, 5.0))
            ratings.append(
                Rating(
                    rater=rater, movie=movie, rating=value, rated_at=start + timedelta(days=r, minutes=step)
                )
            )
    Rating.objects.bulk_create(ratings)
    movie_stats_refresh()
    return {"movies": movies, "genres": genres}


def train_base_now(epochs: int = 4, seed: int = 0):
    """Run `train base` in-process with few epochs; returns the run."""
    from training.ml.recommender import RecommenderConfig
    from training.models import TrainingRun
    from training.pipeline import training_run_execute
    from training.runs import training_run_create

    run = training_run_create(kind="base", trigger=TrainingRun.Trigger.COMMAND, seed=seed)
    return training_run_execute(
        run_id=run.pk, config=RecommenderConfig(seed=seed, epochs=epochs, batch_size=16)
    )


def make_version(algorithm: str = "base", number: int = 1):
    """Register a model version with a tiny valid artifact, for registry, admin and API tests.

    A "base" version gets a 3-movie recommender; any other algorithm a generic artifact that
    verifies but that serving could not load (enough for the reward model).
    """
    from django.conf import settings

    from training import registry
    from training.ml.artifacts import save_scorer, write_artifact
    from training.ml.scoring import NumpyRecommender

    name = f"{algorithm}-{number}"
    if algorithm == "base":
        rng = np.random.default_rng(number)
        scorer = NumpyRecommender(
            input_embeddings=rng.normal(size=(3, 4)).astype(np.float32),
            encoder_bias=np.zeros(4, np.float32),
            item_embeddings=rng.normal(size=(3, 4)).astype(np.float32),
            item_bias=np.zeros(3, np.float32),
            rating_weights=np.linspace(-1.0, 1.0, 10).astype(np.float32),
            recency_half_life=50.0,
        )
        save_scorer(settings.ARTIFACTS_DIR, name, scorer, np.array([1, 2, 3], np.int64))
    else:
        write_artifact(settings.ARTIFACTS_DIR, name, {"weights": np.ones(3, np.float32)}, {"kind": algorithm})
    return registry.model_version_register(
        algorithm=algorithm,
        version=number,
        artifact=name,
        metrics={"ndcg@10": 0.1 * number},
        config={},
        seed=0,
        data_snapshot={},
    )


def gate_report(candidate: str = "ppo") -> dict:
    """A gate report as ``training.rlhf.stage_gate`` stores it: ppo passes, quality_rerank does not."""
    from training.jsonsafe import json_safe
    from training.ml.gate import CandidateEvidence, GateRules, gate_decide

    summary = {"mean": 0.8, "low": 0.7, "high": 0.9, "n": 40}
    evidence = [
        CandidateEvidence("ppo", summary, summary, {"mean": 0.01, "low": -0.01, "high": 0.03, "n": 30}, 2.5),
        CandidateEvidence("quality_rerank", {"mean": 0.45, "low": 0.3, "high": 0.6, "n": 40}),
    ]
    decision = gate_decide(
        evidence, incumbent="base v1", judge_accuracy=0.7, judge_comparisons=50, rules=GateRules()
    )
    own = next(entry for entry in decision.candidates if entry.name == candidate)
    return json_safe(
        {
            **decision.as_dict(),
            "candidate": candidate,
            "decision": decision.reason,
            "passed": own.passed,
            "chosen": decision.served == candidate,
            "reason": own.reason,
        }
    )


@pytest.fixture
def oracle_file(taste_world, tmp_path):
    from movies.models import Rating

    path = tmp_path / "oracle.csv"
    lines = ["userId,movieId,rating,timestamp"]
    for rating in Rating.objects.select_related("rater"):
        lines.append(
            f"{rating.rater.movielens_id},{rating.movie_id},{rating.rating},{int(rating.rated_at.timestamp())}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def with_feedback(taste_world, oracle_file):
    """A recommender trained on the taste world and 60 comparisons answered by simulated annotators."""
    from django.core.management import call_command

    from training.store import models as served_models

    served_models.clear()
    train_base_now(epochs=20)
    call_command(
        "simulate_feedback",
        oracle_ratings=oracle_file,
        comparisons=60,
        annotators=2,
        noise=0.05,
        k=5,
        no_progress=True,
    )
    yield
    served_models.clear()
