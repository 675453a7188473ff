"""Before an RLHF run, admins are told whether there is enough feedback for its numbers to mean
anything; after it, the reward model's accuracy comes with its interval."""

from __future__ import annotations

import pytest

from feedback.models import Comparison, ComparisonTask
from movies.models import Rater
from training.ml.metrics import wilson_interval
from training.models import ModelVersion
from training.readiness import feedback_readiness

pytestmark = pytest.mark.django_db


def judgments(count: int, users: int, first_user: int = 10_000) -> None:
    raters = [Rater.objects.create(movielens_id=first_user + n) for n in range(users)]
    for n in range(count):
        task = ComparisonTask.objects.create(
            context_kind=ComparisonTask.Context.PERSONA,
            context_rater=raters[n % users],
            left_items=[1],
            right_items=[2],
            left_source={"policy": "base"},
            right_source={"policy": "popularity"},
            simulated=True,
        )
        Comparison.objects.create(task=task, simulator="sim", choice="left")


def test_six_judgments_warn_that_the_numbers_will_say_little(settings):
    judgments(6, users=3)
    readiness = feedback_readiness()
    assert (readiness.judgments, readiness.users, readiness.summary) == (6, 3, "6 judgments about 3 users")
    assert readiness.warning.startswith("Only 6 judgments about 3 users: the reward model would learn from")
    assert "about 100 judgments about 50 users" in readiness.warning  # 20 / 0.2 and 10 / 0.2


def test_enough_judgments_about_enough_users_need_no_warning(settings):
    settings.GATE_MIN_JUDGE_COMPARISONS, settings.GATE_MIN_HELDOUT_USERS = 4, 2
    settings.GATE_MIN_HELDOUT_COMPARISONS = 4
    judgments(20, users=10)  # needs 4 / 0.2 = 20 judgments (4 / 0.4 = 10 held out) and 2 / 0.2 = 10 users
    assert feedback_readiness().warning == ""
    settings.GATE_MIN_HELDOUT_USERS = 3  # now 15 users are needed
    assert "about 15 users" in feedback_readiness().warning


def test_the_run_list_says_how_much_feedback_a_run_would_have(client, sam):
    judgments(6, users=3)
    client.force_login(sam)
    page = client.get("/admin/training/trainingrun/").content.decode()
    assert "Feedback so far: 6 judgments about 3 users." in page and "feedback-readiness warning" in page


def test_one_right_out_of_one_is_an_interval_not_a_certainty():
    low, high = wilson_interval(1, 1)
    assert low == pytest.approx(0.2065, abs=1e-3) and high == 1.0
    low, high = wilson_interval(204, 392)  # 0.52 on 392 comparisons: within noise of a coin flip
    assert low < 0.5 < high
    assert wilson_interval(0, 0) != wilson_interval(0, 0)  # nan: no evidence at all


def test_a_reward_models_headline_carries_its_interval():
    version = ModelVersion(
        algorithm="reward",
        version=1,
        metrics={"heldout/accuracy": 1.0, "heldout/accuracy_low": 0.2065, "heldout/accuracy_high": 1.0},
    )
    assert version.headline == "heldout/accuracy 1.0000 [0.21, 1.00]"
    assert ModelVersion(algorithm="base", version=1, metrics={"ndcg@10": 0.1}).headline == "ndcg@10 0.1000"
