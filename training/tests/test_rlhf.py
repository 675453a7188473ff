from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from feedback.models import Comparison
from training.ml.artifacts import load_artifact
from training.ml.dqn import DQNConfig
from training.ml.ppo import PPOConfig
from training.ml.reward_model import RewardModelConfig
from training.models import ModelVersion, TrainingRun
from training.pipeline import training_run_execute
from training.runs import training_run_create
from training.serving import recommend
from training.store import artifact_path

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TINY = {
    "reward": RewardModelConfig(epochs=8, batch_size=64, seed=0, set_features=True),
    "ppo": PPOConfig(iterations=4, users_per_iteration=32, n_candidates=30, slate_size=5, seed=1),
    "qlearning": DQNConfig(
        total_steps=30,
        num_envs=16,
        n_candidates=30,
        slate_size=5,
        batch_size=64,
        learning_starts=5,
        eval_frequency=10,
        seed=1,
    ),
}


def run_pipeline(kind: str) -> TrainingRun:
    run = training_run_create(kind=kind, trigger=TrainingRun.Trigger.COMMAND, seed=0)
    return training_run_execute(run_id=run.pk, config=TINY)


def test_simulated_feedback_goes_through_the_comparison_services_and_is_marked(with_feedback):
    judgments = Comparison.objects.select_related("task")
    assert judgments.count() == 60
    assert all(j.simulator.startswith("oracle-") and j.annotator_id is None for j in judgments)
    assert all(j.task.simulated and len(j.task.left_items) == 5 for j in judgments)
    assert {j.choice for j in judgments} <= {"left", "right", "tie", "both_bad"}


def test_the_norms_population_answers_through_the_same_services(taste_world, oracle_file):
    from django.core.management import call_command

    from training.serving import models as served_models
    from training.tests.conftest import train_base_now

    served_models.clear()
    train_base_now(epochs=5)
    call_command(
        "simulate_feedback",
        oracle_ratings=oracle_file,
        comparisons=20,
        annotators=2,
        noise=0.05,
        k=5,
        population="norms",
        no_progress=True,
    )
    served_models.clear()
    judgments = Comparison.objects.all()
    assert judgments.count() == 20
    assert {j.choice for j in judgments} <= {"left", "right", "tie", "both_bad"}


CANDIDATES = {"ppo", "qlearning", "quality_rerank", "rm_rerank", "best_of_n", "mmr", "rm_greedy", "rm_mmr"}


def test_the_full_pipeline_gates_every_policy_kind_with_a_full_report(with_feedback, settings):
    settings.GATE_MIN_HELDOUT_COMPARISONS = 5
    run = run_pipeline("all")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    versions = {v.algorithm: v for v in run.versions.all()}
    assert set(versions) == {"reward", *CANDIDATES}
    assert {"heldout/accuracy", "heldout/n", "train/accuracy"} <= set(versions["reward"].metrics)
    reward_arrays, _ = load_artifact(artifact_path(versions["reward"].artifact))
    assert reward_arrays["set/weights"].shape == (4,)  # the product's reward model reads whole lists
    served = None
    for algorithm in CANDIDATES:
        gate = versions[algorithm].gate
        assert gate["candidate"] == algorithm
        report_keys = {"passed", "chosen", "reason", "decision", "served", "incumbent", "judge", "users"}
        assert report_keys | {"candidates"} <= set(gate)
        assert {"accuracy", "n_strict", "trusted", "rules", "train_comparisons"} <= set(gate["judge"])
        assert {entry["name"] for entry in gate["candidates"]} == CANDIDATES
        assert versions[algorithm].status == (
            ModelVersion.Status.ACTIVE if gate["chosen"] else ModelVersion.Status.CANDIDATE
        )
        served = gate["served"]
    assert sum(versions[a].gate["chosen"] for a in CANDIDATES) == (served in CANDIDATES)
    kl = {entry["name"]: entry["kl"] for entry in versions["ppo"].gate["candidates"]}
    assert kl["quality_rerank"] is None and kl["rm_rerank"] is None and kl["mmr"] is None
    n = settings.RERANK_BEST_OF_N
    assert kl["best_of_n"] == pytest.approx(np.log(n) - (n - 1) / n) and kl["ppo"] is not None
    ppo_history = run.history["ppo"]
    assert len(ppo_history) == 4
    for key in (
        "objective/kl",
        "objective/rlhf_reward",
        "objective/entropy",
        "policy/approxkl",
        "policy/clipfrac",
        "loss/policy",
        "loss/value",
    ):
        assert key in ppo_history[0]
    assert run.history["reward_model"] and run.history["qlearning"]


