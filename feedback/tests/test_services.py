from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from feedback import selectors, services
from feedback.exceptions import (
    InvalidFeedback,
    NoComparisonAvailable,
    NotAnnotator,
    NotAssigned,
    TaskAlreadyJudged,
    UndoUnavailable,
)
from feedback.lists import SourceSpec
from feedback.models import Comparison, ComparisonTask, ItemFeedback, ListFeedback, TaskAssignment
from movies.models import Rater, Rating
from movies.services import rating_set
from training.serving import recommend

from .conftest import register_recommender

pytestmark = pytest.mark.django_db


def persona(movielens_id: int = 1) -> Rater:
    return Rater.objects.get(movielens_id=movielens_id)


def assign(task: ComparisonTask, annotator) -> ComparisonTask:
    TaskAssignment.objects.create(task=task, annotator=annotator)
    return task


# --- Creating tasks -------------------------------------------------------------------------


def test_a_task_stores_both_lists_in_order_with_each_sides_source_and_probability(base_model):
    task = services.comparison_task_create(
        context_rater=persona(),
        sources=("base", SourceSpec("base", explore=True)),
        rng=np.random.default_rng(1),
    )
    assert task.context_kind == ComparisonTask.Context.PERSONA
    assert len(task.left_items) == len(task.right_items) == 10
    rated = set(Rating.objects.filter(rater=persona()).values_list("movie_id", flat=True))
    assert not rated & set(task.left_items + task.right_items)
    sources = {task.left_source["explore"]: task.left_source, task.right_source["explore"]: task.right_source}
    assert sources[False] == {
        "policy": "base",
        "version": 1,
        "version_id": base_model.pk,
        "explore": False,
        "probability": 1.0,
    }
    assert sources[True]["policy"] == "base" and 0 < sources[True]["probability"] < 1
    assert not task.is_gold and task.gold_worse == ""


def test_left_and_right_are_shuffled(base_model):
    left_sources = {
        services.comparison_task_create(
            context_rater=persona(), sources=("base", "random"), rng=np.random.default_rng(seed)
        ).left_source["policy"]
        for seed in range(12)
    }
    assert left_sources == {"base", "random"}


def test_with_one_model_the_default_compares_it_with_popularity_never_with_itself(base_model):
    explored = []
    for seed in range(16):
        task = services.comparison_task_create(context_rater=persona(2), rng=np.random.default_rng(seed))
        sources = {
            task.left_source["policy"]: task.left_source,
            task.right_source["policy"]: task.right_source,
        }
        assert set(sources) == {"base", "popularity"}
        explored.append(sources["base"]["explore"])
        assert (sources["base"]["probability"] < 1) == sources["base"]["explore"]
    assert any(explored) and not all(explored)  # a share of the model's lists are sampled


def test_without_any_model_the_default_is_random_against_popularity(wide_catalogue, no_model):
    task = services.comparison_task_create(context_rater=persona(), rng=np.random.default_rng(0))
    assert {task.left_source["policy"], task.right_source["policy"]} == {"random", "popularity"}


def test_with_two_models_the_default_compares_the_active_version_with_a_newer_candidate(base_model):
    candidate = register_recommender(version=2, seed=5, activate=False)
    policies = set()
    for seed in range(20):
        task = services.comparison_task_create(context_rater=persona(), rng=np.random.default_rng(seed))
        policies.add(tuple(sorted((task.left_source["version"], task.right_source["version"]))))
    assert policies == {(1, 2)}  # two different sources every time
    assert candidate.status == "candidate"


def test_a_gold_task_records_which_side_is_the_worse_list(base_model):
    for seed in range(8):
        task = services.comparison_task_create(
            context_rater=persona(), is_gold=True, rng=np.random.default_rng(seed)
        )
        worse = task.left_source if task.gold_worse == "left" else task.right_source
        better = task.right_source if task.gold_worse == "left" else task.left_source
        assert task.is_gold and task.gold_worse in ("left", "right")
        assert worse["policy"] in ("worst", "random")
        assert better == {
            "policy": "base",
            "version": 1,
            "version_id": base_model.pk,
            "explore": False,
            "probability": 1.0,
        }


def test_a_simulated_task_is_never_offered_to_people(base_model, annie):
    task = services.comparison_task_create(context_rater=persona(), simulated=True, required_judgments=2)
    offered = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    assert offered.pk != task.pk and task.simulated


def test_a_policy_without_a_servable_model_cannot_make_a_task(wide_catalogue, no_model):
    with pytest.raises(NoComparisonAvailable):
        services.comparison_task_create(context_rater=persona(), sources=("ppo", "base"))


