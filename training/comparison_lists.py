"""The lists annotators compare, made from the served models (`feedback.lists.ListSource`).

``settings.COMPARISON_LIST_SOURCE`` names `ServedLists`; feedback asks it for a task's two sources
and for one list per source, and never imports this app.

Default sources, when the caller names none, are always two different ones, so that every
judgment ranks one source against another:
- two or more servable models (the active version of each servable algorithm, and the newest
  candidate of each that is newer than its active version): two of them at random;
- one servable model: that model against "popularity" (most-rated movies, genre-interleaved, the
  list end users get before any model is trained), the baseline that needs no model;
- no model at all: "random" against "popularity".
In a share ``EXPLORE_SHARE`` of tasks the first model's list is sampled (Plackett-Luce, see
`training.serving.slate_for`) rather than its top k, so the reward model sees more than one list
per model and persona.
Gold tasks pit the served policy's deterministic top-k (popularity without a model) against
"worst" (the model's lowest-scored popular movies for the context rater) or "random".
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from django.db.models import F

from feedback.exceptions import NoComparisonAvailable
from feedback.lists import Slate, SourceSpec

from .models import ModelVersion
from .profiles import profile_for
from .serving import UnknownPolicy, popular_diverse, slate_for
from .store import SERVABLE_ALGORITHMS, models

EXPLORE_SHARE = 0.25  # of default-source tasks with a model: its list sampled rather than its top k


def servable_sources() -> list[SourceSpec]:
    """Active versions that load, served policy first, then newer candidates that load."""
    versions = ModelVersion.objects.filter(
        status__in=(ModelVersion.Status.ACTIVE, ModelVersion.Status.CANDIDATE),
        algorithm__in=SERVABLE_ALGORITHMS,
    ).order_by(F("activated_at").desc(nulls_last=True), "-id")
    actives: dict[str, ModelVersion] = {}  # most recently activated first: the served policy leads
    newest: dict[str, ModelVersion] = {}
    for version in versions:
        if version.status == ModelVersion.Status.ACTIVE:
            actives[version.algorithm] = version
        elif version.algorithm not in newest or version.version > newest[version.algorithm].version:
            newest[version.algorithm] = version
    sources: list[SourceSpec] = []
    for algorithm in actives:
        if models.active(algorithm) is not None:
            sources.append(SourceSpec(policy=algorithm))
    for algorithm, version in sorted(newest.items()):
        active = actives.get(algorithm)
        if active is not None and version.version <= active.version:
            continue
        if models.version(version) is not None:
            sources.append(SourceSpec(policy=algorithm, version_id=version.pk))
    return sources


class ServedLists:
    """`feedback.lists.ListSource` over the models this app serves (rules in the module docstring)."""

    def default_pair(self, *, rng: np.random.Generator) -> tuple[SourceSpec, SourceSpec]:
        sources = servable_sources()
        if not sources:
            return SourceSpec(policy="random"), SourceSpec(policy="popularity")
        if len(sources) >= 2:
            first, second = rng.choice(len(sources), size=2, replace=False)
            model, other = sources[int(first)], sources[int(second)]
        else:
            model, other = sources[0], SourceSpec(policy="popularity")
        if rng.random() < EXPLORE_SHARE:
            model = replace(model, explore=True)
        return model, other

    def gold_pair(self, *, rng: np.random.Generator) -> tuple[SourceSpec, SourceSpec]:
        served = models.served()
        if served is None:
            return SourceSpec(policy="popularity"), SourceSpec(policy="random")
        has_base = models.active("base") is not None
        bad = SourceSpec(policy="worst") if has_base and rng.random() < 0.5 else SourceSpec(policy="random")
        return SourceSpec(policy=served.algorithm), bad

    def slate(self, spec: SourceSpec, *, rater_id: int, k: int, rng: np.random.Generator) -> Slate:
        if spec.policy == "popularity":
            rated = profile_for(rater_id=rater_id, reactions=False).rated
            movie_ids = [rec.movie.pk for rec in popular_diverse(exclude=set(rated), k=k)]
            return Slate(movie_ids, "popularity", None, None, False, 1.0)
        version = None
        policy = spec.policy
        if spec.version_id is not None:
            version = ModelVersion.objects.filter(pk=spec.version_id).first()
            if version is None:
                raise NoComparisonAvailable(f"There is no model version {spec.version_id}.")
            policy = version.algorithm
        try:
            return slate_for(
                rater_id=rater_id, policy=policy, k=k, explore=spec.explore, rng=rng, version=version
            )
        except UnknownPolicy as error:
            raise NoComparisonAvailable(str(error)) from None
