from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from feedback import services
from feedback.models import Comparison, ItemFeedback, ListFeedback, TaskAssignment
from movies.models import Rater

pytestmark = pytest.mark.django_db


def client_for(user=None, *, token: bool = False) -> APIClient:
    client = APIClient()
    if user is not None and token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    elif user is not None:
        client.force_authenticate(user)
    return client


def next_task(client: APIClient) -> dict:
    response = client.get("/api/comparisons/next/")
    assert response.status_code == 200, response.content
    return response.json()


# --- GET /api/comparisons/next/ -------------------------------------------------------------


def test_an_annotator_gets_the_next_comparison_with_a_persona_summary_and_two_lists(base_model, annie):
    body = next_task(client_for(annie, token=True))
    assert set(body) == {"id", "context", "left", "right"}
    assert body["context"]["kind"] == "persona"
    assert {"movielens_id", "ratings", "favourites", "recent", "genres"} <= set(body["context"])
    assert body["context"]["favourites"][0]["rating"] >= body["context"]["favourites"][-1]["rating"]
    assert sum(g["percent"] for g in body["context"]["genres"]) >= 50
    assert len(body["left"]) == len(body["right"]) == 10
    assert set(body["left"][0]) == {"movie", "title", "year", "genres"}
    assert "source" not in json.dumps(body)  # the sources stay hidden


def test_asking_again_returns_the_same_open_comparison(base_model, annie):
    client = client_for(annie)
    assert next_task(client)["id"] == next_task(client)["id"]


@pytest.mark.parametrize("who", [None, "alice"])
def test_only_annotators_may_ask_for_comparisons(base_model, who, alice):
    response = client_for(alice if who else None).get("/api/comparisons/next/")
    assert response.status_code in (401, 403) if who is None else response.status_code == 403


def test_staff_may_annotate_too(base_model, sam):
    assert next_task(client_for(sam))["id"]


def test_with_nothing_to_compare_the_api_answers_503(annie, no_model):
    assert client_for(annie).get("/api/comparisons/next/").status_code == 503


# --- POST /api/comparisons/ -----------------------------------------------------------------


