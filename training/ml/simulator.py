"""Simulated annotators: an oracle taste from held-out ratings and noisy Bradley-Terry judges.

Oracle utility of movie i for user u (on a per-user z-score scale):
- rated by u in the oracle data: ``z_ui = (rating - user_mean) / max(user_std, std_floor)``
  (the latest rating wins when a pair repeats);
- not rated: a shrunk baseline prediction on the same scale,
  ``unrated_scale * (item_effect_i + genre_affinity_ui)``, where ``item_effect_i`` is the mean of
  z over all users who rated i, shrunk towards 0 with ``prior_strength`` pseudo-ratings, and
  ``genre_affinity_ui`` the mean over i's genres of the user's shrunk mean z in that genre. This
  is the classic "bias + genre taste" baseline: 0 (neutral) when nothing is known, closer to what
  the data say as evidence grows, and ``unrated_scale`` < 1 keeps guesses less extreme than
  observed ratings. Since it varies by movie, two different slates almost never tie exactly.

Slate quality is the position-weighted mean of utilities with the same DCG weights
``1/log2(pos + 2)`` (normalised) as the reward model's list score.

``item`` in the ratings frame is a catalogue index (0..n_items-1) unless ``item_index`` (movie id
-> catalogue index) is given, in which case it is a movie id and unknown ids are dropped.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.ml.user_features import GENRES, NO_GENRE


def position_weights(k: int) -> np.ndarray:
    """float64 [k]: DCG discounts 1/log2(pos + 2), normalised to sum to one."""
    raw = 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)
    return raw / raw.sum() if k else raw


class OracleTaste:
    """Per-user oracle utilities over the whole catalogue, and the quality of a slate."""

    def __init__(
        self,
        ratings: pd.DataFrame,
        n_items: int,
        genre_matrix: np.ndarray | None = None,
        genres: Sequence[str] = GENRES,
        item_index: Mapping[int, int] | None = None,
        std_floor: float = 0.5,
        prior_strength: float = 5.0,
        unrated_scale: float = 0.5,
    ) -> None:
        """``genre_matrix`` is the [n_items, len(genres)] multi-hot (e.g. ItemFeatures.genre_multi_hot)."""
        frame = ratings.loc[:, ["user", "item", "rating", "timestamp"]].copy()
        if item_index is not None:
            frame["item"] = frame["item"].map(lambda movie: item_index.get(int(movie), -1))
        frame = frame[(frame["item"] >= 0) & (frame["item"] < n_items)]
        frame = frame.sort_values("timestamp", kind="stable").drop_duplicates(["user", "item"], keep="last")
        self.n_items = int(n_items)
        self.genres = tuple(genres)
        self.genre_matrix = (
            np.zeros((n_items, len(self.genres)), np.float64)
            if genre_matrix is None
            else np.asarray(genre_matrix, np.float64)
        )
        self.prior_strength = float(prior_strength)
        self.unrated_scale = float(unrated_scale)

        stats = frame.groupby("user")["rating"].agg(["mean", "std"])
        stats["std"] = stats["std"].fillna(0.0).clip(lower=std_floor)
        frame = frame.join(stats, on="user")
        frame["z"] = (frame["rating"] - frame["mean"]) / frame["std"]
        z_sum = np.bincount(
            frame["item"].to_numpy(np.int64), weights=frame["z"].to_numpy(), minlength=n_items
        )
        z_count = np.bincount(frame["item"].to_numpy(np.int64), minlength=n_items)
        self.item_effect = z_sum / (z_count + self.prior_strength)
        self._rated: dict[Hashable, tuple[np.ndarray, np.ndarray]] = {
            user: (group["item"].to_numpy(np.int64), group["z"].to_numpy(np.float64))
            for user, group in frame.groupby("user", sort=False)
        }
        self._utility_cache: dict[Hashable, np.ndarray] = {}
        self._taste_cache: dict[Hashable, np.ndarray] = {}
        named = [j for j, g in enumerate(self.genres) if g != NO_GENRE]
        self._named_genres = np.array(named, np.int64)

    @property
    def users(self) -> list[Hashable]:
        return list(self._rated)

    def genre_taste(self, user: Hashable) -> np.ndarray:
        """float64 [G]: the user's mean z per genre, shrunk towards 0 with ``prior_strength``."""
        if user not in self._taste_cache:
            items, z = self._rated.get(user, (np.zeros(0, np.int64), np.zeros(0)))
            hot = self.genre_matrix[items]
            self._taste_cache[user] = (z @ hot) / (hot.sum(axis=0) + self.prior_strength)
        return self._taste_cache[user]

    def taste_utility(self, user: Hashable) -> np.ndarray:
        """float64 [n_items]: the "unrated" guess for every movie, the user's own ratings left out.

        What the oracle knows of the user beyond the movies they rated: each movie's quality and
        the user's genre taste. A predictor that knew both exactly, but not which movies the user
        rates or how, could do no better than this part.
        """
        hot = self.genre_matrix
        n_genres = np.maximum(hot.sum(axis=1), 1.0)
        affinity = (hot @ self.genre_taste(user)) / n_genres
        return self.unrated_scale * (self.item_effect + affinity)

    def utility(self, user: Hashable) -> np.ndarray:
        """float64 [n_items]: oracle utility of every movie for the user (see module docstring)."""
        if user not in self._utility_cache:
            utility = self.taste_utility(user)
            items, z = self._rated.get(user, (np.zeros(0, np.int64), np.zeros(0)))
            utility[items] = z
            self._utility_cache[user] = utility
        return self._utility_cache[user]

    def quality(self, user: Hashable, slate: np.ndarray) -> float:
        """Position-weighted mean oracle utility of a slate (best position first)."""
        slate = np.asarray(slate, np.int64).reshape(-1)
        return float(self.utility(user)[slate] @ position_weights(len(slate)))

    def taste_quality(self, user: Hashable, slate: np.ndarray) -> float:
        """``quality`` under ``taste_utility``: the slate judged without the user's own ratings."""
        slate = np.asarray(slate, np.int64).reshape(-1)
        return float(self.taste_utility(user)[slate] @ position_weights(len(slate)))

    def genre_mix(self, slate: np.ndarray) -> np.ndarray:
        """float64 [G]: position-weighted share of each genre in the slate."""
        slate = np.asarray(slate, np.int64).reshape(-1)
        return position_weights(len(slate)) @ self.genre_matrix[slate]


