"""Writes to the catalogue's ratings: every rating made on the site goes through here."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, FloatField, Value
from django.db.models.functions import Cast, Coalesce, NullIf
from django.utils import timezone

from .exceptions import InvalidRating, UnknownMovie
from .models import RATING_MAX, RATING_MIN, Movie, Rater, Rating, WatchlistEntry


def validate_rating_value(value) -> float:
    """A rating is a multiple of 0.5 from 0.5 to 5.0; anything else raises InvalidRating."""
    if isinstance(value, bool):  # a bool is an int to Python: True would be a rating of 1.0
        raise InvalidRating("A rating must be a number, not true or false.")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidRating("A rating must be a number.") from None
    if not number.is_finite():
        raise InvalidRating("A rating must be a number.")
    if number < Decimal(str(RATING_MIN)) or number > Decimal(str(RATING_MAX)):
        raise InvalidRating(f"A rating must be between {RATING_MIN} and {RATING_MAX}.")
    if (number * 2) % 1 != 0:
        raise InvalidRating("A rating must be a multiple of 0.5.")
    return float(number)


def rater_get_or_create(*, user) -> Rater:
    rater, _ = Rater.objects.get_or_create(user=user)
    return rater


@transaction.atomic
def rating_set(*, user, movie_id: int, value) -> Rating:
    """Create or change the user's rating of a movie, keeping the movie's statistics current."""
    rating_value = validate_rating_value(value)
    if not Movie.objects.filter(pk=movie_id).exists():
        raise UnknownMovie(f"There is no movie with id {movie_id}.")
    rater = rater_get_or_create(user=user)
    existing = Rating.objects.select_for_update().filter(rater=rater, movie_id=movie_id).first()
    now = timezone.now()
    if existing is None:
        rating = Rating.objects.create(rater=rater, movie_id=movie_id, rating=rating_value, rated_at=now)
        _movie_stats_add(movie_id=movie_id, added=rating_value, removed=None)
        return rating
    old_value = existing.rating
    existing.rating = rating_value
    existing.rated_at = now
    existing.save(update_fields=["rating", "rated_at"])
    _movie_stats_add(movie_id=movie_id, added=rating_value, removed=old_value)
    return existing


@transaction.atomic
def rating_delete(*, user, movie_id: int) -> bool:
    """Remove the user's rating of a movie; returns whether there was one."""
    rating = Rating.objects.select_for_update().filter(rater__user=user, movie_id=movie_id).first()
    if rating is None:
        return False
    rating.delete()
    _movie_stats_add(movie_id=movie_id, added=None, removed=rating.rating)
    return True


def _movie_stats_add(*, movie_id: int, added: float | None, removed: float | None) -> None:
    """Update num_ratings and avg_rating in one UPDATE; SQL evaluates every SET on the old row."""
    delta = (added is not None) - (removed is not None)
    change = (added or 0.0) - (removed or 0.0)
    old_count = Cast(F("num_ratings"), FloatField())
    old_sum = Coalesce(F("avg_rating"), Value(0.0)) * old_count
    Movie.objects.filter(pk=movie_id).update(
        num_ratings=F("num_ratings") + delta,
        avg_rating=(old_sum + Value(change)) / NullIf(old_count + Value(float(delta)), Value(0.0)),
    )


@transaction.atomic
def account_create(
    *, username: str, password: str, email: str = "", annotator: bool = False, staff: bool = False
):
    """A login-capable site account with its rater profile."""
    from django.contrib.auth.models import Group

    from .roles import ANNOTATORS_GROUP

    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    if staff:
        user.is_staff = True
        user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    if annotator:
        group, _ = Group.objects.get_or_create(name=ANNOTATORS_GROUP)
        user.groups.add(group)
    Rater.objects.create(user=user)
    return user


def watchlist_add(*, user, movie_id: int) -> WatchlistEntry:
    """Put a movie on the user's watchlist; adding it again keeps the first entry."""
    if not Movie.objects.filter(pk=movie_id).exists():
        raise UnknownMovie(f"There is no movie with id {movie_id}.")
    entry, _ = WatchlistEntry.objects.get_or_create(user=user, movie_id=movie_id)
    return entry


def watchlist_remove(*, user, movie_id: int) -> bool:
    """Take a movie off the user's watchlist; returns whether it was on it."""
    deleted, _ = WatchlistEntry.objects.filter(user=user, movie_id=movie_id).delete()
    return bool(deleted)
