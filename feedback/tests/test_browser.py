from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser_testing import settled
from feedback.models import Comparison

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_annotator_judges_five_comparisons_with_the_keyboard_only_and_undoes_the_last(
    page, live_server, base_model, annie
):
    page.goto(f"{live_server.url}/accounts/login/?next=/compare/")
    page.fill("#id_username", "annie")
    page.fill("#id_password", "annie-pass-123")
    page.keyboard.press("Enter")
    # Exact: the glob "**/compare/" also matches the login page's own "?next=/compare/" and returns
    # before the redirect, so the first key press could land on the login page.
    page.wait_for_url(f"{live_server.url}/compare/")

    task = page.locator("#compare-task")
    for number, (key, choice) in enumerate([("1", "left"), ("ArrowRight", "right"), ("t", "tie")], start=1):
        settled(page)
        shown = task.get_attribute("data-task")
        page.keyboard.press(key)
        expect(page.locator(f"input[name=choice][value={choice}]")).to_be_checked()
        if number == 2:
            page.keyboard.press("9")  # confidence: sure
        if number == 3:  # R focuses the reason; letters typed there are not shortcuts; Esc leaves the box
            page.keyboard.press("r")
            page.keyboard.type("both lists 2 similar")
            page.keyboard.press("Escape")
            expect(page.locator("input[name=choice][value=tie]")).to_be_checked()
        page.keyboard.press("Enter")
        expect(page.locator("#compare-task .done-today")).to_have_text(str(number))
        expect(page.locator("#compare-task")).not_to_have_attribute("data-task", shown)

    for number, (key, choice) in enumerate([("2", "right"), ("ArrowLeft", "left")], start=4):
        settled(page)
        shown = task.get_attribute("data-task")
        page.keyboard.press(key)
        expect(page.locator(f"input[name=choice][value={choice}]")).to_be_checked()
        page.keyboard.press("Enter")
        expect(page.locator("#compare-task .done-today")).to_have_text(str(number))
        expect(page.locator("#compare-task")).not_to_have_attribute("data-task", shown)
    settled(page)
    page.keyboard.press("u")  # the fifth comes back, with its choice, and no longer counts
    expect(task).to_have_attribute("data-task", shown)
    expect(page.locator("input[name=choice][value=left]")).to_be_checked()
    expect(page.locator("#compare-task .done-today")).to_have_text("4")

    judgments = list(Comparison.objects.filter(annotator=annie).order_by("created_at"))
    assert [j.choice for j in judgments] == ["left", "right", "tie", "right"]
    assert [j.confidence for j in judgments] == [None, 3, None, None]
    assert [j.reason for j in judgments] == ["", "", "both lists 2 similar", ""]
    assert all(j.decision_ms is not None and j.decision_ms < 60_000 for j in judgments)


def test_rating_a_movie_in_the_list_keeps_the_comment_being_typed(page, live_server, base_model, alice):
    page.goto(f"{live_server.url}/accounts/login/?next=/for-you/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/for-you/")
    first = page.locator("#recommendation-items li.movie .title").first.get_attribute("href")
    movie_id = first.strip("/").split("/")[-1]
    page.fill("#list-feedback-text", "too many horror films")
    page.click(f"#stars-{movie_id} button[value='4.0']")
    # The list refreshes without the rated movie; the comment box and its text stay.
    expect(page.locator(f"#recommendation-items a[href='{first}']")).to_have_count(0)
    expect(page.locator("#list-feedback-text")).to_have_value("too many horror films")
    items = page.locator("#list-feedback-source input[name=items]").get_attribute("value").split(",")
    assert movie_id not in items and len(items) == 20  # the comment is about the list now shown
    page.click("#list-feedback button[type=submit]")
    expect(page.locator("#list-feedback [role=status]")).to_contain_text("Thanks! We read:")
    expect(page.locator("#list-feedback-text")).to_have_value("")


def log_in_to_compare(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next=/compare/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"{username}-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/compare/")
    settled(page)


def test_after_ctrl_enter_from_the_reason_box_keys_choose_again_on_the_next_task(
    page, live_server, base_model, annie
):
    log_in_to_compare(page, live_server, "annie")
    task = page.locator("#compare-task")
    shown = task.get_attribute("data-task")
    page.keyboard.press("1")
    page.keyboard.press("r")
    page.keyboard.type("left has more comedies")
    page.keyboard.press("Control+Enter")
    expect(task).not_to_have_attribute("data-task", shown)
    expect(task).to_be_focused()  # the task, not the next task's reason box
    settled(page)
    page.keyboard.press("t")
    expect(page.locator("input[name=choice][value=tie]")).to_be_checked()
    expect(page.locator("#compare-reason")).to_have_value("")
    page.keyboard.press("Enter")
    expect(page.locator("#compare-task .done-today")).to_have_text("2")
    assert [j.choice for j in Comparison.objects.filter(annotator=annie).order_by("created_at")] == [
        "left",
        "tie",
    ]


def test_progress_shows_today_against_the_daily_target(page, live_server, base_model, annie, settings):
    settings.ANNOTATOR_DAILY_TARGET = 2
    log_in_to_compare(page, live_server, "annie")
    expect(page.locator("#compare-task .today")).to_contain_text("Today: 0 of 2")
    for done, key in enumerate(["1", "2"], start=1):
        settled(page)
        page.keyboard.press(key)
        page.keyboard.press("Enter")
        # The next task replaces this one before the next key counts: wait for it, not for a fixed time.
        expect(page.locator("#compare-task .done-today")).to_have_text(str(done), timeout=15_000)
    expect(page.locator("#compare-task .today")).to_contain_text("daily target reached")
    expect(page.locator("#compare-task .today progress")).to_have_attribute("value", "100")


def test_u_undoes_the_last_judgment_and_brings_its_task_back(page, live_server, base_model, annie):
    log_in_to_compare(page, live_server, "annie")
    task = page.locator("#compare-task")
    first = task.get_attribute("data-task")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(task).not_to_have_attribute("data-task", first)
    expect(page.locator("#compare-undo")).to_contain_text("Undo last (right better)")
    settled(page)
    page.keyboard.press("u")
    expect(task).to_have_attribute("data-task", first)
    expect(page.locator("input[name=choice][value=right]")).to_be_checked()
    expect(page.locator("#compare-task .done-today")).to_have_text("0")
    settled(page)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(task).not_to_have_attribute("data-task", first)
    assert list(Comparison.objects.values_list("choice", flat=True)) == ["left"]


def test_thumbs_and_want_to_watch_in_the_list_stay_and_show_their_state(page, live_server, base_model, alice):
    page.goto(f"{live_server.url}/accounts/login/?next=/for-you/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/for-you/")
    row = page.locator("#recommendation-items li.movie").nth(1)
    row.locator("button[value=up]").click()
    expect(row.locator("button[value=up]")).to_have_attribute("aria-pressed", "true")
    row.locator(".watch-button").click()
    expect(row.locator(".watch-button")).to_have_text("✓ Want to watch")
    expect(page.locator("#recommendation-items li.movie")).to_have_count(20)
