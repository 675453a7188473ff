"""Recommendations on the request path: numpy scoring of the active model versions, never TensorFlow.

The lists users are shown (For you, with the running online comparison's interleaving; more like
this; comparison slates) and the record of what was shown. The models come from ``training.store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db.models import Count, F, Q, prefetch_related_objects
from django.utils import timezone

from feedback.lists import Slate
from feedback.models import ItemFeedback
from movies.models import Movie, Rating
from movies.selectors import rater_for_user
from training.ml.data import History
from training.ml.ope import plackett_luce_sample, position_marginals
from training.ml.steering import POOL_FACTOR, Steering, steer

from .models import ModelVersion, ShownList
from .online import INTERLEAVED_POLICY, in_experiment, interleave, running_experiment
from .profiles import Profile, profile_for
from .store import POLICY_ALGORITHMS, SERVABLE_ALGORITHMS, LoadedModel, models

POLICY_CHOICES = ("active", "popularity", *SERVABLE_ALGORITHMS)
EXPLORE_DRAWS = 1000  # Gumbel-top-k draws that estimate an explored list's propensities


class UnknownPolicy(Exception):
    pass


@dataclass
class Recommendation:
    movie: Movie
    score: float
    reason: str


@dataclass
class RecommendationList:
    policy: str
    version: int | None
    items: list[Recommendation]


@dataclass(frozen=True)
class Ranked:
    """A list chosen for a profile, as movie ids: what the pure selector `rank` returns."""

    policy: str  # the model's algorithm, or "popularity"
    version: int | None
    movie_ids: tuple[int, ...] = ()  # best first
    scores: tuple[float, ...] = ()
    because: tuple[int, ...] = ()  # per movie: the rated or liked movie that explains it best
    moved: frozenset[int] = frozenset()  # movies ranked higher with the rater's text signals than without
    fallback: bool = False  # no model list for this profile: the popularity list, without ``exclude``
    exclude: frozenset[int] = frozenset()


def popular_diverse(*, exclude: set[int], k: int, pool_factor: int = 8) -> list[Recommendation]:
    """The most-rated movies, interleaving genres so the list is not one genre deep."""
    pool = list(
        Movie.objects.filter(num_ratings__gt=0)
        .exclude(pk__in=exclude)
        .order_by(F("num_ratings").desc(), "id")[: k * pool_factor]
    )
    # Genre names as plain tuples: prefetching Genre objects for the whole pool costs ~15 ms.
    names_by_movie: dict[int, list[str]] = {movie.pk: [] for movie in pool}
    pairs = Movie.genres.through.objects.filter(movie_id__in=list(names_by_movie)).values_list(
        "movie_id", "genre__name"
    )
    for movie_id, name in pairs:
        names_by_movie[movie_id].append(name)
    genres = [names_by_movie[movie.pk] for movie in pool]
    remaining = list(range(len(pool)))  # pool positions not chosen yet, in popularity order
    chosen: list[Movie] = []
    shown: dict[str, int] = {}

    def crowding(position: int) -> float:
        names = genres[position]
        return sum(shown.get(name, 0) for name in names) / max(1, len(names))

    while remaining and len(chosen) < k:
        # The least crowded of the next 2k movies; ties go to the more popular one.
        slot = min(range(min(len(remaining), k * 2)), key=lambda i: (crowding(remaining[i]), i))
        best = remaining.pop(slot)
        chosen.append(pool[best])
        for name in genres[best]:
            shown[name] = shown.get(name, 0) + 1
    prefetch_related_objects(chosen, "genres")  # pages show them; 2 queries for the k chosen
    return [
        Recommendation(
            movie,
            float(movie.num_ratings),
            f"Popular: {movie.num_ratings:,} rating{'s' if movie.num_ratings != 1 else ''}",
        )
        for movie in chosen
    ]


def needs_signals(loaded: LoadedModel | None) -> bool:
    """Whether a loaded model reads the rater's text signals: a policy with signal inputs."""
    return (
        loaded is not None
        and loaded.algorithm in POLICY_ALGORITHMS
        and bool(getattr(loaded.scorer, "signal_dim", 0))
    )