def test_posting_a_judgment_stores_it_with_its_parsed_signals(base_model, annie):
    client = client_for(annie, token=True)
    task = next_task(client)
    payload = {
        "task": task["id"],
        "choice": "right",
        "reason": "Loved the comedies, too many horror films",
        "confidence": 2,
        "decision_ms": 5400,
    }
    response = client.post("/api/comparisons/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["choice"] == "right" and body["confidence"] == 2 and body["decision_ms"] == 5400
    assert body["annotator"] == "annie"
    assert {(s["aspect"], s["value"]) for s in body["signals"]} >= {("genre", "Comedy"), ("genre", "Horror")}
    stored = Comparison.objects.get(pk=body["id"])
    assert stored.annotator == annie and stored.task_id == task["id"]


def test_a_double_submit_returns_200_with_the_same_judgment(base_model, annie):
    client = client_for(annie)
    task = next_task(client)
    first = client.post("/api/comparisons/", {"task": task["id"], "choice": "left"}, format="json")
    second = client.post(
        "/api/comparisons/", {"task": task["id"], "choice": "tie", "reason": "hm"}, format="json"
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert Comparison.objects.count() == 1


def test_judging_a_task_that_is_not_yours_is_forbidden(base_model, annie, andy):
    task = next_task(client_for(annie))
    response = client_for(andy).post(
        "/api/comparisons/", {"task": task["id"], "choice": "left"}, format="json"
    )
    assert response.status_code == 403
    assert (
        client_for(andy)
        .post("/api/comparisons/", {"task": 424242, "choice": "left"}, format="json")
        .status_code
        == 403
    )
    assert not Comparison.objects.exists()


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"choice": "sideways"}, {"choice"}),
        ({"choice": "left", "reason": "x" * 2001}, {"reason"}),
        ({"choice": "left", "confidence": 5}, {"confidence"}),
        ({"choice": "left", "decision_ms": -1}, {"decision_ms"}),
        ({"choice": "left", "task": "abc"}, {"task"}),
        ({}, {"choice"}),
    ],
)
def test_a_malformed_judgment_gets_400_with_field_messages(base_model, annie, payload, fields):
    client = client_for(annie)
    task = next_task(client)
    response = client.post("/api/comparisons/", {"task": task["id"], **payload}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert not Comparison.objects.exists()


def test_end_users_cannot_post_judgments(base_model, alice, annie):
    task = next_task(client_for(annie))
    response = client_for(alice).post(
        "/api/comparisons/", {"task": task["id"], "choice": "left"}, format="json"
    )
    assert response.status_code == 403
    assert client_for().post(
        "/api/comparisons/", {"task": task["id"], "choice": "left"}, format="json"
    ).status_code in (401, 403)


# --- End-user feedback ----------------------------------------------------------------------


def test_an_end_user_marks_a_movie_not_interested_and_it_leaves_their_recommendations(base_model, alice):
    client = client_for(alice, token=True)
    before = [item["movie"] for item in client.get("/api/recommendations/?k=10").json()["results"]]
    response = client.post(
        "/api/feedback/items/", {"movie": before[0], "kind": "not_interested"}, format="json"
    )
    assert response.status_code == 200 and response.json() == {"movie": before[0], "kind": "not_interested"}
    after = [item["movie"] for item in client.get("/api/recommendations/?k=10").json()["results"]]
    assert before[0] not in after


def test_item_feedback_can_be_changed_and_removed(wide_catalogue, alice):
    client = client_for(alice)
    client.post("/api/feedback/items/", {"movie": 2, "kind": "up"}, format="json")
    client.post("/api/feedback/items/", {"movie": 2, "kind": "down"}, format="json")
    assert ItemFeedback.objects.get(user=alice, movie_id=2).kind == "down"
    assert (
        client.post("/api/feedback/items/", {"movie": 2, "kind": "none"}, format="json").json()["kind"]
        is None
    )
    assert not ItemFeedback.objects.exists()


def test_item_feedback_rejects_bad_input_and_anonymous_users(wide_catalogue, alice):
    client = client_for(alice)
    assert set(client.post("/api/feedback/items/", {"movie": 2, "kind": "love"}, format="json").json()) == {
        "kind"
    }
    assert set(client.post("/api/feedback/items/", {"movie": 9999, "kind": "up"}, format="json").json()) == {
        "movie"
    }
    assert client_for().post(
        "/api/feedback/items/", {"movie": 2, "kind": "up"}, format="json"
    ).status_code in (401, 403)


def test_a_comment_on_the_list_returns_the_signals_read_from_it(wide_catalogue, alice):
    response = client_for(alice).post(
        "/api/feedback/lists/", {"text": "More sci-fi please, fewer romances", "items": [1, 2]}, format="json"
    )
    assert response.status_code == 201, response.content
    signals = {(s["aspect"], s["value"]): s["polarity"] for s in response.json()["signals"]}
    assert signals[("genre", "Sci-Fi")] > 0 and signals[("genre", "Romance")] < 0
    assert ListFeedback.objects.get().items == [1, 2]
    too_long = client_for(alice).post("/api/feedback/lists/", {"text": "x" * 2001}, format="json")
    assert too_long.status_code == 400 and set(too_long.json()) == {"text"}


# --- Export ---------------------------------------------------------------------------------


@pytest.fixture
def judged(base_model, annie, andy, sam):
    """One human judgment with a reason (annie, later excluded) and one simulated judgment."""
    task = services.comparison_task_create(
        context_rater=Rater.objects.get(movielens_id=1),
        sources=("base", "random"),
        rng=np.random.default_rng(0),
    )
    TaskAssignment.objects.create(task=task, annotator=annie)
    human = services.comparison_submit(
        annotator=annie,
        task_id=task.pk,
        choice="left",
        reason="too many horror films",
        confidence=3,
        decision_ms=2500,
    )
    services.annotator_exclusion_set(annotator=annie, excluded=True, actor=sam)
    simulated_task = services.comparison_task_create(
        context_rater=Rater.objects.get(movielens_id=2), simulated=True
    )
    simulated = services.comparison_record_simulated(task=simulated_task, simulator="sim-1", choice="tie")
    return task, human, simulated


def test_staff_export_every_preference_as_json_lines(judged, sam):
    task, human, simulated = judged
    response = client_for(sam, token=True).get("/api/comparisons/export/?format=jsonl")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    by_id = {record["id"]: record for record in records}
    record = by_id[human.pk]
    assert record["annotator"] == "annie" and record["excluded"] is True and record["simulated"] is False
    assert record["simulator"] is None and record["task"] == task.pk
    assert (
        record["context_kind"] == "persona"
        and record["context_user"] == 1
        and record["context_account"] is None
    )
    assert record["left"] == task.left_items and record["right"] == task.right_items
    assert record["left_source"] == task.left_source and record["right_source"] == task.right_source
    assert record["choice"] == "left" and record["confidence"] == 3 and record["decision_ms"] == 2500
    assert record["reason"] == "too many horror films"
    assert {"aspect": "genre", "value": "Horror", "polarity": record["signals"][0]["polarity"]} == record[
        "signals"
    ][0]
    assert record["signals"][0]["polarity"] < 0 and isinstance(record["sentiment"], float)
    assert record["is_gold"] is False and record["gold_worse"] is None and record["created_at"]
    sim = by_id[simulated.pk]
    assert (
        sim["annotator"] is None
        and sim["simulator"] == "sim-1"
        and sim["simulated"] is True
        and sim["excluded"] is False
    )


def test_staff_export_every_preference_as_csv(judged, sam):
    task, human, _ = judged
    response = client_for(sam).get("/api/comparisons/export/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2
    row = next(row for row in rows if row["id"] == str(human.pk))
    assert row["annotator"] == "annie" and row["choice"] == "left" and row["excluded"] == "True"
    assert json.loads(row["left"]) == task.left_items
    assert json.loads(row["signals"])[0]["value"] == "Horror"
    assert json.loads(row["left_source"])["policy"] in ("base", "random")


def test_a_reason_that_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(judged, sam):
    _, human, _ = judged
    Comparison.objects.filter(pk=human.pk).update(reason='=HYPERLINK("http://evil.example","x")')
    response = client_for(sam).get("/api/comparisons/export/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    row = next(row for row in rows if row["id"] == str(human.pk))
    assert row["reason"] == '\'=HYPERLINK("http://evil.example","x")'
    # the JSON lines export is not a spreadsheet format: the text stays as typed
    lines = b"".join(client_for(sam).get("/api/comparisons/export/?format=jsonl").streaming_content)
    assert '"reason":"=HYPERLINK(' in lines.decode()


def test_the_export_defaults_to_json_lines_and_rejects_unknown_formats(judged, sam):
    client = client_for(sam)
    assert client.get("/api/comparisons/export/")["Content-Type"].startswith("application/x-ndjson")
    assert client.get("/api/comparisons/export/?format=xml").status_code == 400


@pytest.mark.parametrize("who", ["anonymous", "alice", "annie"])
def test_only_staff_may_export(judged, who, alice, annie):
    client = client_for({"anonymous": None, "alice": alice, "annie": annie}[who])
    assert client.get("/api/comparisons/export/?format=jsonl").status_code in (401, 403)


def test_showing_a_comparison_and_exporting_take_a_fixed_number_of_queries(
    judged, annie, sam, django_assert_max_num_queries
):
    client = client_for(annie)
    next_task(client)  # creates and assigns the task; showing it again is reads only
    with django_assert_max_num_queries(12):  # auth, role, open assignment, two lists, persona summary
        next_task(client)
    for seed in range(5):
        task = services.comparison_task_create(
            context_rater=Rater.objects.get(movielens_id=3), simulated=True, rng=np.random.default_rng(seed)
        )
        services.comparison_record_simulated(
            task=task, simulator="sim-2", choice="left", reason="more comedies"
        )
    with django_assert_max_num_queries(4):  # auth and one select over every judgment, however many
        response = client_for(sam).get("/api/comparisons/export/?format=jsonl")
        assert len(b"".join(response.streaming_content).splitlines()) == 7
