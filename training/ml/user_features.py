"""Movie features and user context (history, embedding, text-feedback signals) in plain NumPy.

Everything here is shared by reward-model training (Keras) and serving (NumPy), so both see
exactly the same inputs.

Layouts, stated once:
- item feature matrix ``[n_items, f]``: recommender item embedding (d) | genre multi-hot over
  ``GENRES`` (G) | standardised year (1) | standardised log popularity (1) | tag matrix (T).
- signal vector ``[G + 3 + T]``: per-genre preference (G) | decade preference, +1 = recent,
  -1 = old (1) | popularity preference, +1 = popular, -1 = niche (1) | overall mood (1) | per-tag
  preference (T). Every entry is in [-1, 1]; 0 means "nothing said".
- aligned item features ``[n_items, G + 3 + T]`` (:meth:`ItemFeatures.signal_aligned`): the item
  attribute each signal slot talks about, so ``signals * aligned`` is "how much this item matches
  what the user asked for": genre multi-hot | year z | popularity z | 0 (overall has no item
  attribute) | tags.
- user summary ``[3 + 2G + 2]`` (:func:`user_summary`): what the ratings say beyond the
  recommender embedding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The 19 MovieLens genres (18 named + "(no genres listed)") plus IMAX, which ml-latest uses too.
GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
    "(no genres listed)",
    "IMAX",
)
NO_GENRE = "(no genres listed)"
SIGNAL_ASPECTS = ("genre", "decade", "popularity", "title", "tag", "overall")

# Free-text spellings of a genre that the NLP module may hand over (lower-cased, singular).
_GENRE_ALIASES: dict[str, str] = {
    "children's": "Children",
    "childrens": "Children",
    "kids": "Children",
    "kid": "Children",
    "family": "Children",
    "scifi": "Sci-Fi",
    "sci fi": "Sci-Fi",
    "science fiction": "Sci-Fi",
    "film noir": "Film-Noir",
    "noir": "Film-Noir",
    "comedie": "Comedy",
    "romantic": "Romance",
    "romcom": "Romance",
    "documentarie": "Documentary",
    "doc": "Documentary",
    "animated": "Animation",
    "cartoon": "Animation",
    "scary": "Horror",
    "thriller": "Thriller",
    "musical": "Musical",
    "western": "Western",
    "war": "War",
    "imax": "IMAX",
    "action": "Action",
}
_OLD_WORDS = frozenset({"old", "older", "classic", "classics", "vintage", "retro", "oldie", "oldies"})
_NEW_WORDS = frozenset({"new", "newer", "recent", "modern", "latest", "current", "contemporary"})
_POPULAR_WORDS = frozenset(
    {"popular", "mainstream", "blockbuster", "blockbusters", "famous", "well-known", "hit", "hits"}
)
_NICHE_WORDS = frozenset(
    {
        "niche",
        "obscure",
        "indie",
        "independent",
        "hidden gem",
        "hidden gems",
        "underrated",
        "lesser-known",
        "lesser known",
        "unknown",
        "rare",
        "cult",
    }
)


@dataclass(frozen=True)
class ItemFeatures:
    """Per-movie features over catalogue indices, plus the vocabularies the signals refer to."""

    matrix: np.ndarray  # float32 [n_items, f]: embedding | genre multi-hot | year z | popularity z | tags
    embedding_dim: int  # d, the width of the recommender item embedding at the front of ``matrix``
    genres: tuple[str, ...] = GENRES  # genre vocabulary, the order of the multi-hot columns
    tag_names: tuple[str, ...] = ()  # tag vocabulary, the order of the trailing tag columns
    year_mean: float = 0.0  # mean release year used for standardising (missing years -> mean)
    year_std: float = 1.0  # std of release year used for standardising
    extra_names: tuple[str, ...] = ()  # trailing columns after the tags that no signal refers to

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_genres(self) -> int:
        return len(self.genres)

    @property
    def n_tags(self) -> int:
        return len(self.tag_names)

    @property
    def genre_multi_hot(self) -> np.ndarray:
        d = self.embedding_dim
        return self.matrix[:, d : d + self.n_genres]

    @property
    def year_z(self) -> np.ndarray:
        return self.matrix[:, self.embedding_dim + self.n_genres]

    @property
    def popularity_z(self) -> np.ndarray:
        return self.matrix[:, self.embedding_dim + self.n_genres + 1]

    @property
    def tags(self) -> np.ndarray:
        start = self.embedding_dim + self.n_genres + 2
        return self.matrix[:, start : start + self.n_tags]

    @property
    def signal_dim(self) -> int:
        return self.n_genres + 3 + self.n_tags

    def signal_aligned(self) -> np.ndarray:
        """float32 [n_items, signal_dim]: the item attribute each signal slot refers to."""
        overall = np.zeros((self.n_items, 1), np.float32)
        return np.concatenate(
            [self.genre_multi_hot, self.year_z[:, None], self.popularity_z[:, None], overall, self.tags],
            axis=1,
        ).astype(np.float32)

    def to_arrays(self, prefix: str = "item/") -> dict[str, np.ndarray]:
        """Plain arrays (no pickling needed) to store next to a model."""
        return {
            f"{prefix}matrix": self.matrix.astype(np.float32),
            f"{prefix}embedding_dim": np.asarray(self.embedding_dim, np.int64),
            f"{prefix}genres": np.asarray(self.genres, dtype=str),
            f"{prefix}tag_names": np.asarray(self.tag_names, dtype=str).reshape(-1),
            f"{prefix}year_mean": np.asarray(self.year_mean, np.float64),
            f"{prefix}year_std": np.asarray(self.year_std, np.float64),
            f"{prefix}extra_names": np.asarray(self.extra_names, dtype=str).reshape(-1),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "item/") -> ItemFeatures:
        return cls(
            matrix=np.asarray(arrays[f"{prefix}matrix"], np.float32),
            embedding_dim=int(arrays[f"{prefix}embedding_dim"]),
            genres=tuple(str(g) for g in np.asarray(arrays[f"{prefix}genres"]).tolist()),
            tag_names=tuple(str(t) for t in np.asarray(arrays[f"{prefix}tag_names"]).reshape(-1).tolist()),
            year_mean=float(arrays[f"{prefix}year_mean"]),
            year_std=float(arrays[f"{prefix}year_std"]),
            extra_names=tuple(
                str(t)
                for t in np.asarray(arrays.get(f"{prefix}extra_names", np.zeros(0, str))).reshape(-1).tolist()
            ),
        )


def canonical_genre(value: str, genres: Sequence[str] = GENRES) -> str | None:
    """Map a free-text genre ("comedies", "sci fi", "Horror movies") to the vocabulary, or None."""
    text = re.sub(r"(?<![\w-])(movies?|films?|flicks?|stuff|ones)(?![\w-])", "", str(value).lower()).strip(
        " .!,"
    )
    text = re.sub(r"\s+", " ", text)
    by_lower = {g.lower(): g for g in genres}
    candidates = [text]
    if text.endswith("ies"):
        candidates.append(text[:-3] + "y")
    if text.endswith("s"):
        candidates.append(text[:-1])
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
        alias = _GENRE_ALIASES.get(candidate)
        if alias is not None and alias in genres:
            return alias
    return None


def _as_float_years(years: Any, n_items: int) -> np.ndarray:
    if years is None:
        return np.full(n_items, np.nan)
    if hasattr(years, "to_numpy"):  # pandas nullable Int64 holds pd.NA, not nan
        return years.to_numpy(dtype="float64", na_value=np.nan)
    return np.array([np.nan if y is None else float(y) for y in np.asarray(years, dtype=object)])


def _standardise(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    finite = np.isfinite(values)
    mean = float(values[finite].mean()) if finite.any() else 0.0
    std = float(values[finite].std()) if finite.sum() > 1 else 0.0
    std = std if std > 1e-8 else 1.0
    z = np.where(finite, (values - mean) / std, 0.0)
    return z.astype(np.float32), mean, std


def build_item_features(
    item_embeddings: np.ndarray,
    genres: Sequence[Iterable[str]],
    years: np.ndarray | None,
    popularity: np.ndarray,
    tag_matrix: np.ndarray | None = None,
    tag_names: Sequence[str] | None = None,
    mean_rating: np.ndarray | None = None,
) -> ItemFeatures:
    """Stack the features of every catalogue index into one float32 matrix.

    ``genres[i]`` are the genre names of item ``i`` (unknown names are ignored, an empty set
    sets the "(no genres listed)" column); ``years`` may hold nan/NA (imputed with the mean, z=0);
    ``popularity`` is a rating count, used as standardised ``log1p``; ``tag_matrix`` is an optional
    ``[n_items, T]`` array with values in about [0, 1] (e.g. tag-genome relevance) and
    ``tag_names`` its column names (defaults to ``tag_0..``). ``mean_rating`` (optional, each movie's
    shrunk mean rating over the recommender's training data) is a last, standardised column: what
    people thought of the movie, which the embedding only implies.
    """
    embeddings = np.asarray(item_embeddings, np.float32)
    n_items = embeddings.shape[0]
    if len(genres) != n_items or len(popularity) != n_items:
        raise ValueError("genres and popularity must have one entry per item embedding row")
    column = {g: j for j, g in enumerate(GENRES)}
    multi_hot = np.zeros((n_items, len(GENRES)), np.float32)
    for i, item_genres in enumerate(genres):
        found = [column[g] for g in (canonical_genre(x) for x in item_genres) if g is not None]
        multi_hot[i, found or [column[NO_GENRE]]] = 1.0
    year_z, year_mean, year_std = _standardise(_as_float_years(years, n_items))
    popularity_z, _, _ = _standardise(np.log1p(np.asarray(popularity, np.float64).clip(min=0)))
    if tag_matrix is None:
        tags = np.zeros((n_items, 0), np.float32)
        tag_names = ()
    else:
        tags = np.asarray(tag_matrix, np.float32).reshape(n_items, -1)
        tag_names = (
            tuple(tag_names) if tag_names is not None else tuple(f"tag_{j}" for j in range(tags.shape[1]))
        )
        if len(tag_names) != tags.shape[1]:
            raise ValueError("tag_names must name every tag_matrix column")
    extra, extra_names = np.zeros((n_items, 0), np.float32), ()
    if mean_rating is not None:
        if len(mean_rating) != n_items:
            raise ValueError("mean_rating must have one entry per item embedding row")
        extra, extra_names = _standardise(np.asarray(mean_rating, np.float64))[0][:, None], ("mean_rating",)
    matrix = np.concatenate(
        [embeddings, multi_hot, year_z[:, None], popularity_z[:, None], tags, extra], axis=1
    )
    return ItemFeatures(
        matrix=np.ascontiguousarray(matrix, dtype=np.float32),
        embedding_dim=embeddings.shape[1],
        genres=GENRES,
        tag_names=tuple(str(t) for t in tag_names),
        year_mean=year_mean,
        year_std=year_std,
        extra_names=extra_names,
    )


def _decade_direction(value: str, pivot_year: float) -> float | None:
    """+1 for "recent", -1 for "old"; a named decade maps to its distance from the pivot."""
    text = str(value).lower().strip()
    if text in _OLD_WORDS or any(w in text.split() for w in _OLD_WORDS):
        return -1.0
    if text in _NEW_WORDS or any(w in text.split() for w in _NEW_WORDS):
        return 1.0
    match = re.search(r"(\d{4}|\d{2})", text)
    if match is None:
        return None
    year = int(match.group(1))
    if year < 100:  # "80s" -> 1980, "10s" -> 2010
        year += 1900 if year >= 30 else 2000
    return float(np.clip((year + 5 - pivot_year) / 20.0, -1.0, 1.0))


def _popularity_direction(value: str) -> float | None:
    text = str(value).lower().strip()
    if text in _NICHE_WORDS or any(w in text for w in _NICHE_WORDS):
        return -1.0
    if text in _POPULAR_WORDS or any(w in text.split() for w in _POPULAR_WORDS):
        return 1.0
    return None


def signal_features(
    signals: Sequence[Mapping[str, Any]] | None,
    genres: Sequence[str] = GENRES,
    tag_names: Sequence[str] = (),
    half_life: float | None = None,
    pivot_year: float = 2000.0,
) -> np.ndarray:
    """Turn a user's text-feedback signals into the fixed-size signal vector (layout above).

    ``signals`` are dicts ``{"aspect", "value", "polarity"}`` in the order they were given
    (oldest first). Each slot is the weighted mean of the polarities aimed at it, times the
    direction the value names (e.g. decade "classics" = old = -1, popularity "hidden gems" =
    niche = -1). Weights are 1 (simple averaging) or, with ``half_life`` (counted in signals),
    ``0.5 ** (age / half_life)`` so that recent feedback dominates. "title" signals and values
    outside the vocabularies are ignored: they have no slot.
    """
    n_genres, n_tags = len(genres), len(tag_names)
    dim = n_genres + 3 + n_tags
    decade_slot, popularity_slot, overall_slot = n_genres, n_genres + 1, n_genres + 2
    tag_slot = {t.lower(): n_genres + 3 + j for j, t in enumerate(tag_names)}
    total = np.zeros(dim, np.float64)
    weight = np.zeros(dim, np.float64)
    signals = list(signals or ())
    for age, signal in enumerate(reversed(signals)):
        w = 1.0 if half_life is None else 0.5 ** (age / half_life)
        aspect = str(signal.get("aspect", "")).lower()
        value = str(signal.get("value", ""))
        polarity = float(np.clip(float(signal.get("polarity", 0.0)), -1.0, 1.0))
        slot, direction = None, 1.0
        if aspect == "genre":
            genre = canonical_genre(value, genres)
            slot = None if genre is None else list(genres).index(genre)
        elif aspect == "decade":
            found = _decade_direction(value, pivot_year)
            slot, direction = (decade_slot, found) if found is not None else (None, 1.0)
        elif aspect == "popularity":
            found = _popularity_direction(value)
            slot, direction = (popularity_slot, found) if found is not None else (None, 1.0)
        elif aspect == "overall":
            slot = overall_slot
        elif aspect == "tag":
            slot = tag_slot.get(value.lower().strip())
        if slot is None:
            continue
        total[slot] += w * polarity * direction
        weight[slot] += w
    vector = np.divide(total, weight, out=np.zeros(dim), where=weight > 0)
    return np.clip(vector, -1.0, 1.0).astype(np.float32)


def user_summary(history: Any, item_features: ItemFeatures, shrinkage: float = 1.0) -> np.ndarray:
    """float32 [3 + 2G + 2]: what the ratings say about taste, beyond the recommender embedding.

    Entries: mean rating - 3.5 | rating std | log1p(n ratings) / 5 | per-genre centred rating,
    shrunk towards 0 by ``shrinkage`` pseudo-ratings (the genre profile) | share of the history
    in each genre | mean centred rating x year z | mean centred rating x popularity z. An empty
    history gives zeros.
    """
    n_genres = item_features.n_genres
    out = np.zeros(3 + 2 * n_genres + 2, np.float32)
    items = np.asarray(history.item_idx, np.int64)
    if len(items) == 0:
        return out
    ratings = np.asarray(history.ratings, np.float32)
    mean = float(ratings.mean())
    centred = ratings - mean
    multi_hot = item_features.genre_multi_hot[items]
    counts = multi_hot.sum(axis=0)
    out[0] = mean - 3.5
    out[1] = float(ratings.std())
    out[2] = np.log1p(len(items)) / 5.0
    out[3 : 3 + n_genres] = (centred @ multi_hot) / (counts + shrinkage)
    out[3 + n_genres : 3 + 2 * n_genres] = counts / len(items)
    out[3 + 2 * n_genres] = float(np.mean(centred * item_features.year_z[items]))
    out[4 + 2 * n_genres] = float(np.mean(centred * item_features.popularity_z[items]))
    return out


@dataclass
class UserContext:
    """Everything the reward model knows about one user at comparison time."""

    history: Any  # training.ml.data.History (item_idx, ratings, timestamps)
    embedding: np.ndarray  # float32 [d] recommender user embedding of that history
    signals: np.ndarray  # float32 [signal_dim] from signal_features(); zeros when nothing was said
    key: Any = field(default=None, compare=False)  # optional id (user id) for logs and caches

    def __post_init__(self) -> None:
        self.embedding = np.asarray(self.embedding, np.float32).reshape(-1)
        self.signals = np.asarray(self.signals, np.float32).reshape(-1)


def make_user_context(
    history: Any,
    recommender: Any,
    item_features: ItemFeatures,
    signals: Sequence[Mapping[str, Any]] | np.ndarray | None = None,
    half_life: float | None = None,
    key: Any = None,
) -> UserContext:
    """Build a context from a history, a recommender with ``user_embedding(history)``, and signals.

    ``signals`` may be the raw signal dicts or an already built vector.
    """
    if signals is None or (not isinstance(signals, np.ndarray) and len(signals) == 0):
        vector = np.zeros(item_features.signal_dim, np.float32)
    elif isinstance(signals, np.ndarray):
        vector = signals.astype(np.float32)
    else:
        vector = signal_features(signals, item_features.genres, item_features.tag_names, half_life)
    embedding = np.asarray(recommender.user_embedding(history), np.float32)
    return UserContext(history=history, embedding=embedding, signals=vector, key=key)


def user_vector(ctx: UserContext, item_features: ItemFeatures) -> np.ndarray:
    """float32 [d + summary]: the user side of the reward model input (embedding | summary)."""
    return np.concatenate([ctx.embedding, user_summary(ctx.history, item_features)]).astype(np.float32)