# --- Handing tasks out ----------------------------------------------------------------------


def test_next_returns_the_annotators_open_task_until_they_answer_it(base_model, annie):
    first = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    assert services.comparison_task_next(annotator=annie).pk == first.pk
    services.comparison_submit(annotator=annie, task_id=first.pk, choice="left")
    assert services.comparison_task_next(annotator=annie, rng=np.random.default_rng(1)).pk != first.pk


def test_a_task_needing_two_judgments_goes_to_a_second_annotator_and_not_back_to_the_first(
    base_model, annie, andy
):
    overlap = assign(services.comparison_task_create(context_rater=persona(), required_judgments=2), annie)
    services.comparison_submit(annotator=annie, task_id=overlap.pk, choice="left")

    assert services.comparison_task_next(annotator=andy).pk == overlap.pk
    again = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(3))
    assert again.pk != overlap.pk
    services.comparison_submit(annotator=andy, task_id=overlap.pk, choice="right")
    assert not selectors.tasks_needing_judgments().filter(pk=overlap.pk).exists()


def test_a_skipped_overlap_task_goes_to_someone_else_and_not_back(base_model, annie, andy, sam):
    overlap = assign(services.comparison_task_create(context_rater=persona(), required_judgments=2), annie)
    services.comparison_skip(annotator=annie, task_id=overlap.pk)
    assert services.comparison_task_next(annotator=annie, rng=np.random.default_rng(1)).pk != overlap.pk
    assert services.comparison_task_next(annotator=andy).pk == overlap.pk
    assert services.comparison_task_next(annotator=sam).pk == overlap.pk  # still one judgment short


def test_an_overlap_task_filled_after_it_was_listed_is_not_handed_out_a_third_time(
    base_model, annie, andy, sam, monkeypatch
):
    overlap = services.comparison_task_create(context_rater=persona(), required_judgments=2)
    assign(assign(overlap, annie), andy)
    # as if sam's list of waiting tasks was read just before annie's and andy's assignments committed
    monkeypatch.setattr(
        selectors,
        "tasks_needing_judgments",
        lambda annotator=None: ComparisonTask.objects.filter(pk=overlap.pk),
    )
    task = services.comparison_task_next(annotator=sam, rng=np.random.default_rng(3))
    assert task.pk != overlap.pk
    assert overlap.assignments.count() == 2


def test_a_task_never_takes_more_judgments_from_people_than_it_requires(base_model, annie, andy, sam):
    from rest_framework.test import APIClient

    overlap = services.comparison_task_create(context_rater=persona(), required_judgments=2)
    for annotator in (annie, andy, sam):  # three assignments, however they came about
        assign(overlap, annotator)
    services.comparison_submit(annotator=annie, task_id=overlap.pk, choice="left")
    services.comparison_submit(annotator=andy, task_id=overlap.pk, choice="right")
    with pytest.raises(TaskAlreadyJudged):
        services.comparison_submit(annotator=sam, task_id=overlap.pk, choice="tie")
    api = APIClient()
    api.force_authenticate(sam)
    refused = api.post("/api/comparisons/", {"task": overlap.pk, "choice": "tie"}, format="json")
    assert refused.status_code == 409 and "already has all the judgments" in refused.json()["detail"]
    again = services.comparison_submit(annotator=annie, task_id=overlap.pk, choice="right")
    assert not again.created and again.choice == "left"  # a repeat still returns the first
    assert overlap.judgments.count() == 2
    simulated = services.comparison_record_simulated(task=overlap, simulator="sim", choice="left")
    assert simulated.created  # simulators do not take people's places


@pytest.mark.django_db(transaction=True)
def test_twenty_annotators_asking_at_once_get_an_overlap_task_only_as_often_as_it_requires(base_model):
    import threading

    from django.db import connection

    from movies.services import account_create

    if connection.vendor != "postgresql":
        pytest.skip("needs a database that several threads share: run with DATABASE_URL=postgresql://...")
    annotators = [
        account_create(username=f"judge{n}", password="x-pass-123", annotator=True) for n in range(20)
    ]
    overlap = services.comparison_task_create(context_rater=persona(), required_judgments=2)
    start = threading.Barrier(len(annotators))
    claimed = []

    def ask(annotator) -> None:
        try:
            start.wait()
            claimed.append(services._overlap_task_claim(task=overlap, annotator=annotator))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(annotator,)) for annotator in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [False] * 18 + [True] * 2
    assert overlap.assignments.count() == 2


