"""The product's reward model carries the last-layer posterior that active comparison tasks need."""

from __future__ import annotations

import numpy as np
import pytest

from training.comparison_lists import ServedLists, active_reward_posterior
from training.ml.active import has_posterior
from training.ml.artifacts import load_artifact
from training.models import ModelVersion
from training.registry import model_version_activate
from training.store import artifact_path
from training.tests.test_rlhf import run_pipeline

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_reward_stage_saves_a_posterior_that_scores_pairs_in_numpy(with_feedback):
    from feedback.models import ComparisonTask

    tasks = list(ComparisonTask.objects.order_by("id").values_list("id", flat=True))
    ComparisonTask.objects.filter(id__in=tasks[::3]).update(selection=ComparisonTask.Selection.ACTIVE)
    run = run_pipeline("reward")
    version = run.versions.get(algorithm="reward")
    # active tasks train the model but never measure it
    left_out = version.metrics["heldout/n_active_left_out"]
    assert left_out > 0
    assert version.data_snapshot["heldout_random"] + left_out == version.data_snapshot["heldout"]
    assert version.metrics["heldout/n"] == version.data_snapshot["heldout_random"]
    arrays, _ = load_artifact(artifact_path(version.artifact))
    assert has_posterior(arrays)
    covariance = arrays["posterior/covariance"]
    assert np.allclose(covariance, covariance.T) and np.all(np.linalg.eigvalsh(covariance) > 0)
    assert int(arrays["posterior/n_comparisons"]) == version.data_snapshot["comparisons"]
    if version.status != ModelVersion.Status.ACTIVE:  # the tiny run's verdict may keep it a candidate
        model_version_activate(version=version)
    _, base = active_reward_posterior()
    assert ServedLists().can_choose_actively()
    rater = version.data_snapshot["learner_raters"][0]
    movie_ids = base.item_ids[:10].tolist()
    from feedback.lists import Slate

    score = ServedLists().disagreement(
        rater_id=rater,
        left=Slate(movie_ids[:5], "a", None, None, False, 1.0),
        right=Slate(movie_ids[5:], "b", None, None, False, 1.0),
    )
    assert score is not None and 0.0 <= score <= np.log(2)
