"""Writes of human feedback: comparison tasks and judgments, annotator status, end-user item and list feedback.

Comparison tasks
----------------
A task shows two lists of ``k`` movies for one context rater: the annotator's own taste (their
site rater, once they have ``ONBOARDING_MIN_RATINGS`` ratings) or a persona (a dataset user, whose
history the page summarises). The two lists come from two sources (`SourceSpec`), left and right
in random order, and each side's source is stored with the list's probability under it.

The lists come from the configured `feedback.lists.ListSource` (the served models, see
``training.comparison_lists``): its default pair for an ordinary task, its (good, bad) pair for a
gold task; the side of the bad list is ``gold_worse``.

Active tasks: once the active reward model carries an uncertainty estimate (the list source's
``can_choose_actively``), a share ``COMPARISON_ACTIVE_SHARE`` of new non-gold tasks is the one of
``ACTIVE_PROPOSALS`` proposals (context rater, default sources, lists) the reward model is least
sure about (the list source's ``disagreement``); the rest are made as before. Each task records
its ``selection`` ("random" or "active"), so estimates that must be unbiased use the random ones.

Simulated annotators (the ``simulate_feedback`` command) create tasks with
``comparison_task_create(..., simulated=True)`` and answer them with
``comparison_record_simulated(task=..., simulator="name", choice=..., reason=...)``; such tasks are
never offered to people.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from movies.models import Movie, Rater
from movies.roles import is_annotator
from movies.services import rater_get_or_create

from . import selectors
from .exceptions import (
    InvalidFeedback,
    NoComparisonAvailable,
    NotAnnotator,
    TaskAlreadyJudged,
    UndoUnavailable,
)
from .lists import Slate, SourceSpec, can_choose_actively, list_source
from .models import AnnotatorStatus, Comparison, ComparisonTask, ItemFeedback, ListFeedback, TaskAssignment
from .text_signals import parse_text

LIST_LENGTH = 10  # movies per side
MAX_TEXT_CHARS = 2000  # reasons and list comments
MAX_DECISION_MS = 24 * 3600 * 1000  # longer is a tab left open, not a decision time
IDENTICAL_RETRIES = 3  # resample a side with exploration when both lists came out the same
PERSONA_TRIES = 5  # personas tried before giving up when lists come out empty
ACTIVE_PROPOSALS = 4  # proposals scored for an active task: each costs two lists and one score
OVERLAP_CANDIDATES = 5  # waiting overlap tasks tried (others may fill them meanwhile) before a new task
SIMULATOR_MAX_CHARS = 64


# --- Tasks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lists:
    left: Slate
    right: Slate
    gold_worse: str


def _two_lists(
    *, rater_id: int, sources: tuple[SourceSpec, SourceSpec], k: int, is_gold: bool, rng: np.random.Generator
) -> _Lists:
    lists = list_source()
    first = lists.slate(sources[0], rater_id=rater_id, k=k, rng=rng)
    second = lists.slate(sources[1], rater_id=rater_id, k=k, rng=rng)
    tries = 0
    while (
        not is_gold
        and first.movie_ids == second.movie_ids
        and tries < IDENTICAL_RETRIES
        and len(first.movie_ids) > 1
    ):
        if sources[1].policy in ("popularity", "worst"):
            break  # deterministic by nature; an identical pair is still a valid (tie) comparison
        second = lists.slate(replace(sources[1], explore=True), rater_id=rater_id, k=k, rng=rng)
        tries += 1
    if rng.random() < 0.5:
        return _Lists(left=first, right=second, gold_worse="right" if is_gold else "")
    return _Lists(left=second, right=first, gold_worse="left" if is_gold else "")


def comparison_task_create(
    *,
    context_rater: Rater,
    sources: tuple[SourceSpec | str, SourceSpec | str] | None = None,
    k: int = LIST_LENGTH,
    simulated: bool = False,
    is_gold: bool = False,
    required_judgments: int = 1,
    rng: np.random.Generator | None = None,
) -> ComparisonTask:
    """A task comparing two lists for ``context_rater``.

    ``sources`` (specs, policy names or model versions) default to the list source's default pair
    (its gold pair when ``is_gold``); for a gold task given explicit sources, the second one is the worse.
    The context is "persona" for a dataset user and "own" for a site account. Raises
    NoComparisonAvailable when a source has no servable model or a list comes out empty.
    Scoring happens before the one INSERT, outside any transaction.
    """
    rng = rng if rng is not None else np.random.default_rng()
    lists = _task_lists(context_rater=context_rater, sources=sources, k=k, is_gold=is_gold, rng=rng)
    return _task_save(
        context_rater=context_rater,
        lists=lists,
        is_gold=is_gold,
        required_judgments=required_judgments,
        simulated=simulated,
        selection=ComparisonTask.Selection.RANDOM,
    )


def _task_lists(
    *,
    context_rater: Rater,
    sources: tuple[SourceSpec | str, SourceSpec | str] | None,
    k: int,
    is_gold: bool,
    rng: np.random.Generator,
) -> _Lists:
    if sources is None:
        lists = list_source()
        pair = lists.gold_pair(rng=rng) if is_gold else lists.default_pair(rng=rng)
    else:
        pair = (SourceSpec.of(sources[0]), SourceSpec.of(sources[1]))
    lists = _two_lists(rater_id=context_rater.pk, sources=pair, k=k, is_gold=is_gold, rng=rng)
    if not lists.left.movie_ids or not lists.right.movie_ids:
        raise NoComparisonAvailable(f"{context_rater} has no unrated movies left for one of the lists.")
    return lists


def _task_save(
    *,
    context_rater: Rater,
    lists: _Lists,
    is_gold: bool,
    required_judgments: int,
    simulated: bool,
    selection: str,
) -> ComparisonTask:
    return ComparisonTask.objects.create(
        context_kind=ComparisonTask.Context.PERSONA
        if context_rater.is_dataset_user
        else ComparisonTask.Context.OWN,
        context_rater=context_rater,
        left_items=[int(m) for m in lists.left.movie_ids],
        right_items=[int(m) for m in lists.right.movie_ids],
        left_source=lists.left.source(),
        right_source=lists.right.source(),
        is_gold=is_gold,
        gold_worse=lists.gold_worse,
        required_judgments=max(1, required_judgments),
        simulated=simulated,
        selection=selection,
    )


def _active_task_create(
    *, own: Rater | None, plan: TaskPlan, rng: np.random.Generator
) -> ComparisonTask | None:
    """Of ``ACTIVE_PROPOSALS`` proposals (context rater, default sources, lists), the one the reward
    model disagrees most about, saved as an active task; None when no proposal could be scored."""
    lists_source = list_source()
    best: tuple[float, Rater, _Lists] | None = None
    for _ in range(ACTIVE_PROPOSALS):
        persona = plan.context == ComparisonTask.Context.PERSONA or own is None
        rater = _random_persona(rng=rng, avoid=set()) if persona else own
        if rater is None:
            break
        try:
            lists = _task_lists(context_rater=rater, sources=None, k=LIST_LENGTH, is_gold=False, rng=rng)
        except NoComparisonAvailable:
            continue
        score = lists_source.disagreement(rater_id=rater.pk, left=lists.left, right=lists.right)
        if score is not None and (best is None or score > best[0]):
            best = (float(score), rater, lists)
    if best is None:
        return None
    _, rater, lists = best
    return _task_save(
        context_rater=rater,
        lists=lists,
        is_gold=False,
        required_judgments=plan.required_judgments if rater.is_dataset_user else 1,
        simulated=False,
        selection=ComparisonTask.Selection.ACTIVE,
    )


@dataclass(frozen=True)
class TaskPlan:
    """What kind of task a new one will be."""

    context: str  # ComparisonTask.Context
    is_gold: bool
    required_judgments: int


def comparison_task_plan(*, can_use_own_taste: bool, rng: np.random.Generator) -> TaskPlan:
    """Draw a new task's kind from the configured shares.

    COMPARISON_OVERLAP_SHARE of tasks need two judgments (persona tasks only: nobody else can
    judge someone's own taste); COMPARISON_GOLD_SHARE are gold; of the rest, persona with
    probability COMPARISON_PERSONA_SHARE, or always when the annotator cannot use their own taste.
    """
    overlap = rng.random() < settings.COMPARISON_OVERLAP_SHARE
    gold = rng.random() < settings.COMPARISON_GOLD_SHARE
    persona_share = getattr(settings, "COMPARISON_PERSONA_SHARE", 0.5)
    persona = overlap or not can_use_own_taste or rng.random() < persona_share
    return TaskPlan(
        context=ComparisonTask.Context.PERSONA if persona else ComparisonTask.Context.OWN,
        is_gold=gold,
        required_judgments=2 if overlap else 1,
    )


def _random_persona(*, rng: np.random.Generator, avoid: set[int]) -> Rater | None:
    personas = selectors.personas()
    count = personas.count()
    for _ in range(PERSONA_TRIES):
        if count == 0:
            return None
        rater = personas[int(rng.integers(count))]
        if rater.pk not in avoid:
            return rater
    return None


def comparison_task_next(*, annotator, rng: np.random.Generator | None = None) -> ComparisonTask:
    """The task an annotator should judge now.

    1. their open (unanswered, unskipped) assignment, re-stamped as shown now;
    2. else the oldest persona task still needing judgments that they were never handed (overlap);
    3. else a new task (see `comparison_task_plan`), assigned to them.
    """
    if not is_annotator(annotator):
        raise NotAnnotator("Only annotators compare recommendation lists.")
    current = selectors.open_assignment(annotator=annotator)
    if current is not None:
        TaskAssignment.objects.filter(pk=current.pk).update(assigned_at=timezone.now())
        return current.task
    for waiting in selectors.tasks_needing_judgments(annotator=annotator)[:OVERLAP_CANDIDATES]:
        try:
            if _overlap_task_claim(task=waiting, annotator=annotator):
                return waiting
        except IntegrityError:  # the same annotator asked twice at once
            return comparison_task_next(annotator=annotator, rng=rng)
    return _comparison_task_new(annotator=annotator, rng=rng if rng is not None else np.random.default_rng())


def _overlap_task_claim(*, task: ComparisonTask, annotator) -> bool:
    """Assign an overlap task if it still wants a judge; False when others filled it meanwhile.

    The selector's count was read without a lock, so 20 annotators asking at once could all see
    the same free place. Here the task row is locked (``select_for_update`` on PostgreSQL; on
    SQLite the IMMEDIATE transaction serialises writers) and the live assignments are counted
    again before one is added: a task never gets more judges than it requires.
    """
    with transaction.atomic():
        locked = ComparisonTask.objects.select_for_update().get(pk=task.pk)
        live = TaskAssignment.objects.filter(task=locked, skipped=False).count()
        if live >= locked.required_judgments:
            return False
        TaskAssignment.objects.create(task=locked, annotator=annotator)
        return True


def _choose_actively(*, rng: np.random.Generator) -> bool:
    """A share ``COMPARISON_ACTIVE_SHARE`` of new non-gold tasks, once the list source can score pairs.

    Without a reward model that carries an uncertainty estimate no random number is drawn, so task
    creation is exactly what it was before active comparisons.
    """
    share = settings.COMPARISON_ACTIVE_SHARE
    return share > 0 and can_choose_actively(list_source()) and rng.random() < share


def _comparison_task_new(*, annotator, rng: np.random.Generator) -> ComparisonTask:
    can_use_own = selectors.account_rating_count(user=annotator) >= settings.ONBOARDING_MIN_RATINGS
    own = rater_get_or_create(user=annotator) if can_use_own else None
    plan = comparison_task_plan(can_use_own_taste=can_use_own, rng=rng)
    own_kind, persona_kind = ComparisonTask.Context.OWN, ComparisonTask.Context.PERSONA
    task = None
    if not plan.is_gold and _choose_actively(rng=rng):
        task = _active_task_create(own=own, plan=plan, rng=rng)  # None: fall back to a random task
    tried: set[int] = set()
    # the planned context first, the other one when it cannot make a task (no personas, no unrated movies)
    for context in (plan.context, persona_kind if plan.context == own_kind else own_kind):
        if task is not None:
            break
        for _ in range(1 if context == own_kind else PERSONA_TRIES):
            rater = own if context == own_kind else _random_persona(rng=rng, avoid=tried)
            if rater is None:
                break
            tried.add(rater.pk)
            try:
                task = comparison_task_create(
                    context_rater=rater,
                    is_gold=plan.is_gold,
                    required_judgments=plan.required_judgments if rater.is_dataset_user else 1,
                    rng=rng,
                )
                break
            except NoComparisonAvailable:
                continue
        if task is not None:
            break
    if task is None:
        raise NoComparisonAvailable(
            "There is nothing to compare yet: import the MovieLens data or rate "
            f"{settings.ONBOARDING_MIN_RATINGS} movies to compare lists for your own taste."
        )
    TaskAssignment.objects.create(task=task, annotator=annotator)
    return task


# --- Judgments ------------------------------------------------------------------------------


def _clean_judgment(*, choice, reason, confidence, decision_ms) -> tuple[str, str, int | None, int | None]:
    """Field-level validation shared by people and simulators; raises InvalidFeedback with every error."""
    errors: dict[str, list[str]] = {}
    if choice not in Comparison.Choice.values:
        errors["choice"] = [f"Choose one of {', '.join(Comparison.Choice.values)}."]
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        errors["reason"] = ["The reason must be text."]
    elif len(reason) > MAX_TEXT_CHARS:
        errors["reason"] = [
            f"Keep the reason to {MAX_TEXT_CHARS} characters or fewer (it has {len(reason)})."
        ]
    if confidence in ("", None):
        confidence = None
    else:
        try:
            confidence = int(confidence)
        except (TypeError, ValueError):
            confidence = 0
        if not 1 <= confidence <= 3:
            errors["confidence"] = ["Confidence is 1 (unsure), 2 or 3 (sure)."]
    if decision_ms in ("", None):
        decision_ms = None
    else:
        try:
            decision_ms = int(decision_ms)
        except (TypeError, ValueError):
            decision_ms = -1
        if decision_ms < 0:
            errors["decision_ms"] = ["The decision time is a whole number of milliseconds, 0 or more."]
        else:
            decision_ms = min(decision_ms, MAX_DECISION_MS)
    if errors:
        raise InvalidFeedback(errors)
    return choice, reason.strip() if isinstance(reason, str) else "", confidence, decision_ms


def comparison_submit(
    *,
    annotator,
    task_id: int,
    choice: str,
    reason: str = "",
    confidence: int | None = None,
    decision_ms: int | None = None,
) -> Comparison:
    """Store an annotator's judgment of a task handed to them.

    Raises NotAssigned (403) for a task that was not handed to them and InvalidFeedback (400, by
    field) for a bad choice, a reason over 2000 characters, a confidence outside 1-3 or a negative
    decision time. Submitting a task twice returns the first judgment unchanged. The reason is
    parsed into signals. Without ``decision_ms`` (measured client-side from display to submit),
    the time since the task was last shown is used. ``comparison.created`` tells whether this
    call stored it.
    """
    task, assignment = selectors.task_of_annotator(annotator=annotator, task_id=task_id)
    choice, reason, confidence, decision_ms = _clean_judgment(
        choice=choice, reason=reason, confidence=confidence, decision_ms=decision_ms
    )
    if decision_ms is None:
        elapsed = timezone.now() - assignment.assigned_at
        decision_ms = min(max(0, int(elapsed.total_seconds() * 1000)), MAX_DECISION_MS)
    return _judgment_store(
        task=task,
        judge={"annotator": annotator},
        choice=choice,
        reason=reason,
        confidence=confidence,
        decision_ms=decision_ms,
    )


def _judgment_store(*, task, judge: dict, choice, reason, confidence, decision_ms) -> Comparison:
    """Insert one judgment with its parsed reason; a repeat by the same judge returns the first, unchanged.

    ``judge`` is ``{"annotator": user}`` or ``{"simulator": name}``; ``.created`` tells which happened.
    A person's judgment of a task that already has the people's judgments it requires raises
    ``TaskAlreadyJudged`` (the task row is locked while counting, as when handing it out).
    """
    parsed = parse_text(reason)
    try:
        with transaction.atomic():
            if "annotator" in judge:
                locked = ComparisonTask.objects.select_for_update().get(pk=task.pk)
                people = Comparison.objects.filter(task=locked, annotator__isnull=False)
                first = people.filter(**judge).first()
                if first is not None:
                    first.created = False
                    return first
                if people.count() >= locked.required_judgments:
                    raise TaskAlreadyJudged(
                        "This comparison already has all the judgments it needs; take the next one."
                    )
            comparison = Comparison.objects.create(
                task=task,
                choice=choice,
                confidence=confidence,
                reason=reason,
                signals=parsed.signals,
                sentiment=parsed.sentiment,
                decision_ms=decision_ms,
                **judge,
            )
    except IntegrityError:  # the same judge twice at once
        comparison = Comparison.objects.get(task=task, **judge)
        comparison.created = False
        return comparison
    comparison.created = True
    return comparison


@transaction.atomic
def comparison_undo(*, annotator, comparison_id: int) -> Comparison:
    """Take back the annotator's last judgment within COMPARISON_UNDO_SECONDS; its task is open again.

    Returns the deleted judgment (its task and answers, to show them again). Raises UndoUnavailable
    for any other judgment, someone else's, or one older than the window.
    """
    last = selectors.comparison_undoable(annotator=annotator)
    if last is None or last.pk != comparison_id:
        raise UndoUnavailable(
            f"Only your last judgment can be undone, within {settings.COMPARISON_UNDO_SECONDS} seconds."
        )
    # The assignment stays (not skipped), so the task is this annotator's open assignment again, and
    # the oldest one: `comparison_task_next` hands it out before the task that followed it.
    last.delete()
    return last


def comparison_skip(*, annotator, task_id: int) -> TaskAssignment:
    """Hand a task back; it is not offered to this annotator again. Skipping an answered task does nothing."""
    task, assignment = selectors.task_of_annotator(annotator=annotator, task_id=task_id)
    if not assignment.skipped and not Comparison.objects.filter(task=task, annotator=annotator).exists():
        assignment.skipped = True
        assignment.save(update_fields=["skipped"])
    return assignment


def comparison_record_simulated(
    *,
    task: ComparisonTask,
    simulator: str,
    choice: str,
    reason: str = "",
    confidence: int | None = None,
    decision_ms: int | None = None,
) -> Comparison:
    """Store a simulated annotator's judgment (``simulator`` names it, e.g. "genre-lover-v1").

    Same validation and text parsing as `comparison_submit`; one judgment per task and simulator,
    a repeat returns the first unchanged. Works on any task, though `comparison_task_create(...,
    simulated=True)` keeps simulated tasks out of people's queues.
    """
    errors = {}
    if not simulator or len(simulator) > SIMULATOR_MAX_CHARS:
        errors["simulator"] = [f"Name the simulator in 1 to {SIMULATOR_MAX_CHARS} characters."]
    try:
        choice, reason, confidence, decision_ms = _clean_judgment(
            choice=choice, reason=reason, confidence=confidence, decision_ms=decision_ms
        )
    except InvalidFeedback as invalid:
        errors.update(invalid.errors)
    if errors:
        raise InvalidFeedback(errors)
    return _judgment_store(
        task=task,
        judge={"simulator": simulator},
        choice=choice,
        reason=reason,
        confidence=confidence,
        decision_ms=decision_ms,
    )


@transaction.atomic
def annotator_exclusion_set(*, annotator, excluded: bool, actor, note: str = "") -> AnnotatorStatus:
    """Leave an annotator's judgments out of training (and the leaderboard), or take them back in."""
    status, _ = AnnotatorStatus.objects.select_for_update().get_or_create(annotator=annotator)
    status.excluded = excluded
    status.changed_by = actor
    if note:
        status.note = note
    status.save()
    return status


# --- End users ------------------------------------------------------------------------------


def _check_movie(movie_id) -> int:
    try:
        movie_id = int(movie_id)
    except (TypeError, ValueError):
        raise InvalidFeedback({"movie": ["A movie is its MovieLens id."]}) from None
    if not Movie.objects.filter(pk=movie_id).exists():
        raise InvalidFeedback({"movie": [f"There is no movie with id {movie_id}."]})
    return movie_id


def item_feedback_set(
    *, user, movie_id: int, kind: str | None, policy: str = "", version: int | None = None
) -> ItemFeedback | None:
    """Set the user's reaction to a movie ("up", "down", "not_interested"), or clear it with None.

    "not_interested" movies never come back in the user's recommendations.
    """
    movie_id = _check_movie(movie_id)
    if kind is None or kind == "":
        ItemFeedback.objects.filter(user=user, movie_id=movie_id).delete()
        return None
    if kind not in ItemFeedback.Kind.values:
        raise InvalidFeedback({"kind": [f"Choose one of {', '.join(ItemFeedback.Kind.values)}."]})
    feedback, _ = ItemFeedback.objects.update_or_create(
        user=user, movie_id=movie_id, defaults={"kind": kind, "policy": policy[:16], "version": version}
    )
    return feedback


@transaction.atomic
def item_feedback_toggle(
    *, user, movie_id: int, kind: str, policy: str = "", version: int | None = None
) -> ItemFeedback | None:
    """Like `item_feedback_set`, but choosing the reaction the user already gave clears it (a toggle button)."""
    movie_id = _check_movie(movie_id)
    current = ItemFeedback.objects.select_for_update().filter(user=user, movie_id=movie_id).first()
    if current is not None and current.kind == kind:
        current.delete()
        return None
    return item_feedback_set(user=user, movie_id=movie_id, kind=kind, policy=policy, version=version)


def list_feedback_add(
    *, user, text: str, items=(), policy: str = "", version: int | None = None
) -> ListFeedback:
    """Store an end user's comment on their recommendation list, with its parsed signals."""
    errors: dict[str, list[str]] = {}
    text = (text or "").strip()
    if not text:
        errors["text"] = ["Write a few words about the list."]
    elif len(text) > MAX_TEXT_CHARS:
        errors["text"] = [f"Keep it to {MAX_TEXT_CHARS} characters or fewer (it has {len(text)})."]
    try:
        items = [int(item) for item in items][:200]
    except (TypeError, ValueError):
        errors["items"] = ["The list is MovieLens ids."]
    if errors:
        raise InvalidFeedback(errors)
    parsed = parse_text(text)
    return ListFeedback.objects.create(
        user=user,
        text=text,
        signals=parsed.signals,
        sentiment=parsed.sentiment,
        items=items,
        policy=(policy or "")[:16],
        version=version,
    )