def test_a_skipped_single_judgment_task_is_dropped(base_model, annie, andy, settings):
    settings.COMPARISON_OVERLAP_SHARE = 0.0
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    services.comparison_skip(annotator=annie, task_id=task.pk)
    assert task.required_judgments == 1
    assert services.comparison_task_next(annotator=andy, rng=np.random.default_rng(1)).pk != task.pk


def test_own_taste_needs_enough_ratings(base_model, annie, settings):
    settings.COMPARISON_PERSONA_SHARE = 0.0
    settings.COMPARISON_OVERLAP_SHARE = 0.0
    settings.COMPARISON_GOLD_SHARE = 0.0
    assert (
        services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0)).context_kind == "persona"
    )
    TaskAssignment.objects.filter(annotator=annie).update(skipped=True)
    for movie_id in range(1, settings.ONBOARDING_MIN_RATINGS + 1):
        rating_set(user=annie, movie_id=movie_id, value=4)
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    assert task.context_kind == "own" and task.context_rater.user == annie


def test_the_configured_shares_of_gold_and_overlap_tasks_are_roughly_honoured(settings):
    settings.COMPARISON_GOLD_SHARE = 0.1
    settings.COMPARISON_OVERLAP_SHARE = 0.2
    settings.COMPARISON_PERSONA_SHARE = 0.5
    rng = np.random.default_rng(42)
    plans = [services.comparison_task_plan(can_use_own_taste=True, rng=rng) for _ in range(4000)]
    gold = sum(plan.is_gold for plan in plans) / len(plans)
    overlap = sum(plan.required_judgments == 2 for plan in plans) / len(plans)
    persona_share = sum(plan.context == "persona" for plan in plans) / len(plans)
    assert abs(gold - 0.1) < 0.015
    assert abs(overlap - 0.2) < 0.02
    assert abs(persona_share - (0.2 + 0.8 * 0.5)) < 0.03
    assert all(plan.context == "persona" for plan in plans if plan.required_judgments == 2)


def test_tasks_created_for_annotators_mix_in_gold_at_the_configured_rate(base_model, annie, settings):
    settings.COMPARISON_GOLD_SHARE = 0.3
    settings.COMPARISON_OVERLAP_SHARE = 0.0
    rng = np.random.default_rng(7)
    for _ in range(50):
        task = services.comparison_task_next(annotator=annie, rng=rng)
        services.comparison_submit(annotator=annie, task_id=task.pk, choice="tie")
    share = ComparisonTask.objects.filter(is_gold=True).count() / ComparisonTask.objects.count()
    assert ComparisonTask.objects.count() == 50
    assert 0.12 < share < 0.48  # 50 draws at 0.3: within 2.8 standard deviations


def test_only_annotators_get_tasks(base_model, alice):
    with pytest.raises(NotAnnotator):
        services.comparison_task_next(annotator=alice)


def test_with_nothing_to_compare_the_queue_says_so(annie, no_model):
    with pytest.raises(NoComparisonAvailable):
        services.comparison_task_next(annotator=annie)


# --- Judging --------------------------------------------------------------------------------


def test_submitting_a_task_assigned_to_someone_else_is_refused(base_model, annie, andy):
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    with pytest.raises(NotAssigned):
        services.comparison_submit(annotator=andy, task_id=task.pk, choice="left")
    with pytest.raises(NotAssigned):
        services.comparison_submit(annotator=andy, task_id=999_999, choice="left")
    assert not Comparison.objects.exists()


def test_a_double_submit_returns_the_first_judgment_unchanged(base_model, annie):
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    first = services.comparison_submit(
        annotator=annie, task_id=task.pk, choice="left", reason="great comedies"
    )
    second = services.comparison_submit(
        annotator=annie, task_id=task.pk, choice="right", reason="changed my mind"
    )
    assert first.created and not second.created
    assert second.pk == first.pk and second.choice == "left" and second.reason == "great comedies"
    assert Comparison.objects.count() == 1


def test_a_judgment_is_validated_field_by_field(base_model, annie):
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    with pytest.raises(InvalidFeedback) as error:
        services.comparison_submit(
            annotator=annie, task_id=task.pk, choice="middle", reason="x" * 2001, confidence=4, decision_ms=-5
        )
    assert set(error.value.errors) == {"choice", "reason", "confidence", "decision_ms"}
    services.comparison_submit(
        annotator=annie, task_id=task.pk, choice="both_bad", reason="y" * 2000, confidence=3
    )
    assert Comparison.objects.get().confidence == 3


