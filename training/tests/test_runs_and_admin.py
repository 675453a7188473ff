from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from training import registry
from training.exceptions import RunAlreadyInFlight, VersionStateError
from training.models import ModelEvent, ModelVersion, TrainingRun
from training.runs import training_run_create, training_run_reap_stale

from .conftest import gate_report, make_version

pytestmark = pytest.mark.django_db


def test_only_one_run_can_be_in_flight():
    training_run_create(kind="base", trigger="command")
    with pytest.raises(RunAlreadyInFlight):
        training_run_create(kind="all", trigger="admin")


def test_a_run_whose_worker_died_is_marked_failed_and_the_next_run_starts_cleanly():
    dead = training_run_create(kind="all", trigger="schedule")
    TrainingRun.objects.filter(pk=dead.pk).update(
        status="running", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    run = training_run_create(kind="base", trigger="command")
    dead.refresh_from_db()
    assert dead.status == TrainingRun.Status.FAILED and dead.in_flight is None
    assert "stopped reporting" in dead.error
    assert run.status == TrainingRun.Status.QUEUED
    assert training_run_reap_stale() == 0


def test_activation_keeps_one_active_version_and_records_who_and_when(sam):
    first, second = make_version(number=1), make_version(number=2)
    registry.model_version_activate(version=first, actor=sam)
    registry.model_version_promote(version=second, actor=sam, note="better")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("retired", "active")
    event = second.events.get(action=ModelEvent.Action.PROMOTED)
    assert event.actor == sam and event.note == "better" and event.at is not None


def test_roll_back_reactivates_the_version_active_before_the_current_one():
    only = make_version(algorithm="reward", number=1)
    registry.model_version_activate(version=only)
    with pytest.raises(VersionStateError):
        registry.model_version_rollback(algorithm="reward", actor=None)
    first, second = make_version(number=1), make_version(number=2)
    registry.model_version_activate(version=first)
    registry.model_version_activate(version=second)
    assert registry.model_version_rollback(algorithm="base", actor=None) == first
    assert ModelVersion.objects.get(algorithm="base", status="active") == first
    # rolling back again undoes the roll-back
    assert registry.model_version_rollback(algorithm="base", actor=None) == second


def test_the_admin_retrain_button_queues_a_run_and_shows_its_progress(
    client, sam, settings, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "training.runs.enqueue_run",
        lambda run_id: sent.append(run_id) or type("R", (), {"id": "t-1"})(),
    )
    client.force_login(sam)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/training/trainingrun/retrain/", {"kind": "base"})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and sent == [run.pk]
    assert (run.kind, run.trigger, run.created_by) == ("base", "admin", sam)
    page = client.get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()
    assert f"/staff/runs/{run.pk}/progress/" in page
    assert "none (the defaults)" in page
    progress = client.get(f"/staff/runs/{run.pk}/progress/").content.decode()
    assert 'hx-trigger="every 2s"' in progress
    assert "Retrain now" in client.get("/admin/training/trainingrun/").content.decode()


def test_a_second_retrain_while_one_runs_is_refused_with_a_message(client, sam):
    training_run_create(kind="all", trigger="schedule")
    client.force_login(sam)
    response = client.post("/admin/training/trainingrun/retrain/", {"kind": "base"}, follow=True)
    assert "still in progress" in response.content.decode()
    assert TrainingRun.objects.count() == 1


def test_the_admin_promote_and_roll_back_actions(client, sam):
    first, second = make_version(number=1), make_version(number=2)
    registry.model_version_activate(version=first)
    client.force_login(sam)
    url = "/admin/training/modelversion/"
    client.post(url, {"action": "promote", "_selected_action": [second.pk], "confirm": "yes"})
    assert ModelVersion.objects.get(status="active") == second
    client.post(url, {"action": "roll_back", "_selected_action": [second.pk]})
    assert ModelVersion.objects.get(status="active") == first
    assert ModelEvent.objects.filter(action="rolled_back", actor=sam).exists()


def test_the_admin_shows_the_gates_report_as_a_table_of_candidates(client, sam):
    version = make_version("ppo")
    version.gate = gate_report("ppo")
    version.save(update_fields=["gate"])
    client.force_login(sam)
    page = client.get(f"/admin/training/modelversion/{version.pk}/change/").content.decode()
    assert "ppo beats base v1" in page and "This version (ppo): chosen" in page
    assert "accuracy 0.700 on 50 strict comparisons" in page
    assert "<td>ppo</td><td>passed</td><td>independent judge</td><td>0.800 [0.700, 0.900] (n=40)</td>" in page
    assert (
        "<td>quality_rerank</td><td>failed</td><td>independent judge</td><td>0.450 [0.300, 0.600] (n=40)</td>"
        in page
    )
    assert "+0.0100 [-0.0100, +0.0300] (n=30)" in page and "<td>2.50</td>" in page
    listing = client.get("/admin/training/modelversion/").content.decode()
    assert "passed: beats the served policy on every judge" in listing


def test_staff_pages_are_for_staff_only(client, alice, sam, catalogue):
    client.force_login(alice)
    assert client.get("/staff/dashboard/").status_code == 302
    client.force_login(sam)
    assert client.get("/staff/dashboard/").status_code == 200
    for url in [
        "/staff/plots/ratings.png",
        "/staff/plots/versions.png?metric=ndcg@10",
        "/staff/plots/genre-mix.png",
    ]:
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png", url


def test_periodic_retraining_waits_for_enough_new_feedback(settings, monkeypatch):
    from training.tasks import retrain_if_enough_feedback

    settings.RETRAIN_MIN_NEW_FEEDBACK = 3
    assert "waiting" in retrain_if_enough_feedback()
    assert not TrainingRun.objects.exists()
    monkeypatch.setattr("training.rlhf.new_feedback_since_last_run", lambda: 5)
    monkeypatch.setattr("training.runs.enqueue_run", lambda run_id: type("R", (), {"id": "x"})())
    assert "started run" in retrain_if_enough_feedback()
    assert TrainingRun.objects.get().trigger == "schedule"


def test_the_retraining_schedule_is_installed_and_editable_in_the_admin(client, sam):
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="training.tasks.retrain_if_enough_feedback")
    client.force_login(sam)
    assert client.get(f"/admin/django_celery_beat/periodictask/{task.pk}/change/").status_code == 200


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--ppo-set", "kl_coef=2"], "expected FIELD=VALUE with FIELD one of"),
        (["--ppo-set", "ref_temperature=warm"], "is not a Python literal"),
        (["--ppo-set", "seed=3"], "expected FIELD=VALUE"),  # --seed sets every seed
        (["--reward-set", "n_candidates=80"], "--reward-set 'n_candidates=80': expected FIELD=VALUE"),
        (["--reward-set", "l2=strong"], "is not a Python literal"),
        (["--ppo-set", "iterations=2.5"], r"PPOConfig.iterations = 2.5: expected a value like 30"),
        (["--reward-set", "epochs=-1"], "must not be negative"),
    ],
)
def test_rlhf_experiment_refuses_a_bad_model_override(option, message, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("rlhf_experiment", *option, "--out", str(tmp_path), "--no-progress")
    assert not any(tmp_path.iterdir())  # refused before anything ran or was written


def test_a_model_override_changes_only_that_field():
    from training.management.commands.rlhf_experiment import DEFAULTS, with_overrides

    changed = with_overrides(DEFAULTS, "ppo_set", ["target_kl_for_controller=2.0", "n_candidates=80"])
    assert (changed.ppo.target_kl_for_controller, changed.ppo.n_candidates) == (2.0, 80)
    assert changed.ppo.ref_temperature == DEFAULTS.ppo.ref_temperature
    assert changed.reward == DEFAULTS.reward
    changed = with_overrides(DEFAULTS, "reward_set", ["l2=1.0"])
    assert changed.reward.l2 == 1.0
    assert changed.reward.epochs == DEFAULTS.reward.epochs and changed.ppo == DEFAULTS.ppo


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("base", {"ppo": {"iterations": 2}}, "A run of kind 'base' has no stage 'ppo'; its stages: base"),
        ("all", {"reward": {"epoch": 2}}, "There is no setting 'epoch' in reward"),
        (
            "all",
            {"reward": {"seed": 2}},
            "There is no setting 'seed' in reward",
        ),  # the run's seed is the seed
        ("base", {"base": {"epochs": "ten"}}, r"base.epochs = 'ten': expected a value like 60"),
        ("base", {"base": {"epochs": 2.5}}, "expected a value like 60"),
        ("base", {"base": {"cosine_decay": 1}}, "expected a value like True"),
        ("base", {"base": {"epochs": -5}}, r"The setting base.epochs = -5: must not be negative"),
        ("all", {"ppo": {"learning_rate": -0.1}}, "must not be negative"),
        ("ppo", {"ppo": 3}, "must be an object of setting: value"),
    ],
)
def test_a_run_with_an_impossible_override_is_refused_before_it_exists(kind, config, message):
    from training.exceptions import InvalidRunConfig

    with pytest.raises(InvalidRunConfig, match=message):
        training_run_create(kind=kind, trigger="command", config=config)
    assert not TrainingRun.objects.exists()


