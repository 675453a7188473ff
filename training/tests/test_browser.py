from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from training import registry
from training.models import ModelEvent, ModelVersion, TrainingRun

from .conftest import make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def instant_worker(monkeypatch):
    """A worker that finishes a queued recommender run at once, without TensorFlow: it records the
    run's metrics and log and registers the candidate it would have trained (``make_version``)."""

    def finish(run_id: int):
        run = TrainingRun.objects.get(pk=run_id)
        version = make_version(number=2)
        ModelVersion.objects.filter(pk=version.pk).update(run=run)
        TrainingRun.objects.filter(pk=run_id).update(
            status=TrainingRun.Status.SUCCEEDED,
            in_flight=None,
            progress=100.0,
            step="done",
            log="epoch 1/1: loss 0.91\nregistered base v2",
            metrics={"ndcg@10": 0.2, "recall@20": 0.31},
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )
        return type("AsyncResult", (), {"id": f"stub-{run_id}"})()

    monkeypatch.setattr("training.runs.enqueue_run", finish)


def test_an_admin_retrains_reads_the_run_and_promotes_the_new_version_with_a_note(
    page, live_server, sam, instant_worker, tmp_path
):
    registry.model_version_activate(version=make_version(number=1))
    page.goto(f"{live_server.url}/admin/login/?next=/admin/training/trainingrun/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "sam-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/admin/training/trainingrun/")

    page.select_option(".retrain-form select[name=kind]", "base")
    page.click(".retrain-button")
    run = TrainingRun.objects.get()
    page.wait_for_url(f"**/admin/training/trainingrun/{run.pk}/change/")
    expect(page.locator(".messagelist")).to_contain_text(f"Training run {run.pk} queued.")
    page.reload()  # the worker has finished: the page shows its outcome
    content = page.locator("#content")
    expect(content).to_contain_text("ndcg@10")
    expect(content).to_contain_text("registered base v2")
    expect(content.locator("table", has_text="ndcg@10")).to_contain_text("0.2000")  # a table, not raw JSON
    expect(content).not_to_contain_text("Reload for the final log")
    expect(page.locator("input[name=_addanother], input[name=_save]")).to_have_count(0)  # read-only
    page.screenshot(path=str(tmp_path / "admin-run.png"), full_page=True)

    candidate = ModelVersion.objects.get(version=2)
    page.goto(f"{live_server.url}/admin/training/modelversion/")
    page.check(f"input[name=_selected_action][value='{candidate.pk}']")
    page.select_option("select[name=action]", "promote")
    page.click("button[name=index]")
    expect(page.locator("h1")).to_be_visible()
    page.fill("#id_note", "Better NDCG on the new ratings")
    page.click("input[type=submit][value^='Yes, promote']")
    expect(page.locator(".messagelist")).to_contain_text("is now what users get")
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.ACTIVE
    event = ModelEvent.objects.filter(version=candidate).order_by("-id").first()
    assert event.actor == sam and "Better NDCG" in event.note


def test_the_run_and_version_lists_fit_1400_pixels_with_the_sidebar_open(page, live_server, sam):
    registry.model_version_activate(version=make_version(number=1))
    for _ in range(3):
        TrainingRun.objects.create(
            kind="all", trigger="admin", status="failed", in_flight=None, step="reward model", created_by=sam
        )
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/training/trainingrun/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "sam-pass-123")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/admin/training/trainingrun/")
    for url in ("/admin/training/trainingrun/", "/admin/training/modelversion/"):
        page.goto(f"{live_server.url}{url}")
        hidden = page.locator("#changelist-form .results").evaluate(
            "frame => frame.scrollWidth - frame.clientWidth"
        )
        assert hidden <= 0, f"{url}: the last columns are cut off ({hidden} px scroll out of sight)"
        # and with room to spare (37 px on PostgreSQL, whose run ids are longer): a wider name or
        # a longer step must not push them out again
        spare = page.locator("#changelist-form .results").evaluate(
            "frame => { const table = frame.querySelector('table'); table.style.width = 'min-content';"
            " const spare = frame.clientWidth - table.getBoundingClientRect().width;"
            " table.style.width = ''; return spare; }"
        )
        assert spare >= 20, f"{url}: only {spare:.0f} px to spare"
