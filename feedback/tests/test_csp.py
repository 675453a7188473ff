"""The Content-Security-Policy: no inline script or style, API docs from our own static files."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from feedback import services
from feedback.models import TaskAssignment
from movies.models import Movie, Rater
from training.runs import training_run_create


@pytest.mark.django_db
def test_pages_send_a_strict_policy_and_the_api_docs_use_no_cdn(client):
    docs = client.get("/api/docs/")
    policy = docs["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    page = docs.content.decode()
    assert "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "<style" not in page and "<script>" not in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


def log_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda address: "/accounts/login/" not in address)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_site_the_admin_and_the_api_docs_work_without_a_single_policy_violation(
    page, live_server, base_model, annie, sam
):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    task = services.comparison_task_create(
        context_rater=Rater.objects.get(movielens_id=2),
        sources=("base", "random"),
        rng=np.random.default_rng(0),
    )
    TaskAssignment.objects.create(task=task, annotator=sam)
    services.comparison_submit(annotator=sam, task_id=task.pk, choice="left")
    url = live_server.url

    page.goto(f"{url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("MovieLens RLHF recommender API")
    expect(page.locator(".opblock").first).to_be_visible()

    log_in(page, url, "annie", "annie-pass-123")
    page.goto(f"{url}/movies/")
    page.fill("#id_q", "alien")  # htmx search
    expect(page.locator("#movie-results li.movie")).to_have_count(2)  # Alien, Aliens
    page.fill("#id_q", "")
    page.select_option("#id_genre", label="Romance")  # a change on a filter also searches
    romance = Movie.objects.filter(genres__name="Romance").count()
    expect(page.locator("#movie-results li.movie")).to_have_count(romance)
    page.goto(f"{url}/compare/")
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # htmx swaps in the next task
    expect(page.locator("#compare-task .done-today")).to_have_text("1")

    page.context.clear_cookies()
    log_in(page, url, "sam", "sam-pass-123")
    page.goto(f"{url}/staff/leaderboard/")
    expect(page.locator("img[src^='data:image/png']")).to_be_visible()
    page.goto(f"{url}/admin/training/trainingrun/")
    expect(page.locator(".retrain-form")).to_have_css("display", "inline-flex")  # the admin's stylesheet
    run = training_run_create(kind="base", trigger="command")
    page.goto(f"{url}/admin/training/trainingrun/{run.pk}/change/")
    expect(page.locator(f"#run-progress-{run.pk} .run-progress-bar")).to_be_visible()  # loaded by htmx
    page.goto(f"{url}/admin/training/modelversion/")
    expect(page.locator("#result_list")).to_be_visible()
    assert violations == []
