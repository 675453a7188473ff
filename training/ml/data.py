"""Ratings snapshots with dense id maps, per-user histories and the per-user temporal split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

RATINGS_COLUMNS = ("user", "item", "rating", "timestamp")


@dataclass
class History:
    """What one user rated, in catalogue indices; the only input serving needs (fold-in)."""

    item_idx: np.ndarray  # int32 [n] catalogue indices of the rated movies
    ratings: np.ndarray  # float32 [n] star ratings, 0.5..5
    timestamps: np.ndarray  # int64 [n] unix seconds of each rating

    def __post_init__(self) -> None:
        self.item_idx = np.asarray(self.item_idx, dtype=np.int32).reshape(-1)
        self.ratings = np.asarray(self.ratings, dtype=np.float32).reshape(-1)
        self.timestamps = np.asarray(self.timestamps, dtype=np.int64).reshape(-1)
        if not (len(self.item_idx) == len(self.ratings) == len(self.timestamps)):
            raise ValueError("History arrays must have the same length")

    def __len__(self) -> int:
        return len(self.item_idx)

    @classmethod
    def empty(cls) -> History:
        """A user who has rated nothing yet."""
        return cls(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass
class Snapshot:
    """An immutable view of the ratings table with dense indices for users and movies.

    Interactions are sorted by (user, timestamp, movie id), so each user's history is a
    contiguous, time-ordered slice ``indptr[u]:indptr[u + 1]``. A (user, movie) pair appears
    once: if the table holds duplicates, the latest rating wins.
    """

    user_keys: np.ndarray  # [n_users] original user key of each user index (str or int)
    item_ids: np.ndarray  # int64 [n_items] MovieLens movie id of each catalogue index, ascending
    user_idx: np.ndarray  # int32 [n_ratings]
    item_idx: np.ndarray  # int32 [n_ratings]
    rating: np.ndarray  # float32 [n_ratings]
    timestamp: np.ndarray  # int64 [n_ratings]
    indptr: np.ndarray = field(init=False, repr=False)  # int64 [n_users + 1] user slices
    user_index: dict[Any, int] = field(init=False, repr=False)  # user key -> user index
    item_index: dict[int, int] = field(init=False, repr=False)  # movie id -> catalogue index

    def __post_init__(self) -> None:
        order = np.lexsort((self.item_idx, self.timestamp, self.user_idx))
        self.user_idx = np.asarray(self.user_idx, np.int32)[order]
        self.item_idx = np.asarray(self.item_idx, np.int32)[order]
        self.rating = np.asarray(self.rating, np.float32)[order]
        self.timestamp = np.asarray(self.timestamp, np.int64)[order]
        self.item_ids = np.asarray(self.item_ids, np.int64)
        counts = np.bincount(self.user_idx, minlength=self.n_users)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.user_index = {key: i for i, key in enumerate(self.user_keys.tolist())}
        self.item_index = {int(movie): i for i, movie in enumerate(self.item_ids.tolist())}

    @classmethod
    def from_ratings(cls, ratings: pd.DataFrame, movies: pd.DataFrame | None = None) -> Snapshot:
        """Build from a ``user, item, rating, timestamp`` frame.

        The catalogue is every movie id in ``ratings`` plus, when given, every ``movies.item``,
        so unrated movies still get an index (they can be recommended by content-free models
        only through their bias, but they exist for the RLHF side).
        """
        missing = set(RATINGS_COLUMNS) - set(ratings.columns)
        if missing:
            raise ValueError(f"ratings frame lacks columns {sorted(missing)}")
        frame = ratings.loc[:, list(RATINGS_COLUMNS)]
        frame = frame.sort_values("timestamp", kind="stable").drop_duplicates(["user", "item"], keep="last")
        user_codes, user_keys = pd.factorize(frame["user"], sort=True)
        movie_ids = frame["item"].to_numpy(np.int64)
        catalogue = np.unique(movie_ids)
        if movies is not None:
            catalogue = np.union1d(catalogue, movies["item"].to_numpy(np.int64))
        return cls(
            user_keys=np.asarray(user_keys.to_numpy(), dtype=object),
            item_ids=catalogue,
            user_idx=user_codes.astype(np.int32),
            item_idx=np.searchsorted(catalogue, movie_ids).astype(np.int32),
            rating=frame["rating"].to_numpy(np.float32),
            timestamp=frame["timestamp"].to_numpy(np.int64),
        )

    @property
    def n_users(self) -> int:
        return len(self.user_keys)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        return len(self.user_idx)

    def select(self, mask: np.ndarray) -> Snapshot:
        """The same users and catalogue, keeping only the interactions where ``mask`` is true."""
        return Snapshot(
            user_keys=self.user_keys,
            item_ids=self.item_ids,
            user_idx=self.user_idx[mask],
            item_idx=self.item_idx[mask],
            rating=self.rating[mask],
            timestamp=self.timestamp[mask],
        )

    def history(self, user: int) -> History:
        """The time-ordered history of one user index."""
        lo, hi = self.indptr[user], self.indptr[user + 1]
        return History(self.item_idx[lo:hi], self.rating[lo:hi], self.timestamp[lo:hi])

    def histories(self) -> list[History]:
        """One time-ordered history per user index."""
        return [self.history(u) for u in range(self.n_users)]

    def csr(self, values: str | np.ndarray = "binary") -> sp.csr_matrix:
        """The user x item matrix with ``"binary"`` ones, the ``"rating"`` values or given values."""
        if isinstance(values, str):
            data = {"binary": np.ones(self.n_ratings, np.float32), "rating": self.rating}[values]
        else:
            data = np.asarray(values, np.float32)
        return sp.csr_matrix((data, (self.user_idx, self.item_idx)), shape=(self.n_users, self.n_items))

    def item_counts(self) -> np.ndarray:
        """How many users rated each catalogue item."""
        return np.bincount(self.item_idx, minlength=self.n_items)

    def fingerprint(self) -> str:
        """A short content hash to record which data a model was trained on."""
        digest = hashlib.sha256()
        for array in (self.item_ids, self.user_idx, self.item_idx, self.rating, self.timestamp):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]


@dataclass
class Split:
    """A train/test pair over the same users and catalogue."""

    train: Snapshot  # interactions the model may see
    test: Snapshot  # held-out interactions, later in time than each user's train ones
    holdout: float  # fraction of each eligible user's ratings that went to test
    min_ratings: int  # users with fewer ratings stayed entirely in train

    def relevant(self, threshold: float = 4.0) -> dict[int, set[int]]:
        """Held-out movies rated at least ``threshold``, per user index; users without any omitted."""
        keep = self.test.rating >= threshold
        relevant: dict[int, set[int]] = {}
        for user, item in zip(
            self.test.user_idx[keep].tolist(), self.test.item_idx[keep].tolist(), strict=True
        ):
            relevant.setdefault(user, set()).add(item)
        return relevant

    def sample_users(self, n_users: int, seed: int = 0) -> Split:
        """The split with the held-out ratings of ``n_users`` random users only (all when 0 or fewer).

        Train is unchanged, so models are fitted on all of it; only evaluation gets cheaper.
        """
        test_users = np.unique(self.test.user_idx)
        if n_users <= 0 or n_users >= len(test_users):
            return self
        chosen = np.random.default_rng(seed).choice(test_users, size=n_users, replace=False)
        test = self.test.select(np.isin(self.test.user_idx, chosen))
        return Split(train=self.train, test=test, holdout=self.holdout, min_ratings=self.min_ratings)


def temporal_split(data: Snapshot | pd.DataFrame, holdout: float = 0.2, min_ratings: int = 5) -> Split:
    """Per-user temporal holdout: each user's latest ``holdout`` fraction of ratings goes to test.

    A user with ``n >= min_ratings`` ratings gives ``max(1, floor(holdout * n))`` of them to
    test; users with fewer keep everything in train. Order is (timestamp, movie id), so ties on
    timestamp are broken by movie id and the split is deterministic. Each interaction lands in
    exactly one side, so nothing from test leaks into train.
    """
    if not 0.0 < holdout < 1.0:
        raise ValueError("holdout must be in (0, 1)")
    snapshot = data if isinstance(data, Snapshot) else Snapshot.from_ratings(data)
    counts = np.diff(snapshot.indptr)
    n_test = np.where(counts >= min_ratings, np.maximum(1, np.floor(holdout * counts)), 0)
    position = np.arange(snapshot.n_ratings) - snapshot.indptr[snapshot.user_idx]
    from_end = counts[snapshot.user_idx] - 1 - position
    test_mask = from_end < n_test[snapshot.user_idx]
    return Split(
        train=snapshot.select(~test_mask),
        test=snapshot.select(test_mask),
        holdout=holdout,
        min_ratings=min_ratings,
    )


def hold_out_users(split: Split, fraction: float, fold: int = 0, seed: int = 0) -> tuple[Split, Snapshot]:
    """Users the models never see: a random ``fraction`` of the users with held-out ratings.

    Returns the split with only their held-out ratings in test (their train ratings stay in
    ``split.train``: the history they are folded in from at evaluation time, as a new account's
    ratings are at request time) and the train part without any of their ratings, which is what
    the models are fitted on. Folds ``0 .. floor(1 / fraction) - 1`` hold out disjoint users (one
    shuffle per ``seed``), so together they can evaluate nearly every user once.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("the share of users held out must be in (0, 1)")
    candidates = np.unique(split.test.user_idx)
    n_unseen = max(1, round(fraction * len(candidates)))
    n_folds = len(candidates) // n_unseen
    if not 0 <= fold < n_folds:
        raise ValueError(
            f"fold {fold} does not exist: holding out {fraction:g} of the users gives folds 0 to {n_folds - 1}"
        )
    order = np.random.default_rng(seed).permutation(candidates)
    unseen = order[fold * n_unseen : (fold + 1) * n_unseen]
    test = split.test.select(np.isin(split.test.user_idx, unseen))
    fit_on = split.train.select(~np.isin(split.train.user_idx, unseen))
    return Split(train=split.train, test=test, holdout=split.holdout, min_ratings=split.min_ratings), fit_on


