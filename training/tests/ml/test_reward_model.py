"""Tests for the slate reward model: the loss, learning a clear preference, ties, NumPy = Keras, signals.

The world: 80 movies whose main genre is Comedy, Horror, Drama or Action; 48 users, each loving
one of these genres and hating the next. 40 "warm" users have a short rating history and no
text feedback; 8 "cold" users have no history, only the signals an NLP stand-in reads from the
simulated annotator's reasons. A simulated annotator (temperature 0.05) judges themed slates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest

from training.ml.reward_model import (
    Comparison,
    NumpyRewardModel,
    RatingPair,
    RewardModelConfig,
    bradley_terry_loss,
    evaluate_reward_model,
    keras_bradley_terry_loss,
    train_reward_model,
)
from training.ml.simulator import OracleTaste, SimulatedAnnotator
from training.ml.user_features import (
    GENRES,
    UserContext,
    build_item_features,
    signal_features,
    user_vector,
)

TASTES = ("Comedy", "Horror", "Drama", "Action")
N_ITEMS, N_USERS, N_COLD, SLATE = 80, 48, 8, 5
CONFIG = RewardModelConfig(
    hidden_sizes=(32, 16),
    learning_rate=1e-2,
    epochs=20,
    batch_size=128,
    l2=1e-2,
    pairs_per_user=16,
    signal_gain_init=0.1,  # small, so that a large gain after training is learned, not given
    validation_fraction=0.25,
    seed=0,
)


@dataclass
class TinyHistory:
    """Stand-in for training.ml.data.History."""

    item_idx: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray


class TinyRecommender:
    """Stand-in for NumpyRecommender: user embedding = rating-centred mean of item embeddings."""

    def __init__(self, item_embeddings: np.ndarray) -> None:
        self.item_embeddings = item_embeddings.astype(np.float32)
        self.n_items = len(item_embeddings)

    def user_embedding(self, history: TinyHistory) -> np.ndarray:
        if len(history.item_idx) == 0:
            return np.zeros(self.item_embeddings.shape[1], np.float32)
        centred = history.ratings - history.ratings.mean()
        return (centred @ self.item_embeddings[history.item_idx]) / len(centred)


def read_signals(reason: str) -> list[dict]:
    """Stand-in for the NLP module: genre names with a polarity from the phrasing."""
    polarity = -1.0 if re.search(r"too much|less|not a fan", reason) else 1.0
    return [{"aspect": "genre", "value": g, "polarity": polarity} for g in GENRES if g in reason]


@dataclass
class World:
    item_features: object
    primary: np.ndarray  # index into TASTES of each movie's main genre
    oracle: OracleTaste
    contexts: dict[str, UserContext]
    comparisons: list[Comparison]
    fresh: list[Comparison]  # judged after training data were drawn: never seen by the model
    loves: dict[str, str]

    def cold(self, user: str) -> bool:
        return len(self.contexts[user].history.item_idx) == 0


def themed_slates(rng: np.random.Generator, primary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two slates of 4 movies of one main genre + 1 other, with different themes."""
    slates = []
    for theme in rng.choice(len(TASTES), 2, replace=False):
        themed = rng.choice(np.flatnonzero(primary == theme), 4, replace=False)
        other = rng.choice(np.flatnonzero(primary != theme), 1)
        slates.append(rng.permutation(np.concatenate([themed, other])))
    return slates[0], slates[1]


