"""Active comparison tasks: a share of new tasks is the proposal the reward model is least sure about.

The reward model here is planted, not trained (no TensorFlow): small random weights over the base
recommender's catalogue, and a posterior that is unsure only about how much the "Drama" genre is
worth. So a pair whose lists differ in Drama movies is the one a label would teach most.
"""

from __future__ import annotations

import numpy as np
import pytest

from feedback import services
from feedback.lists import Slate
from feedback.models import ComparisonTask

PLANTED_GENRE = "Drama"


def planted_reward_model(base_version, *, posterior: bool):
    """Register and activate a reward model over ``base_version``'s catalogue (NumPy arrays only)."""
    from django.conf import settings

    from movies.models import Movie
    from training.ml.artifacts import write_artifact
    from training.ml.data import History
    from training.ml.user_features import build_item_features, make_user_context, user_vector
    from training.registry import model_version_activate, model_version_register
    from training.store import models

    base = models.version(base_version)
    item_ids = base.item_ids
    movies = Movie.objects.prefetch_related("genres").in_bulk(item_ids.tolist())
    genres = [[g.name for g in movies[int(i)].genres.all()] for i in item_ids]
    years = np.array([movies[int(i)].year or np.nan for i in item_ids], np.float64)
    features = build_item_features(base.scorer.item_embeddings, genres, years, np.ones(len(item_ids)))
    empty = make_user_context(History.empty(), base.scorer, features)
    user_dim, x_dim, hidden = len(user_vector(empty, features)), features.matrix.shape[1], 4
    rng = np.random.default_rng(0)
    arrays = {
        **features.to_arrays(),
        "norm/item_mean": features.matrix.mean(axis=0).astype(np.float32),
        "norm/item_std": np.maximum(features.matrix.std(axis=0), 1e-3).astype(np.float32),
        "norm/user_scale": np.ones(user_dim, np.float32),
        "mlp/n_layers": np.asarray(1, np.int64),
        "mlp/user_kernel": rng.normal(0, 0.1, (user_dim, hidden)).astype(np.float32),
        "mlp/item_kernel": rng.normal(0, 0.1, (x_dim, hidden)).astype(np.float32),
        "mlp/bias_0": np.zeros(hidden, np.float32),
        "head/kernel": rng.normal(0, 0.1, (hidden, 1)).astype(np.float32),
        "head/bias": np.zeros(1, np.float32),
        "bilinear/kernel": np.zeros((user_dim, x_dim), np.float32),
        "item_linear/kernel": np.zeros((x_dim, 1), np.float32),
        "signal/gain_raw": np.zeros(features.signal_dim, np.float32),
    }
    if posterior:
        size = hidden + x_dim
        covariance = 1e-6 * np.eye(size)
        drama = hidden + features.embedding_dim + features.genres.index(PLANTED_GENRE)
        covariance[drama, drama] = 100.0  # unsure only what a Drama movie is worth
        arrays["posterior/covariance"] = covariance
    name = f"reward-planted-{int(posterior)}"
    write_artifact(
        settings.ARTIFACTS_DIR,
        name,
        {**arrays, "item_ids": np.asarray(item_ids, np.int64)},
        {"kind": "reward", "base_version_id": base_version.pk},
    )
    version = model_version_register(
        algorithm="reward", version=1, artifact=name, metrics={}, config={}, seed=0, data_snapshot={}
    )
    return model_version_activate(version=version)


@pytest.fixture
def only_ordinary_tasks(settings):
    settings.COMPARISON_GOLD_SHARE = 0.0
    settings.COMPARISON_OVERLAP_SHARE = 0.0
    settings.COMPARISON_PERSONA_SHARE = 1.0
    settings.COMPARISON_ACTIVE_SHARE = 1.0


@pytest.fixture
def scored(monkeypatch):
    """Every disagreement the served lists compute: (left ids, right ids, score)."""
    from training.comparison_lists import ServedLists

    calls: list[tuple[list[int], list[int], float | None]] = []
    real = ServedLists.disagreement

    def spy(self, *, rater_id, left, right):
        score = real(self, rater_id=rater_id, left=left, right=right)
        calls.append((list(left.movie_ids), list(right.movie_ids), score))
        return score

    monkeypatch.setattr(ServedLists, "disagreement", spy)
    return calls


def drama_count(movie_ids) -> int:
    from movies.models import Movie

    return Movie.objects.filter(pk__in=list(movie_ids), genres__name=PLANTED_GENRE).count()


def test_the_served_lists_score_a_pair_by_the_planted_posterior(base_model):
    from training.comparison_lists import ServedLists

    planted_reward_model(base_model, posterior=True)
    lists = ServedLists()
    assert lists.can_choose_actively()
    drama = [m for m in range(1, 41) if drama_count([m])]
    other = [m for m in range(1, 41) if not drama_count([m])]

    def score(left, right) -> float:
        return lists.disagreement(
            rater_id=1,
            left=Slate(left, "x", None, None, False, 1.0),
            right=Slate(right, "y", None, None, False, 1.0),
        )

    assert score(drama[:3], other[:3]) > 100 * score(other[:3], other[3:6])
    assert score(drama[:3], drama[:3]) == pytest.approx(0.0, abs=1e-9)


def test_an_active_task_is_the_proposal_the_reward_model_disagrees_most_about(
    base_model, annie, only_ordinary_tasks, scored
):
    planted_reward_model(base_model, posterior=True)
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(3))
    assert task.selection == ComparisonTask.Selection.ACTIVE
    assert len(scored) == services.ACTIVE_PROPOSALS
    best = max(scored, key=lambda call: call[2])
    assert sorted([task.left_items, task.right_items]) == sorted([best[0], best[1]])
    assert best[2] > min(call[2] for call in scored)  # the proposals differed, and the best one won


def test_the_random_share_is_kept_and_marked(base_model, annie, andy, only_ordinary_tasks, settings, scored):
    planted_reward_model(base_model, posterior=True)
    settings.COMPARISON_ACTIVE_SHARE = 0.5
    rng = np.random.default_rng(4)
    selections = []
    for _ in range(12):
        for annotator in (annie, andy):
            task = services.comparison_task_next(annotator=annotator, rng=rng)
            selections.append(task.selection)
            services.comparison_skip(annotator=annotator, task_id=task.pk)
    active = selections.count(ComparisonTask.Selection.ACTIVE)
    assert 4 <= active <= 20  # 24 tasks at a share of 0.5
    assert set(selections) == {ComparisonTask.Selection.ACTIVE, ComparisonTask.Selection.RANDOM}
    assert len(scored) == services.ACTIVE_PROPOSALS * active


@pytest.mark.parametrize("reward_model", ["none", "without posterior"])
def test_without_an_uncertainty_estimate_tasks_are_made_exactly_as_before(
    base_model, annie, only_ordinary_tasks, scored, settings, reward_model
):
    if reward_model == "without posterior":
        planted_reward_model(base_model, posterior=False)
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(5))
    assert task.selection == ComparisonTask.Selection.RANDOM
    assert scored == []
    ComparisonTask.objects.all().delete()
    settings.COMPARISON_ACTIVE_SHARE = 0.0  # the same rng stream gives the same task as with no active share
    same = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(5))
    assert (same.context_rater_id, same.left_items, same.right_items) == (
        task.context_rater_id,
        task.left_items,
        task.right_items,
    )
