from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_visitor_signs_up_rates_a_movie_wants_another_and_steers_for_you(
    page, live_server, catalogue, tmp_path, monkeypatch
):
    """The end user's main path: sign up, rate, add to the watchlist, use the controls on "For you"."""
    monkeypatch.setattr("training.serving.SIMILAR_MIN_RATINGS", 1)  # the catalogue's movies have 5 ratings
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("#id_username", "newcomer")
    page.fill("#id_password1", "correct-horse-77")
    page.fill("#id_password2", "correct-horse-77")
    page.click("button[type=submit]")
    page.wait_for_url("**/welcome/")

    page.goto(f"{live_server.url}/movies/")
    page.fill("#id_q", "the matrix")  # stored as "Matrix, The"
    expect(page.locator("#movie-results li.movie")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/movies/\?q=the(%20|\+)matrix"))
    page.click("#stars-4 button[value='4.5']")
    expect(page.locator("#stars-4 .your-rating")).to_have_text("Your rating: 4.5")

    page.click("nav >> text=My ratings")
    page.wait_for_url("**/my/ratings/")
    expect(page.locator("li.movie .title")).to_have_text(["The Matrix"])
    expect(page.locator("#stars-4 .your-rating")).to_have_text("Your rating: 4.5")
    expect(page.locator("li.movie .rated-at")).to_have_text("rated just now")

    # The header's search is on every page.
    page.fill("#site-search-q", "heat")
    page.keyboard.press("Enter")
    page.wait_for_url("**/movies/?q=heat")
    page.click("#watchlist-3 button")
    expect(page.locator("#watchlist-3 button")).to_have_text("✓ Want to watch")

    page.goto(f"{live_server.url}/movies/3/")  # its page loads "more like this" on its own
    expect(page.locator("#similar h2")).to_have_text("More like this")
    expect(page.locator("#similar li.movie").first).to_be_visible()

    page.goto(f"{live_server.url}/for-you/")
    expect(page.locator("form.steering")).to_be_visible()
    items = page.locator("#recommendation-items li.movie")
    as_is = items.locator(".title").all_inner_texts()
    page.select_option("#id_genre", "Horror")  # the list reloads in place; the URL says what was asked
    expect(page).to_have_url(re.compile(r"/for-you/\?.*genre=Horror"))
    expect(items.first.locator(".chip", has_text="Horror")).to_have_count(1)
    page.select_option("#id_recency", "more")
    expect(page).to_have_url(re.compile(r"recency=more"))
    expect(items.first.locator(".chip", has_text="Horror")).to_have_count(1)
    assert items.locator(".title").all_inner_texts() != as_is
    page.screenshot(path=str(tmp_path / "for-you-steered.png"), full_page=True)
    page.reload()  # the controls survive a reload
    expect(page.locator("#id_genre")).to_have_value("Horror")
    expect(page.locator("#id_recency")).to_have_value("more")
    page.goto(f"{live_server.url}/for-you/?popularity=lots&genre=Horror")  # a hand-edited URL
    expect(page.locator("#recommendations .filter-errors li")).to_have_text(
        ["Popular: Select a valid choice. lots is not one of the available choices."]
    )
    expect(items.first.locator(".chip", has_text="Horror")).to_have_count(
        1
    )  # the valid control still applies
    page.screenshot(path=str(tmp_path / "for-you-bad-control.png"))
    assert page.request.get(f"{live_server.url}/favicon.ico").ok


def test_sign_up_errors_are_red_and_help_text_is_not(page, live_server, bob):
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("#id_username", "bob")  # taken
    page.fill("#id_password1", "correct-horse-77")
    page.fill("#id_password2", "correct-horse-78")
    page.click("main button[type=submit]")
    errors = page.locator("form.stacked ul.errorlist")
    expect(errors).to_have_count(2)
    expect(errors.first).to_have_css("color", "rgb(185, 28, 28)")
    expect(page.locator("#id_username")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("form.stacked .helptext").first).not_to_have_css("color", "rgb(185, 28, 28)")


def test_each_filter_label_stays_beside_its_input_at_1280_pixels(page, live_server, catalogue):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/movies/")
    for name in ["q", "genre", "year_min", "year_max", "min_ratings", "sort"]:
        label = page.locator(f"form.filters label[for=id_{name}]").bounding_box()
        field = page.locator(f"form.filters #id_{name}").bounding_box()
        assert abs(label["y"] + label["height"] / 2 - (field["y"] + field["height"] / 2)) < 4, name
        assert 0 <= field["x"] - (label["x"] + label["width"]) < 20, name


def test_a_bad_filter_is_named_and_the_rest_of_the_filters_still_apply(page, live_server, catalogue):
    page.goto(f"{live_server.url}/movies/?genre=Sci-Fi&year_min=abc")
    expect(page.locator(".filter-errors li")).to_have_text(["From year: Enter a whole number."])
    expect(page.locator("#movie-results li.movie")).to_have_count(3)  # the Sci-Fi movies


def test_a_user_wants_to_watch_a_movie_from_the_list_and_finds_it_on_the_watchlist(
    page, live_server, alice, catalogue
):
    page.goto(f"{live_server.url}/accounts/login/?next=/movies/%3Fq%3Dheat")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_url("**/movies/?q=heat")
    page.click("#watchlist-3 button")
    expect(page.locator("#watchlist-3 button")).to_have_text("✓ Want to watch")
    page.click("nav >> text=Watchlist")
    expect(page.locator("li.movie .title")).to_have_text(["Heat"])
    page.click("#watchlist-3 button")  # take it off, right there
    expect(page.locator("#watchlist-3 button")).to_have_text("+ Want to watch")
    page.reload()
    expect(page.locator("li.movie .title")).to_have_count(0)