def make_world(seed: int = 0) -> World:
    rng = np.random.default_rng(seed)
    primary = np.repeat(np.arange(len(TASTES)), N_ITEMS // len(TASTES))
    extra = ("Romance", "Thriller", "Sci-Fi")
    genres = [[TASTES[p]] + ([extra[rng.integers(3)]] if rng.random() < 0.3 else []) for p in primary]
    years = rng.integers(1950, 2020, N_ITEMS).astype(float)
    years[::17] = np.nan
    recommender = TinyRecommender(rng.normal(size=(N_ITEMS, 8)))
    item_features = build_item_features(
        recommender.item_embeddings, genres, years, rng.integers(1, 500, N_ITEMS)
    )

    users = [f"user_{u:02d}" for u in range(N_USERS)]
    # Each user's taste ranks the four genres: loved +1.5, liked +0.5, disliked -0.5, hated -1.5.
    offsets = np.array([[1.5, -1.5, 0.5, -0.5][(p - u) % 4] for u in range(N_USERS) for p in primary])
    true = 3.0 + offsets.reshape(N_USERS, N_ITEMS)
    loves = {user: TASTES[u % 4] for u, user in enumerate(users)}
    true = np.clip(np.round((true + rng.normal(0, 0.15, true.shape)) * 2) / 2, 0.5, 5.0)
    oracle_frame = pd.DataFrame(
        [(user, i, true[u, i], 0) for u, user in enumerate(users) for i in range(N_ITEMS)],
        columns=["user", "item", "rating", "timestamp"],
    )
    oracle = OracleTaste(oracle_frame, N_ITEMS, genre_matrix=item_features.genre_multi_hot)
    annotator = SimulatedAnnotator(oracle, temperature=0.05, seed=seed)

    comparisons, fresh, contexts = [], [], {}
    for u, user in enumerate(users):
        rows = []
        for _ in range(15):
            a, b = themed_slates(rng, primary)
            judgement = annotator.compare(user, a, b)
            rows.append((Comparison(user, a, b, judgement.outcome), judgement))
        comparisons += [c for c, _ in rows]
        for _ in range(20 if u >= N_USERS - N_COLD else 6):  # cold users: enough to measure
            a, b = themed_slates(rng, primary)
            fresh.append(Comparison(user, a, b, annotator.compare(user, a, b).outcome))
        if u >= N_USERS - N_COLD:
            history = TinyHistory(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int64))
            said = [s for _, judgement in rows for s in read_signals(judgement.reason or "")]
            signals = signal_features(said)
        else:
            seen = rng.choice(N_ITEMS, 15, replace=False).astype(np.int32)
            history = TinyHistory(seen, true[u, seen].astype(np.float32), np.arange(15, dtype=np.int64))
            signals = np.zeros(item_features.signal_dim, np.float32)
        contexts[user] = UserContext(history, recommender.user_embedding(history), signals, key=user)
    return World(item_features, primary, oracle, contexts, comparisons, fresh, loves)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture(scope="module")
def trained(world: World):
    return train_reward_model(world.comparisons, None, world.contexts, world.item_features, CONFIG)


@pytest.fixture(scope="module")
def untrained(world: World):
    return train_reward_model(
        world.comparisons, None, world.contexts, world.item_features, replace(CONFIG, epochs=0)
    )


def test_the_bradley_terry_loss_matches_a_hand_computed_case() -> None:
    # -log sigmoid(2.0 - 0.5) = log(1 + e^-1.5) = 0.201413; a tie at d = 0 costs log 2.
    assert bradley_terry_loss(np.array([2.0]), np.array([0.5])) == pytest.approx(0.2014133, abs=1e-6)
    assert bradley_terry_loss(np.array([1.0]), np.array([1.0]), labels=0.5) == pytest.approx(
        np.log(2), abs=1e-9
    )
    # tie at d = 1.5: 0.5 * (softplus(-1.5) + softplus(1.5)) = 0.5 * (0.201413 + 1.701413)
    assert bradley_terry_loss(np.array([2.0]), np.array([0.5]), labels=0.5) == pytest.approx(
        0.951413, abs=1e-6
    )
    # weights: (1 * 0.201413 + 3 * log 2) / 4
    mixed = bradley_terry_loss(
        np.array([2.0, 0.0]), np.array([0.5, 0.0]), np.array([1.0, 0.5]), np.array([1.0, 3.0])
    )
    assert mixed == pytest.approx((0.2014133 + 3 * np.log(2)) / 4, abs=1e-6)


def test_the_keras_loss_equals_the_numpy_loss(trained) -> None:
    chosen, rejected = np.array([2.0, 0.3, -1.0], np.float32), np.array([0.5, 0.3, 2.0], np.float32)
    labels, weights = np.array([1.0, 0.5, 1.0], np.float32), np.array([1.0, 2.0, 0.5], np.float32)
    keras_value = float(keras_bradley_terry_loss(chosen, rejected, labels, weights))
    assert keras_value == pytest.approx(bradley_terry_loss(chosen, rejected, labels, weights), abs=1e-6)


def test_training_reports_loss_accuracy_and_margin_on_train_and_held_out_data(trained) -> None:
    assert len(trained.metrics) == CONFIG.epochs
    for key in ("loss", "accuracy", "margin", "eval/loss", "eval/accuracy", "eval/margin"):
        assert np.isfinite(trained.final_metrics[key]), key
        assert key in trained.metrics[0]
    assert trained.metrics[-1]["loss"] < trained.metrics[0]["loss"]
    assert trained.seed == CONFIG.seed and trained.config["epochs"] == CONFIG.epochs


def test_it_learns_a_clear_genre_preference_from_simulated_comparisons(trained, world: World) -> None:
    assert trained.final_metrics["eval/accuracy"] > 0.8
    assert trained.final_metrics["eval/margin"] > 0
    fresh = evaluate_reward_model(trained.numpy_model(), world.fresh, world.contexts)
    assert fresh["accuracy"] > 0.8


