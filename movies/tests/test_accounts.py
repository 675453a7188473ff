from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from movies import services
from movies.models import Rater

pytestmark = pytest.mark.django_db


def test_signing_up_logs_in_and_asks_for_onboarding_ratings(client, catalogue):
    response = client.post(
        "/accounts/signup/",
        {"username": "carol", "password1": "a-long-pass-991", "password2": "a-long-pass-991"},
    )
    assert response.status_code == 302 and response["Location"] == "/welcome/"
    user = get_user_model().objects.get(username="carol")
    assert Rater.objects.filter(user=user).exists()
    assert client.get("/").url == "/welcome/"


def test_signup_rejects_mismatched_passwords(client, catalogue):
    response = client.post(
        "/accounts/signup/",
        {"username": "dan", "password1": "a-long-pass-991", "password2": "other-pass-992"},
    )
    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="dan").exists()


def test_onboarding_offers_well_known_genre_diverse_movies_and_unlocks_home(
    client, alice, catalogue, settings
):
    settings.ONBOARDING_MIN_RATINGS = 3
    client.force_login(alice)
    movies = client.get("/welcome/").context["movies"]
    covered = {genre.name for movie in movies for genre in movie.genres.all()}
    assert {"Comedy", "Horror", "Action", "Drama", "Romance", "Sci-Fi"} <= covered
    assert all(movie.num_ratings > 0 for movie in movies)
    for movie_id in (1, 2):
        services.rating_set(user=alice, movie_id=movie_id, value=4.0)
    assert client.get("/").status_code == 302
    assert 2 not in {movie.pk for movie in client.get("/welcome/").context["movies"]}
    services.rating_set(user=alice, movie_id=3, value=4.0)
    home = client.get("/")
    assert home.status_code == 200
    assert "Recommended for you" in home.content.decode()


def test_log_in_log_out_and_change_password(client, alice):
    assert (
        client.post("/accounts/login/", {"username": "alice", "password": "alice-pass-123"}).status_code
        == 302
    )
    response = client.post(
        "/accounts/password/",
        {
            "old_password": "alice-pass-123",
            "new_password1": "brand-new-pass-77",
            "new_password2": "brand-new-pass-77",
        },
    )
    assert response.status_code == 302
    client.post("/accounts/logout/")
    assert client.get("/my/ratings/").status_code == 302
    # django-axes checks every sign-in against its lockouts, so authenticate() needs the request
    assert client.login(request=HttpRequest(), username="alice", password="brand-new-pass-77")


def test_roles_end_user_annotator_and_staff(alice, annie, sam):
    from movies.roles import is_annotator

    assert not is_annotator(alice)
    assert is_annotator(annie)
    assert is_annotator(sam) and sam.is_staff


def test_dataset_users_never_get_login_accounts(catalogue):
    assert Rater.objects.filter(movielens_id__isnull=False).count() == 5
    assert get_user_model().objects.count() == 0


def test_the_admin_lists_and_searches_every_movies_model(client, sam, catalogue):
    client.force_login(sam)
    for model in ["genre", "movie", "rater", "rating", "tag", "datasetimport"]:
        assert client.get(f"/admin/movies/{model}/", {"q": "1"}).status_code == 200
    # The admin searches each word on its own, so the article may stand anywhere.
    found = client.get("/admin/movies/movie/", {"q": "the matrix"}).context["cl"].result_list
    assert [movie.title for movie in found] == ["Matrix, The"]


def log_in(client, username: str, **extra):
    return client.post(
        "/accounts/login/", {"username": username, "password": f"{username}-pass-123", **extra}
    )


def test_logging_in_leads_each_role_where_it_works(client, alice, annie, sam, catalogue, settings):
    settings.ONBOARDING_MIN_RATINGS = 2
    assert log_in(client, "sam")["Location"] == "/staff/dashboard/"
    assert log_in(client, "annie")["Location"] == "/compare/"
    assert log_in(client, "alice")["Location"] == "/welcome/"  # too few ratings to recommend from
    for movie_id in (1, 2):
        services.rating_set(user=alice, movie_id=movie_id, value=4.0)
    assert log_in(client, "alice")["Location"] == "/for-you/"


def test_logging_in_still_goes_to_the_page_asked_for(client, annie, catalogue):
    assert log_in(client, "annie", next="/movies/4/")["Location"] == "/movies/4/"
    assert log_in(client, "annie", next="https://elsewhere.example/")["Location"] == "/compare/"


def test_the_home_page_sends_only_end_users_to_onboarding(client, alice, annie, sam, catalogue):
    client.force_login(alice)
    assert client.get("/")["Location"] == "/welcome/"
    for user in (annie, sam):
        client.force_login(user)
        assert client.get("/").status_code == 200
