from __future__ import annotations

import json
import re

import numpy as np
import pytest
from django.test import Client

from feedback import services
from feedback.models import (
    AnnotatorStatus,
    Comparison,
    ComparisonTask,
    ItemFeedback,
    ListFeedback,
    TaskAssignment,
)
from movies.models import Movie, Rater

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def open_task(annotator) -> ComparisonTask:
    return TaskAssignment.objects.get(annotator=annotator, skipped=False, task__judgments__isnull=True).task


# --- The comparison queue -------------------------------------------------------------------


def test_the_queue_asks_anonymous_visitors_to_log_in(base_model):
    response = client_for().get("/compare/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_queue_is_forbidden_to_end_users(base_model, alice):
    assert client_for(alice).get("/compare/").status_code == 403


@pytest.mark.parametrize("who", ["annie", "sam"])
def test_annotators_and_staff_see_two_lists_with_instructions_keys_and_progress(base_model, who, annie, sam):
    response = client_for({"annie": annie, "sam": sam}[who]).get("/compare/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "How to judge" in html and "<kbd>Enter</kbd>" in html and "<kbd>S</kbd>" in html
    assert 'class="side side-left"' in html and 'class="side side-right"' in html
    assert "Persona: MovieLens user" in html and "Favourites" in html and "Genres" in html
    assert re.search(
        r'Today: <strong class="done-today">0</strong> of\s+<span class="daily-target">40</span>', html
    )
    assert 'waiting for a judgment: <strong class="waiting">0</strong>' in html
    assert "js/compare.js" in html
    task = ComparisonTask.objects.get()
    for source in (task.left_source, task.right_source):
        assert json.dumps(source) not in html


def test_movies_in_both_lists_are_marked(base_model, annie):
    task = services.comparison_task_create(
        context_rater=Rater.objects.get(movielens_id=1),
        sources=("base", "base"),
        rng=np.random.default_rng(0),
    )
    TaskAssignment.objects.create(task=task, annotator=annie)
    html = client_for(annie).get("/compare/").content.decode()
    shared = set(task.left_items) & set(task.right_items)
    assert shared  # identical lists are resampled with exploration; a 40-movie catalogue still overlaps
    assert html.count('class="both"') == 2 * len(shared)


def test_an_htmx_answer_returns_the_next_task_partial(base_model, annie):
    client = client_for(annie)
    client.get("/compare/")
    first = open_task(annie)
    response = client.post(
        f"/compare/{first.pk}/",
        {"choice": "left", "confidence": "3", "reason": "more comedies", "decision_ms": "3100"},
        **HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<section id="compare-task"') and "<html" not in html
    assert "Saved: left better." in html and 'class="done-today">1<' in html
    comparison = Comparison.objects.get()
    assert (comparison.choice, comparison.confidence, comparison.decision_ms) == ("left", 3, 3100)
    assert open_task(annie).pk != first.pk
    assert f'data-task="{open_task(annie).pk}"' in html


def test_a_plain_form_post_works_without_javascript(base_model, annie):
    client = client_for(annie)
    client.get("/compare/")
    task = open_task(annie)
    response = client.post(f"/compare/{task.pk}/", {"choice": "both_bad", "reason": ""})
    assert response.status_code == 302 and response["Location"] == "/compare/"
    comparison = Comparison.objects.get()
    assert comparison.choice == "both_bad" and comparison.decision_ms is not None  # server-side fallback
    assert "Saved: both bad." in client.get("/compare/").content.decode()


def test_an_answer_without_a_choice_shows_the_same_task_with_the_error(base_model, annie):
    client = client_for(annie)
    client.get("/compare/")
    task = open_task(annie)
    response = client.post(f"/compare/{task.pk}/", {"reason": "kept this text"}, **HTMX)
    html = response.content.decode()
    assert "Choose left, right, tie or both bad." in html and "kept this text" in html
    assert f'data-task="{task.pk}"' in html
    too_long = client.post(f"/compare/{task.pk}/", {"choice": "left", "reason": "x" * 2001})
    assert "2000 characters" in too_long.content.decode()
    assert not Comparison.objects.exists()


def test_answering_someone_elses_task_is_forbidden(base_model, annie, andy):
    client_for(annie).get("/compare/")
    task = open_task(annie)
    assert client_for(andy).post(f"/compare/{task.pk}/", {"choice": "left"}).status_code == 403
    assert client_for(andy).post(f"/compare/{task.pk}/skip/").status_code == 403
    assert client_for(annie).post("/compare/987654/", {"choice": "left"}).status_code == 403


def test_skipping_loads_another_task(base_model, annie):
    client = client_for(annie)
    client.get("/compare/")
    task = open_task(annie)
    response = client.post(f"/compare/{task.pk}/skip/", **HTMX)
    assert "Skipped." in response.content.decode()
    assert TaskAssignment.objects.get(task=task, annotator=annie).skipped
    assert client.post(f"/compare/{open_task(annie).pk}/skip/").status_code == 302


def test_the_queue_explains_when_there_is_nothing_to_compare(annie, no_model):
    response = client_for(annie).get("/compare/")
    assert response.status_code == 200 and "nothing to compare yet" in response.content.decode()


def test_titles_in_a_task_open_their_movie_page_in_a_new_tab_with_a_summary_on_hover(base_model, annie):
    response = client_for(annie).get("/compare/")
    view = response.context["view"]
    shown = view.left[0]
    movie = Movie.objects.get(pk=shown.movie_id)
    html = response.content.decode()
    genres = ", ".join(movie.genres.order_by("name").values_list("name", flat=True)) or "no genres"
    ratings = f"{movie.num_ratings} rating{'s' if movie.num_ratings != 1 else ''}"
    hover = f"{movie.year} · {genres} · average {movie.avg_rating:.2f} from {ratings}"
    assert (
        f'<a class="title" href="/movies/{movie.pk}/" target="_blank" rel="noopener" title="{hover}">' in html
    )
    persona = view.context["favourites"] + view.context["recent"]
    assert html.count('target="_blank" rel="noopener"') == len(view.left) + len(view.right) + len(persona)
    favourite = view.context["favourites"][0]
    assert (
        f'<a href="/movies/{favourite["movie"]}/" target="_blank" rel="noopener">{favourite["title"]}</a>'
        in html
    )


def test_a_hover_summary_says_what_is_unknown():
    from feedback.selectors import ShownMovie

    unknown = ShownMovie(1, "Untitled", None, [], False)
    assert unknown.summary == "year unknown · no genres · not rated yet"
    one = ShownMovie(2, "Heat", 1995, ["Action", "Drama"], False, 4.0, 1)
    assert one.summary == "1995 · Action, Drama · average 4.00 from 1 rating"


def test_undo_from_the_page_shows_the_task_again_with_the_answers_given(base_model, annie):
    client = client_for(annie)
    first = client.get("/compare/").context["view"].task
    response = client.post(
        f"/compare/{first.pk}/", {"choice": "right", "confidence": "3", "reason": "too dark"}, **HTMX
    )
    judgment = Comparison.objects.get()
    assert f'action="/compare/undo/{judgment.pk}/"' in response.content.decode()
    undone = client.post(f"/compare/undo/{judgment.pk}/", **HTMX)
    html = undone.content.decode()
    assert undone.context["view"].task.pk == first.pk and not Comparison.objects.exists()
    assert "Undone: right better. Judge it again." in html
    assert 'value="right" checked' in html and 'value="3" checked' in html and "too dark</textarea>" in html
    assert "compare/undo/" not in html  # nothing left to undo
    late = client.post(f"/compare/undo/{judgment.pk}/")
    assert late.status_code == 302 and not Comparison.objects.exists()


def test_undo_without_htmx_keeps_the_answers_across_the_redirect_once(base_model, annie):
    client = client_for(annie)
    first = client.get("/compare/").context["view"].task
    client.post(f"/compare/{first.pk}/", {"choice": "left", "confidence": "1", "reason": "funnier"})
    judgment = Comparison.objects.get()
    page = client.post(f"/compare/undo/{judgment.pk}/", follow=True)
    html = page.content.decode()
    assert page.context["view"].task.pk == first.pk and not Comparison.objects.exists()
    assert "Undone: left better. Judge it again." in html
    assert 'value="left" checked' in html and 'value="1" checked' in html and "funnier</textarea>" in html
    again = client.get("/compare/").content.decode()  # shown once: a reload starts from a clean form
    assert 'value="left" checked' not in again


# --- End users: feedback on the recommendations page ----------------------------------------


def test_the_recommendations_page_has_feedback_buttons_per_movie_and_a_box_for_the_list(base_model, alice):
    client = client_for(alice)
    page = client.get("/for-you/")
    html = page.content.decode()
    assert html.count('class="item-feedback"') == 20 and 'aria-pressed="true"' not in html
    assert 'value="not_interested"' in html and 'id="list-feedback"' in html
    disliked = page.context["recs"].items[3].movie
    services.item_feedback_set(user=alice, movie_id=disliked.pk, kind="down")
    # A thumb counts in the profile as a rating would, so the next list moves on from the movie;
    # the reaction is on the page that reviews them, to undo.
    assert disliked.pk not in [item.movie.pk for item in client.get("/for-you/").context["recs"].items]
    review = client.get("/my/feedback/").content.decode()
    assert f'href="/movies/{disliked.pk}/"' in review and review.count('aria-pressed="true"') == 1


def test_the_recommendations_say_where_they_come_from_in_words_and_versions_only_to_staff(
    base_model, alice, sam
):
    from movies.services import rating_set

    for user in (alice, sam):
        rating_set(user=user, movie_id=2, value=5.0)
    html = client_for(alice).get("/for-you/").content.decode()
    assert "Picked for you from your ratings." in html
    assert "From base" not in html and "v1" not in html and "Model:" not in html
    staff_html = client_for(sam).get("/for-you/").content.decode()
    assert "Picked for you from your ratings." in staff_html and "Model: Base v1" in staff_html


def test_recommendations_without_ratings_say_they_are_popular_picks(base_model, alice):
    html = client_for(alice).get("/for-you/").content.decode()
    assert "Popular with other viewers: rate a few movies and these become picks for you." in html
    assert "From popularity" not in html and "Model:" not in html


def test_thumbs_up_toggles_with_htmx(base_model, alice):
    client = client_for(alice)
    response = client.post("/feedback/items/15/", {"kind": "up", "policy": "base", "version": "1"}, **HTMX)
    assert response.status_code == 200 and 'aria-pressed="true"' in response.content.decode()
    feedback = ItemFeedback.objects.get(user=alice, movie_id=15)
    assert (feedback.kind, feedback.policy, feedback.version) == ("up", "base", 1)
    client.post("/feedback/items/15/", {"kind": "up"}, **HTMX)
    assert not ItemFeedback.objects.exists()


def test_not_interested_as_a_plain_post_redirects_back_and_hides_the_movie(base_model, alice):
    client = client_for(alice)
    shown = client.get("/for-you/").context["recs"].items[0].movie.pk
    response = client.post(f"/feedback/items/{shown}/", {"kind": "not_interested", "next": "/for-you/"})
    assert response.status_code == 302 and response["Location"] == "/for-you/"
    page = client.get("/for-you/")
    assert shown not in [rec.movie.pk for rec in page.context["recs"].items]
    assert "you will not see this movie" in page.content.decode()


def test_item_feedback_needs_a_login(base_model):
    response = client_for().post("/feedback/items/15/", {"kind": "up"})
    assert response.status_code == 302 and not ItemFeedback.objects.exists()


def test_a_comment_on_the_list_is_stored_and_echoed_with_htmx(base_model, alice):
    response = client_for(alice).post(
        "/feedback/list/",
        {"text": "too many horror films", "items": "15,16", "policy": "base", "version": "1"},
        **HTMX,
    )
    assert "Thanks! We read:" in response.content.decode() and "less" in response.content.decode()
    stored = ListFeedback.objects.get()
    assert stored.items == [15, 16] and stored.signals[0]["value"] == "Horror"
    empty = client_for(alice).post("/feedback/list/", {"text": ""})
    assert empty.status_code == 302 and ListFeedback.objects.count() == 1


@pytest.fixture
def genre_named_tags(base_model):
    """Tags that are also genre names, so one word reads as a genre and as a tag."""
    from django.utils import timezone

    from feedback.text_signals import text_analyzer_reset
    from movies.models import Tag

    rater = Rater.objects.get(movielens_id=1)
    for movie_id, tag in [(3, "drama"), (2, "sci-fi")]:
        Tag.objects.create(rater=rater, movie_id=movie_id, tag=tag, tagged_at=timezone.now())
    text_analyzer_reset()  # the vocabulary now has the tags
    yield
    text_analyzer_reset()  # and other tests' vocabulary will not


def test_the_comment_echo_says_each_thing_read_once(genre_named_tags, alice):
    response = client_for(alice).post(
        "/feedback/list/", {"text": "too many dramas, more sci-fi please", "items": "15,16"}, **HTMX
    )
    stored = ListFeedback.objects.get()
    assert {signal["aspect"] for signal in stored.signals} == {"genre", "tag"}  # both kept for learning
    assert stored.echo() == ["less dramas", "more sci-fi"]
    body = response.content.decode()
    assert body.count('<span class="chip">less dramas</span>') == 1
    assert body.count('<span class="chip">more sci-fi</span>') == 1


def test_the_echo_keeps_opposite_wishes_about_the_same_words():
    feedback = ListFeedback(
        signals=[
            {"aspect": "genre", "value": "Horror", "polarity": -0.6, "span": "horror"},
            {"aspect": "tag", "value": "horror", "polarity": -0.6, "span": "Horror"},
            {"aspect": "genre", "value": "Horror", "polarity": 0.6, "span": "horror"},
            {"aspect": "era", "value": "1980s", "polarity": 0.0},
        ]
    )
    assert feedback.echo() == ["less horror", "more horror", "about 1980s"]


# --- Staff ----------------------------------------------------------------------------------


@pytest.fixture
def two_annotators_judged(base_model, annie, andy):
    """Four tasks judged by both annie and andy, the last of them gold."""
    persona = Rater.objects.get(movielens_id=1)
    choices = [("left", "left"), ("right", "right"), ("tie", "left"), ("left", "right")]
    for index, (annie_choice, andy_choice) in enumerate(choices):
        task = services.comparison_task_create(
            context_rater=persona, required_judgments=2, is_gold=index == 3, rng=np.random.default_rng(index)
        )
        for annotator, choice in ((annie, annie_choice), (andy, andy_choice)):
            TaskAssignment.objects.create(task=task, annotator=annotator)
            services.comparison_submit(
                annotator=annotator, task_id=task.pk, choice=choice, decision_ms=1000 * (index + 1)
            )
    return ComparisonTask.objects.get(is_gold=True)


def test_staff_see_counts_gold_accuracy_agreement_and_decision_times(two_annotators_judged, sam):
    gold = two_annotators_judged
    html = client_for(sam).get("/staff/annotators/").content.decode()
    assert "annie" in html and "andy" in html
    # annie: left, right, tie, left; andy: left, right, left, right -> 2 of 4 agree
    # p_e = (2*2 + 1*2 + 1*0) / 16 = 6/16 (annie left 2 right 1 tie 1; andy left 2 right 2)
    # kappa = (8/16 - 6/16) / (10/16) = 0.2
    assert "0.200" in html
    assert "2.5 s" in html  # median of 1, 2, 3, 4 seconds
    gold_right = "left" if gold.gold_worse == "right" else "right"
    annie_gold = "1/1" if gold_right == "left" else "0/1"
    assert annie_gold in html


@pytest.mark.parametrize("who", ["anonymous", "alice", "annie"])
def test_staff_pages_are_for_staff_only(base_model, who, alice, annie):
    client = client_for({"anonymous": None, "alice": alice, "annie": annie}[who])
    for url in ("/staff/annotators/", "/staff/leaderboard/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.post(f"/staff/annotators/{annie.pk}/exclusion/", {"excluded": "1"}).status_code == 302
    assert not AnnotatorStatus.objects.exists()


def test_staff_exclude_an_annotator_from_training_and_take_them_back(two_annotators_judged, annie, sam):
    client = client_for(sam)
    response = client.post(f"/staff/annotators/{annie.pk}/exclusion/", {"excluded": "1"}, **HTMX)
    assert (
        response.status_code == 200
        and "excluded" in response.content.decode()
        and "Include" in response.content.decode()
    )
    status = AnnotatorStatus.objects.get(annotator=annie)
    assert status.excluded and status.changed_by == sam
    export = (
        b"".join(client.get("/api/comparisons/export/?format=jsonl").streaming_content).decode().splitlines()
    )
    assert all(json.loads(line)["excluded"] == (json.loads(line)["annotator"] == "annie") for line in export)
    response = client.post(f"/staff/annotators/{annie.pk}/exclusion/", {"excluded": "0"})
    assert response.status_code == 302
    assert not AnnotatorStatus.objects.get(annotator=annie).excluded


def test_the_leaderboard_ranks_sources_with_intervals_and_a_heatmap(base_model, annie, sam):
    persona = Rater.objects.get(movielens_id=2)
    for index in range(6):
        task = services.comparison_task_create(
            context_rater=persona, sources=("base", "random"), rng=np.random.default_rng(index)
        )
        TaskAssignment.objects.create(task=task, annotator=annie)
        base_side = "left" if task.left_source["policy"] == "base" else "right"
        services.comparison_submit(annotator=annie, task_id=task.pk, choice=base_side if index < 5 else "tie")
    simulated = services.comparison_task_create(
        context_rater=persona, sources=("random", "popularity"), simulated=True
    )
    services.comparison_record_simulated(task=simulated, simulator="sim", choice="left")

    client = client_for(sam)
    board = client.get("/staff/leaderboard/")
    rows = board.context["board"].rows
    assert [row.label for row in rows] == ["base v1", "random"]
    assert rows[0].comparisons == 6 and rows[0].win_rate == pytest.approx(5.5 / 6)
    assert rows[0].low <= rows[0].strength <= rows[0].high
    assert 'src="data:image/png;base64,' in board.content.decode()
    with_simulated = client.get("/staff/leaderboard/?simulated=1").context["board"]
    assert {row.label for row in with_simulated.rows} == {"base v1", "random", "popularity"}


def test_the_leaderboard_is_recomputed_only_when_the_judgments_change(base_model, annie, sam, monkeypatch):
    from django.core.cache import cache

    from feedback import selectors

    cache.clear()
    computed = []
    compute = selectors._leaderboard_compute
    monkeypatch.setattr(
        selectors, "_leaderboard_compute", lambda *a, **kw: computed.append(1) or compute(*a, **kw)
    )
    persona = Rater.objects.get(movielens_id=2)

    def judge(seed: int) -> None:
        task = services.comparison_task_create(
            context_rater=persona, sources=("base", "random"), rng=np.random.default_rng(seed)
        )
        TaskAssignment.objects.create(task=task, annotator=annie)
        services.comparison_submit(annotator=annie, task_id=task.pk, choice="left")

    judge(0)
    client = client_for(sam)
    first = client.get("/staff/leaderboard/").context["board"]
    second = client.get("/staff/leaderboard/").context["board"]
    assert len(computed) == 1 and second.rows == first.rows
    judge(1)
    third = client.get("/staff/leaderboard/").context["board"]
    assert len(computed) == 2 and third.comparisons == 2


# --- Admin ----------------------------------------------------------------------------------


def test_the_admin_lists_every_feedback_model_and_shows_signals_readably(two_annotators_judged, alice, sam):
    services.list_feedback_add(user=alice, text="more sci-fi please")
    comparison = Comparison.objects.first()
    comparison.signals = [{"aspect": "genre", "value": "Horror", "polarity": -0.6, "span": "horror"}]
    comparison.save()
    client = client_for(sam)
    for model in (
        "comparisontask",
        "taskassignment",
        "comparison",
        "annotatorstatus",
        "itemfeedback",
        "listfeedback",
    ):
        assert client.get(f"/admin/feedback/{model}/").status_code == 200, model
    page = client.get(f"/admin/feedback/comparison/{comparison.pk}/change/").content.decode()
    assert "<td>Horror</td><td>-0.60</td>" in page
    listed = client.get(
        f"/admin/feedback/listfeedback/{ListFeedback.objects.get().pk}/change/"
    ).content.decode()
    assert "<td>Sci-Fi</td><td>+" in listed


def test_the_admin_exports_selected_judgments_as_json_lines(two_annotators_judged, sam):
    chosen = list(Comparison.objects.order_by("id").values_list("pk", flat=True)[:3])
    response = client_for(sam).post(
        "/admin/feedback/comparison/", {"action": "export_jsonl", "_selected_action": chosen}
    )
    assert response.status_code == 200
    records = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [record["id"] for record in records] == chosen


def test_the_leaderboard_still_serves_when_the_cache_is_unreachable(base_model, annie, sam, settings):
    from recsys_site.tests.unreachable_cache import UNREACHABLE

    persona = Rater.objects.get(movielens_id=2)
    task = services.comparison_task_create(
        context_rater=persona, sources=("base", "random"), rng=np.random.default_rng(0)
    )
    TaskAssignment.objects.create(task=task, annotator=annie)
    services.comparison_submit(annotator=annie, task_id=task.pk, choice="left")
    settings.CACHES = UNREACHABLE
    board = client_for(sam).get("/staff/leaderboard/")
    assert board.status_code == 200
    assert len(board.context["board"].rows) == 2


# --- End users: reviewing their feedback ----------------------------------------------------


@pytest.fixture
def alices_reactions(base_model, alice):
    for movie_id, kind in [(2, "up"), (3, "down"), (4, "not_interested"), (5, "up")]:
        services.item_feedback_set(user=alice, movie_id=movie_id, kind=kind)
    return alice


def test_my_feedback_lists_likes_dislikes_and_hidden_movies_by_kind(alices_reactions, bob):
    services.item_feedback_set(user=bob, movie_id=6, kind="up")
    client = client_for(alices_reactions)
    everything = client.get("/my/feedback/")
    assert sorted(f.movie_id for f in everything.context["page"]) == [2, 3, 4, 5]
    html = everything.content.decode()
    assert "All <span" in html and "Liked <span" in html and "Not interested: hidden" in html
    assert [tab["count"] for tab in everything.context["tabs"]] == [4, 2, 1, 1]
    liked = client.get("/my/feedback/", {"kind": "up"}).context["page"]
    assert sorted(f.movie_id for f in liked) == [2, 5]
    assert len(client.get("/my/feedback/", {"kind": "bogus"}).context["page"]) == 4


def test_undoing_not_interested_from_the_review_page_lets_the_movie_come_back(alices_reactions):
    client = client_for(alices_reactions)
    response = client.post(
        "/feedback/items/4/", {"kind": "not_interested", "next": "/my/feedback/?kind=not_interested"}
    )
    assert response.status_code == 302 and response["Location"] == "/my/feedback/?kind=not_interested"
    assert not ItemFeedback.objects.filter(user=alices_reactions, movie_id=4).exists()
    assert len(client.get("/my/feedback/", {"kind": "not_interested"}).context["page"]) == 0


def test_the_review_page_is_for_logged_in_users(base_model):
    assert client_for().get("/my/feedback/").status_code == 302


def test_the_review_page_takes_as_many_queries_for_many_reactions_as_for_few(alices_reactions):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(alices_reactions)
    with CaptureQueriesContext(connection) as few:
        client.get("/my/feedback/")
    for movie_id in (6, 7, 8, 9):
        services.item_feedback_set(user=alices_reactions, movie_id=movie_id, kind="down")
    with CaptureQueriesContext(connection) as many:
        client.get("/my/feedback/")
    assert len(many) == len(few)


def test_recommended_movies_can_go_on_the_watchlist(base_model, alice):
    from movies.services import watchlist_add

    client = client_for(alice)
    shown = client.get("/for-you/").context["recs"].items[0].movie.pk
    watchlist_add(user=alice, movie_id=shown)
    html = client.get("/for-you/").content.decode()
    assert html.count("✓ Want to watch") == 1 and html.count("+ Want to watch") == 19