def item_genres(snapshot: Snapshot, movies: pd.DataFrame) -> list[frozenset[str]]:
    """Genre sets aligned to the snapshot's catalogue indices (empty for unknown movies)."""
    by_movie = dict(zip(movies["item"].astype("int64").tolist(), movies["genres"].tolist(), strict=True))
    return [frozenset(by_movie.get(int(movie)) or ()) for movie in snapshot.item_ids.tolist()]


def read_movielens(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a MovieLens CSV release into the frames the Django side hands over.

    Returns ``ratings`` (user, item, rating, timestamp) and ``movies`` (item, title, year,
    genres as a list of str; year is nullable).
    """
    directory = Path(directory)
    raw = pd.read_csv(directory / "ratings.csv")
    ratings = pd.DataFrame(
        {
            "user": raw["userId"].astype("int64"),
            "item": raw["movieId"].astype("int64"),
            "rating": raw["rating"].astype("float32"),
            "timestamp": raw["timestamp"].astype("int64"),
        }
    )
    raw_movies = pd.read_csv(directory / "movies.csv")
    titles = raw_movies["title"].astype("string").str.strip()
    year = titles.str.extract(r"\((\d{4})\)\s*$", expand=False).astype("Int64")
    genres = [
        [] if g in ("(no genres listed)", "") else str(g).split("|")
        for g in raw_movies["genres"].fillna("").tolist()
    ]
    movies = pd.DataFrame(
        {
            "item": raw_movies["movieId"].astype("int64"),
            "title": titles.str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True),
            "year": year,
            "genres": genres,
        }
    )
    return ratings, movies


def subsample_users(ratings: pd.DataFrame, n_users: int, seed: int = 0) -> pd.DataFrame:
    """Keep the ratings of ``n_users`` users drawn at random (for fast tests and smoke runs)."""
    users = ratings["user"].drop_duplicates().to_numpy()
    chosen = np.random.default_rng(seed).choice(users, size=min(n_users, len(users)), replace=False)
    return ratings[ratings["user"].isin(chosen)].reset_index(drop=True)
