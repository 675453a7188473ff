"""List-level norms: what a judge of a whole list wants that no single movie's rating carries.

A ``norms`` annotator judges a list by its taste (the position-weighted mean of per-movie oracle
utilities, as ``simulator.OracleTaste``) plus four list-level terms, each at a strength of its own:

- ``redundancy``: share of the list's pairs that are near-duplicates, i.e. the same franchise
  (``title_stem``: "Toy Story" and "Toy Story 2") or the same set of at least two genres. People
  do not want three Pixar sequels or five "Action|Crime|Thriller" films in one list. Penalised.
- ``genre_variety``: share of the named genres the list covers. Wanted.
- ``decade_variety``: distinct release decades per slot. Wanted.
- ``floor_gap``: how far the list's worst movie falls below ``floor`` on the annotator's utility,
  ``max(0, floor - min utility)``. One bad film spoils a list more than its 1/K share. Penalised.

None of the four is a sum over movies: the first three depend on which movies sit together, the
last on the minimum. A reward model that scores a list as a weighted sum of per-movie scores
cannot express them; ``reward_model`` with ``set_features`` learns a weight per term.

Each annotator's strengths are the population means times a log-normal factor (same sign, spread
``strength_spread``), drawn from the seed: annotators disagree on how much each norm matters,
not on which way it points.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.ml.user_features import NO_GENRE, ItemFeatures

NORM_TERMS = ("redundancy", "genre_variety", "decade_variety", "floor_gap")
CONTENT_TERMS = NORM_TERMS[:3]  # the terms that depend only on which movies are in the list
POPULATIONS = ("taste", "norms")


@dataclass
class NormsConfig:
    """The ``norms`` population: mean strength of each list-level term and how annotators differ."""

    redundancy: float = -1.0  # per unit share of near-duplicate pairs (all 45 pairs alike: -1 z)
    genre_variety: float = 0.6  # per unit share of named genres covered (a list covers ~0.3 to 0.6)
    decade_variety: float = 0.4  # per unit distinct decades per slot (a list has ~0.2 to 0.5)
    floor_gap: float = -0.3  # per z-unit the worst movie falls below ``floor``
    floor: float = -1.0  # the utility (user z-score) under which a movie spoils the list
    strength_spread: float = 0.5  # sigma of each annotator's log-normal factor on every strength
    min_shared_genres: int = 2  # genre sets of at least this size count as near-duplicates

    def strengths(self) -> np.ndarray:
        """float64 [4]: the population's mean strengths in ``NORM_TERMS`` order."""
        return np.array([getattr(self, name) for name in NORM_TERMS], np.float64)


_SEQUEL_TAIL = re.compile(r"(\s+(part\s+)?([0-9]+|[ivx]+|chapter\s+\w+))+$")
_ARTICLE_TAIL = re.compile(r",\s+(the|a|an)$")
_ARTICLE_HEAD = re.compile(r"^(the|a|an)\s+")


def title_stem(title: str) -> str:
    """The franchise key of a title: before any ':' or ' - ', without article or sequel number.

    "Toy Story 2" and "Toy Story" -> "toy story"; "Godfather: Part II, The" -> "godfather";
    "Star Wars: Episode V - The Empire Strikes Back" -> "star wars". Deliberately simple: a title
    rule, not a franchise database ("Harry Potter and the ..." titles are not joined).
    """
    text = str(title).lower().strip()
    text = re.sub(r"\s*\(\d{4}\)\s*$", "", text)
    text = _ARTICLE_TAIL.sub("", text.split(":")[0].split(" - ")[0].strip())
    text = _SEQUEL_TAIL.sub("", text).strip()
    return _ARTICLE_HEAD.sub("", text).strip()


def franchise_ids(titles: Sequence[str]) -> np.ndarray:
    """int64 [n]: one id per title stem that at least two movies share; -1 for the rest."""
    stems = [title_stem(t) for t in titles]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    ids: dict[str, int] = {}
    out = np.full(len(stems), -1, np.int64)
    for j, stem in enumerate(stems):
        if stem and counts[stem] >= 2:
            out[j] = ids.setdefault(stem, len(ids))
    return out


