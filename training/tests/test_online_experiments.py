"""Online comparisons: one at a time, a stable share of users, impressions recorded, and actions
after an impression crediting the side that showed the movie."""

from __future__ import annotations

import pytest
from django.utils import timezone

from feedback.models import ItemFeedback
from movies.models import Rater, Rating
from training import online, registry
from training.exceptions import VersionStateError
from training.models import InterleavedImpression

from .conftest import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(monkeypatch, catalogue):
    monkeypatch.setattr(registry, "model_version_verify", lambda *, version: None)
    base = make_version("base", 1)
    registry.model_version_activate(version=base)
    return base, make_version("ppo", 1)


def test_one_comparison_at_a_time_against_what_users_get(pair, sam):
    base, ppo = pair
    with pytest.raises(VersionStateError, match="already get"):
        online.online_experiment_start(candidate=base, actor=sam)
    with pytest.raises(VersionStateError, match="share"):
        online.online_experiment_start(candidate=ppo, actor=sam, share=1.5)
    experiment = online.online_experiment_start(candidate=ppo, actor=sam, share=0.3)
    assert (experiment.control, experiment.candidate) == (base, ppo)
    assert registry.served_decision().version == base  # comparing serves nothing new
    with pytest.raises(VersionStateError, match="already running"):
        online.online_experiment_start(candidate=ppo, actor=sam)
    online.online_experiment_stop(experiment=experiment, actor=sam)
    with pytest.raises(VersionStateError, match="already stopped"):
        online.online_experiment_stop(experiment=experiment)
    assert online.running_experiment() is None


def test_the_share_of_users_is_stable_and_close_to_the_setting(pair, sam):
    experiment = online.online_experiment_start(candidate=pair[1], actor=sam, share=0.3)
    chosen = [online.in_experiment(experiment, rater) for rater in range(1, 4001)]
    assert abs(sum(chosen) / 4000 - 0.3) < 0.03
    assert chosen == [online.in_experiment(experiment, rater) for rater in range(1, 4001)]


def test_an_interleaved_list_is_the_same_on_every_request_and_each_movie_keeps_its_side(pair, sam):
    experiment = online.online_experiment_start(candidate=pair[1], actor=sam)
    rater = Rater.objects.first()
    first = online.interleave(
        experiment=experiment, rater_id=rater.pk, control=[1, 2, 3], candidate=[4, 5, 6], k=4
    )
    again = online.interleave(
        experiment=experiment, rater_id=rater.pk, control=[1, 2, 3], candidate=[4, 5, 6], k=4
    )
    assert first == again and len(first[0]) == 4
    recorded = dict(InterleavedImpression.objects.filter(rater=rater).values_list("movie_id", "team"))
    assert recorded == dict(zip(*first, strict=True))
    assert all((movie <= 3) == (team == "control") for movie, team in recorded.items())


def test_actions_after_an_impression_credit_the_side_that_showed_the_movie(pair, sam):
    experiment = online.online_experiment_start(candidate=pair[1], actor=sam)
    account = Rater.objects.get(user=sam)  # account_create made it
    raters = [*Rater.objects.filter(user__isnull=True)[:3], account]
    for rater in raters:
        online.interleave(experiment=experiment, rater_id=rater.pk, control=[1, 2], candidate=[3, 4], k=4)
    later = timezone.now()  # after the impressions
    # rater 0 loves the candidate's movie 3; the account thumbs-up the candidate's 4, dislikes the control's 1
    Rating.objects.update_or_create(rater=raters[0], movie_id=3, defaults={"rating": 5.0, "rated_at": later})
    ItemFeedback.objects.create(user=sam, movie_id=4, kind=ItemFeedback.Kind.UP)
    ItemFeedback.objects.create(user=sam, movie_id=1, kind=ItemFeedback.Kind.DOWN)
    # rater 1 rates the control's movie 2 highly; rater 2's only rating of a shown movie predates it
    Rating.objects.update_or_create(rater=raters[1], movie_id=2, defaults={"rating": 4.5, "rated_at": later})
    Rating.objects.filter(rater=raters[2], movie_id=4).update(rating=5.0)  # rated in 2020, before
    results = online.online_experiment_results(experiment)
    assert (results["wins"], results["losses"], results["ties"], results["users"]) == (2, 1, 1, 4)
    assert results["shown_users"] == 4 and results["share"] == pytest.approx((2 + 0.5) / 4)


