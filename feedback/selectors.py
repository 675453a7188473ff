"""Reads of comparison tasks, judgments and end-user feedback; each selector owns its joins."""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from movies.models import Genre, Movie, Rater, Rating
from movies.roles import ANNOTATORS_GROUP
from recsys_site.cache import cache_get, cache_set
from training.ml.agreement import cohen_kappa, krippendorff_alpha_nominal, percent_agreement

from .exceptions import NotAssigned
from .models import AnnotatorStatus, Comparison, ComparisonTask, ItemFeedback, ListFeedback, TaskAssignment

PERSONA_FAVOURITES = 5
PERSONA_RECENT = 5
PERSONA_GENRES = 8
LEADERBOARD_CACHE_SECONDS = 24 * 3600  # keyed by the judgments' content, so never stale


# --- Comparison tasks -----------------------------------------------------------------------


def task_of_annotator(*, annotator, task_id: int) -> tuple[ComparisonTask, TaskAssignment]:
    """The permission-checked fetch of a task: only an annotator it was handed to may see or answer it.

    Raises NotAssigned for a task that does not exist and for one assigned to someone else alike,
    so task ids reveal nothing.
    """
    assignment = (
        TaskAssignment.objects.select_related("task", "task__context_rater")
        .filter(task_id=task_id, annotator=annotator)
        .first()
    )
    if assignment is None:
        raise NotAssigned("This comparison was not assigned to you.")
    return assignment.task, assignment


def open_assignment(*, annotator) -> TaskAssignment | None:
    """The annotator's oldest task that is neither answered nor skipped."""
    answered = Comparison.objects.filter(task=OuterRef("task"), annotator=annotator)
    return (
        TaskAssignment.objects.select_related("task", "task__context_rater")
        .filter(annotator=annotator, skipped=False)
        .exclude(Exists(answered))
        .order_by("assigned_at", "id")
        .first()
    )


def tasks_needing_judgments(*, annotator=None) -> QuerySet[ComparisonTask]:
    """Overlap tasks (persona tasks wanting several judgments) with fewer live assignments than required.

    A live assignment is one that was not skipped (answered or still open), so a skipped overlap
    task goes to someone else; a skipped single-judgment task is dropped. With ``annotator``, only
    tasks that annotator was never handed (a skipped task does not come back). Oldest first; the
    (simulated, required_judgments) index keeps this to the overlap tasks.
    """
    tasks = (
        ComparisonTask.objects.filter(
            simulated=False, required_judgments__gt=1, context_kind=ComparisonTask.Context.PERSONA
        )
        .annotate(live=Count("assignments", filter=Q(assignments__skipped=False)))
        .filter(live__lt=F("required_judgments"))
    )
    if annotator is not None:
        tasks = tasks.exclude(Exists(TaskAssignment.objects.filter(task=OuterRef("pk"), annotator=annotator)))
    return tasks.select_related("context_rater").order_by("created_at", "id")


def comparison_undoable(*, annotator) -> Comparison | None:
    """The annotator's last judgment while it may still be undone (COMPARISON_UNDO_SECONDS)."""
    last = Comparison.objects.filter(annotator=annotator).order_by("-created_at", "-id").first()
    if last is None or timezone.now() - last.created_at > timedelta(seconds=settings.COMPARISON_UNDO_SECONDS):
        return None
    return last


@dataclass(frozen=True)
class AnnotatorProgress:
    done_today: int  # since midnight UTC
    done_total: int
    daily_target: int
    # Tasks already made that still want a judgment this annotator could give, besides the one on
    # screen (overlap tasks others have judged, or the annotator's other open assignments). When none
    # are waiting, a new pair is made on demand, so the queue never runs dry.
    waiting: int

    @property
    def target_percent(self) -> int:
        return min(100, round(100 * self.done_today / self.daily_target)) if self.daily_target > 0 else 100

    @property
    def target_reached(self) -> bool:
        return self.done_today >= self.daily_target


def annotator_progress(*, annotator) -> AnnotatorProgress:
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = Comparison.objects.filter(annotator=annotator).aggregate(
        total=Count("id"), today=Count("id", filter=Q(created_at__gte=midnight))
    )
    answered = Comparison.objects.filter(task=OuterRef("task"), annotator=annotator)
    mine_open = (
        TaskAssignment.objects.filter(annotator=annotator, skipped=False).exclude(Exists(answered)).count()
    )
    return AnnotatorProgress(
        done_today=counts["today"],
        done_total=counts["total"],
        daily_target=settings.ANNOTATOR_DAILY_TARGET,
        waiting=max(0, mine_open - 1) + tasks_needing_judgments(annotator=annotator).count(),
    )