def test_it_ranks_a_slate_of_the_loved_genre_above_one_without_it(trained, world: World) -> None:
    model = trained.numpy_model()
    wins = []
    for user, genre in world.loves.items():
        loved = np.flatnonzero(world.primary == TASTES.index(genre))[:SLATE]
        other = np.flatnonzero(world.primary != TASTES.index(genre))[::7][:SLATE]
        wins.append(
            model.list_score(world.contexts[user], loved) > model.list_score(world.contexts[user], other)
        )
    assert np.mean(wins) > 0.9


def test_training_moved_the_weights(trained, untrained) -> None:
    for name in (
        "mlp/user_kernel",
        "mlp/item_kernel",
        "bilinear/kernel",
        "item_linear/kernel",
        "signal/gain_raw",
    ):
        assert not np.allclose(trained.arrays[name], untrained.arrays[name]), name


def test_the_same_seed_gives_the_same_initial_weights_and_rating_pairs_can_be_given(
    world: World, untrained
) -> None:
    pairs = [RatingPair("user_00", 0, 20), RatingPair("user_01", 20, 40)]
    again = train_reward_model(
        world.comparisons[:10], pairs, world.contexts, world.item_features, replace(CONFIG, epochs=0)
    )
    np.testing.assert_array_equal(again.arrays["mlp/item_kernel"], untrained.arrays["mlp/item_kernel"])
    assert again.final_metrics["n_rating_pairs"] == 2
    assert untrained.final_metrics["n_rating_pairs"] == 16 * (N_USERS - N_COLD)  # sampled from histories


def test_the_numpy_forward_equals_the_keras_model(trained, world: World) -> None:
    rng = np.random.default_rng(5)
    model = trained.numpy_model()
    users = list(world.contexts)[::5]
    contexts = [
        replace(
            world.contexts[u], signals=rng.uniform(-1, 1, world.item_features.signal_dim).astype(np.float32)
        )
        for u in users
    ]
    slates = rng.integers(0, N_ITEMS, (len(contexts), 7)).astype(np.int32)
    slates[::2, 5:] = -1  # padding
    keras_scores = trained.model(
        {
            "user": np.stack([user_vector(c, world.item_features) for c in contexts]),
            "signals": np.stack([c.signals for c in contexts]),
            "items": slates,
        }
    ).numpy()
    numpy_scores = np.array([model.list_scores(c, s[None])[0] for c, s in zip(contexts, slates, strict=True)])
    np.testing.assert_allclose(numpy_scores, keras_scores, atol=1e-4)
    keras_items = trained.model.item_rewards(
        {
            "user": user_vector(contexts[0], world.item_features)[None],
            "signals": contexts[0].signals[None],
            "items": slates[1:2],
        }
    ).numpy()[0]
    np.testing.assert_allclose(model.item_rewards(contexts[0], slates[1]), keras_items, atol=1e-4)


def test_list_scores_are_vectorised_and_exported_arrays_round_trip(trained, world: World) -> None:
    model = trained.numpy_model()
    ctx = world.contexts["user_03"]
    slates = np.random.default_rng(6).integers(0, N_ITEMS, (20, SLATE))
    batch = model.list_scores(ctx, slates)
    np.testing.assert_allclose(batch, [model.list_score(ctx, s) for s in slates], atol=1e-6)
    one_item = model.list_score(ctx, slates[0, :1])
    assert one_item == pytest.approx(float(model.item_rewards(ctx, slates[0, :1])[0]), abs=1e-6)
    reloaded = NumpyRewardModel.from_arrays(model.export_arrays())
    np.testing.assert_allclose(reloaded.list_scores(ctx, slates), batch, atol=1e-7)


def test_ties_and_both_bad_pull_scores_together_and_are_left_out_of_accuracy(trained, world: World) -> None:
    model = trained.numpy_model()
    a, b = np.arange(SLATE), np.arange(40, 40 + SLATE)
    ties = [Comparison("user_00", a, b, "tie"), Comparison("user_00", a, b, "both_bad")]
    metrics = evaluate_reward_model(model, ties, world.contexts)
    diff = model.list_score(world.contexts["user_00"], a) - model.list_score(world.contexts["user_00"], b)
    assert metrics["n_strict"] == 0 and metrics["n_ties"] == 2 and np.isnan(metrics["accuracy"])
    assert metrics["loss"] == pytest.approx(bradley_terry_loss(np.array([diff]), np.zeros(1), 0.5), abs=1e-6)
    strict = evaluate_reward_model(model, [*ties, Comparison("user_00", a, b, "a")], world.contexts)
    assert strict["n_strict"] == 1 and strict["accuracy"] == float(diff > 0)


