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

Active comparisons: when the active reward model's artifact carries a last-layer posterior
(``posterior/*``, written by ``rlhf.stage_reward``), `ServedLists.disagreement` scores a proposed
pair by BALD under it (``training.ml.active``, NumPy only); feedback keeps the proposal with the
highest score for a share ``COMPARISON_ACTIVE_SHARE`` of new tasks.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import numpy as np
from django.db.models import F

from feedback.exceptions import NoComparisonAvailable
from feedback.lists import Slate, SourceSpec
from training.ml.active import PosteriorRewardModel, has_posterior
from training.ml.artifacts import ArtifactError, load_artifact
from training.ml.user_features import make_user_context

from .models import ModelVersion
from .profiles import profile_for
from .serving import UnknownPolicy, popular_diverse, slate_for
from .store import SERVABLE_ALGORITHMS, LoadedModel, artifact_path, models

logger = logging.getLogger(__name__)

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


_posteriors: dict[tuple[int, str], tuple[PosteriorRewardModel, int | None] | None] = {}  # (id, artifact) ->
_posteriors_lock = threading.Lock()  # (model with its posterior, base version id), or None without one


def active_reward_posterior() -> tuple[PosteriorRewardModel, LoadedModel] | None:
    """The active reward model with its last-layer posterior, and the recommender version it reads
    users through; None without an active reward model, a posterior in its artifact, or its base."""
    row = (
        ModelVersion.objects.filter(algorithm="reward", status=ModelVersion.Status.ACTIVE)
        .values_list("id", "artifact")
        .first()
    )
    if row is None:
        return None
    version_id, relative = row
    key = (version_id, relative)
    if key not in _posteriors:
        loaded = None
        try:
            arrays, meta = load_artifact(artifact_path(relative))
            arrays.pop("item_ids", None)
            if has_posterior(arrays):
                loaded = (PosteriorRewardModel.from_arrays(arrays), meta.get("base_version_id"))
        except (ArtifactError, KeyError, ValueError) as error:
            logger.error("Reward model v%s has no usable posterior: %s", version_id, error)
        with _posteriors_lock:
            if len(_posteriors) >= 4:
                _posteriors.pop(next(iter(_posteriors)))
            _posteriors[key] = loaded
    loaded = _posteriors[key]
    if loaded is None:
        return None
    posterior, base_version_id = loaded
    base_row = ModelVersion.objects.filter(pk=base_version_id).first() if base_version_id else None
    base = models.version(base_row) if base_row is not None else None
    if base is None or len(base.item_ids) != posterior.model.n_items:
        return None
    return posterior, base


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

    def can_choose_actively(self) -> bool:
        return active_reward_posterior() is not None

    def disagreement(self, *, rater_id: int, left: Slate, right: Slate) -> float | None:
        """BALD of the pair for this rater under the active reward model's posterior (None without one)."""
        loaded = active_reward_posterior()
        if loaded is None:
            return None
        posterior, base = loaded
        profile = profile_for(rater_id=rater_id, signals=True)
        ctx = make_user_context(
            profile.history(base),
            base.scorer,
            posterior.model.item_features,
            signals=list(profile.signals) or None,
            key=rater_id,
        )
        first, _ = base.indices(np.asarray(left.movie_ids, np.int64))
        second, _ = base.indices(np.asarray(right.movie_ids, np.int64))
        if not len(first) or not len(second):
            return 0.0
        return float(posterior.disagreement(ctx, first[None], second[None])[0])