def test_staff_start_read_and_stop_a_comparison_through_the_api(pair, sam, client):
    client.force_login(sam)
    response = client.post(
        "/api/experiments/", {"candidate": pair[1].pk, "share": 0.2}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["candidate_label"], body["control"], body["status"]) == ("ppo v1", "base v1", "running")
    assert body["results"]["users"] == 0
    again = client.post("/api/experiments/", {"candidate": pair[1].pk}, content_type="application/json")
    assert again.status_code == 409
    assert (
        client.post("/api/experiments/", {"candidate": 999}, content_type="application/json").status_code
        == 400
    )
    assert (
        client.post(
            "/api/experiments/", {"candidate": pair[1].pk, "share": 0}, content_type="application/json"
        ).status_code
        == 400
    )
    stopped = client.post(f"/api/experiments/{body['id']}/stop/")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert [e["id"] for e in client.get("/api/experiments/").json()] == [body["id"]]


def test_the_dashboard_and_the_promote_page_show_online_results(pair, sam, client):
    online.online_experiment_start(candidate=pair[1], actor=sam)
    client.force_login(sam)
    dashboard = client.get("/staff/dashboard/").content.decode()
    assert "PPO v1 vs Base v1" in dashboard and "running" in dashboard
    page = client.post(
        "/admin/training/modelversion/", {"action": "promote", "_selected_action": [pair[1].pk]}
    )
    assert b"Online comparison with Base v1 (running)" in page.content


def test_the_watch_warns_when_the_judge_expected_a_win_and_real_users_say_it_loses(pair, sam):
    ppo = pair[1]
    ppo.metrics = {"gate/win_rate": 0.7}
    ppo.save(update_fields=["metrics"])
    experiment = online.online_experiment_start(candidate=ppo, actor=sam)
    losing = {"users": 40, "wins": 8, "losses": 24, "ties": 8, "share": 0.3, "low": 0.2, "high": 0.42}
    assert "Reward hacking?" in online.reward_hacking_warning(experiment, losing)
    assert "70%" in online.reward_hacking_warning(experiment, losing)
    assert online.reward_hacking_warning(experiment, {**losing, "high": 0.55}) == ""  # not clearly losing
    assert online.reward_hacking_warning(experiment, {**losing, "users": 5}) == ""  # too few users
    ppo.metrics = {"gate/win_rate": 0.45}  # the judge did not expect a win: nothing to warn about
    assert online.reward_hacking_warning(experiment, losing) == ""


def test_every_for_you_list_is_recorded_and_what_users_did_next_is_counted(catalogue, client):
    from datetime import timedelta

    from movies.services import account_create
    from training.models import ShownList
    from training.serving import shown_list_outcomes, shown_lists_prune

    account = account_create(username="viewer", password="viewer-pass-123")
    client.force_login(account)
    assert client.get("/for-you/").status_code == 200
    shown = ShownList.objects.get()
    assert shown.policy == "popularity" and shown.rater.user == account and len(shown.movies) > 2
    first, second = shown.movies[:2]
    Rating.objects.create(rater=shown.rater, movie_id=first, rating=4.5, rated_at=timezone.now())
    Rating.objects.create(rater=shown.rater, movie_id=second, rating=1.0, rated_at=timezone.now())
    (row,) = shown_list_outcomes()
    assert (row["policy"], row["lists"], row["rated_high"], row["rated_low"]) == ("popularity", 1, 1, 1)
    assert row["shown_movies"] == len(shown.movies)
    ShownList.objects.filter(pk=shown.pk).update(shown_at=timezone.now() - timedelta(days=100))
    assert shown_lists_prune(keep_days=90) == 1 and not ShownList.objects.exists()