def test_training_on_ties_only_keeps_list_scores_close(world: World) -> None:
    tied = [replace(c, outcome="tie") for c in world.comparisons[:128]]
    config = replace(CONFIG, epochs=10, batch_size=64, rating_pair_weight=0.0, validation_fraction=0.0)
    result = train_reward_model(tied, [], world.contexts, world.item_features, config)
    assert result.metrics[-1]["tie_abs_diff"] < 0.7 * result.metrics[0]["tie_abs_diff"]
    assert result.metrics[-1]["loss"] == pytest.approx(np.log(2), abs=0.05)
    assert np.isnan(result.metrics[-1]["accuracy"])


def test_a_negative_horror_signal_lowers_only_horror_movies_by_construction(trained, world: World) -> None:
    model = trained.numpy_model()
    base = world.contexts["user_00"]
    horror = GENRES.index("Horror")
    signals = np.zeros_like(base.signals)
    signals[horror] = -1.0
    told = replace(base, signals=signals)
    before, after = model.item_rewards(base, np.arange(N_ITEMS)), model.item_rewards(told, np.arange(N_ITEMS))
    is_horror = world.item_features.genre_multi_hot[:, horror] > 0
    assert np.all(after[is_horror] < before[is_horror])
    np.testing.assert_allclose(after[~is_horror], before[~is_horror], atol=1e-6)


def test_signal_gains_grow_with_training_so_cold_users_are_ranked_by_their_feedback(
    trained, untrained, world: World
) -> None:
    # Cold users have no history: only their text signals can tell their taste apart.
    cold = [c for c in world.fresh if world.cold(c.user)]
    before = evaluate_reward_model(untrained.numpy_model(), cold, world.contexts)
    after = evaluate_reward_model(trained.numpy_model(), cold, world.contexts)
    gains = trained.numpy_model().signal_gain[[GENRES.index(g) for g in TASTES]]
    assert np.all(gains > 3 * CONFIG.signal_gain_init)
    assert after["accuracy"] > 0.7
    assert after["accuracy"] > before["accuracy"] + 0.1


def test_item_features_stack_embedding_genres_year_and_popularity() -> None:
    embeddings = np.arange(6, dtype=np.float32).reshape(3, 2)
    features = build_item_features(
        embeddings,
        [["Horror", "Sci-Fi"], [], ["Children's", "Film-Noir"]],
        np.array([1980.0, np.nan, 2000.0]),
        [1, 10, 100],
    )
    assert features.matrix.shape == (3, 2 + len(GENRES) + 2) and features.matrix.dtype == np.float32
    np.testing.assert_array_equal(features.matrix[:, :2], embeddings)
    hot = features.genre_multi_hot
    assert hot[0, GENRES.index("Horror")] == hot[0, GENRES.index("Sci-Fi")] == 1 and hot[0].sum() == 2
    assert hot[1, GENRES.index("(no genres listed)")] == 1
    assert hot[2, GENRES.index("Children")] == hot[2, GENRES.index("Film-Noir")] == 1
    assert features.year_z[1] == 0 and features.year_z[0] < 0 < features.year_z[2]
    assert features.popularity_z[0] < features.popularity_z[1] < features.popularity_z[2]
    assert features.signal_aligned().shape == (3, features.signal_dim)


def test_text_signals_become_genre_decade_and_popularity_preferences() -> None:
    signals = [
        {"aspect": "genre", "value": "horror movies", "polarity": -1.0},
        {"aspect": "genre", "value": "Comedies", "polarity": 0.8},
        {"aspect": "genre", "value": "comedy", "polarity": 0.4},
        {"aspect": "decade", "value": "classics", "polarity": 1.0},
        {"aspect": "popularity", "value": "hidden gems", "polarity": 1.0},
        {"aspect": "title", "value": "Alien", "polarity": -1.0},
        {"aspect": "overall", "value": "", "polarity": 0.5},
    ]
    vector = signal_features(signals)
    g = len(GENRES)
    assert vector.shape == (g + 3,)
    assert vector[GENRES.index("Horror")] == -1.0
    assert vector[GENRES.index("Comedy")] == pytest.approx(0.6)  # simple average
    assert vector[g] == -1.0 and vector[g + 1] == -1.0 and vector[g + 2] == 0.5  # old, niche, overall
    recent_wins = signal_features(signals[1:3], half_life=1.0)[GENRES.index("Comedy")]
    assert recent_wins == pytest.approx((0.8 * 0.5 + 0.4) / 1.5)
    assert not signal_features([]).any()
