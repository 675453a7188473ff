"""The dashboard's plots are drawn once per state of their data and then served from files."""

from __future__ import annotations

from collections import Counter

import pytest

from recsys_site.tests.unreachable_cache import UNREACHABLE
from training import plots, registry
from training.dashboard_plots import dashboard_plots_render
from training.models import TrainingRun
from training.runs import training_run_create

pytestmark = pytest.mark.django_db

PLOT_URLS = [
    "/staff/plots/ratings.png",
    "/staff/plots/versions.png?metric=ndcg@10",
    "/staff/plots/versions.png?metric=accuracy",
    "/staff/plots/versions.png?metric=win_rate",
    "/staff/plots/genre-mix.png",
]


@pytest.fixture
def drawn(monkeypatch) -> Counter:
    """Counts the plots actually drawn, by drawing function."""
    counts: Counter = Counter()
    for name in ("rating_distribution", "version_metric", "genre_mix", "run_curves"):
        draw = getattr(plots, name)

        def counted(*args, _name=name, _draw=draw, **kwargs):
            counts[_name] += 1
            return _draw(*args, **kwargs)

        monkeypatch.setattr(plots, name, counted)
    return counts


@pytest.fixture
def finished_run(db) -> TrainingRun:
    run = training_run_create(kind=TrainingRun.Kind.BASE, trigger=TrainingRun.Trigger.COMMAND)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.SUCCEEDED,
        in_flight=None,
        history={"recommender": [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.6}]},
    )
    run.refresh_from_db()
    return run


def register(algorithm: str, version: int, metrics: dict):
    return registry.model_version_register(
        algorithm=algorithm,
        version=version,
        artifact="",
        metrics=metrics,
        config={},
        seed=0,
        data_snapshot={},
    )


def test_a_second_view_of_each_plot_draws_nothing(client, sam, catalogue, finished_run, drawn):
    client.force_login(sam)
    urls = [*PLOT_URLS, f"/staff/runs/{finished_run.pk}/plot.png"]
    first = {url: client.get(url) for url in urls}
    assert all(r.status_code == 200 and r["Content-Type"] == "image/png" for r in first.values())
    assert sum(drawn.values()) == len(urls)
    second = {url: client.get(url) for url in urls}
    assert sum(drawn.values()) == len(urls)
    assert all(second[url].content == first[url].content for url in urls)


def test_a_new_model_version_draws_the_version_plots_again(client, sam, catalogue, drawn):
    client.force_login(sam)
    register("base", 1, {"ndcg@10": 0.1})
    client.get("/staff/plots/versions.png?metric=ndcg@10")
    register("base", 2, {"ndcg@10": 0.2})
    client.get("/staff/plots/versions.png?metric=ndcg@10")
    client.get("/staff/plots/versions.png?metric=ndcg@10")
    assert drawn["version_metric"] == 2


def test_after_rendering_ahead_the_dashboard_and_its_images_draw_nothing(
    client, sam, catalogue, finished_run, drawn
):
    dashboard_plots_render()
    ahead = sum(drawn.values())
    assert ahead == len(PLOT_URLS) + 1  # and the latest run's curves
    client.force_login(sam)
    page = client.get("/staff/dashboard/").content.decode()
    assert f"/staff/runs/{finished_run.pk}/plot.png" in page
    for url in [*PLOT_URLS, f"/staff/runs/{finished_run.pk}/plot.png"]:
        assert client.get(url).status_code == 200, url
    assert sum(drawn.values()) == ahead


def test_the_plots_serve_while_the_cache_is_down(settings, client, sam, catalogue):
    client.force_login(sam)
    settings.CACHES = UNREACHABLE
    for url in ["/staff/dashboard/", *PLOT_URLS]:
        assert client.get(url).status_code == 200, url


def test_the_training_task_draws_the_plots_after_a_successful_run_only(monkeypatch, finished_run):
    from training.tasks import execute_training_run

    drawn_ahead = []
    monkeypatch.setattr("training.dashboard_plots.dashboard_plots_render", lambda: drawn_ahead.append(1))
    monkeypatch.setattr("training.pipeline.training_run_execute", lambda run_id: finished_run)
    assert execute_training_run(finished_run.pk) == "succeeded" and drawn_ahead == [1]
    finished_run.status = TrainingRun.Status.FAILED
    assert execute_training_run(finished_run.pk) == "failed" and drawn_ahead == [1]
