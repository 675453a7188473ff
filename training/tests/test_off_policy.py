"""A share of "For you" lists is explored and logged with propensities; candidates are estimated on
them from what people then did, with no reward model in the loop."""

from __future__ import annotations

import numpy as np
import pytest

from feedback.tests import conftest as feedback_fixtures
from movies.services import account_create, rating_set
from training.models import ShownList
from training.ope import describe, off_policy_estimate
from training.serving import recommendations_for_user

pytestmark = pytest.mark.django_db
wide_catalogue, base_model = feedback_fixtures.wide_catalogue, feedback_fixtures.base_model  # fixtures


def viewers(count: int):
    users = []
    for n in range(count):
        user = account_create(username=f"viewer{n}", password="viewer-pass-123")
        for movie_id in (1 + n % 3, 4, 5, 7, 8):
            rating_set(user=user, movie_id=movie_id, value=3.5)
        users.append(user)
    return users


def test_explored_lists_are_logged_with_each_movies_propensity(base_model, settings):
    settings.FOR_YOU_EXPLORE_SHARE = 1.0
    (user,) = viewers(1)
    top = [
        item.movie.pk for item in recommendations_for_user(user=user, k=5, rng=np.random.default_rng(0)).items
    ]
    logged = ShownList.objects.get()
    assert logged.movies == top and len(logged.propensities) == 5
    assert all(0 < p <= 1 for p in logged.propensities)
    settings.FOR_YOU_EXPLORE_SHARE = 0.0
    recommendations_for_user(user=user, k=5)
    assert ShownList.objects.order_by("-id").first().propensities == []  # the top k, not explored


def test_a_candidate_is_estimated_on_what_people_did_with_the_explored_lists(base_model, settings):
    settings.FOR_YOU_EXPLORE_SHARE, settings.OPE_MIN_LISTS = 1.0, 10
    users = viewers(40)
    rng = np.random.default_rng(1)
    for user in users:
        shown = recommendations_for_user(user=user, k=5, rng=rng).items
        rating_set(user=user, movie_id=shown[0].movie.pk, value=5.0)  # each liked the first movie shown
    served = off_policy_estimate(version=base_model, k=5)
    assert served["lists"] == 40 and served["matches"] >= 30 and served["enough"]
    assert served["logging"] == pytest.approx(1.0)  # position 1 (weight 1) was good in every list
    assert served["estimate_low"] <= served["estimate"] <= served["estimate_high"]
    assert describe(served).startswith("Off-policy on 40 explored lists: ")
    # The candidate's lists are rebuilt from each profile as it was when the list was shown (the
    # later 5-star ratings are not in it): another version is estimated on the same 40 lists.
    other = feedback_fixtures.register_recommender(version=2, seed=7, activate=False)
    assert off_policy_estimate(version=other, k=5)["lists"] == 40


def test_a_handful_of_matches_is_called_too_little_evidence_not_an_estimate():
    few = {"lists": 8, "matches": 1, "enough": False, "estimate": 0.0, "estimate_low": 0.0}
    assert describe(few) == (
        "On 8 explored lists the candidate would have shown the logged movie at its position only 1 time: "
        "too little evidence for an estimate (at least 30 are needed)."
    )
    assert "the candidate would never have shown a logged movie at its position: too little" in describe(
        {**few, "matches": 0}
    )


def test_without_explored_lists_there_is_nothing_to_say(base_model):
    (user,) = viewers(1)
    recommendations_for_user(user=user, k=5)
    result = off_policy_estimate(version=base_model)
    assert result == {"lists": 0, "enough": False, "reason": "No explored lists are logged yet."}


def test_staff_read_the_estimate_over_the_api(base_model, settings, client):
    from rest_framework.test import APIClient

    settings.FOR_YOU_EXPLORE_SHARE = 1.0
    for user in viewers(3):
        recommendations_for_user(user=user, k=5, rng=np.random.default_rng(2))
    staff = account_create(username="olga", password="olga-pass-123", staff=True)
    api = APIClient()
    api.force_authenticate(staff)
    body = api.get(f"/api/models/{base_model.pk}/off-policy/").json()
    assert body["lists"] == 3 and body["enough"] is False and "3 explored lists" in body["summary"]
    api.force_authenticate(account_create(username="ed", password="ed-pass-123"))
    assert api.get(f"/api/models/{base_model.pk}/off-policy/").status_code == 403


def test_a_versions_page_shows_what_people_did_beside_the_gate(base_model, client):
    staff = account_create(username="olga", password="olga-pass-123", staff=True)
    client.force_login(staff)
    page = client.get(f"/admin/training/modelversion/{base_model.pk}/change/").content.decode()
    assert "What people did" in page and "No online comparison yet" in page
    assert (
        client.post(
            "/admin/training/modelversion/",
            {"action": "estimate_off_policy", "_selected_action": [base_model.pk]},
            follow=True,
        )
        .content.decode()
        .count("No explored lists are logged yet.")
        == 1
    )
