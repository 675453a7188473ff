"""The closed-loop experiment end to end on the synthetic taste world: report keys, periods, no test leak."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from training.ml.data import Snapshot, temporal_split
from training.ml.dqn import DQNConfig
from training.ml.experiment import (
    BEFORE_TEST,
    FEEDBACK,
    TEST,
    TRAIN,
    ClosedLoop,
    ExperimentConfig,
    FeedbackLog,
    choose_on_validation,
    comparison_contexts,
    label_ceiling,
    markdown_table,
    reward_rows,
    run_experiment,
    seed_interval,
    seeded,
    split_periods,
    split_periods_global,
    write_report,
)
from training.ml.ppo import PPOConfig
from training.ml.recommender import RecommenderConfig
from training.ml.reward_model import Comparison, RewardModelConfig
from training.ml.user_features import signal_features


def tiny_config(**overrides) -> ExperimentConfig:
    """One round of 40 comparisons with every model trained for a token number of steps."""
    defaults = dict(
        rounds=1,
        comparisons_per_round=40,
        annotators=2,
        max_eval_users=40,
        kl_users=4,
        kl_samples=1,
        bootstrap_rounds=50,
        recommender=RecommenderConfig(epochs=2, embedding_dim=16),
        reward=RewardModelConfig(epochs=2, hidden_sizes=(8,), pairs_per_user=2, validation_fraction=0.0),
        ppo=PPOConfig(iterations=1, users_per_iteration=16, n_candidates=30, hidden_sizes=(8,), seed=1),
        dqn=DQNConfig(
            total_steps=4,
            num_envs=8,
            n_candidates=30,
            batch_size=16,
            learning_starts=1,
            eval_frequency=4,
            hidden_sizes=(8,),
            seed=1,
        ),
    )
    return ExperimentConfig(**{**defaults, **overrides})


@pytest.fixture(scope="module")
def report(taste_world):
    ratings, movies = taste_world
    return run_experiment(ratings, movies, tiny_config())


def test_the_report_has_every_key_of_every_round(report) -> None:
    assert len(report.rounds) == 1
    entry = report.rounds[0]
    assert entry["comparisons"] == 40
    assert set(entry["reward_model"]) >= {
        "heldout_accuracy",
        "heldout_n",
        "heldout_label_ceiling",
        "heldout_taste_ceiling",
        "train_n_comparisons",
    }
    policies = {
        "recommender",
        "quality_rerank",
        "mmr",
        "rm_rerank",
        "best_of_n",
        "rm_greedy",
        "ppo",
        "qlearning",
        "served",
    }
    assert set(entry["ndcg@10"]) == set(entry["recall@20"]) == policies
    assert set(entry["ndcg@10_difference"]) == set(entry["quality_difference"]) == policies - {"recommender"}
    assert set(entry["ndcg@10_difference"]["ppo"]) == {"mean", "low", "high", "n"}
    assert entry["served"] in policies and entry["gate"]["served"] == entry["served"]
    assert {c["name"] for c in entry["gate"]["candidates"]} == policies - {"recommender", "served"}
    assert set(entry["settings"]) == {"quality_rerank", "mmr", "rm_rerank", "best_of_n", "rm_greedy"}
    assert "set_weights" not in entry["reward_model"]  # the taste population keeps the additive model
    assert 0.0 <= report.data["annotator_agreement"]["strict_agreement"] <= 1.0
    assert entry["settings"]["best_of_n"] in ExperimentConfig().best_of_n
    assert {"seen_accuracy", "seen_normalised", "heldout_normalised"} <= set(entry["reward_model"])
    for policy in ("ppo", "qlearning"):
        assert set(entry["win_rate"][policy]) == {"win_rate", "low", "high", "n"}
        assert (
            entry["win_rate"][policy]["low"]
            <= entry["win_rate"][policy]["win_rate"]
            <= entry["win_rate"][policy]["high"]
        )
        assert np.isfinite(entry["kl"][policy])
        assert set(entry["validation"]["win_rate"][policy]) == {"win_rate", "low", "high", "n"}
    assert set(entry["seconds"]) == {"reward_model", "ppo", "qlearning", "reward_model+ppo"}
    assert set(report.data["period_ratings"]) == {"train", "feedback", "test"}
    assert report.recommender["epochs"] == 2


@pytest.mark.slow
def test_the_norms_population_trains_a_set_aware_model_and_reports_what_it_learned(taste_world) -> None:
    ratings, movies = taste_world
    report = run_experiment(ratings, movies, tiny_config(population="norms"))
    entry = report.rounds[0]
    assert report.config["reward"]["set_features"] and report.config["population"] == "norms"
    assert set(entry["reward_model"]["set_weights"]) == {
        "redundancy",
        "genre_variety",
        "decade_variety",
        "worst_item",
    }
    assert set(entry["reward_model"]["label_coefficients"]) == {
        "taste",
        "redundancy",
        "genre_variety",
        "decade_variety",
        "floor_gap",
    }
    assert {"mmr", "rm_greedy", "rm_mmr"} <= set(entry["quality_difference"])
    assert "rm_mmr" in {c["name"] for c in entry["gate"]["candidates"]}
    assert set(entry["settings_tried"]["rm_mmr"]) == {str(b) for b in ExperimentConfig().norms_rm_mmr_weights}
    assert entry["settings"]["ppo_kl_target"] in (2.0, 4.0, 6.0, 8.0)
    assert set(entry["settings_tried"]["ppo_kl_target"]) == {"2.0", "4.0", "6.0", "8.0"}
    assert set(entry["settings_tried"]["mmr"]) == {str(w) for w in ExperimentConfig().norms_mmr_weights}


def test_the_ceilings_count_strict_labels_that_each_oracle_agrees_with() -> None:
    outcomes = ["a", "b", "a", "tie"]
    log = FeedbackLog(
        comparisons=[
            Comparison(user=(0, j), slate_a=[0], slate_b=[1], outcome=o) for j, o in enumerate(outcomes)
        ],
        oracle_prefers_a=[1.0, 0.0, 0.0, 1.0],
        taste_prefers_a=[1.0, 1.0, 0.0, 0.0],
    )
    assert label_ceiling(log, range(4)) == pytest.approx(2 / 3)  # the tie is not a strict label
    assert label_ceiling(log, range(4), without_own_ratings=True) == pytest.approx(1 / 3)
    assert label_ceiling(log, [1]) == 1.0 and label_ceiling(log, [1], without_own_ratings=True) == 0.0
    assert np.isnan(label_ceiling(log, [3]))


def test_the_report_is_written_as_json_markdown_and_a_plot(report, tmp_path) -> None:
    paths = write_report(
        report, tmp_path / "experiment", command="python manage.py rlhf_experiment --rounds 1"
    )
    document = json.loads(paths["results"].read_text())
    assert document["command"].startswith("python manage.py rlhf_experiment")
    assert document["rounds"][0]["comparisons"] == 40
    assert "| round |" in paths["table"].read_text()
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert markdown_table(report).count("\n") == 3  # header, rule, one round


def test_the_three_periods_are_disjoint_and_time_ordered_per_user(taste_snapshot: Snapshot) -> None:
    periods = split_periods(taste_snapshot, train_fraction=0.6, feedback_fraction=0.2, min_ratings=10)
    assert len(periods.period) == taste_snapshot.n_ratings  # each rating in exactly one period
    for user in range(taste_snapshot.n_users):
        lo, hi = taste_snapshot.indptr[user], taste_snapshot.indptr[user + 1]
        period = periods.period[lo:hi]
        stamps = taste_snapshot.timestamp[lo:hi]
        assert np.all(np.diff(period) >= 0)  # train, then feedback, then test
        for earlier, later in ((TRAIN, FEEDBACK), (FEEDBACK, TEST)):
            assert stamps[period == earlier].max() <= stamps[period == later].min()
        n = hi - lo
        assert (period == TEST).sum() == int(0.2 * n) and (period == FEEDBACK).sum() == int(0.2 * n)
    sizes = periods.sizes()
    assert sum(sizes.values()) == taste_snapshot.n_ratings
    assert (
        periods.train.n_ratings + periods.feedback.n_ratings + periods.test.n_ratings
        == taste_snapshot.n_ratings
    )


def test_users_with_too_few_ratings_stay_in_train(taste_world) -> None:
    ratings, movies = taste_world
    few = ratings[ratings["user"] == "user-0"].head(6)
    snapshot = Snapshot.from_ratings(few, movies)
    periods = split_periods(snapshot, min_ratings=10)
    assert (periods.period == TRAIN).all()
    assert not periods.eligible.any()


def _pairs(snapshot: Snapshot) -> set[tuple[int, int]]:
    return set(zip(snapshot.user_idx.tolist(), snapshot.item_idx.tolist(), strict=True))


LOOP_CONFIG = tiny_config(recommender=RecommenderConfig(epochs=1, embedding_dim=8))


@pytest.fixture(scope="module")
def loop(taste_world) -> ClosedLoop:
    ratings, movies = taste_world
    loop = ClosedLoop.prepare(ratings, movies, LOOP_CONFIG)
    loop.collect(30, round_number=1)
    return loop


def test_no_test_period_rating_reaches_training(loop: ClosedLoop) -> None:
    periods = loop.periods
    test_pairs = _pairs(periods.test)
    # The recommender was fitted on the train period and nothing else.
    assert loop.trained.data_fingerprint == periods.train.fingerprint()
    # Every history the loop (comparisons, reward model, PPO, Q-learning) sees is train-period only.
    train_pairs = _pairs(periods.train)
    for user, history in loop.train_histories.items():
        assert {(user, int(i)) for i in history.item_idx} <= train_pairs
    for ctx in loop.refresh_contexts().values():
        assert {(ctx.key, int(i)) for i in ctx.history.item_idx} <= train_pairs
    # The annotators' oracle knows the feedback period only.
    feedback_pairs = _pairs(periods.feedback)
    oracle = loop.annotators[0].oracle
    assert oracle is loop.feedback_oracle
    assert {(u, int(i)) for u, (items, _) in oracle._rated.items() for i in items} == feedback_pairs
    assert not test_pairs & feedback_pairs
    # Test-time histories hold train + feedback, never test.
    for user, history in loop.test_histories.items():
        assert not {(user, int(i)) for i in history.item_idx} & test_pairs


def test_the_test_period_ratings_cannot_change_what_the_loop_sees(taste_world, loop: ClosedLoop) -> None:
    """Flip every test-period rating: same recommender, same comparisons, same judgements and signals.

    Everything the reward model, PPO and Q-learning are trained on is a function of those, so
    the test period cannot reach them.
    """
    ratings, movies = taste_world
    snapshot = loop.periods.snapshot
    in_test = loop.periods.period == TEST
    flipped = {
        (snapshot.user_keys[u], int(snapshot.item_ids[i]))
        for u, i in zip(snapshot.user_idx[in_test].tolist(), snapshot.item_idx[in_test].tolist(), strict=True)
    }
    poisoned = ratings.copy()
    rows = [(u, m) in flipped for u, m in zip(poisoned["user"], poisoned["item"], strict=True)]
    poisoned.loc[rows, "rating"] = 5.5 - poisoned.loc[rows, "rating"]
    changed = ClosedLoop.prepare(poisoned, movies, LOOP_CONFIG)
    changed.collect(30, round_number=1)
    assert np.array_equal(changed.periods.period, loop.periods.period)
    assert not np.array_equal(changed.periods.snapshot.rating, snapshot.rating)
    for name, array in loop.trained.arrays.items():
        np.testing.assert_array_equal(changed.trained.arrays[name], array, err_msg=name)
    for a, b in zip(loop.log.comparisons, changed.log.comparisons, strict=True):
        assert (a.user, a.outcome) == (b.user, b.outcome)
        np.testing.assert_array_equal(a.slate_a, b.slate_a)
        np.testing.assert_array_equal(a.slate_b, b.slate_b)
    assert changed.log.signals == loop.log.signals


def test_a_reason_never_reaches_the_context_of_its_own_comparison(loop: ClosedLoop) -> None:
    log = loop.log
    assert sum(log.new_signals) > 0  # the NLP turned some templated reasons into signals
    contexts = comparison_contexts(loop.world, loop.train_histories, log, range(len(log)))
    for row, user in enumerate(log.users):
        earlier = sum(log.new_signals[r] for r in range(row) if log.users[r] == user)
        assert log.prior_signals[row] == earlier
        expected = signal_features(log.signals[user][:earlier], loop.world.item_features.genres)
        np.testing.assert_array_equal(contexts[log.comparisons[row].user].signals, expected)


def test_the_policies_see_every_signal_given_so_far(loop: ClosedLoop) -> None:
    contexts = loop.refresh_contexts()
    for user, signals in loop.log.signals.items():
        expected = signal_features(signals, loop.world.item_features.genres)
        np.testing.assert_array_equal(contexts[user].signals, expected)


def test_held_out_users_never_train_the_reward_model(loop: ClosedLoop) -> None:
    train_rows, heldout_rows, seen_rows = reward_rows(
        loop.log, loop.heldout_users, loop.reward_users, seen_fraction=0.3, seed=0
    )
    assert sorted(train_rows + heldout_rows + seen_rows) == list(range(len(loop.log)))
    assert {loop.log.users[r] for r in heldout_rows} <= loop.heldout_users
    assert {loop.log.users[r] for r in train_rows + seen_rows} <= loop.reward_users
    assert seen_rows and not set(seen_rows) & set(train_rows)
    assert len(loop.heldout_users) == round(0.2 * len(loop.eligible))
    assert not loop.heldout_users & loop.reward_users


def test_the_user_split_holds_for_every_stage(loop: ClosedLoop, monkeypatch) -> None:
    """Validation and test users reach no training step: not the reward model, not PPO, not Q-learning."""
    held_out = loop.heldout_users | set(loop.eval_users)
    assert not held_out & loop.reward_users
    assert not loop.heldout_users & set(loop.eval_users)
    # Comparisons are collected for training and validation users only.
    assert set(loop.log.users) <= loop.reward_users | loop.heldout_users
    seen: dict[str, set] = {}

    def spy(name, trainer):
        def run(*args, **kwargs):
            first = args[0]
            if name == "reward":  # (comparisons, rating_pairs, contexts, ...)
                seen[name] = {c.user[0] for c in first} | {key for key in args[2] if isinstance(key, int)}
            else:  # (contexts, ...)
                seen[name] = {ctx.key for ctx in first}
            return trainer(*args, **kwargs)

        return run

    import training.ml.dqn as dqn
    import training.ml.ppo as ppo
    import training.ml.stages as stages

    # The experiment trains through the stages the product calls (``training.ml.stages``).
    monkeypatch.setattr(stages, "train_reward_model", spy("reward", stages.train_reward_model))
    monkeypatch.setattr(ppo, "train_ppo", spy("ppo", ppo.train_ppo))
    monkeypatch.setattr(dqn, "train_dqn", spy("dqn", dqn.train_dqn))
    loop.retrain_reward_model()
    loop.retrain_ppo()
    loop.retrain_dqn()
    assert set(seen) == {"reward", "ppo", "dqn"}
    for users in seen.values():
        assert users and users <= loop.reward_users


def test_the_global_split_cuts_every_user_at_the_same_dates(taste_snapshot: Snapshot) -> None:
    periods = split_periods_global(taste_snapshot, 0.6, 0.2, history_fraction=0.5)
    t1, t2 = periods.cutoffs
    ts = taste_snapshot.timestamp
    # The recommender sees only ratings before t1; test targets are all from t2 on.
    assert periods.recommender_mask.sum() and (ts[periods.recommender_mask] < t1).all()
    assert (ts[periods.period == TEST] >= t2).all()
    assert ((ts[periods.period == FEEDBACK] >= t1) & (ts[periods.period == FEEDBACK] < t2)).all()
    # Known-before ratings of the test window come before each user's targets there.
    for user in np.flatnonzero(periods.test_eligible)[:20]:
        lo, hi = taste_snapshot.indptr[user], taste_snapshot.indptr[user + 1]
        labels, times = periods.period[lo:hi], ts[lo:hi]
        if (labels == BEFORE_TEST).any():
            assert times[labels == BEFORE_TEST].max() <= times[labels == TEST].min()
    assert periods.eligible.any() and periods.test_eligible.any()


def test_later_rounds_pit_the_current_ppo_policy_against_the_recommender(loop: ClosedLoop) -> None:
    loop.retrain_reward_model()
    loop.retrain_ppo()
    before = len(loop.log)
    loop.config = replace(loop.config, on_policy_fraction=1.0)
    loop.collect(10, round_number=2)
    assert loop.log.kinds[:before] == ["recommender vs recommender"] * before
    assert loop.log.kinds[before:] == ["ppo vs recommender"] * 10


def test_one_seed_seeds_every_model() -> None:
    config = seeded(replace(ExperimentConfig(), seed=7))
    assert (config.recommender.seed, config.reward.seed, config.ppo.seed, config.dqn.seed) == (7, 7, 8, 8)
    assert config.ppo.n_candidates == ExperimentConfig().ppo.n_candidates


def test_the_product_defaults_are_the_experiments_settings() -> None:
    """One configuration: the product trains with what the experiment chose (seeds and the split aside)."""
    config = ExperimentConfig()
    assert config.ppo == replace(PPOConfig(), seed=config.ppo.seed)
    assert config.dqn == replace(DQNConfig(), seed=config.dqn.seed)
    assert config.reward == replace(RewardModelConfig(), validation_fraction=0.0)


def test_experiment_compare_reads_recommender_overrides_and_refuses_unknown_fields():
    import argparse

    from training.ml.experiment_compare import recommender_config

    parser = argparse.ArgumentParser()
    config = recommender_config(["embedding_dim=96", "input_dropout=0.25"], parser)
    assert (config.embedding_dim, config.input_dropout, config.epochs) == (
        96,
        0.25,
        RecommenderConfig().epochs,
    )
    with pytest.raises(SystemExit):
        recommender_config(["embeding_dim=128"], parser)
    with pytest.raises(SystemExit):
        recommender_config(["epochs=many"], parser)
    with pytest.raises(SystemExit):  # --seed is the one way to set it
        recommender_config(["seed=3"], parser)


def test_each_seed_is_trained_once_and_reproducibly(taste_world, taste_split):
    from training.ml.experiment_compare import scorer_ndcg, train_seeds

    config = RecommenderConfig(epochs=3, batch_size=16, embedding_dim=8)
    scorers = train_seeds(taste_split.train, config, [0, 1, 0])
    again = train_seeds(taste_split.train, config, [1])
    scores = {seed: scorer_ndcg(scorer, taste_split, taste_world[1]) for seed, scorer in scorers.items()}
    assert set(scores) == {0, 1} and all(0.0 < score <= 1.0 for score in scores.values())
    assert scorer_ndcg(again[1], taste_split, taste_world[1]) == scores[1]
    assert not np.array_equal(scorers[0].item_embeddings, scorers[1].item_embeddings)


def test_the_compare_command_prints_the_table_and_each_seeds_gap_to_ease(taste_world, tmp_path, capsys):
    from training.ml.experiment_compare import main

    ratings, movies = taste_world
    users = {user: j + 1 for j, user in enumerate(ratings["user"].unique())}
    pd.DataFrame(
        {
            "userId": ratings["user"].map(users),
            "movieId": ratings["item"],
            "rating": ratings["rating"],
            "timestamp": ratings["timestamp"],
        }
    ).to_csv(tmp_path / "ratings.csv", index=False)
    pd.DataFrame(
        {
            "movieId": movies["item"],
            "title": [
                f"{title} ({year})" for title, year in zip(movies["title"], movies["year"], strict=True)
            ],
            "genres": ["|".join(genres) for genres in movies["genres"]],
        }
    ).to_csv(tmp_path / "movies.csv", index=False)
    main([str(tmp_path), "--set", "epochs=2", "--set", "embedding_dim=8", "--more-seeds", "1"])
    printed = capsys.readouterr().out
    assert "recommender - EASE, NDCG@10 per user" in printed
    gaps = [line for line in printed.splitlines() if line.startswith("  seed ")]
    assert [line.split(":")[0] for line in gaps] == ["  seed 0", "  seed 1"]
    assert all(line.endswith(f"over {len(users)} users") for line in gaps)
    assert "recommender NDCG@10 by seed: 0:" in printed

    main([str(tmp_path), "--set", "epochs=2", "--set", "embedding_dim=8", "--unseen-users", "0.25"])
    printed = capsys.readouterr().out
    unseen = round(0.25 * len(users))
    assert f"unseen users: {unseen} users held out of training (25%, fold 0)" in printed
    gaps = [line for line in printed.splitlines() if line.startswith("  seed ")]
    assert len(gaps) == 1 and gaps[0].endswith(f"over {unseen} users")
    bad_options = {
        "--unseen-users 1.5: expected a share between 0 and 1": ["--unseen-users", "1.5"],
        "fold 4 does not exist": ["--unseen-users", "0.25", "--unseen-fold", "4"],  # folds 0 to 3
        "--unseen-fold needs --unseen-users": ["--unseen-fold", "1"],
    }
    for message, options in bad_options.items():
        with pytest.raises(SystemExit):
            main([str(tmp_path), *options])
        assert message in capsys.readouterr().err


def test_a_comparison_with_unseen_users_fits_without_them_and_evaluates_only_them(taste_world):
    from training.ml.baselines import Popularity
    from training.ml.data import hold_out_users
    from training.ml.experiment_compare import run_comparison

    ratings, movies = taste_world
    config = RecommenderConfig(epochs=2, batch_size=16, embedding_dim=8)
    result = run_comparison(ratings, movies, recommender_config=config, unseen_users=0.25)
    expected_split, expected_fit_on = hold_out_users(
        temporal_split(Snapshot.from_ratings(ratings, movies)), 0.25
    )
    assert np.array_equal(result.split.test.user_idx, expected_split.test.user_idx)
    assert np.array_equal(result.fit_on.user_idx, expected_fit_on.user_idx)
    history = result.split.train.history(int(result.split.test.user_idx[0]))  # an unseen user
    assert len(history) and np.array_equal(
        result.scorers["popularity"].score(history), Popularity.fit(expected_fit_on).score(history)
    )
    assert not np.array_equal(
        result.scorers["popularity"].score(history), Popularity.fit(result.split.train).score(history)
    )


def test_the_across_seed_interval_is_a_student_t_interval() -> None:
    summary = seed_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.303: half-width 4.303 / sqrt(3) = 2.484
    assert summary["mean"] == 2.0 and summary["n"] == 3
    assert summary["high"] - 2.0 == pytest.approx(2.484, abs=1e-3)
    assert np.isnan(seed_interval([1.0])["low"])


def test_seeds_are_read_as_ranges_and_lists_and_nonsense_is_refused() -> None:
    from django.core.management.base import CommandError

    from training.management.commands.rlhf_experiment import parse_seeds

    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0-1,7") == [0, 1, 7]
    for bad in ("a-b", "1,1", "", "-2"):
        with pytest.raises(CommandError):
            parse_seeds(bad)


def test_the_combined_table_has_a_row_per_policy_and_split(report) -> None:
    from training.ml.experiment import aggregate_seeds, combined_table

    user = aggregate_seeds([report, report])
    other = {**user, "split": "global"}
    table = combined_table([user, other])
    assert "| quality_rerank | user (2 seeds) |" in table and "| ppo | global (2 seeds) |" in table
    # Two identical seeds: the interval over seeds has no width.
    row = user["policies"]["ppo"]["ndcg@10"]
    assert row["low"] == pytest.approx(row["mean"]) == pytest.approx(row["high"])
    assert user["targets"]["served_minus_quality_rerank"]["quality"]["seeds_not_worse"] in (0, 2)


def test_the_kl_target_is_the_best_validation_gain_that_keeps_ndcg(loop: ClosedLoop, monkeypatch) -> None:
    """Planted validation effects: 8 gains most but costs 0.004 NDCG@10, so 6 (the best that keeps
    NDCG within 0.003) is chosen and becomes the PPO policy; the round's own target is not retrained."""
    import training.ml.experiment as experiment

    planted = {2.0: (0.010, 0.000), 4.0: (0.020, -0.001), 6.0: (0.030, -0.0029), 8.0: (0.050, -0.004)}
    trained_targets: list[float] = []

    def train_at(target: float):
        trained_targets.append(target)
        return SimpleNamespace(arrays={"target": target}, metrics={"target": target})

    def effect(source, baseline) -> dict[str, float]:
        gain, ndcg = planted[source.policy]
        return {"quality_gain": gain, "ndcg_difference": ndcg}

    monkeypatch.setattr(loop, "config", replace(loop.config, ppo_kl_targets=tuple(planted)))
    monkeypatch.setattr(loop, "settings", {})
    monkeypatch.setattr(loop, "ppo_policy", None)
    monkeypatch.setattr(loop, "kl_targets_tried", {})
    monkeypatch.setattr(loop, "train_ppo_at", train_at)
    monkeypatch.setattr(loop, "validation_effect", effect)
    monkeypatch.setattr(
        experiment.NumpySlatePolicy, "from_arrays", staticmethod(lambda arrays, kind: arrays["target"])
    )
    monkeypatch.setattr(experiment, "kl_from_reference", lambda policy, *args, **kwargs: policy)
    own = SimpleNamespace(arrays={"target": 4.0}, metrics={"target": 4.0})

    tried = loop.choose_ppo_kl_target(own)

    assert loop.settings["ppo_kl_target"] == 6.0 and loop.ppo_policy == 6.0
    assert trained_targets == [2.0, 6.0, 8.0]  # 4.0 is the config's own target: reused
    assert [tried[t]["kl"] for t in tried] == [2.0, 4.0, 6.0, 8.0]
    assert loop.kl_targets_tried is tried


def test_when_no_setting_keeps_ndcg_the_mildest_is_chosen() -> None:
    results = {
        "2.0": {"quality_gain": 0.01, "ndcg_difference": -0.01},
        "8.0": {"quality_gain": 0.05, "ndcg_difference": -0.02},
    }
    assert choose_on_validation(results, max_ndcg_loss=0.003) == "2.0"
    assert choose_on_validation(results, max_ndcg_loss=0.05) == "8.0"


def test_only_the_norms_population_widens_mmr_and_chooses_the_kl_target() -> None:
    taste, norms = ExperimentConfig(), ExperimentConfig(population="norms")
    assert taste.kl_target_grid == () and taste.mmr_grid == (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    assert norms.kl_target_grid == (2.0, 4.0, 6.0, 8.0) and min(norms.mmr_grid) == 0.1
    assert ExperimentConfig(ppo_kl_targets=(1.0, 2.0)).kl_target_grid == (1.0, 2.0)
