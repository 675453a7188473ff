from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from django.core.management import call_command

from movies import services
from training.models import ModelEvent, ModelVersion, TrainingRun
from training.serving import recommend, recommendations_for_user
from training.store import models as served_models

from .conftest import GENRES, train_base_now

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    served_models.clear()
    yield
    served_models.clear()


def test_training_registers_an_active_version_with_metrics_seed_snapshot_and_artifact(taste_world, settings):
    run = train_base_now(seed=3)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(algorithm="base")
    assert version.status == ModelVersion.Status.ACTIVE and version.version == 1
    assert version.seed == 3 and version.config["seed"] == 3
    assert version.data_snapshot["ratings"] == 60 * 18
    assert {"ndcg@10", "recall@20", "coverage@10", "novelty@10"} <= set(version.metrics)
    # The EASE teacher's own score is recorded as a baseline, and its lambda in the manifest.
    assert {"baseline/popularity_ndcg@10", "baseline/ease_ndcg@10"} <= set(version.metrics)
    assert version.config["teacher_weight"] > 0
    manifest = json.loads((settings.ARTIFACTS_DIR / version.artifact / "manifest.json").read_text())
    assert manifest["meta"]["teacher"]["l2"] > 0
    assert set(manifest["arrays"]) >= {"item_embeddings", "item_ids"}
    assert version.events.filter(action=ModelEvent.Action.ACTIVATED).exists()
    assert run.history["recommender"] and run.progress == 100.0


def test_a_worse_candidate_stays_a_candidate_and_says_why(taste_world):
    train_base_now(epochs=6)
    first = ModelVersion.objects.get(algorithm="base", version=1)
    first.metrics["ndcg@10"] = 2.0  # no model can beat this; the active one is compared on the same holdout
    first.save()
    ModelVersion.objects.filter(pk=first.pk).update(
        artifact="missing-folder"
    )  # force the recorded-metric path
    served_models.clear()
    train_base_now(epochs=1, seed=1)
    second = ModelVersion.objects.get(algorithm="base", version=2)
    assert second.status == ModelVersion.Status.CANDIDATE
    assert second.gate["passed"] is False and "worse" in second.gate["reason"]
    assert ModelVersion.objects.get(pk=first.pk).status == ModelVersion.Status.ACTIVE


def test_recommendations_follow_the_raters_taste_and_never_repeat_a_rated_movie(taste_world):
    from movies.models import Rater, Rating

    train_base_now(epochs=60)
    hits = 0
    for rater in Rater.objects.order_by("id")[:12]:
        loved = ["Action", "Comedy", "Drama", "Horror"][(rater.movielens_id - 1000) % 4]
        recs = recommend(rater_id=rater.pk, k=5)
        assert recs.policy == "base"
        rated = set(Rating.objects.filter(rater=rater).values_list("movie_id", flat=True))
        assert not rated & {item.movie.pk for item in recs.items}
        hits += sum(item.movie.title.startswith(loved) for item in recs.items)
        assert all(item.reason.startswith("Because you rated ") for item in recs.items)
    assert hits / (12 * 5) > 0.5  # chance is 0.25


def test_a_new_account_gets_personal_recommendations_after_rating_without_a_retrain(taste_world, alice):
    train_base_now(epochs=60)
    cold = recommendations_for_user(user=alice, k=8)
    assert cold.policy == "popularity"
    for movie in taste_world["movies"]:
        if movie.title.startswith("Horror") and len(alice.rater.ratings.all()) < 5:
            services.rating_set(user=alice, movie_id=movie.pk, value=5.0)
    warm = recommendations_for_user(user=alice, k=8)
    assert warm.policy == "base"
    assert [i.movie.pk for i in warm.items] != [i.movie.pk for i in cold.items]
    titles = [item.movie.title for item in warm.items]
    assert sum(title.startswith("Horror") for title in titles) >= 5, titles


def test_serving_refuses_a_corrupt_artifact_and_keeps_the_previous_version(taste_world, settings, caplog):
    from movies.models import Rater

    train_base_now(epochs=2)
    rater = Rater.objects.first()
    assert recommend(rater_id=rater.pk, k=3).version == 1
    train_base_now(epochs=2, seed=1)
    second = ModelVersion.objects.get(algorithm="base", version=2)
    embeddings = settings.ARTIFACTS_DIR / second.artifact / "item_embeddings.npy"
    data = bytearray(embeddings.read_bytes())
    data[-1] ^= 0xFF
    embeddings.write_bytes(bytes(data))
    from training.exceptions import ArtifactInvalid
    from training.registry import model_version_activate, model_version_promote

    if second.status != ModelVersion.Status.ACTIVE:
        with pytest.raises(ArtifactInvalid, match="does not match its checksum"):
            model_version_promote(
                version=second, actor=None, note="test", override_gate=True
            )  # nobody can serve it
        model_version_activate(version=second)  # as if its file went bad after activation
    recs = recommend(rater_id=rater.pk, k=3)
    assert recs.version == 1 and recs.policy == "base"
    assert "does not match its checksum" in caplog.text


