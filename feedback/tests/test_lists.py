"""Comparison tasks get their lists through feedback.lists, from whichever source the settings name."""

from __future__ import annotations

import numpy as np

from feedback import services
from feedback.lists import Slate, SourceSpec, list_source
from movies.models import Rater


class FixedLists:
    """A list source that knows nothing about models: movies 1-3 against movies 4-6."""

    def default_pair(self, *, rng):
        return SourceSpec("first"), SourceSpec("second")

    def gold_pair(self, *, rng):
        return SourceSpec("first"), SourceSpec("second")

    def slate(self, spec, *, rater_id, k, rng):
        movie_ids = [1, 2, 3] if spec.policy == "first" else [4, 5, 6]
        return Slate(movie_ids[:k], spec.policy, None, None, spec.explore, 1.0)


def test_a_task_takes_its_lists_from_the_source_the_settings_name(wide_catalogue, settings):
    settings.COMPARISON_LIST_SOURCE = "feedback.tests.test_lists.FixedLists"
    assert isinstance(list_source(), FixedLists)
    rater = Rater.objects.filter(movielens_id__isnull=False).first()
    task = services.comparison_task_create(context_rater=rater, rng=np.random.default_rng(0))
    assert sorted([task.left_items, task.right_items]) == [[1, 2, 3], [4, 5, 6]]
    assert {task.left_source["policy"], task.right_source["policy"]} == {"first", "second"}
    gold = services.comparison_task_create(context_rater=rater, is_gold=True, rng=np.random.default_rng(1))
    worse = gold.left_items if gold.gold_worse == "left" else gold.right_items
    assert worse == [4, 5, 6]


def test_the_product_makes_lists_from_the_served_models(settings):
    from training.comparison_lists import ServedLists

    assert isinstance(list_source(), ServedLists)


def test_a_model_version_names_a_source_by_its_algorithm_and_id():
    class Version:
        algorithm, pk = "ppo", 7

    assert SourceSpec.of(Version()) == SourceSpec("ppo", version_id=7)
    assert SourceSpec.of("base") == SourceSpec("base")