def test_overrides_are_stored_on_the_run_and_applied_over_the_stage_defaults():
    from training.ml.overrides import settings_apply
    from training.ml.ppo import PPOConfig

    config = {"ppo": {"iterations": 4, "hidden_sizes": [16, 8], "target_kl_for_controller": None}}
    run = training_run_create(kind="all", trigger="command", config=config)
    run.refresh_from_db()
    assert run.config == config
    ppo = settings_apply(PPOConfig(seed=5), run.config["ppo"])
    assert (ppo.iterations, ppo.hidden_sizes, ppo.target_kl_for_controller, ppo.seed) == (4, (16, 8), None, 5)
    assert settings_apply(ppo, run.config.get("qlearning")) is ppo


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("{ppo: 60}", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"ppo": {"iterations": -1}}', "must not be negative"),
        ('{"base": {"epochs": 2}}', "has no stage"),  # the full pipeline does not train the recommender
    ],
)
def test_retrain_now_refuses_bad_settings_with_a_message_and_queues_nothing(client, sam, typed, message):
    client.force_login(sam)
    response = client.post(
        "/admin/training/trainingrun/retrain/", {"kind": "all", "config": typed}, follow=True
    )
    assert message in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_retrain_now_refuses_an_unknown_kind(client, sam):
    client.force_login(sam)
    response = client.post("/admin/training/trainingrun/retrain/", {"kind": "everything"}, follow=True)
    assert "Unknown kind &#x27;everything&#x27;" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_retrain_now_queues_a_run_with_its_settings(
    client, sam, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("training.runs.enqueue_run", lambda run_id: type("R", (), {"id": "t-2"})())
    client.force_login(sam)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/training/trainingrun/retrain/",
            {"kind": "ppo", "config": '{"ppo": {"iterations": 60}}'},
        )
    run = TrainingRun.objects.get()
    assert (run.kind, run.config, run.celery_task_id) == ("ppo", {"ppo": {"iterations": 60}}, "t-2")