def signal_vector(loaded: LoadedModel, profile: Profile) -> np.ndarray | None:
    """The signal vector a policy with text-signal inputs reads; None without signals."""
    if profile.rater_id is None or not needs_signals(loaded) or not profile.signals:
        return None
    from training.ml.user_features import GENRES, signal_features

    return signal_features(list(profile.signals), GENRES)


def signal_reason(movie: Movie, signals: list[dict]) -> str:
    """Why what the user said moved ``movie`` up: the latest of their positive signals it answers
    (a genre it has, the decade or age it is from), in the user's own words; else their comments."""
    genres = {genre.name.lower() for genre in movie.genres.all()}
    year = movie.year
    for signal in reversed(signals):
        if float(signal.get("polarity", 0.0)) <= 0:
            continue
        aspect, value = str(signal.get("aspect", "")), str(signal.get("value", "")).lower()
        words = str(signal.get("span") or value)
        decade = value[:-1] if value.endswith("s") and value[:-1].isdigit() else ""
        answers = (
            (aspect == "genre" and value in genres)
            or (aspect == "decade" and year is not None and decade and int(decade) <= year < int(decade) + 10)
            or (aspect == "decade" and year is not None and value == "old" and year < 2000)
            or (aspect == "decade" and year is not None and value == "recent" and year >= 2000)
        )
        if answers:
            return f"Moved up by what you said: “{words}”"
    return "Moved up by your comments on earlier lists"


def recommend(
    *, rater_id: int | None, policy: str = "active", k: int = 20, with_genres: bool = False
) -> RecommendationList:
    """Top-k for a rater (a site account's or a dataset user's), never a movie they rated."""
    if policy not in POLICY_CHOICES:
        raise UnknownPolicy(f"Unknown policy {policy!r}; choose one of {', '.join(POLICY_CHOICES)}.")
    if policy == "active":
        loaded = models.served()
    else:
        loaded = models.active(policy) if policy in SERVABLE_ALGORITHMS else None
    return recommend_from(loaded, rater_id=rater_id, k=k, with_genres=with_genres)


def recommend_from(
    loaded: LoadedModel | None, *, rater_id: int | None, k: int = 20, with_genres: bool = False, before=None
) -> RecommendationList:
    """Top-k of one loaded model (popularity without one), never a movie the rater rated or hid;
    with ``before``, from the rater's profile as it was then (`training.profiles.profile_for`)."""
    profile = profile_for(rater_id=rater_id, signals=needs_signals(loaded), before=before)
    return recommend_for(loaded, profile, k=k, with_genres=with_genres)


def recommend_for(
    loaded: LoadedModel | None, profile: Profile, *, k: int = 20, with_genres: bool = False
) -> RecommendationList:
    """`rank`'s list for the profile, with its movies read and each one's reason written."""
    return present(rank(loaded, profile, k=k), profile, k=k, with_genres=with_genres)


