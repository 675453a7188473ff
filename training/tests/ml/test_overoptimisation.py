"""The over-optimisation sweep: every point has its KL, gold and proxy; the target is chosen on gold."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from training.ml.experiment import ClosedLoop
from training.ml.overoptimisation import SweepConfig, aggregate, choose_kl_target, sweep, table
from training.tests.ml.test_experiment import LOOP_CONFIG


def test_the_sweep_measures_gold_and_proxy_at_each_kl(taste_world) -> None:
    ratings, movies = taste_world
    loop = ClosedLoop.prepare(ratings, movies, replace(LOOP_CONFIG, seed=3))
    loop.collect(40, round_number=1)
    loop.retrain_reward_model()
    points = sweep(loop, SweepConfig(kl_targets=(1.0,), kl_coefs=(0.0,), best_of_n=(1, 8)))
    assert [(p["method"], p["setting"]) for p in points] == [
        ("ppo", 1.0),
        ("ppo_fixed", 0.0),
        ("best_of_n", 1),
        ("best_of_n", 8),
    ]
    for point in points:
        assert np.isfinite(point["kl"]) and set(point["gold"]) == set(point["proxy"]) == {
            "mean",
            "low",
            "high",
            "n",
        }
    best_of_one, best_of_eight = points[2], points[3]
    assert best_of_one["kl"] == 0.0 and best_of_eight["kl"] > 1.0
    # Best-of-n climbs the proxy it selects by.
    assert best_of_eight["proxy"]["mean"] > best_of_one["proxy"]["mean"]


def test_the_kl_target_is_the_one_whose_gold_peaks_across_seeds() -> None:
    def run(golds):
        return {
            "points": [
                {"method": "ppo", "setting": t, "kl": t, "gold": {"mean": g}, "proxy": {"mean": t}}
                for t, g in zip((1.0, 4.0, 16.0), golds, strict=True)
            ]
        }

    rows = aggregate([run((0.01, 0.03, 0.02)), run((0.02, 0.04, 0.00))])
    assert choose_kl_target(rows) == 4.0
    assert choose_kl_target(rows, max_kl=2.0) == 1.0  # the gate's bound rules out larger targets
    assert rows[1]["gold"]["mean"] == 0.035 and rows[1]["gold"]["n"] == 2
    assert "| ppo | 4.0 |" in table(rows)