def test_the_admin_shows_what_a_run_changed(client, sam):
    run = training_run_create(kind="base", trigger="command", config={"base": {"epochs": 2}})
    client.force_login(sam)
    page = client.get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()
    assert "settings changed" in page.lower() and "&quot;epochs&quot;: 2" in page


def test_none_is_accepted_only_where_a_setting_may_be_none():
    from training.exceptions import InvalidRunConfig

    training_run_create(kind="ppo", trigger="command", config={"ppo": {"target_kl": None}})
    with pytest.raises(InvalidRunConfig, match=r"ppo.iterations = None"):
        training_run_create(kind="ppo", trigger="command", config={"ppo": {"iterations": None}})


def test_promoting_in_the_admin_names_the_algorithm_as_people_write_it(client, sam, monkeypatch):
    ppo = make_version(algorithm="ppo", number=1)
    monkeypatch.setattr(registry, "model_version_verify", lambda version: None)  # a text test: no real policy
    client.force_login(sam)
    response = client.post(
        "/admin/training/modelversion/",
        {"action": "promote", "_selected_action": [ppo.pk], "confirm": "yes"},
        follow=True,
    )
    html = response.content.decode()
    assert "PPO v1 is now what users get." in html and "Ppo v1" not in html


def test_a_bad_setting_reads_as_a_sentence_in_the_admin(client, sam):
    client.force_login(sam)
    for typed, message in [
        ('{"bogus": {}}', "A run of kind &#x27;all&#x27; has no stage &#x27;bogus&#x27;"),
        ('{"ppo": {"iterations": -5}}', "The setting ppo.iterations = -5: must not be negative"),
    ]:
        response = client.post(
            "/admin/training/trainingrun/retrain/", {"kind": "all", "config": typed}, follow=True
        )
        html = response.content.decode()
        assert message in html, html[html.find("messagelist") : html.find("messagelist") + 300]
        assert "Ppo.iterations" not in html and "A &#x27;all&#x27;" not in html


def test_past_events_do_not_carry_the_versions_status_of_today(client, sam, monkeypatch):
    held_back = make_version(algorithm="ppo", number=1)
    monkeypatch.setattr(registry, "model_version_verify", lambda version: None)  # a text test: no real policy
    ModelEvent.objects.create(version=held_back, action=ModelEvent.Action.GATE_REJECTED, note="won 40%")
    registry.model_version_promote(version=held_back, actor=sam, note="promoted by hand")
    client.force_login(sam)
    html = client.get("/admin/training/modelevent/").content.decode()
    assert "rejected by the gate" in html and "PPO v1" in html and "(active)" not in html
    assert str(ModelEvent.objects.get(action="gate_rejected")) == "ppo v1 rejected by the gate"


