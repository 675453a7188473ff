"""Online comparisons by team-draft interleaving on "For you" (``training.ml.interleaving``).

An admin starts one comparison at a time between what users get (the control) and a candidate.
A share of users, fixed by a hash of the experiment and the user, get one list both policies build
by turns; each shown movie is recorded with the side that contributed it. What those users then do
with a shown movie credits that side: a rating of 4 or more or a thumbs up counts for it, a rating
of 2 or less, a thumbs down or "not interested" against it. Per user the side with more credit
wins; the results (wins, ties, losses, the win share with its interval, the sign test) are in the
admin, the API and the leaderboard.
"""

from __future__ import annotations

import hashlib

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from feedback.models import ItemFeedback
from movies.models import Rating
from training.ml.interleaving import A, summarise, team_draft

from . import registry
from .exceptions import VersionStateError
from .models import InterleavedImpression, ModelVersion, OnlineExperiment

POSITIVE_RATING = 4.0  # a rating at least this credits the side that showed the movie
NEGATIVE_RATING = 2.0  # a rating at most this counts against it
INTERLEAVED_POLICY = "interleaved"  # what a list says it is, for staff and item feedback


def running_experiment() -> OnlineExperiment | None:
    return (
        OnlineExperiment.objects.select_related("control", "candidate")
        .filter(status=OnlineExperiment.Status.RUNNING)
        .first()
    )


@transaction.atomic
def online_experiment_start(
    *, candidate: ModelVersion, actor, share: float | None = None, note: str = ""
) -> OnlineExperiment:
    """Compare ``candidate`` with what users get now, on a ``share`` of users (INTERLEAVING_SHARE)."""
    share = settings.INTERLEAVING_SHARE if share is None else share
    if not 0.0 < share <= 1.0:
        raise VersionStateError(f"The share of users must be above 0 and at most 1, not {share}.")
    if candidate.algorithm not in registry.SERVABLE:
        raise VersionStateError(f"{candidate.display_name} is not a policy users can be shown.")
    served = registry.served_decision()
    if served is None:
        raise VersionStateError(
            "Users get popularity: serve a recommender before comparing anything with it."
        )
    if served.version_id == candidate.pk:
        raise VersionStateError(
            f"Users already get {candidate.display_name}: compare another version with it."
        )
    if running_experiment() is not None:
        raise VersionStateError("An online comparison is already running: stop it first.")
    # Loaded by id beside what users get, whatever its status: the serving decision is unchanged.
    registry.model_version_verify(version=candidate)
    try:
        return OnlineExperiment.objects.create(
            control=served.version, candidate=candidate, share=share, note=note, started_by=actor
        )
    except IntegrityError:
        raise VersionStateError("An online comparison is already running: stop it first.") from None


def online_experiment_stop(*, experiment: OnlineExperiment, actor=None) -> OnlineExperiment:
    if experiment.status != OnlineExperiment.Status.RUNNING:
        raise VersionStateError("This online comparison has already stopped.")
    experiment.status = OnlineExperiment.Status.STOPPED
    experiment.stopped_at = timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])
    return experiment


def in_experiment(experiment: OnlineExperiment, rater_id: int) -> bool:
    """Whether this user sees the interleaved list: a hash of (experiment, user) under the share."""
    digest = hashlib.sha256(f"{experiment.pk}:{rater_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < experiment.share


def interleave(
    *, experiment: OnlineExperiment, rater_id: int, control: list[int], candidate: list[int], k: int
) -> tuple[list[int], list[str]]:
    """The user's interleaved movie ids and each one's side; the same list on every request of the
    same user and lists (the coin is seeded by experiment and user). Every shown movie is recorded."""
    seed = int.from_bytes(hashlib.sha256(f"draft:{experiment.pk}:{rater_id}".encode()).digest()[:8], "big")
    shown = team_draft(control, candidate, k, np.random.default_rng(seed))
    movies = shown.movies.tolist()
    teams = [
        InterleavedImpression.Team.CONTROL if team == A else InterleavedImpression.Team.CANDIDATE
        for team in shown.teams.tolist()
    ]
    InterleavedImpression.objects.bulk_create(
        [
            InterleavedImpression(
                experiment=experiment, rater_id=rater_id, movie_id=movie, team=team, position=i
            )
            for i, (movie, team) in enumerate(zip(movies, teams, strict=True))
        ],
        ignore_conflicts=True,  # a movie keeps the side it was first shown for
    )
    return movies, teams


def online_experiment_results(experiment: OnlineExperiment) -> dict:
    """Per-user outcomes (candidate's wins, ties, losses) from actions after each impression, with
    the candidate's win share, its bootstrap interval and the sign test's p value."""
    impressions = {
        (rater, movie): (team, shown_at)
        for rater, movie, team, shown_at in InterleavedImpression.objects.filter(
            experiment=experiment
        ).values_list("rater_id", "movie_id", "team", "shown_at")
    }
    raters = {rater for rater, _ in impressions}
    credit: dict[int, list[int]] = {rater: [0, 0] for rater in raters}  # [control, candidate]

    def count(rater: int, movie: int, at, sign: int) -> None:
        shown = impressions.get((rater, movie))
        if shown is None or at < shown[1]:
            return
        credit[rater][0 if shown[0] == InterleavedImpression.Team.CONTROL else 1] += sign

    stopped = experiment.stopped_at or timezone.now()
    ratings = Rating.objects.filter(rater_id__in=raters, rated_at__lte=stopped).filter(
        Q(rating__gte=POSITIVE_RATING) | Q(rating__lte=NEGATIVE_RATING)
    )
    for rater, movie, rating, at in ratings.values_list("rater_id", "movie_id", "rating", "rated_at"):
        count(rater, movie, at, 1 if rating >= POSITIVE_RATING else -1)
    reactions = ItemFeedback.objects.filter(user__rater__id__in=raters, created_at__lte=stopped)
    for rater, movie, kind, at in reactions.values_list("user__rater__id", "movie_id", "kind", "created_at"):
        count(rater, movie, at, 1 if kind == ItemFeedback.Kind.UP else -1)
    outcomes = [int(np.sign(candidate - control)) for control, candidate in credit.values()]
    return {**summarise(outcomes, seed=experiment.pk), "shown_users": len(raters)}


MIN_USERS_FOR_WARNING = 20


def reward_hacking_warning(experiment: OnlineExperiment, results: dict) -> str:
    """A warning when the offline judges expected the candidate to win and real users say it loses:
    the gate's judge win rate (a reward model's prediction) above 0.5, and the online win share's
    95% interval below 0.5 (the proxy up, reality down). Empty otherwise."""
    predicted = (experiment.candidate.metrics or {}).get("gate/win_rate")
    if predicted is None or predicted <= 0.5 or results["users"] < MIN_USERS_FOR_WARNING:
        return ""
    if not results["high"] < 0.5:
        return ""
    return (
        f"Reward hacking? The gate's judge expected {experiment.candidate.display_name} to win "
        f"{predicted:.0%} of users against {experiment.control.display_name}; real users preferred it "
        f"in {results['share']:.0%} [{results['low']:.0%}, {results['high']:.0%}] of {results['users']}."
    )