@dataclass
class Judgement:
    """One simulated answer to "which list is better?"."""

    outcome: str  # "a" (left), "b" (right), "tie" or "both_bad"
    prob_left: float  # P(left preferred) under the annotator's Bradley-Terry model
    quality_left: float  # annotator's quality of the left slate
    quality_right: float  # annotator's quality of the right slate
    reason: str | None  # short free text for the NLP pipeline, or None


_NEGATIVE_TEMPLATES = ("too much {genre}", "less {genre} please", "not a fan of {genre}")
_POSITIVE_TEMPLATES = ("more {genre} please", "I love {genre}", "great {genre} picks")
_GENERIC_TEMPLATES = ("great picks", "better overall", "this one fits me better")
_TIE_TEMPLATES = ("hard to choose", "both are about the same")
_BOTH_BAD_TEMPLATES = ("neither fits me", "both lists miss")


class SimulatedAnnotator:
    """Answers slate comparisons like a Bradley-Terry annotator with temperature.

    ``P(left) = sigmoid((q_left - q_right) / temperature)`` on the annotator's qualities (T -> 0
    always picks the better list, large T is a coin flip); |q_left - q_right| < ``tie_threshold``
    answers "tie", and with ``both_bad_below`` set, two lists both under it answer "both_bad".
    ``noise`` > 0 gives this annotator a fixed personal deviation from the oracle (Gaussian, per
    user and movie, drawn from ``seed``), so several annotators disagree like real people do.
    ``norms`` (a ``norms.ListNorms``) adds list-level terms to the quality: the ``norms`` population.
    All randomness comes from ``seed``: the same seed and the same sequence of calls give the
    same outcomes and reasons.
    """

    def __init__(
        self,
        oracle: OracleTaste,
        temperature: float = 0.1,
        seed: int = 0,
        noise: float = 0.0,
        tie_threshold: float = 1e-3,
        both_bad_below: float | None = None,
        with_reasons: bool = True,
        reason_threshold: float = 0.02,
        norms: Any = None,
    ) -> None:
        self.oracle = oracle
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.noise = float(noise)
        self.tie_threshold = float(tie_threshold)
        self.both_bad_below = both_bad_below
        self.with_reasons = with_reasons
        self.reason_threshold = float(reason_threshold)
        self.norms = norms  # norms.ListNorms: list-level terms added to the taste quality, or None
        self._rng = np.random.default_rng(seed)
        self._deviation: dict[Hashable, np.ndarray] = {}

    def _user_seed(self, user: Hashable) -> int:
        return zlib.crc32(repr(user).encode())

    def utility(self, user: Hashable) -> np.ndarray:
        """This annotator's utilities: the oracle's plus its fixed personal noise."""
        base = self.oracle.utility(user)
        if self.noise <= 0:
            return base
        if user not in self._deviation:
            rng = np.random.default_rng([self.seed, self._user_seed(user)])
            self._deviation[user] = self.noise * rng.standard_normal(self.oracle.n_items)
        return base + self._deviation[user]

    def quality(self, user: Hashable, slate: np.ndarray) -> float:
        """Position-weighted mean utility, plus the list-level norms' value when this judge has any."""
        slate = np.asarray(slate, np.int64).reshape(-1)
        utility = self.utility(user)
        quality = float(utility[slate] @ position_weights(len(slate)))
        return quality if self.norms is None else quality + self.norms.value(slate, utility)

    def prob_left(self, quality_left: float, quality_right: float) -> float:
        diff = quality_left - quality_right
        if self.temperature <= 0:
            return float(diff > 0) + 0.5 * float(diff == 0)
        return float(0.5 * (1.0 + np.tanh(0.5 * diff / self.temperature)))  # stable sigmoid

    def compare(self, user: Hashable, slate_left: np.ndarray, slate_right: np.ndarray) -> Judgement:
        """Judge two slates for ``user``; the reason is None unless ``with_reasons``."""
        q_left = self.quality(user, slate_left)
        q_right = self.quality(user, slate_right)
        p_left = self.prob_left(q_left, q_right)
        draw = self._rng.random()  # always drawn, so the stream does not depend on the branch
        if self.both_bad_below is not None and max(q_left, q_right) < self.both_bad_below:
            outcome = "both_bad"
        elif abs(q_left - q_right) < self.tie_threshold:
            outcome = "tie"
        else:
            outcome = "a" if draw < p_left else "b"
        reason = self._reason(user, slate_left, slate_right, outcome) if self.with_reasons else None
        return Judgement(outcome, p_left, q_left, q_right, reason)

    def _reason(self, user: Hashable, slate_left: np.ndarray, slate_right: np.ndarray, outcome: str) -> str:
        """A templated reason naming the genre that most explains the choice under the oracle taste."""
        template_draw = self._rng.random()
        taste = self.oracle.genre_taste(user)
        mix_left = self.oracle.genre_mix(slate_left)
        mix_right = self.oracle.genre_mix(slate_right)
        named = self.oracle._named_genres

        def pick(templates: Sequence[str]) -> str:
            return templates[int(template_draw * len(templates))]

        if outcome == "both_bad":
            exposure = (mix_left + mix_right)[named] * np.minimum(taste[named], 0.0)
            j = int(np.argmin(exposure))
            if exposure[j] < -self.reason_threshold:
                return f"{pick(_BOTH_BAD_TEMPLATES)}, {pick(_NEGATIVE_TEMPLATES).format(genre=self.oracle.genres[named[j]])}"
            return pick(_BOTH_BAD_TEMPLATES)
        if outcome == "tie":
            return pick(_TIE_TEMPLATES)
        chosen, rejected = (mix_left, mix_right) if outcome == "a" else (mix_right, mix_left)
        difference = (chosen - rejected)[named]
        contribution = difference * taste[named]  # > 0 where the genre difference explains the choice
        j = int(np.argmax(contribution))
        if contribution[j] < self.reason_threshold:
            return pick(_GENERIC_TEMPLATES)
        genre = self.oracle.genres[named[j]]
        if taste[named[j]] < 0:  # the rejected list had more of a disliked genre
            return pick(_NEGATIVE_TEMPLATES).format(genre=genre)
        return pick(_POSITIVE_TEMPLATES).format(genre=genre)


def make_annotators(
    oracle: OracleTaste,
    n_annotators: int,
    temperature: float = 0.1,
    seed: int = 0,
    noise: float = 0.0,
    norms: Sequence[Any] | None = None,
    **kwargs: float | bool | None,
) -> list[SimulatedAnnotator]:
    """``n_annotators`` annotators (``--annotators M``) differing by seed (seed, seed+1, ...) and noise.

    ``norms`` (one ``norms.ListNorms`` per annotator, ``norms.population_norms``) makes them the
    ``norms`` population; without it they are the ``taste`` population.
    """
    return [
        SimulatedAnnotator(
            oracle,
            temperature=temperature,
            seed=seed + j,
            noise=noise,
            norms=None if norms is None else norms[j],
            **kwargs,
        )
        for j in range(n_annotators)
    ]