def rank(loaded: LoadedModel | None, profile: Profile, *, k: int) -> Ranked:
    """Top-k movie ids of one loaded model for a profile: never a movie the profile rated or reacted
    to. A pure selector: what it needs comes as arguments, and it never queries the database.

    Without a model, or for a profile the model knows nothing of, the answer is the popularity list
    (`Ranked.fallback`) without the movies rated or hidden.
    """
    if loaded is None:  # rated, and "not interested": those never come back
        return Ranked("popularity", None, fallback=True, exclude=profile.rated | profile.hidden)
    history, excluded = profile.history(loaded), profile.seen  # seen: every rating and reaction
    if not len(history):
        return Ranked("popularity", None, fallback=True, exclude=frozenset(excluded.tolist()))
    # Rated movies in the history are excluded by the scorer; the others need spare slots.
    spare = len(np.setdiff1d(excluded, loaded.item_ids[history.item_idx]))
    moved_up: set[int] = set()  # by what the user said: ranked higher with their signals than without
    rater_id = profile.rater_id
    if loaded.algorithm in POLICY_ALGORITHMS:
        vector = signal_vector(loaded, profile)
        best, scores = loaded.scorer.top_k(history, k=k + spare, signals=vector, key=rater_id)
        if vector is not None:
            plain, _ = loaded.scorer.top_k(history, k=k + spare, signals=None, key=rater_id)
            rank_without = {int(index): rank for rank, index in enumerate(plain)}
            moved_up = {
                int(index)
                for rank, index in enumerate(best)
                if rank_without.get(int(index), len(plain)) > rank
            }
    else:
        best, scores = loaded.scorer.top_k(history, k=k + spare, exclude_rated=True)
    movie_ids = loaded.item_ids[best]
    keep = ~np.isin(movie_ids, excluded)  # also drop rated movies the model's catalogue lacks
    best, scores, movie_ids = best[keep][:k], scores[keep][:k], movie_ids[keep][:k]
    because = loaded.item_ids[loaded.scorer.explain_many(history, best)].tolist()
    return Ranked(
        loaded.algorithm,
        loaded.version,
        tuple(movie_ids.tolist()),
        tuple(scores.tolist()),
        tuple(because),
        frozenset(int(loaded.item_ids[index]) for index in moved_up),
    )


def present(ranked: Ranked, profile: Profile, *, k: int, with_genres: bool = False) -> RecommendationList:
    """The ranked movies read from the catalogue, each with why it is there (the popularity list
    for a fallback)."""
    if ranked.fallback:
        return RecommendationList("popularity", None, popular_diverse(exclude=set(ranked.exclude), k=k))
    moved, thumbs = ranked.moved, profile.thumbs
    queryset = Movie.objects.prefetch_related("genres") if with_genres or moved else Movie.objects.all()
    movies = queryset.in_bulk([*ranked.movie_ids, *ranked.because])
    items = []
    for movie_id, score, reason_id in zip(ranked.movie_ids, ranked.scores, ranked.because, strict=True):
        if movie_id not in movies:
            continue  # removed from the catalogue since the model was trained
        reason_movie = movies.get(reason_id)
        reason = ""
        if movie_id in moved:
            reason = signal_reason(movies[movie_id], list(profile.signals))
        elif reason_movie is not None:
            verb = "liked" if thumbs.get(reason_id) == ItemFeedback.Kind.UP else "rated"
            reason = f"Because you {verb} {reason_movie.display_title}"
        items.append(Recommendation(movies[movie_id], float(score), reason))
    return RecommendationList(ranked.policy, ranked.version, items)


def recommendations_for_user(
    *,
    user,
    k: int = 20,
    policy: str = "active",
    steering: Steering | None = None,
    rng: np.random.Generator | None = None,
) -> RecommendationList:
    """For pages: the list with each movie's genres loaded; while an online comparison runs, the
    interleaved list for the users in its share. A user who steers the list (``steering``) gets the
    served policy's list re-ranked, not the interleaved one: a steered list says nothing fair about
    which of two policies the user prefers, so it stays out of the comparison."""
    rater = rater_for_user(user)
    rater_id = rater.pk if rater else None
    steering = steering or Steering()
    recs = None
    if policy == "active" and rater_id is not None and not steering.active:
        recs = interleaved_for(rater_id=rater_id, k=k)
    propensities: list[float] = []
    if recs is None and policy == "active" and rater_id is not None and not steering.active:
        explored = _explored_list(rater_id=rater_id, k=k, rng=rng or np.random.default_rng())
        if explored is not None:
            recs, propensities = explored
    if recs is None:
        recs = recommend_steered(rater_id=rater_id, policy=policy, k=k, steering=steering, with_genres=True)
    if rater_id is not None and policy == "active" and recs.items:
        log_shown_list(rater_id=rater_id, recs=recs, steered=steering.active, propensities=propensities)
    return recs


