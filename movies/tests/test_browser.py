from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_visitor_signs_up_rates_a_movie_from_the_list_and_sees_it_on_my_ratings(
    page, live_server, catalogue
):
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
