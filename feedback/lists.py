"""The lists a comparison task shows, and the one interface through which feedback gets them.

Feedback stores tasks and collects judgments; it does not know how lists are made. Lists come from
the models ``training`` serves, and ``training`` learns from the judgments stored here, so
importing it from here would make the two apps import each other. Instead this module declares what
a task needs (`ListSource`: two sources for a task and one list per source) and the setting
``COMPARISON_LIST_SOURCE`` names the class that provides it (``training.comparison_lists.ServedLists``
in this project; a test may name its own).

Active comparisons (``COMPARISON_ACTIVE_SHARE``): a source that can say how unsure the reward
model is about a pair implements ``can_choose_actively`` and ``disagreement`` too. They are
optional: a source without them (or one whose ``can_choose_actively`` is False) gets random tasks only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class SourceSpec:
    """Where one list comes from.

    ``policy``: "active" (what end users get), "base", "ppo", "qlearning", "random", "worst" or
    "popularity"; ``version_id`` pins a model version (e.g. a candidate) instead of the active one;
    ``explore`` samples the list (Plackett-Luce) instead of taking the top k.
    """

    policy: str
    version_id: int | None = None
    explore: bool = False

    @classmethod
    def of(cls, value) -> SourceSpec:
        """A spec from a spec, a policy name, or a model version (anything with ``algorithm`` and ``pk``)."""
        if isinstance(value, SourceSpec):
            return value
        if hasattr(value, "algorithm") and hasattr(value, "pk"):
            return cls(policy=value.algorithm, version_id=value.pk)
        return cls(policy=str(value))


@dataclass
class Slate:
    """An ordered list from one source, with what off-policy evaluation needs to know about it."""

    movie_ids: list[int]
    policy: str
    version: int | None
    version_id: int | None
    explore: bool
    probability: float | None  # of this exact ordered list under the source; None when undefined

    def source(self) -> dict:
        return {
            "policy": self.policy,
            "version": self.version,
            "version_id": self.version_id,
            "explore": self.explore,
            "probability": self.probability,
        }


class ListSource(Protocol):
    """What comparison tasks need from whoever makes lists."""

    def default_pair(self, *, rng: np.random.Generator) -> tuple[SourceSpec, SourceSpec]:
        """Two sources for an ordinary task."""

    def gold_pair(self, *, rng: np.random.Generator) -> tuple[SourceSpec, SourceSpec]:
        """(good, bad) sources for a gold task: the second list is clearly worse."""

    def slate(self, spec: SourceSpec, *, rater_id: int, k: int, rng: np.random.Generator) -> Slate:
        """``k`` movies from ``spec`` for ``rater_id``; raises NoComparisonAvailable when it cannot."""

    # Optional (active comparisons):

    def can_choose_actively(self) -> bool:
        """Whether ``disagreement`` can score pairs now (a reward model with an uncertainty estimate)."""

    def disagreement(self, *, rater_id: int, left: Slate, right: Slate) -> float | None:
        """How much the reward model's plausible versions disagree on which list ``rater_id`` prefers
        (higher: a label teaches it more); None when it cannot say."""


def can_choose_actively(lists: ListSource) -> bool:
    """True when ``lists`` implements the optional active-comparison methods and can score now."""
    check = getattr(lists, "can_choose_actively", None)
    return bool(check is not None and hasattr(lists, "disagreement") and check())


@cache
def _load(path: str) -> ListSource:
    return import_string(path)()


def list_source() -> ListSource:
    """The configured `ListSource` (``settings.COMPARISON_LIST_SOURCE``), made once per process."""
    return _load(settings.COMPARISON_LIST_SOURCE)