def _explored_list(
    *, rater_id: int, k: int, rng: np.random.Generator
) -> tuple[RecommendationList, list[float]] | None:
    """For a share ``FOR_YOU_EXPLORE_SHARE`` of lists: k of the served policy's best
    ``FOR_YOU_EXPLORE_CANDIDATES``, sampled (Plackett-Luce, ``training.ml.ope``) instead of its top k,
    with each shown movie's propensity at its position. The lists candidates are evaluated on
    off-policy (``training.ope``); None for the other lists and for users without a model."""
    if settings.FOR_YOU_EXPLORE_SHARE <= 0 or rng.random() >= settings.FOR_YOU_EXPLORE_SHARE:
        return None
    pool = recommend(rater_id=rater_id, k=max(k, settings.FOR_YOU_EXPLORE_CANDIDATES), with_genres=True)
    if pool.version is None or len(pool.items) <= k:
        return None
    scores = np.array([item.score for item in pool.items], np.float64)
    temperature = settings.FOR_YOU_EXPLORE_TEMPERATURE
    picks = plackett_luce_sample(scores, k, temperature, rng)
    marginals = position_marginals(scores, k, temperature, rng, draws=EXPLORE_DRAWS)
    propensities = [float(marginals[movie, position]) for position, movie in enumerate(picks)]
    return RecommendationList(pool.policy, pool.version, [pool.items[i] for i in picks]), propensities


def recommend_steered(
    *,
    rater_id: int | None,
    policy: str = "active",
    k: int = 20,
    steering: Steering,
    with_genres: bool = False,
) -> RecommendationList:
    """``recommend``, re-ranked at request time as the user asked (``training.ml.steering``): the
    policy recommends ``k * POOL_FACTOR`` movies and the k best after steering are shown."""
    if not steering.active:
        return recommend(rater_id=rater_id, policy=policy, k=k, with_genres=with_genres)
    pool = recommend(rater_id=rater_id, policy=policy, k=k * POOL_FACTOR, with_genres=with_genres)
    return steer_list(pool, steering=steering, k=k)


def steer_list(recs: RecommendationList, *, steering: Steering, k: int) -> RecommendationList:
    """The k movies of ``recs`` to show after steering, best first."""
    if not recs.items:
        return recs
    movies = [item.movie for item in recs.items]
    in_genre = np.zeros(len(movies), bool)
    if steering.genre:
        focused = set(
            Movie.genres.through.objects.filter(
                movie_id__in=[movie.pk for movie in movies], genre__name=steering.genre
            ).values_list("movie_id", flat=True)
        )
        in_genre = np.array([movie.pk in focused for movie in movies])
    chosen = steer(
        rank_scores=-np.arange(len(movies), dtype=np.float64),
        num_ratings=np.array([movie.num_ratings for movie in movies], dtype=np.float64),
        years=np.array([movie.year if movie.year else np.nan for movie in movies], dtype=np.float64),
        in_genre=in_genre,
        steering=steering,
        k=k,
    )
    return RecommendationList(recs.policy, recs.version, [recs.items[i] for i in chosen.tolist()])


def log_shown_list(
    *, rater_id: int, recs: RecommendationList, steered: bool = False, propensities: list[float] | None = None
) -> None:
    """Record what the user was shown (``ShownList``): the policy, its version, the movies in order,
    and for an explored list each movie's propensity at its position."""
    version_id = None
    if recs.version is not None:
        version_id = (
            ModelVersion.objects.filter(algorithm=recs.policy, version=recs.version)
            .values_list("id", flat=True)
            .first()
        )
    ShownList.objects.create(
        rater_id=rater_id,
        policy=recs.policy,
        version_id=version_id,
        movies=[item.movie.pk for item in recs.items],
        propensities=propensities or [],
        steered=steered,
    )