def test_the_reason_is_parsed_into_signals_and_sentiment(base_model, annie):
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    comparison = services.comparison_submit(
        annotator=annie,
        task_id=task.pk,
        choice="left",
        reason="Loved the comedies but way too many horror films",
    )
    signals = {
        (s["aspect"], s["value"]): s["polarity"] for s in Comparison.objects.get(pk=comparison.pk).signals
    }
    assert signals[("genre", "Comedy")] > 0
    assert signals[("genre", "Horror")] < 0
    assert comparison.sentiment is not None


def test_the_decision_time_comes_from_the_client_or_else_from_when_the_task_was_shown(base_model, annie):
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    assert (
        services.comparison_submit(
            annotator=annie, task_id=task.pk, choice="left", decision_ms=4321
        ).decision_ms
        == 4321
    )
    later = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(1))
    TaskAssignment.objects.filter(task=later, annotator=annie).update(
        assigned_at=timezone.now() - timedelta(seconds=7)
    )
    fallback = services.comparison_submit(annotator=annie, task_id=later.pk, choice="tie").decision_ms
    assert 7000 <= fallback < 60_000


def test_simulated_judgments_are_stored_by_simulator_name_once_per_task(base_model):
    task = services.comparison_task_create(context_rater=persona(), simulated=True)
    first = services.comparison_record_simulated(
        task=task, simulator="genre-fan", choice="right", reason="more sci-fi please"
    )
    again = services.comparison_record_simulated(task=task, simulator="genre-fan", choice="left")
    other = services.comparison_record_simulated(task=task, simulator="contrarian", choice="left")
    assert again.pk == first.pk and again.choice == "right" and other.pk != first.pk
    assert first.annotator is None and first.is_simulated
    assert any(s["value"] == "Sci-Fi" and s["polarity"] > 0 for s in first.signals)
    with pytest.raises(InvalidFeedback) as error:
        services.comparison_record_simulated(task=task, simulator="", choice="up")
    assert set(error.value.errors) == {"simulator", "choice"}


def test_skipping_an_answered_task_changes_nothing(base_model, annie):
    task = services.comparison_task_next(annotator=annie, rng=np.random.default_rng(0))
    services.comparison_submit(annotator=annie, task_id=task.pk, choice="left")
    assert services.comparison_skip(annotator=annie, task_id=task.pk).skipped is False


def test_progress_counts_todays_and_all_judgments_and_the_open_queue(base_model, annie, andy):
    waiting = services.comparison_task_create(context_rater=persona(), required_judgments=2)
    task = services.comparison_task_next(annotator=annie)
    assert task.pk == waiting.pk
    services.comparison_submit(annotator=annie, task_id=task.pk, choice="left")
    progress = selectors.annotator_progress(annotator=annie)
    assert (progress.done_today, progress.done_total, progress.waiting) == (1, 1, 0)
    assert selectors.annotator_progress(annotator=andy).waiting == 1  # annie's overlap task wants a second
    services.comparison_task_next(annotator=andy)  # on andy's screen now: not waiting any more
    assert selectors.annotator_progress(annotator=andy).waiting == 0


def test_progress_measures_today_against_the_daily_target(base_model, annie, settings):
    settings.ANNOTATOR_DAILY_TARGET = 2
    assert selectors.annotator_progress(annotator=annie).target_percent == 0
    task = services.comparison_task_next(annotator=annie)
    services.comparison_submit(annotator=annie, task_id=task.pk, choice="left")
    progress = selectors.annotator_progress(annotator=annie)
    assert (progress.target_percent, progress.target_reached) == (50, False)
    task = services.comparison_task_next(annotator=annie)
    services.comparison_submit(annotator=annie, task_id=task.pk, choice="tie")
    progress = selectors.annotator_progress(annotator=annie)
    assert (progress.done_today, progress.target_percent, progress.target_reached) == (2, 100, True)


def test_undoing_the_last_judgment_opens_its_task_again_before_the_next_one(base_model, annie):
    first = services.comparison_task_next(annotator=annie)
    judgment = services.comparison_submit(
        annotator=annie, task_id=first.pk, choice="left", reason="more comedy"
    )
    following = services.comparison_task_next(annotator=annie)
    assert following.pk != first.pk
    undone = services.comparison_undo(annotator=annie, comparison_id=judgment.pk)
    assert (undone.choice, undone.reason) == ("left", "more comedy")
    assert not Comparison.objects.exists()
    assert services.comparison_task_next(annotator=annie).pk == first.pk
    services.comparison_submit(annotator=annie, task_id=first.pk, choice="right")
    assert services.comparison_task_next(annotator=annie).pk == following.pk
    assert selectors.annotator_progress(annotator=annie).done_today == 1


