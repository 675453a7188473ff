"""Tests for the label-efficiency summary: where an active curve first reaches random's reference."""

from __future__ import annotations

import pytest

from training.ml.label_efficiency import first_reaching, summarise


def curve(values: dict[int, float]) -> list[dict]:
    return [{"labels": b, "accuracy": v, "normalised": 2 * v - 1} for b, v in values.items()]


def test_the_first_budget_reaching_the_target_is_found_and_none_when_never() -> None:
    assert first_reaching({250: 0.5, 500: 0.61, 1000: 0.6}, 0.6) == 500
    assert first_reaching({250: 0.5, 500: 0.55}, 0.6) is None


def test_the_summary_pairs_active_and_random_per_seed() -> None:
    runs = [
        {
            "seed": seed,
            "random": curve({500: 0.55, 1000: 0.60 + shift}),
            "active": {"1": curve({500: 0.61 + shift, 1000: 0.62 + shift})},
        }
        for seed, shift in enumerate((0.0, 0.01, 0.02))
    ]
    summary = summarise(runs, reference_budget=1000, target_budget=500)
    active = summary["metrics"]["accuracy"]["active"]["1"]
    assert active["reaches_reference_per_seed"] == [500, 500, 500]
    assert active["seeds_reaching_by_target"] == 3
    assert active["reaches_reference_at_mean"] == 500
    assert active["minus_random_reference"][500]["mean"] == pytest.approx(0.01)
    assert active["minus_random_same_budget"][1000]["mean"] == pytest.approx(0.02)