def shown_list_outcomes(*, since=None) -> list[dict]:
    """Per policy and version: lists shown, and what the users later did with the shown movies
    (rated 4 or more, rated 2 or less), per shown movie. The realised side of the reward-hacking watch."""
    lists = ShownList.objects.all()
    if since is not None:
        lists = lists.filter(shown_at__gte=since)
    first_shown: dict[tuple, dict[tuple[int, int], object]] = {}
    counts: dict[tuple, list[int]] = {}
    for rater, policy, version, steered, movies, shown_at in lists.order_by("shown_at").values_list(
        "rater_id", "policy", "version_id", "steered", "movies", "shown_at"
    ):
        key = (policy, version, steered)
        counts.setdefault(key, [0, 0])[0] += 1
        seen = first_shown.setdefault(key, {})
        for movie in movies:
            seen.setdefault((rater, movie), shown_at)
    rows = []
    for key, seen in first_shown.items():
        raters = {rater for rater, _ in seen}
        good = bad = 0
        for rater, movie, rating, at in Rating.objects.filter(rater_id__in=raters).values_list(
            "rater_id", "movie_id", "rating", "rated_at"
        ):
            shown_at = seen.get((rater, movie))
            if shown_at is None or at < shown_at:
                continue
            good += rating >= 4.0
            bad += rating <= 2.0
        rows.append(
            {
                "policy": key[0],
                "version_id": key[1],
                "steered": key[2],
                "lists": counts[key][0],
                "shown_movies": len(seen),
                "rated_high": good,
                "rated_low": bad,
                "high_share": good / len(seen) if seen else 0.0,
            }
        )
    return sorted(rows, key=lambda row: -row["lists"])


