from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from training.ml import algorithms
from training.ml.algorithms import ALGORITHMS, algorithm


def test_every_name_is_listed_once_with_a_label():
    names = [a.name for a in ALGORITHMS]
    assert len(names) == len(set(names))
    assert all(a.label and len(a.name) <= 16 for a in ALGORITHMS)  # ModelVersion.algorithm's max_length


def test_the_derived_lists_are_the_ones_the_project_used_to_spell_out():
    rerankers = ("quality_rerank", "rm_rerank", "best_of_n", "mmr", "rm_greedy", "rm_mmr")
    assert ("base", "ppo", "qlearning", *rerankers) == algorithms.SERVABLE
    assert ("ppo", "qlearning", *rerankers) == algorithms.POLICIES
    assert algorithms.SLATE_POLICIES == ("ppo", "qlearning")
    assert rerankers == algorithms.RERANKERS
    assert algorithms.STAGES == ("base", "reward", "ppo", "qlearning")
    assert algorithms.FEEDBACK_FREE_POLICIES == ("quality_rerank", "mmr")


def test_every_stage_names_a_config_dataclass_whose_fields_all_have_defaults():
    for name in algorithms.STAGES:
        config_class = algorithm(name).config_class()
        assert dataclasses.is_dataclass(config_class)
        assert hasattr(config_class(), "seed")


def test_every_stage_names_a_trainer_that_exists():
    for name in algorithms.STAGES:
        module, _, function = algorithm(name).trainer.partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function))


def test_an_algorithm_without_a_stage_has_no_config():
    with pytest.raises(LookupError, match="best_of_n"):
        algorithm("best_of_n").config_class()


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(LookupError, match="base, reward"):
        algorithm("dpo")


def test_reading_the_table_imports_no_trainer():
    probe = (
        "import sys, training.ml.algorithms as a; a.algorithm('ppo').servable; "
        "print(any(m in sys.modules for m in ('training.ml.ppo', 'scipy', 'tensorflow')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