@dataclass(frozen=True)
class ShownMovie:
    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    in_both: bool
    avg_rating: float | None = None
    num_ratings: int = 0

    @property
    def display_title(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    @property
    def summary(self) -> str:
        """One line for a hover: "1995 · Comedy, Drama · average 3.92 from 215 ratings"."""
        parts = [str(self.year) if self.year else "year unknown", ", ".join(self.genres) or "no genres"]
        if self.num_ratings:
            plural = "s" if self.num_ratings != 1 else ""
            parts.append(f"average {self.avg_rating:.2f} from {self.num_ratings:,} rating{plural}")
        else:
            parts.append("not rated yet")
        return " · ".join(parts)


@dataclass(frozen=True)
class TaskView:
    """Everything the comparison page and the API show for a task (sources stay hidden)."""

    task: ComparisonTask
    left: list[ShownMovie]
    right: list[ShownMovie]
    context: dict


def _movies_with_genres(movie_ids) -> dict[int, Movie]:
    genres = Prefetch("genres", queryset=Genre.objects.order_by("name"))
    return Movie.objects.prefetch_related(genres).in_bulk(list(movie_ids))


def task_view(*, task: ComparisonTask, viewer=None) -> TaskView:
    """The two lists with titles, years and genres (two queries) and the context summary."""
    movies = _movies_with_genres({*task.left_items, *task.right_items})
    both = set(task.left_items) & set(task.right_items)

    def shown(ids: list[int]) -> list[ShownMovie]:
        return [
            ShownMovie(
                m,
                movies[m].name,
                movies[m].year,
                [g.name for g in movies[m].genres.all()],
                m in both,
                movies[m].avg_rating,
                movies[m].num_ratings,
            )
            for m in ids
            if m in movies  # a movie removed from the catalogue since the task was made
        ]

    if task.context_kind == ComparisonTask.Context.PERSONA:
        context = persona_summary(rater=task.context_rater)
    else:
        context = {"kind": "own"}
    return TaskView(task=task, left=shown(task.left_items), right=shown(task.right_items), context=context)


def persona_summary(*, rater: Rater) -> dict:
    """A dataset user's taste at a glance: favourites, most recent movies and genre shares (four queries)."""
    ratings = Rating.objects.filter(rater=rater)
    total = ratings.count()

    def listed(queryset) -> list[dict]:
        return [
            {"movie": r.movie_id, "title": r.movie.display_title, "rating": r.rating}
            for r in queryset.select_related("movie")
        ]

    favourites = listed(ratings.order_by("-rating", "-rated_at", "movie_id")[:PERSONA_FAVOURITES])
    recent = listed(ratings.order_by("-rated_at", "-rating", "movie_id")[:PERSONA_RECENT])
    by_genre = (
        ratings.filter(movie__genres__isnull=False)
        .values("movie__genres__name")
        .annotate(n=Count("id"), mean=Avg("rating"))
        .order_by("-n", "movie__genres__name")
    )
    genres = [
        {
            "genre": row["movie__genres__name"],
            "percent": round(100 * row["n"] / total) if total else 0,
            "mean_rating": round(row["mean"], 1),
        }
        for row in by_genre[:PERSONA_GENRES]
    ]
    return {
        "kind": "persona",
        "movielens_id": rater.movielens_id,
        "ratings": total,
        "favourites": favourites,
        "recent": recent,
        "genres": genres,
    }


def comparison_of(*, annotator, task_id: int) -> Comparison | None:
    return Comparison.objects.select_related("annotator").filter(annotator=annotator, task_id=task_id).first()


# --- Personas and sources -------------------------------------------------------------------


def personas() -> QuerySet[Rater]:
    """Dataset users (raters with a MovieLens id), in a stable order."""
    return Rater.objects.filter(movielens_id__isnull=False).order_by("id")


def account_rating_count(*, user) -> int:
    return Rating.objects.filter(rater__user=user).count()


# --- Staff: annotator quality ---------------------------------------------------------------


@dataclass
class AnnotatorRow:
    user_id: int
    username: str
    excluded: bool
    judgments: int = 0
    skipped: int = 0
    gold_seen: int = 0
    gold_correct: int = 0
    shared_tasks: int = 0
    agreement: float = math.nan  # raw agreement with others over shared tasks
    mean_kappa: float = math.nan  # mean of this annotator's pairwise kappas
    median_decision_ms: float | None = None
    decisions: list[int] = field(default_factory=list, repr=False)

    @property
    def gold_accuracy(self) -> float:
        return self.gold_correct / self.gold_seen if self.gold_seen else math.nan

    @property
    def median_decision_seconds(self) -> float | None:
        return None if self.median_decision_ms is None else self.median_decision_ms / 1000


@dataclass(frozen=True)
class PairAgreement:
    first: str
    second: str
    shared: int
    kappa: float
    agreement: float


@dataclass(frozen=True)
class AnnotatorQuality:
    rows: list[AnnotatorRow]
    pairs: list[PairAgreement]
    alpha: float  # Krippendorff's alpha (nominal) over every task judged by two people or more
    multiply_judged: int


def gold_correct(*, choice: str, gold_worse: str) -> bool:
    """The rule for gold tasks: right only when the side not known to be worse was chosen.

    "tie" and "both bad" count as wrong: one list is random or the model's worst, the other is the
    model's best guess, so a careful annotator can tell them apart.
    """
    return choice in (Comparison.Choice.LEFT, Comparison.Choice.RIGHT) and choice != gold_worse


def annotator_quality() -> AnnotatorQuality:
    """Counts, gold accuracy, agreement and decision times of everyone who annotated (three queries)."""
    users = (
        get_user_model()
        .objects.filter(
            Q(groups__name=ANNOTATORS_GROUP) | Q(comparisons__isnull=False) | Q(assignments__isnull=False)
        )
        .distinct()
    )
    excluded = set(AnnotatorStatus.objects.filter(excluded=True).values_list("annotator_id", flat=True))
    rows = {
        user_id: AnnotatorRow(user_id=user_id, username=username, excluded=user_id in excluded)
        for user_id, username in users.order_by("username").values_list("id", "username")
    }
    skipped = TaskAssignment.objects.filter(skipped=True).values("annotator_id").annotate(n=Count("id"))
    for row in skipped:
        if row["annotator_id"] in rows:
            rows[row["annotator_id"]].skipped = row["n"]
    judgments = Comparison.objects.filter(annotator__isnull=False).values_list(
        "task_id", "annotator_id", "choice", "decision_ms", "task__is_gold", "task__gold_worse"
    )
    by_task: dict[int, dict[int, str]] = defaultdict(dict)
    for task_id, user_id, choice, decision_ms, is_gold, gold_worse in judgments.iterator(chunk_size=5000):
        row = rows.get(user_id)
        if row is None:
            continue
        row.judgments += 1
        if decision_ms is not None:
            row.decisions.append(decision_ms)
        if is_gold:
            row.gold_seen += 1
            row.gold_correct += gold_correct(choice=choice, gold_worse=gold_worse)
        by_task[task_id][user_id] = choice

    shared: dict[tuple[int, int], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    multiply = [choices for choices in by_task.values() if len(choices) >= 2]
    for choices in multiply:
        for a, b in combinations(sorted(choices), 2):
            shared[(a, b)][0].append(choices[a])
            shared[(a, b)][1].append(choices[b])
    pairs: list[PairAgreement] = []
    kappas: dict[int, list[float]] = defaultdict(list)
    matches: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for (a, b), (first, second) in sorted(shared.items()):
        kappa = cohen_kappa(first, second)
        agreed = sum(x == y for x, y in zip(first, second, strict=True))
        pairs.append(
            PairAgreement(
                rows[a].username, rows[b].username, len(first), kappa, percent_agreement(first, second)
            )
        )
        for user_id in (a, b):
            matches[user_id][0] += agreed
            matches[user_id][1] += len(first)
            if not math.isnan(kappa):
                kappas[user_id].append(kappa)
    for user_id, row in rows.items():
        row.shared_tasks = sum(1 for choices in multiply if user_id in choices)
        if matches[user_id][1]:
            row.agreement = matches[user_id][0] / matches[user_id][1]
        if kappas[user_id]:
            row.mean_kappa = statistics.fmean(kappas[user_id])
        if row.decisions:
            row.median_decision_ms = statistics.median(row.decisions)
    alpha = krippendorff_alpha_nominal(list(choices.values()) for choices in multiply)
    return AnnotatorQuality(rows=list(rows.values()), pairs=pairs, alpha=alpha, multiply_judged=len(multiply))


def annotator_get(*, user_id: int):
    """An account that is an annotator or has annotated; None otherwise."""
    return (
        get_user_model()
        .objects.filter(
            Q(groups__name=ANNOTATORS_GROUP) | Q(assignments__isnull=False) | Q(is_staff=True), pk=user_id
        )
        .distinct()
        .first()
    )


def annotator_status_of(*, annotator) -> AnnotatorStatus | None:
    return AnnotatorStatus.objects.filter(annotator=annotator).first()


# --- Staff: leaderboard ---------------------------------------------------------------------

CHOICE_SCORE = {  # the left list's share of the win
    Comparison.Choice.LEFT: 1.0,
    Comparison.Choice.RIGHT: 0.0,
    Comparison.Choice.TIE: 0.5,
    Comparison.Choice.BOTH_BAD: 0.5,
}


def source_label(source: dict) -> str:
    """A source as the leaderboard names it: "base v3", "ppo v2 (explore)", "random", "popularity"."""
    policy = source.get("policy") or "?"
    label = f"{policy} v{source['version']}" if source.get("version") else policy
    if source.get("explore") and policy not in ("random",):
        label += " (explore)"
    return label


def leaderboard_pairs(*, include_simulated: bool = False) -> list[tuple[str, str, float]]:
    """(left label, right label, left's score) of every non-gold judgment (one query)."""
    judgments = Comparison.objects.filter(task__is_gold=False)
    if not include_simulated:
        judgments = judgments.filter(simulator="", task__simulated=False)
    excluded = AnnotatorStatus.objects.filter(annotator=OuterRef("annotator"), excluded=True)
    judgments = judgments.exclude(Exists(excluded))
    rows = judgments.values_list("task__left_source", "task__right_source", "choice")
    return [
        (source_label(left), source_label(right), CHOICE_SCORE[choice])
        for left, right, choice in rows.iterator()
    ]


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    label: str
    strength: float
    low: float
    high: float
    comparisons: int
    win_rate: float  # over all its comparisons, ties and "both bad" as half


@dataclass(frozen=True)
class Leaderboard:
    rows: list[LeaderboardRow]
    comparisons: int  # judgments between two different sources
    same_source: int  # judgments of one source against itself (sampled twice), not ranked
    plot_png_base64: str


def leaderboard_table(*, include_simulated: bool, rounds: int = 200, seed: int = 0) -> Leaderboard:
    """Every source ranked by Bradley-Terry strength with bootstrap intervals and a win-rate heatmap.

    The fits and the plot are cached under a hash of the judgments they are computed from, so a
    page view reads the judgments (one query) and recomputes only when they changed.
    """
    from .leaderboard import PairData

    pairs = leaderboard_pairs(include_simulated=include_simulated)
    data = PairData.from_pairs(pairs)
    same_source = len(pairs) - len(data.score)
    if not len(data.score):
        return Leaderboard(rows=[], comparisons=0, same_source=same_source, plot_png_base64="")
    digest = hashlib.sha256(
        "\x1f".join(data.labels).encode()
        + data.first.tobytes()
        + data.second.tobytes()
        + data.score.tobytes()
        + f"{rounds}:{seed}:{same_source}".encode()
    ).hexdigest()
    key = f"feedback:leaderboard:{digest}"
    board = cache_get(key, use="the leaderboard")
    if board is None:
        board = _leaderboard_compute(data, same_source, rounds=rounds, seed=seed)
        cache_set(key, board, use="the leaderboard", timeout=LEADERBOARD_CACHE_SECONDS)
    return board


def _leaderboard_compute(data, same_source: int, *, rounds: int, seed: int) -> Leaderboard:
    import base64

    from .leaderboard import bootstrap_intervals, bradley_terry, plot_win_rates, win_rate_matrix

    strengths = bradley_terry(data)
    intervals = bootstrap_intervals(data, rounds=rounds, seed=seed)
    wins, games = data.matrices()
    index = {label: i for i, label in enumerate(data.labels)}
    rows = []
    for rank, (label, strength) in enumerate(strengths.items(), start=1):
        i = index[label]
        played = games[i].sum()
        rows.append(
            LeaderboardRow(
                rank=rank,
                label=label,
                strength=strength,
                low=intervals[label][0],
                high=intervals[label][1],
                comparisons=int(played),
                win_rate=float(wins[i].sum() / played) if played else math.nan,
            )
        )
    png = plot_win_rates(win_rate_matrix(data, order=list(strengths)))
    return Leaderboard(
        rows=rows,
        comparisons=len(data.score),
        same_source=same_source,
        plot_png_base64=base64.b64encode(png).decode(),
    )


# --- Export ---------------------------------------------------------------------------------

EXPORT_FIELDS = [
    "id",
    "task",
    "created_at",
    "annotator",
    "simulator",
    "simulated",
    "excluded",
    "context_kind",
    "context_user",
    "context_account",
    "left",
    "right",
    "left_source",
    "right_source",
    "choice",
    "confidence",
    "reason",
    "signals",
    "sentiment",
    "decision_ms",
    "is_gold",
    "gold_worse",
]


def comparisons_for_export(*, ids=None) -> QuerySet[Comparison]:
    excluded = AnnotatorStatus.objects.filter(annotator=OuterRef("annotator"), excluded=True)
    judgments = Comparison.objects.select_related(
        "task", "task__context_rater", "task__context_rater__user", "annotator"
    ).annotate(annotator_excluded=Exists(excluded))
    if ids is not None:
        judgments = judgments.filter(pk__in=ids)  # a list or a queryset (the admin's selection)
    return judgments.order_by("id")


def export_record(comparison: Comparison) -> dict:
    """One preference as training and analysis read it (movie ids are MovieLens ids)."""
    task = comparison.task
    rater = task.context_rater
    return {
        "id": comparison.pk,
        "task": task.pk,
        "created_at": comparison.created_at.isoformat(),
        "annotator": comparison.annotator.username if comparison.annotator else None,
        "simulator": comparison.simulator or None,
        "simulated": bool(comparison.simulator) or task.simulated,
        "excluded": bool(getattr(comparison, "annotator_excluded", False)),
        "context_kind": task.context_kind,
        "context_user": rater.movielens_id,
        "context_account": rater.user.username if rater.user_id else None,
        "left": list(task.left_items),
        "right": list(task.right_items),
        "left_source": task.left_source,
        "right_source": task.right_source,
        "choice": comparison.choice,
        "confidence": comparison.confidence,
        "reason": comparison.reason,
        "signals": [
            {"aspect": s.get("aspect"), "value": s.get("value"), "polarity": s.get("polarity")}
            for s in comparison.signals
        ],
        "sentiment": comparison.sentiment,
        "decision_ms": comparison.decision_ms,
        "is_gold": task.is_gold,
        "gold_worse": task.gold_worse or None,
    }


def export_records(*, ids=None, chunk_size: int = 2000) -> Iterator[dict]:
    """Every judgment, oldest first, streamed from the database in chunks."""
    for comparison in comparisons_for_export(ids=ids).iterator(chunk_size=chunk_size):
        yield export_record(comparison)


# --- End-user feedback ----------------------------------------------------------------------


def item_feedback_kinds(*, user, movie_ids) -> dict[int, str]:
    """The user's reaction to each of the given movies, in one query."""
    if not user.is_authenticated:
        return {}
    rows = ItemFeedback.objects.filter(user=user, movie_id__in=list(movie_ids)).values_list(
        "movie_id", "kind"
    )
    return dict(rows)


def user_item_feedback(*, user, kind: str = "") -> QuerySet[ItemFeedback]:
    """The user's reactions to movies, newest first, optionally of one kind; movies and genres loaded."""
    feedback = ItemFeedback.objects.filter(user=user)
    if kind:
        feedback = feedback.filter(kind=kind)
    return (
        feedback.select_related("movie")
        .prefetch_related(Prefetch("movie__genres", queryset=Genre.objects.order_by("name")))
        .order_by("-created_at", "-id")
    )


def user_item_feedback_counts(*, user) -> dict[str, int]:
    """How many reactions of each kind the user gave, in one query."""
    rows = ItemFeedback.objects.filter(user=user).values("kind").annotate(n=Count("id"))
    return {row["kind"]: row["n"] for row in rows}


def not_interested_movie_ids(*, user) -> set[int]:
    return set(
        ItemFeedback.objects.filter(user=user, kind=ItemFeedback.Kind.NOT_INTERESTED).values_list(
            "movie_id", flat=True
        )
    )


def rater_reactions(*, rater_id: int, before=None) -> list[tuple[int, str, datetime]]:
    """The reactions (thumbs, "not interested") a rater's account gave, as ``(movie id, kind, when)``;
    with ``before`` (a datetime), only those given by then."""
    reactions = ItemFeedback.objects.filter(user__rater__id=rater_id, kind__in=ItemFeedback.Kind.values)
    if before is not None:
        reactions = reactions.filter(created_at__lt=before)
    return list(reactions.values_list("movie_id", "kind", "created_at"))


def rater_signals(*, rater_id: int) -> list[dict]:
    """Text-feedback signals about a rater's taste: reasons given in comparisons of their lists
    (their own or as a persona) and comments the account wrote about its recommendations."""
    signals: list[dict] = []
    for batch in (
        Comparison.objects.filter(task__context_rater_id=rater_id)
        .exclude(signals=[])
        .values_list("signals", flat=True)
    ):
        signals.extend(batch)
    for batch in (
        ListFeedback.objects.filter(user__rater__id=rater_id)
        .exclude(signals=[])
        .values_list("signals", flat=True)
    ):
        signals.extend(batch)
    return signals