def test_a_newly_activated_version_is_served_without_a_restart(taste_world):
    from movies.models import Rater
    from training.registry import model_version_rollback

    rater = Rater.objects.first()
    train_base_now(epochs=2)
    assert recommend(rater_id=rater.pk, k=3).version == 1
    train_base_now(epochs=3, seed=2)
    version = ModelVersion.objects.get(algorithm="base", version=2)
    if version.status != ModelVersion.Status.ACTIVE:
        from training.registry import model_version_promote

        model_version_promote(version=version, actor=None, note="test", override_gate=True)
    assert recommend(rater_id=rater.pk, k=3).version == 2
    model_version_rollback(algorithm="base", actor=None)
    assert recommend(rater_id=rater.pk, k=3).version == 1


def test_export_writes_every_dataset_user_and_never_a_rated_movie(taste_world, tmp_path):
    from movies.models import Rating

    train_base_now(epochs=2)
    rated = {(r.rater.movielens_id, r.movie_id) for r in Rating.objects.select_related("rater")}
    for policy in ("base", "popularity", "ease", "active"):
        out = tmp_path / f"{policy}.csv"
        call_command("export_recommendations", policy=policy, k=5, out=out, no_progress=True)
        with out.open() as handle:
            rows = list(csv.DictReader(handle))
        assert rows and set(rows[0]) == {"user_id", "movie_id", "rank", "score"}
        users = {int(row["user_id"]) for row in rows}
        assert users == {1000 + r for r in range(60)}
        assert not any((int(row["user_id"]), int(row["movie_id"])) in rated for row in rows), policy
        for user in list(users)[:5]:
            ranks = [int(row["rank"]) for row in rows if int(row["user_id"]) == user]
            assert ranks == list(range(1, 6))


def test_evaluate_prints_every_metric_and_writes_the_report(taste_world, tmp_path, capsys):
    train_base_now(epochs=4)
    call_command("evaluate", out=tmp_path / "report")
    printed = capsys.readouterr().out
    for name in (
        "popularity",
        "ease",
        "base",
        "ndcg@10",
        "recall@20",
        "coverage@10",
        "novelty@10",
        "diversity@10",
    ):
        assert name in printed
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["metrics"]["base"]["ndcg@10"] > report["metrics"]["popularity"]["ndcg@10"]
    gap = report["ndcg@10_minus_ease"]["base"]
    assert gap["mean"] == pytest.approx(
        report["metrics"]["base"]["ndcg@10"] - report["metrics"]["ease"]["ndcg@10"]
    )
    assert gap["low"] <= gap["mean"] <= gap["high"]
    assert f"base: {gap['mean']:+.4f} [{gap['low']:+.4f}, {gap['high']:+.4f}]" in printed
    assert (tmp_path / "report" / "metrics.png").stat().st_size > 1000


def test_train_command_refuses_a_second_run_in_flight(taste_world):
    from django.core.management.base import CommandError

    TrainingRun.objects.create(kind="base", status=TrainingRun.Status.RUNNING)
    with pytest.raises(CommandError, match="still in progress"):
        call_command("train", "base", no_progress=True)


def test_train_base_without_ease_and_with_fewer_epochs(taste_world):
    call_command("train", "base", epochs=3, no_ease=True, no_progress=True)
    version = ModelVersion.objects.get(algorithm="base")
    assert version.config["teacher_weight"] == 0 and version.config["ease_weight"] == 0
    assert version.config["epochs"] == 3
    assert "baseline/ease_ndcg@10" not in version.metrics  # no teacher, no item-item term, no EASE fitted
    assert version.run.config == {
        "base": {"epochs": 3, "teacher_weight": 0.0, "ease_weight": 0.0}
    }  # the run records what changed


def test_recommender_options_are_refused_for_the_rlhf_kinds(taste_world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="apply to `train base` only"):
        call_command("train", "reward", no_ease=True, no_progress=True)
    assert not TrainingRun.objects.exists()


def test_a_failed_run_is_recorded_and_leaves_serving_untouched(taste_world, monkeypatch):
    train_base_now(epochs=2)
    active_before = ModelVersion.objects.get(status="active").pk

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("training.pipeline.train_recommender", explode)
    run = train_base_now(epochs=2)
    assert run.status == TrainingRun.Status.FAILED and "disk full" in run.error
    assert run.in_flight is None
    assert ModelVersion.objects.get(status="active").pk == active_before
    assert np.isfinite(recommend(rater_id=None, k=3).items[0].score)


def test_without_a_model_new_users_get_popular_movies_interleaved_across_genres(taste_world):
    from movies.models import Movie
    from training.serving import popular_diverse

    assert not ModelVersion.objects.exists()
    excluded = Movie.objects.order_by("-num_ratings", "id").values_list("id", flat=True).first()
    picks = popular_diverse(exclude={excluded}, k=8)

    assert len(picks) == 8 and excluded not in [p.movie.id for p in picks]
    first_genres = [p.movie.genres.get().name for p in picks[:4]]
    assert sorted(first_genres) == sorted(GENRES)  # one of each genre before any repeats
    popular = Movie.objects.exclude(pk=excluded).order_by("-num_ratings", "id").values_list("id", flat=True)
    assert picks[0].movie.id == popular[0]  # the most popular movie leads
    assert all(p.reason.startswith("Popular: ") for p in picks)
