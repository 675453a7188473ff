"""Off-policy estimates of a model version on the lists "For you" explored (``training.ml.ope``).

A share of lists (``FOR_YOU_EXPLORE_SHARE``) is sampled from the served policy with each movie's
propensity logged. For each such list, the candidate's list is rebuilt from the user's profile as
it was when the list was shown; a shown movie's reward is 1 when the user later rated it 4 or more
or gave it a thumb up, else 0. The estimate is SNIPS under the item-position model, with the
logging policy's own value beside it and bootstrap intervals over lists. It judges a candidate on
what people did, with no reward model in the loop.
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings

from feedback.models import ItemFeedback
from movies.models import Rating
from training.ml.ope import LoggedList, item_position_ips

from .models import ModelVersion, ShownList
from .serving import recommend_from
from .store import models

GOOD_RATING = 4.0
MIN_MATCHES = 30  # (list, position) pairs where the candidate shows the logged movie: fewer, and
# the bootstrap interval is as narrow as it is meaningless (one match gives [x, x])


def off_policy_estimate(*, version: ModelVersion, k: int = 10, since=None, max_lists: int = 2000) -> dict:
    """The candidate's estimated value on the explored lists, against the logging policy's.

    Returns ``item_position_ips``'s numbers plus ``lists`` (explored lists used) and ``enough``
    (at least ``OPE_MIN_LISTS`` lists and ``MIN_MATCHES`` positions where the candidate would have
    shown the logged movie), or ``{"lists": 0, "enough": False, "reason": ...}`` when it cannot say
    anything.
    """
    loaded = models.version(version)
    if loaded is None:
        return {"lists": 0, "enough": False, "reason": f"{version.label} does not load."}
    explored = ShownList.objects.exclude(propensities=[]).filter(steered=False).order_by("-shown_at")
    if since is not None:
        explored = explored.filter(shown_at__gte=since)
    rows = list(explored.values_list("rater_id", "movies", "propensities", "shown_at")[:max_lists])
    if not rows:
        return {"lists": 0, "enough": False, "reason": "No explored lists are logged yet."}
    good = _good_outcomes({rater for rater, *_ in rows})
    logs, candidates = [], []
    for rater, movies, propensities, shown_at in rows:
        rewards = [float(any(at >= shown_at for at in good.get((rater, movie), ()))) for movie in movies[:k]]
        logs.append(LoggedList(movies[:k], propensities[:k], rewards))
        candidate = recommend_from(loaded, rater_id=rater, k=k, before=shown_at)
        candidates.append([item.movie.pk for item in candidate.items])
    result = item_position_ips(logs, candidates, k=k, rounds=settings.GATE_BOOTSTRAP_ROUNDS)
    result["lists"] = len(logs)
    result["enough"] = len(logs) >= settings.OPE_MIN_LISTS and result["matches"] >= MIN_MATCHES
    return result


def _good_outcomes(raters: set[int]) -> dict[tuple[int, int], list]:
    """(rater, movie) -> when the rater rated it 4 or more, or gave it a thumb up."""
    good: dict[tuple[int, int], list] = defaultdict(list)
    for rater, movie, at in Rating.objects.filter(rater_id__in=raters, rating__gte=GOOD_RATING).values_list(
        "rater_id", "movie_id", "rated_at"
    ):
        good[(rater, movie)].append(at)
    for rater, movie, at in ItemFeedback.objects.filter(
        user__rater__id__in=raters, kind=ItemFeedback.Kind.UP
    ).values_list("user__rater__id", "movie_id", "created_at"):
        good[(rater, movie)].append(at)
    return good


def describe(result: dict) -> str:
    """One sentence for staff."""
    if not result.get("lists"):
        return result.get("reason", "No explored lists are logged yet.")
    if result["matches"] < MIN_MATCHES:
        matches = result["matches"]
        shown = (
            "would never have shown a logged movie at its position"
            if not matches
            else f"would have shown the logged movie at its position only {matches} time{'s' if matches != 1 else ''}"
        )
        return (
            f"On {result['lists']} explored lists the candidate {shown}: too little evidence for an "
            f"estimate (at least {MIN_MATCHES} are needed)."
        )
    verdict = "" if result["enough"] else f" Too few lists to rely on (fewer than {settings.OPE_MIN_LISTS})."
    return (
        f"Off-policy on {result['lists']} explored lists: {result['estimate']:.3f} "
        f"[{result['estimate_low']:.3f}, {result['estimate_high']:.3f}] against the served policy's "
        f"{result['logging']:.3f}; difference {result['difference']:+.3f} "
        f"[{result['difference_low']:+.3f}, {result['difference_high']:+.3f}] "
        f"(DCG-weighted good outcomes per list; {result['matches']} matched positions).{verdict}"
    )