def shown_lists_prune(*, keep_days: int) -> int:
    """Delete shown lists older than ``keep_days`` days; returns how many."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = ShownList.objects.filter(shown_at__lt=cutoff).delete()
    return deleted


def interleaved_for(*, rater_id: int, k: int) -> RecommendationList | None:
    """The team-draft list of the running online comparison, if this user is in its share and both
    sides load; None otherwise (the user gets what is served)."""
    experiment = running_experiment()
    if experiment is None or not in_experiment(experiment, rater_id):
        return None
    control, candidate = models.version(experiment.control), models.version(experiment.candidate)
    if control is None or candidate is None:
        return None
    profile = profile_for(rater_id=rater_id, signals=needs_signals(control) or needs_signals(candidate))
    lists = [recommend_for(side, profile, k=k, with_genres=True) for side in (control, candidate)]
    if any(side.policy == "popularity" for side in lists):
        return None  # a user the models know nothing about yet: no comparison to make
    by_movie = {item.movie.pk: item for side in reversed(lists) for item in side.items}
    movies, _ = interleave(
        experiment=experiment,
        rater_id=rater_id,
        control=[item.movie.pk for item in lists[0].items],
        candidate=[item.movie.pk for item in lists[1].items],
        k=k,
    )
    return RecommendationList(INTERLEAVED_POLICY, None, [by_movie[movie] for movie in movies])


SIMILAR_POOL = 50  # nearest movies by embedding read from the database before the rerank
SIMILAR_SHRINK = 10.0  # ratings at which a movie's similarity counts half (few ratings, noisy embedding)
SIMILAR_MIN_RATINGS = 10  # fewer, and a movie's embedding says too little: its genres decide instead


def similar_movies(*, movie: Movie, k: int = 10) -> RecommendationList:
    """ "More like this" for a movie: by the recommender's item embeddings, or else by genres.

    With an active recommender that knows the movie and at least ``SIMILAR_MIN_RATINGS`` ratings
    of it: the cosine similarity of the recommender's output embeddings (movies that the same
    users go on to like), times ``n / (n + SIMILAR_SHRINK)`` for a movie with ``n`` ratings, so
    that a movie seen by a handful of users, whose embedding says little, does not lead the list
    (policy ``"base"``). Otherwise the most-rated movies sharing the most genres with it (policy
    ``"genres"``); empty for a movie without genres.
    """
    loaded = models.active("base") if movie.num_ratings >= SIMILAR_MIN_RATINGS else None
    if loaded is not None:
        index, known = loaded.indices(np.asarray([movie.pk], np.int64))
        if known[0]:
            return RecommendationList(
                "base", loaded.version, _nearest_by_embedding(movie, loaded, int(index[0]), k)
            )
    return RecommendationList("genres", None, _same_genres(movie, k))


def _nearest_by_embedding(movie: Movie, loaded: LoadedModel, index: int, k: int) -> list[Recommendation]:
    nearest, cosines = loaded.scorer.nearest_items(index, max(SIMILAR_POOL, 2 * k))
    movie_ids = loaded.item_ids[nearest].tolist()
    movies = Movie.objects.prefetch_related("genres").in_bulk(movie_ids)
    because = f"Often liked by people who liked {movie.display_title}"
    scored = []
    for other_id, cosine in zip(movie_ids, cosines.tolist(), strict=True):
        other = movies.get(other_id)
        if other is None:
            continue  # removed from the catalogue since the model was trained
        shrink = other.num_ratings / (other.num_ratings + SIMILAR_SHRINK)
        scored.append((cosine * shrink, other.pk, other))
    scored.sort(key=lambda entry: (-entry[0], entry[1]))
    return [Recommendation(other, score, because) for score, _, other in scored[:k]]


def _same_genres(source: Movie, k: int) -> list[Recommendation]:
    """The most-rated movies sharing the most genres with ``source`` (score: genres shared)."""
    genre_ids = {genre.pk for genre in source.genres.all()}  # prefetched by the pages' selectors
    if not genre_ids:
        return []
    movies = (
        Movie.objects.filter(num_ratings__gte=SIMILAR_MIN_RATINGS)
        .exclude(pk=source.pk)
        .annotate(shared=Count("genres", filter=Q(genres__in=genre_ids)))
        .filter(shared__gt=0)
        .order_by("-shared", F("num_ratings").desc(), "id")
        .prefetch_related("genres")[:k]
    )
    return [
        Recommendation(
            movie,
            float(movie.shared),
            "Also " + ", ".join(genre.name for genre in movie.genres.all() if genre.pk in genre_ids),
        )
        for movie in movies
    ]


def _plackett_luce_sample(
    scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """k items without replacement from softmax(scores / temperature); returns them and log-probability."""
    logits = scores.astype(np.float64) / max(temperature, 1e-6)
    logits -= logits[np.isfinite(logits)].max()
    weights = np.where(np.isfinite(logits), np.exp(logits), 0.0)
    chosen, logprob = [], 0.0
    for _ in range(min(k, int((weights > 0).sum()))):
        total = weights.sum()
        pick = int(rng.choice(len(weights), p=weights / total))
        logprob += float(np.log(weights[pick] / total))
        chosen.append(pick)
        weights[pick] = 0.0
    return np.asarray(chosen, np.int64), logprob


def slate_for(
    *,
    rater_id: int,
    policy: str,
    k: int = 10,
    explore: bool = False,
    temperature: float = 0.3,
    candidates: int = 200,
    rng: np.random.Generator | None = None,
    version: ModelVersion | None = None,
) -> Slate:
    """A list for a comparison task from one source.

    ``explore`` samples from a Plackett-Luce distribution over the source's top ``candidates``
    (softmax of score / temperature) and records the list's probability; without it the list is
    the deterministic top-k (probability 1). ``random`` draws uniformly among movies with ratings
    and ``worst`` takes the lowest-scored of the 500 most popular movies for the rater: both make
    clearly worse lists for gold tasks.
    """
    rng = rng or np.random.default_rng()
    if policy == "random":
        profile = profile_for(rater_id=rater_id, reactions=False)
        catalogue = list(Movie.objects.filter(num_ratings__gt=0).values_list("id", flat=True))
        return random_slate(catalogue, profile, k=k, rng=rng)
    if version is not None:
        loaded = models.version(version)
    elif policy == "active":
        loaded = models.served()
    else:
        loaded = models.active("base" if policy == "worst" else policy)
    if loaded is None:
        raise UnknownPolicy(f"No servable model for {policy!r}.")
    profile = profile_for(rater_id=rater_id)
    if policy == "worst":
        popular = list(
            Movie.objects.filter(num_ratings__gt=0)
            .order_by("-num_ratings")
            .values_list("id", flat=True)[:500]
        )
        return worst_slate(loaded, profile, popular=popular, k=k)
    return model_slate(
        loaded, profile, k=k, explore=explore, temperature=temperature, candidates=candidates, rng=rng
    )


def random_slate(catalogue: list[int], profile: Profile, *, k: int, rng: np.random.Generator) -> Slate:
    """k movies of ``catalogue`` drawn uniformly, none the profile rated, with the list's probability."""
    rated = profile.rated
    pool = np.array([m for m in catalogue if m not in rated], np.int64)
    picks = rng.choice(pool, size=min(k, len(pool)), replace=False)
    probability = float(np.exp(-np.sum(np.log(len(pool) - np.arange(len(picks))))))
    return Slate(picks.tolist(), "random", None, None, True, probability)