@dataclass
class ListAttributes:
    """What the list-level terms read of each movie (catalogue indices)."""

    genre: np.ndarray  # float32 [n_items, G]: named-genre multi-hot ("no genres" column dropped)
    decade: np.ndarray  # int64 [n_items]: release decade index (0 = the earliest decade present)
    franchise: np.ndarray  # int64 [n_items]: franchise id (``franchise_ids``), -1 for none
    genre_key: np.ndarray = field(init=False)  # int64 [n_items]: a genre-set id, -1 under min size
    min_shared_genres: int = 2

    def __post_init__(self) -> None:
        self.genre = np.asarray(self.genre, np.float32)
        self.decade = np.asarray(self.decade, np.int64)
        self.franchise = np.asarray(self.franchise, np.int64)
        bits = (self.genre > 0.5).astype(np.int64) @ (1 << np.arange(self.genre.shape[1], dtype=np.int64))
        size = (self.genre > 0.5).sum(axis=1)
        self.genre_key = np.where(size >= self.min_shared_genres, bits, -1)

    @classmethod
    def from_item_features(
        cls, features: ItemFeatures, titles: Sequence[str] | None = None, min_shared_genres: int = 2
    ) -> ListAttributes:
        """Genres and decades from ``features``; franchises from ``titles`` (none when omitted)."""
        years = features.year_z.astype(np.float64) * features.year_std + features.year_mean
        return cls.from_catalogue(features.genre_multi_hot, features.genres, years, titles, min_shared_genres)

    @classmethod
    def from_catalogue(
        cls,
        genre_matrix: np.ndarray,
        genres: Sequence[str],
        years: np.ndarray,
        titles: Sequence[str] | None = None,
        min_shared_genres: int = 2,
    ) -> ListAttributes:
        """From a [n_items, len(genres)] multi-hot, release years (nan: the mean year) and titles."""
        named = [j for j, g in enumerate(genres) if g != NO_GENRE]
        years = np.asarray(years, np.float64)
        years = np.where(np.isfinite(years), years, np.nanmean(years) if np.isfinite(years).any() else 2000.0)
        decades = np.floor(np.round(years) / 10.0).astype(np.int64)
        n_items = len(years)
        franchise = franchise_ids(titles) if titles is not None else np.full(n_items, -1)
        return cls(
            genre=np.asarray(genre_matrix)[:, named],
            decade=decades - decades.min() if n_items else decades,
            franchise=franchise,
            min_shared_genres=min_shared_genres,
        )

    def to_arrays(self, prefix: str = "set/") -> dict[str, np.ndarray]:
        return {
            f"{prefix}genre": self.genre.astype(np.float32),
            f"{prefix}decade": self.decade.astype(np.int64),
            f"{prefix}franchise": self.franchise.astype(np.int64),
            f"{prefix}min_shared_genres": np.asarray(self.min_shared_genres, np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "set/") -> ListAttributes:
        return cls(
            genre=arrays[f"{prefix}genre"],
            decade=arrays[f"{prefix}decade"],
            franchise=arrays[f"{prefix}franchise"],
            min_shared_genres=int(arrays[f"{prefix}min_shared_genres"]),
        )

    @property
    def n_decades(self) -> int:
        return int(self.decade.max()) + 1 if len(self.decade) else 1

    def near_duplicates(self, slate: np.ndarray) -> np.ndarray:
        """bool [k, k]: pairs of the slate that are the same franchise or the same genre set."""
        slate = np.asarray(slate, np.int64).reshape(-1)
        franchise, key = self.franchise[slate], self.genre_key[slate]
        same = ((franchise[:, None] == franchise[None, :]) & (franchise[:, None] >= 0)) | (
            (key[:, None] == key[None, :]) & (key[:, None] >= 0)
        )
        np.fill_diagonal(same, False)
        return same

    def content_terms(self, slate: np.ndarray) -> np.ndarray:
        """float64 [3]: redundancy, genre variety and decade variety of a list (``CONTENT_TERMS``)."""
        slate = np.asarray(slate, np.int64).reshape(-1)
        k = len(slate)
        if k == 0:
            return np.zeros(3)
        pairs = k * (k - 1) / 2
        redundancy = self.near_duplicates(slate).sum() / 2 / pairs if pairs else 0.0
        genre_variety = float((self.genre[slate].max(axis=0) > 0.5).mean())
        decade_variety = len(np.unique(self.decade[slate])) / k
        return np.array([redundancy, genre_variety, decade_variety], np.float64)


def content_terms_batch(attributes: ListAttributes, slates: np.ndarray) -> np.ndarray:
    """float64 [n, 3]: ``content_terms`` of every row of ``slates`` [n, k]; entries < 0 are padding."""
    slates = np.atleast_2d(np.asarray(slates, np.int64))
    valid = slates >= 0
    safe = np.maximum(slates, 0)
    k_valid = valid.sum(axis=1)
    franchise = np.where(valid, attributes.franchise[safe], -1)
    key = np.where(valid, attributes.genre_key[safe], -1)
    same = ((franchise[:, :, None] == franchise[:, None, :]) & (franchise[:, :, None] >= 0)) | (
        (key[:, :, None] == key[:, None, :]) & (key[:, :, None] >= 0)
    )
    k = slates.shape[1]
    same &= ~np.eye(k, dtype=bool)[None]
    pairs = k_valid * (k_valid - 1) / 2
    redundancy = np.where(pairs > 0, same.sum(axis=(1, 2)) / 2 / np.maximum(pairs, 1), 0.0)
    genre = (attributes.genre[safe] > 0.5) & valid[:, :, None]
    genre_variety = genre.any(axis=1).mean(axis=1)
    decades = np.sort(np.where(valid, attributes.decade[safe], -1), axis=1)
    distinct = (np.diff(decades, axis=1) != 0) & (decades[:, 1:] >= 0)
    n_decades = distinct.sum(axis=1) + (decades[:, 0] >= 0)  # a step up from padding counts too
    decade_variety = np.where(k_valid > 0, n_decades / np.maximum(k_valid, 1), 0.0)
    return np.stack([redundancy, genre_variety, decade_variety], axis=1).astype(np.float64)


def norm_terms(
    attributes: ListAttributes, slate: np.ndarray, utility: np.ndarray, floor: float
) -> np.ndarray:
    """float64 [4]: ``NORM_TERMS`` of a list; ``utility`` [n_items] is the judge's per-movie utility."""
    slate = np.asarray(slate, np.int64).reshape(-1)
    gap = max(0.0, floor - float(np.min(utility[slate]))) if len(slate) else 0.0
    return np.append(attributes.content_terms(slate), gap)


@dataclass
class ListNorms:
    """One judge's list-level terms: ``strengths @ norm_terms`` is added to its taste quality."""

    attributes: ListAttributes
    strengths: np.ndarray  # float64 [4] in NORM_TERMS order
    floor: float = -1.0

    def value(self, slate: np.ndarray, utility: np.ndarray) -> float:
        return float(np.asarray(self.strengths) @ norm_terms(self.attributes, slate, utility, self.floor))


def population_norms(
    attributes: ListAttributes, config: NormsConfig, n_annotators: int, seed: int
) -> list[ListNorms]:
    """``n_annotators`` judges whose strengths are the means times a log-normal factor each."""
    rng = np.random.default_rng([seed, 15])
    means = config.strengths()
    factors = np.exp(config.strength_spread * rng.standard_normal((n_annotators, len(means))))
    return [ListNorms(attributes, means * factors[j], config.floor) for j in range(n_annotators)]


def mean_norms(attributes: ListAttributes, config: NormsConfig) -> ListNorms:
    """The population's mean judge: what the validation and test judges use."""
    return ListNorms(attributes, config.strengths(), config.floor)


class NormsJudge:
    """An ``OracleTaste`` plus list-level norms: the ``quality`` the population's mean judge sees.

    Has the parts of the ``OracleTaste`` interface the experiment's judges read (``quality``,
    ``taste_quality``, ``utility``); everything else is the oracle's.
    """

    def __init__(self, oracle: Any, norms: ListNorms) -> None:
        self.oracle = oracle
        self.norms = norms

    def __getattr__(self, name: str) -> Any:
        return getattr(self.oracle, name)

    def quality(self, user: Hashable, slate: np.ndarray) -> float:
        return self.oracle.quality(user, slate) + self.norms.value(slate, self.oracle.utility(user))

    def taste_quality(self, user: Hashable, slate: np.ndarray) -> float:
        return self.oracle.taste_quality(user, slate) + self.norms.value(
            slate, self.oracle.taste_utility(user)
        )


def label_coefficients(
    deltas: np.ndarray, chose_first: np.ndarray, l2: float = 1e-3, iterations: int = 50
) -> np.ndarray:
    """float64 [f]: logistic-regression weights (no intercept) of ``P(first chosen)`` on ``deltas``.

    ``deltas`` [n, f] are first-minus-second differences of the features the annotators' utility is
    made of (taste quality and ``NORM_TERMS``), ``chose_first`` [n] the strict labels. Fitted on
    the labels, these are the sizes the terms have *in the labels*, in the Bradley-Terry units a
    reward model learns (1 / temperature times the strength, shrunk by the annotators' noise and
    disagreement): what a reward model with exactly these features would find. Newton steps.
    """
    x = np.asarray(deltas, np.float64)
    y = np.asarray(chose_first, np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + l2 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w