def test_the_learner_reward_model_trains_only_on_learner_users_comparisons(with_feedback):
    from training.rlhf import _base, comparison_rows, feedback_snapshot

    run = run_pipeline("all")
    reward = run.versions.get(algorithm="reward")
    split = feedback_snapshot(base=_base(), rows=comparison_rows(), seed=run.seed).split
    learners = set(reward.data_snapshot["learner_raters"])
    assert learners and learners <= split.learner
    assert not learners & (split.judge | split.gate)
    assert reward.data_snapshot["comparisons"] + reward.data_snapshot["heldout"] == Comparison.objects.count()
    judge = run.versions.get(algorithm="ppo").gate["judge"]
    assert judge["train_comparisons"] == sum(
        1 for c in Comparison.objects.select_related("task") if c.task.context_rater_id in split.judge
    )


def test_nothing_is_promoted_when_the_judge_has_too_little_held_out_evidence(with_feedback, settings):
    settings.GATE_MIN_JUDGE_COMPARISONS = 10_000
    run = run_pipeline("all")
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    for version in run.versions.filter(algorithm__in=CANDIDATES):
        assert version.status == ModelVersion.Status.CANDIDATE
        assert (
            "is not trusted" in version.gate["reason"]
        )  # the independent judge, or the learner's reward model
    assert recommend(rater_id=None, k=3).policy in ("popularity", "base")


def test_every_baseline_is_servable_through_the_api_and_the_export_command(with_feedback, sam, tmp_path):
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from movies.models import Rater, Rating
    from training.registry import model_version_promote

    run = run_pipeline("all")
    assert run.status == TrainingRun.Status.SUCCEEDED
    rater = Rater.objects.filter(movielens_id__isnull=False).first()
    rated = set(Rating.objects.filter(rater=rater).values_list("movie_id", flat=True))
    client = APIClient()
    client.force_authenticate(sam)
    for algorithm in ("quality_rerank", "rm_rerank", "mmr", "rm_greedy", "rm_mmr", "best_of_n"):
        version = ModelVersion.objects.get(algorithm=algorithm)
        model_version_promote(version=version, actor=sam, note="test", override_gate=True)
        response = client.get(f"/api/recommendations/?policy={algorithm}&user={rater.movielens_id}&k=7")
        assert response.status_code == 200, response.content
        payload = response.json()
        assert (payload["policy"], payload["version"]) == (algorithm, 1)
        ids = [item["movie"] for item in payload["results"]]
        assert len(ids) == 7 == len(set(ids)) and not rated & set(ids)
        again = client.get(f"/api/recommendations/?policy={algorithm}&user={rater.movielens_id}&k=7")
        assert [item["movie"] for item in again.json()["results"]] == ids  # stable per user
        out = tmp_path / f"{algorithm}.csv"
        call_command("export_recommendations", policy=algorithm, k=5, out=out, no_progress=True)
        lines = out.read_text().splitlines()
        assert lines[0] == "user_id,movie_id,rank,score" and len(lines) > 1
    assert recommend(rater_id=rater.pk, k=5).policy == "best_of_n"  # the last promoted is served


def test_a_promoted_policy_is_served_and_never_recommends_a_rated_movie(with_feedback, settings):
    from movies.models import Rater, Rating
    from training.registry import model_version_promote

    settings.GATE_MIN_JUDGE_COMPARISONS = 10_000
    run_pipeline("all")
    ppo = ModelVersion.objects.get(algorithm="ppo")
    model_version_promote(version=ppo, actor=None, note="test", override_gate=True)
    rater = Rater.objects.filter(movielens_id__isnull=False).first()
    recs = recommend(rater_id=rater.pk, k=5)
    assert (recs.policy, recs.version) == ("ppo", 1)
    rated = set(Rating.objects.filter(rater=rater).values_list("movie_id", flat=True))
    ids = [item.movie.pk for item in recs.items]
    assert len(ids) == 5 == len(set(ids)) and not rated & set(ids)
    assert recommend(rater_id=rater.pk, policy="qlearning", k=5).policy in ("qlearning", "popularity")


