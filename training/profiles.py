"""What a rater's lists are built from, read from the database in one place (`profile_for`).

The selectors that build lists (`training.serving.rank`, `training.serving.model_slate`) take a
`Profile` as an argument and never query the database; this module is where the rater's ratings
(``movies``), reactions and text signals (``feedback.selectors``) are read for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection

from feedback.models import ItemFeedback
from feedback.selectors import rater_reactions, rater_signals
from movies.models import Rating
from training.ml.data import History

from .snapshots import epoch_sql


@dataclass(frozen=True)
class Profile:
    """A rater as the list builders see them: plain values, no database behind them.

    A reaction counts at once, as a rating would (``reaction_ratings``: ``THUMB_UP_RATING``,
    ``THUMB_DOWN_RATING``, ``NOT_INTERESTED_RATING``): the next list already reflects it, without
    retraining. A rating of the same movie wins over a reaction. (Measured: ``manage.py
    item_feedback_experiment``.)
    """

    rater_id: int | None = None  # the rater (a site account's or a dataset user's); None: anonymous
    ratings: tuple[tuple[int, float, int], ...] = ()  # (movie id, rating, rated at in unix seconds)
    reactions: tuple[tuple[int, str, float], ...] = ()  # (movie id, kind, when), movies not rated
    signals: tuple[dict, ...] = ()  # text signals about the rater's taste (read for models that take them)
    reaction_ratings: Mapping[str, float] = field(default_factory=dict)  # kind -> the rating it counts as

    @property
    def rated(self) -> frozenset[int]:
        """Movies the rater rated."""
        return frozenset(movie_id for movie_id, _, _ in self.ratings)

    @property
    def hidden(self) -> frozenset[int]:
        """Movies the rater said they are not interested in: never shown again."""
        return frozenset(
            movie_id for movie_id, kind, _ in self.reactions if kind == ItemFeedback.Kind.NOT_INTERESTED
        )

    @property
    def thumbs(self) -> dict[int, str]:
        """Movie id -> reaction, for the reactions in the history (movies not rated)."""
        return {movie_id: kind for movie_id, kind, _ in self.reactions}

    @property
    def seen(self) -> np.ndarray:
        """Every movie rated or reacted to, ratings first: none is recommended again."""
        return np.array(
            [movie_id for movie_id, _, _ in self.ratings] + [movie_id for movie_id, _, _ in self.reactions],
            np.int64,
        )

    def history(self, loaded) -> History:
        """The ratings and reactions as a history in ``loaded``'s catalogue indices (movies it lacks left out)."""
        rows = [*self.ratings]
        rows += [(movie_id, self.reaction_ratings[kind], at) for movie_id, kind, at in self.reactions]
        if not rows:
            return History.empty()
        data = np.array(rows, dtype=np.float64)
        index, known = loaded.indices(data[:, 0].astype(np.int64))
        return History(index, data[known, 1], data[known, 2].astype(np.int64))


def profile_for(
    *, rater_id: int | None, reactions: bool = True, signals: bool = False, before=None
) -> Profile:
    """The rater's profile, read from the database: one query for the ratings, one for the reactions,
    and two for the text signals.

    ``reactions``: also read the account's reactions (lists that leave out only rated movies skip
    them). ``signals``: also read their text signals, for a model that takes them
    (`training.serving.needs_signals`); a rater who has neither rated nor reacted has none that matter.
    ``before`` (a datetime): only what the rater had done by then, the profile a logged list was
    made from (off-policy evaluation).
    """
    if rater_id is None:
        return Profile()
    query = (
        f"SELECT movie_id, rating, {epoch_sql('rated_at')} FROM {Rating._meta.db_table} WHERE rater_id = %s"
    )
    params: list = [rater_id]
    if before is not None:
        query += " AND rated_at < %s"
        params.append(before)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        ratings = tuple((int(movie), float(rating), int(at)) for movie, rating, at in cursor.fetchall())
    rated = {movie_id for movie_id, _, _ in ratings}
    given = rater_reactions(rater_id=rater_id, before=before) if reactions else []
    unrated = tuple((movie_id, kind, at.timestamp()) for movie_id, kind, at in given if movie_id not in rated)
    return Profile(
        rater_id=rater_id,
        ratings=ratings,
        reactions=unrated,
        signals=tuple(rater_signals(rater_id=rater_id)) if signals and (ratings or unrated) else (),
        reaction_ratings={
            ItemFeedback.Kind.UP: settings.THUMB_UP_RATING,
            ItemFeedback.Kind.DOWN: settings.THUMB_DOWN_RATING,
            ItemFeedback.Kind.NOT_INTERESTED: settings.NOT_INTERESTED_RATING,
        },
    )