def test_only_the_last_judgment_of_ones_own_can_be_undone_and_only_for_a_while(
    base_model, annie, andy, settings
):
    settings.COMPARISON_UNDO_SECONDS = 60
    judgments = []
    for choice in ("left", "tie"):
        task = services.comparison_task_next(annotator=annie)
        judgments.append(services.comparison_submit(annotator=annie, task_id=task.pk, choice=choice))
    for who, judgment in [(annie, judgments[0]), (andy, judgments[1])]:
        with pytest.raises(UndoUnavailable, match="Only your last judgment"):
            services.comparison_undo(annotator=who, comparison_id=judgment.pk)
    for judgment, seconds_ago in zip(judgments, (62, 61), strict=True):
        Comparison.objects.filter(pk=judgment.pk).update(
            created_at=timezone.now() - timedelta(seconds=seconds_ago)
        )
    assert selectors.comparison_undoable(annotator=annie) is None
    with pytest.raises(UndoUnavailable, match="within 60 seconds"):
        services.comparison_undo(annotator=annie, comparison_id=judgments[1].pk)
    assert Comparison.objects.count() == 2


def test_excluding_an_annotator_is_recorded_with_who_did_it(annie, sam):
    status = services.annotator_exclusion_set(
        annotator=annie, excluded=True, actor=sam, note="random clicking"
    )
    assert status.excluded and status.changed_by == sam and status.note == "random clicking"
    assert not services.annotator_exclusion_set(annotator=annie, excluded=False, actor=sam).excluded


# --- End users ------------------------------------------------------------------------------


def test_not_interested_removes_the_movie_from_the_users_recommendations(base_model, alice):
    for movie_id in (1, 2, 3, 4, 5):
        rating_set(user=alice, movie_id=movie_id, value=4.5)
    before = [rec.movie.pk for rec in recommend(rater_id=alice.rater.pk, k=10).items]
    services.item_feedback_set(user=alice, movie_id=before[0], kind="not_interested")
    after = [rec.movie.pk for rec in recommend(rater_id=alice.rater.pk, k=10).items]
    assert before[0] not in after and len(after) == 10


def test_not_interested_also_applies_before_any_model_is_trained(wide_catalogue, alice, no_model):
    before = [rec.movie.pk for rec in recommend(rater_id=alice.rater.pk, k=5).items]
    services.item_feedback_set(user=alice, movie_id=before[0], kind="not_interested")
    assert before[0] not in [rec.movie.pk for rec in recommend(rater_id=alice.rater.pk, k=5).items]


def test_item_feedback_is_one_reaction_per_movie_that_can_be_toggled_off(wide_catalogue, alice, bob):
    services.item_feedback_set(user=alice, movie_id=3, kind="up", policy="base", version=1)
    services.item_feedback_set(user=alice, movie_id=3, kind="down")
    services.item_feedback_set(user=bob, movie_id=3, kind="up")
    assert ItemFeedback.objects.get(user=alice).kind == "down"
    assert services.item_feedback_toggle(user=alice, movie_id=3, kind="down") is None
    assert not ItemFeedback.objects.filter(user=alice).exists()
    assert ItemFeedback.objects.filter(user=bob).count() == 1


def test_item_feedback_rejects_unknown_movies_and_kinds(wide_catalogue, alice):
    with pytest.raises(InvalidFeedback) as error:
        services.item_feedback_set(user=alice, movie_id=9999, kind="up")
    assert "movie" in error.value.errors
    with pytest.raises(InvalidFeedback) as error:
        services.item_feedback_set(user=alice, movie_id=1, kind="meh")
    assert "kind" in error.value.errors


def test_a_comment_on_the_list_is_stored_with_its_signals(wide_catalogue, alice):
    feedback = services.list_feedback_add(
        user=alice, text="Too many old dramas, more sci-fi please", items=[1, 2, 3], policy="base", version=1
    )
    stored = ListFeedback.objects.get(pk=feedback.pk)
    values = {(s["aspect"], s["value"]): s["polarity"] for s in stored.signals}
    assert values[("genre", "Sci-Fi")] > 0 and values[("genre", "Drama")] < 0
    assert stored.items == [1, 2, 3] and stored.policy == "base"
    with pytest.raises(InvalidFeedback) as error:
        services.list_feedback_add(user=alice, text="   ")
    assert "text" in error.value.errors