TINY_OVERRIDES = {
    stage: {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in asdict(config).items()
        if name != "seed"
    }
    for stage, config in TINY.items()
}


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_runs_end_to_end_in_a_celery_worker_from_the_broker(with_feedback, settings):
    """What the admin's "Retrain now" does: a queued run goes through the broker (Redis when
    REDIS_URL is set, as in CI) to a worker on the training queue, which runs every stage."""
    from celery.contrib.testing.worker import start_worker

    from recsys_site.celery import app
    from training.runs import training_run_start

    settings.GATE_MIN_HELDOUT_COMPARISONS = 5
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=["training"]):
        run = training_run_start(kind="all", trigger=TrainingRun.Trigger.ADMIN, config=TINY_OVERRIDES)
        run.refresh_from_db()
        assert run.celery_task_id  # enqueued once the row was committed
        assert app.AsyncResult(run.celery_task_id).get(timeout=600) == TrainingRun.Status.SUCCEEDED
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.progress == 100, run.error
    assert {v.algorithm for v in run.versions.all()} == {"reward", *CANDIDATES}
    assert len(run.history["ppo"]) == TINY["ppo"].iterations  # the worker used the run's settings
    assert run.versions.get(algorithm="reward").config["epochs"] == TINY["reward"].epochs


def test_ppo_alone_keeps_the_active_reward_models_raters_out_of_its_judge_and_gate(with_feedback, settings):
    from training.rlhf import _base, comparison_rows, feedback_snapshot, learner_raters_of

    settings.GATE_MIN_REWARD_ACCURACY, settings.GATE_MIN_HELDOUT_COMPARISONS = 0.0, 0
    run_pipeline("all")
    reward = ModelVersion.objects.get(algorithm="reward", status=ModelVersion.Status.ACTIVE)
    run = training_run_create(kind="ppo", trigger=TrainingRun.Trigger.COMMAND, seed=5)
    run = training_run_execute(run_id=run.pk, config=TINY)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert [v.label for v in run.versions.all()] == ["ppo v2"]
    assert run.versions.get().gate["candidates"][0]["name"] == "ppo"
    rows = comparison_rows()
    split = feedback_snapshot(
        base=_base(), rows=rows, seed=5, learner_raters=learner_raters_of(reward, rows)
    ).split
    assert set(reward.data_snapshot["learner_raters"]) <= split.learner  # another seed, the same learners


def test_ppo_alone_needs_an_active_reward_model(with_feedback):
    run = run_pipeline("ppo")
    assert run.status == TrainingRun.Status.FAILED
    assert "No active reward model" in run.error


def test_for_you_shows_users_in_an_online_comparison_the_interleaved_list(with_feedback, sam):
    from movies.models import Rater, Rating
    from movies.services import account_create
    from training import online
    from training.models import InterleavedImpression
    from training.registry import served_decision
    from training.serving import recommendations_for_user

    run_pipeline("all")
    served = served_decision().version
    candidate = ModelVersion.objects.exclude(pk=served.pk).get(
        algorithm="quality_rerank" if served.algorithm != "quality_rerank" else "best_of_n"
    )
    experiment = online.online_experiment_start(candidate=candidate, actor=sam, share=1.0)
    account = account_create(username="viewer", password="viewer-pass-123")
    viewer = Rater.objects.get(user=account)
    dataset_user = Rater.objects.filter(user__isnull=True).first()
    for rating in Rating.objects.filter(rater=dataset_user)[:8]:
        Rating.objects.create(
            rater=viewer, movie=rating.movie, rating=rating.rating, rated_at=rating.rated_at
        )
    recs = recommendations_for_user(user=account, k=6)
    assert recs.policy == "interleaved" and len(recs.items) == 6
    shown = InterleavedImpression.objects.filter(experiment=experiment, rater=viewer).order_by("position")
    assert [i.movie_id for i in shown] == [item.movie.pk for item in recs.items]
    assert {i.team for i in shown} == {"control", "candidate"}
    assert [item.movie.pk for item in recommendations_for_user(user=account, k=6).items] == [
        i.movie_id for i in shown
    ]
    online.online_experiment_stop(experiment=experiment)
    assert recommendations_for_user(user=account, k=6).policy == served.algorithm


def test_a_versions_lineage_names_its_run_what_it_was_built_on_and_the_feedback_it_learned_from(
    with_feedback, sam
):
    from django.test import Client

    from feedback.models import Comparison

    run_pipeline("all")
    ppo, reward = ModelVersion.objects.get(algorithm="ppo"), ModelVersion.objects.get(algorithm="reward")
    client = Client()
    client.force_login(sam)
    page = client.get(f"/staff/versions/{ppo.pk}/lineage/").content.decode()
    assert f"Run {ppo.run_id}" in page and f"/staff/versions/{reward.pk}/lineage/" in page
    learned = Comparison.objects.filter(
        task__context_rater_id__in=reward.data_snapshot["learner_raters"]
    ).count()
    assert 0 < learned < Comparison.objects.count()  # held-out users' comparisons are not among them
    assert f"{learned} comparisons of the learner users" in page
    assert "(simulated)" in page  # the simulated annotators, by name
    assert client.get("/staff/versions/999/lineage/").status_code == 404
