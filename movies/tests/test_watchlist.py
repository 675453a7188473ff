from __future__ import annotations

import pytest

from movies import services
from movies.exceptions import UnknownMovie
from movies.models import WatchlistEntry

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_movie_goes_on_the_watchlist_once_and_comes_off(alice, catalogue):
    first = services.watchlist_add(user=alice, movie_id=4)
    assert services.watchlist_add(user=alice, movie_id=4) == first
    assert services.watchlist_remove(user=alice, movie_id=4) is True
    assert services.watchlist_remove(user=alice, movie_id=4) is False
    with pytest.raises(UnknownMovie):
        services.watchlist_add(user=alice, movie_id=999)


def test_want_to_watch_from_a_movie_page_with_htmx_and_as_a_plain_post(client, alice, catalogue):
    client.force_login(alice)
    page = client.get("/movies/4/").content.decode()
    assert 'name="action" value="add"' in page and "+ Want to watch" in page
    response = client.post("/movies/4/watchlist/", {"action": "add"}, **HTMX)
    assert (
        'value="remove"' in response.content.decode() and 'aria-pressed="true"' in response.content.decode()
    )
    assert "✓ Want to watch" in client.get("/movies/4/").content.decode()
    plain = client.post("/movies/4/watchlist/", {"action": "remove", "next": "/movies/?q=matrix"})
    assert plain.status_code == 302 and plain["Location"] == "/movies/?q=matrix"
    assert not WatchlistEntry.objects.exists()


def test_a_bad_watchlist_request_is_refused(client, alice, catalogue):
    client.force_login(alice)
    assert client.post("/movies/999/watchlist/", {"action": "add"}, **HTMX).status_code == 400
    assert client.post("/movies/4/watchlist/", {"action": "toggle"}, **HTMX).status_code == 400
    assert client.post("/movies/4/watchlist/", {"action": "add"}).status_code == 302
    assert client.get("/movies/4/watchlist/").status_code == 405


def test_anonymous_visitors_log_in_before_wanting_to_watch(client, catalogue):
    response = client.post("/movies/4/watchlist/", {"action": "add"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert "Want to watch" not in client.get("/movies/4/").content.decode()


def test_the_watchlist_page_lists_my_movies_newest_first_with_my_ratings(client, alice, bob, catalogue):
    for movie_id in (2, 7, 4):
        services.watchlist_add(user=alice, movie_id=movie_id)
    services.watchlist_add(user=bob, movie_id=1)
    services.rating_set(user=alice, movie_id=7, value=4.5)
    client.force_login(alice)
    response = client.get("/my/watchlist/")
    assert [entry.movie_id for entry in response.context["page"]] == [4, 7, 2]
    html = response.content.decode()
    assert "3 movies on your watchlist" in html and "Your rating: <strong>4.5</strong>" in html
    assert html.count("✓ Want to watch") == 3


def test_the_movie_list_marks_movies_on_the_watchlist(client, alice, catalogue):
    services.watchlist_add(user=alice, movie_id=2)
    client.force_login(alice)
    html = client.get("/movies/", {"q": "alien"}).content.decode()
    assert html.count("✓ Want to watch") == 1 and html.count("+ Want to watch") == 1


def test_onboarding_marks_movies_already_on_the_watchlist(client, alice, catalogue):
    client.force_login(alice)
    offered = client.get("/welcome/").context["movies"]
    services.watchlist_add(user=alice, movie_id=offered[0].pk)
    html = client.get("/welcome/").content.decode()
    assert html.count("✓ Want to watch") == 1 and html.count("+ Want to watch") == len(offered) - 1