def _slate_scores(loaded: LoadedModel, profile: Profile) -> tuple[History, np.ndarray, np.ndarray]:
    """The profile's history, what it has seen, and the model's scores with seen movies at -inf."""
    history, seen = profile.history(loaded), profile.seen
    scores = loaded.scorer.score(history).astype(np.float64)
    scores[history.item_idx] = -np.inf
    scores[np.isin(loaded.item_ids, seen)] = -np.inf
    return history, seen, scores


def worst_slate(loaded: LoadedModel, profile: Profile, *, popular: list[int], k: int) -> Slate:
    """The model's k lowest-scored movies among ``popular`` (the most-rated), none seen: a clearly
    worse list for gold tasks."""
    _, _, scores = _slate_scores(loaded, profile)
    index, _ = loaded.indices(np.asarray(popular, np.int64))
    pool = index[np.isfinite(scores[index])]
    picks = pool[np.argsort(scores[pool], kind="stable")[:k]]
    return Slate(loaded.item_ids[picks].tolist(), "worst", loaded.version, loaded.version_id, False, 1.0)


def model_slate(
    loaded: LoadedModel,
    profile: Profile,
    *,
    k: int,
    explore: bool = False,
    temperature: float = 0.3,
    candidates: int = 200,
    rng: np.random.Generator,
) -> Slate:
    """One model's list for a comparison task, none of it seen by the profile (see `slate_for`).
    A pure selector: it never queries the database."""
    history, rated_ids, scores = _slate_scores(loaded, profile)
    if explore:
        top = np.argpartition(-scores, min(candidates, len(scores) - 1))[:candidates]
        top = top[np.isfinite(scores[top])]
        picks, logprob = _plackett_luce_sample(scores[top], k, temperature, rng)
        items = top[picks]
        probability = float(np.exp(logprob))
    else:
        items, _ = loaded.scorer.top_k(history, k=k + len(rated_ids), exclude_rated=True)
        items = items[~np.isin(loaded.item_ids[items], rated_ids)][:k]
        probability = 1.0
    return Slate(
        loaded.item_ids[items].tolist(),
        loaded.algorithm,
        loaded.version,
        loaded.version_id,
        explore,
        probability,
    )