def test_the_reload_hint_shows_only_to_who_watched_the_run_finish(client, sam):
    run = training_run_create(kind="base", trigger="admin")
    client.force_login(sam)
    polling = client.get(f"/staff/runs/{run.pk}/progress/").content.decode()
    assert f"/staff/runs/{run.pk}/progress/?watching=1" in polling and "Reload" not in polling
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", in_flight=None, progress=100)
    assert (
        "Reload</a> for the final log"
        in client.get(f"/staff/runs/{run.pk}/progress/?watching=1").content.decode()
    )
    assert "Reload" not in client.get(f"/staff/runs/{run.pk}/progress/").content.decode()
    page = client.get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()
    assert "/progress/" not in page and "Reload" not in page and "100% Succeeded" in page


def test_runs_and_versions_open_read_only_with_metrics_as_a_table(client, sam):
    run = training_run_create(kind="base", trigger="admin")
    version = make_version(number=1)
    ModelVersion.objects.filter(pk=version.pk).update(run=run)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded",
        in_flight=None,
        metrics={"base v1": {"ndcg@10": 0.130857, "n_users": 591.0, "train_seconds": 141.55}},
    )
    client.force_login(sam)
    for url in [
        f"/admin/training/trainingrun/{run.pk}/change/",
        f"/admin/training/modelversion/{version.pk}/change/",
    ]:
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 200 and not response.context["has_change_permission"]
        assert 'name="_save"' not in html and 'name="_addanother"' not in html, url
        assert 'name="_continue"' not in html, url
        assert not any(inline.has_add_permission for inline in response.context["inline_admin_formsets"])
        assert "<table class='metrics'>" in html, url
    run_page = client.get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()
    assert "<th scope='col'>base v1</th>" in run_page
    assert "<th scope='row'>ndcg@10</th><td" in run_page and ">0.1309</td>" in run_page
    assert ">591</td>" in run_page and ">141.55</td>" in run_page
    version_page = client.get(f"/admin/training/modelversion/{version.pk}/change/").content.decode()
    assert "<th scope='col'>value</th>" in version_page and ">0.1000</td>" in version_page
    assert client.post(f"/admin/training/modelversion/{version.pk}/change/", {}).status_code == 403
    # the changelist's actions still work
    assert "promote" in client.get("/admin/training/modelversion/").content.decode()


def test_favicon_ico_redirects_to_the_svg(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("/favicon.svg")


def test_the_admin_spells_annotator_statuses(client, sam):
    client.force_login(sam)
    html = client.get("/admin/").content.decode()
    assert "Annotator statuses" in html and "statuss" not in html


def test_the_staff_dashboard_names_algorithms_as_people_write_them(client, sam):
    registry.model_version_activate(version=make_version(algorithm="qlearning", number=1))
    make_version(algorithm="ppo", number=2)  # a candidate
    client.force_login(sam)
    html = client.get("/staff/dashboard/").content.decode()
    assert "<td>Q-learning</td><td>v1</td>" in html and ">PPO v2</a>" in html


def test_the_schedule_retrains_the_recommender_once_enough_new_ratings_arrived(settings, monkeypatch):
    from datetime import UTC, datetime

    from movies.models import Movie, Rater, Rating
    from training.tasks import retrain_if_enough_feedback

    settings.RETRAIN_MIN_NEW_RATINGS = 2
    settings.RETRAIN_MIN_NEW_FEEDBACK = 10**6
    base = make_version(number=1)
    base.data_snapshot = {"latest_timestamp": int(datetime(2020, 1, 1, tzinfo=UTC).timestamp())}
    base.save(update_fields=["data_snapshot"])
    registry.model_version_activate(version=base)
    rater = Rater.objects.create(movielens_id=9001)
    movies = [Movie.objects.create(id=i, title=f"Movie {i} (2001)") for i in (1, 2)]
    Rating.objects.create(rater=rater, movie=movies[0], rating=4.0, rated_at=datetime(2019, 6, 1, tzinfo=UTC))
    Rating.objects.create(rater=rater, movie=movies[1], rating=4.0, rated_at=datetime(2021, 6, 1, tzinfo=UTC))
    assert "waiting" in retrain_if_enough_feedback()  # one rating is newer than the recommender's data
    Rating.objects.filter(movie=movies[0]).update(rated_at=datetime(2021, 7, 1, tzinfo=UTC))  # re-rated
    monkeypatch.setattr("training.runs.enqueue_run", lambda run_id: type("R", (), {"id": "x"})())
    assert "the recommender" in retrain_if_enough_feedback()
    assert TrainingRun.objects.get().kind == TrainingRun.Kind.BASE
