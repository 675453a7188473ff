"""The model store: load, verify and cache artifacts of model versions, and say which version is served.

Each process keeps the arrays of the versions it serves. Every request asks the database which
version is active (one indexed query), so a promotion or roll-back is picked up without a restart.
An artifact that fails verification is refused and logged, and the process keeps serving the
version it had. Nothing here imports TensorFlow, ``feedback`` or ``movies``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import F

from training.ml.algorithms import POLICIES, SERVABLE, algorithm
from training.ml.artifacts import ArtifactError, load_scorer
from training.ml.scoring import Scorer

from .models import ModelVersion, ServingDecision
from .policies import load_reranker, load_slate_policy

logger = logging.getLogger(__name__)

POLICY_ALGORITHMS = POLICIES  # lists built over the base recommender
SERVABLE_ALGORITHMS = SERVABLE  # the base recommender and every policy
RETRY_FAILED_AFTER = 60.0  # seconds before a refused artifact is tried again


@dataclass
class LoadedModel:
    version_id: int
    algorithm: str
    version: int
    scorer: Scorer
    item_ids: np.ndarray  # ascending MovieLens ids of the catalogue indices
    meta: dict = field(default_factory=dict)

    def indices(self, movie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue indices of the movie ids this model knows, and the mask of those it knows."""
        position = np.searchsorted(self.item_ids, movie_ids)
        position = np.minimum(position, len(self.item_ids) - 1)
        known = self.item_ids[position] == movie_ids
        return position[known].astype(np.int32), known


def artifact_path(relative: str) -> Path:
    return Path(settings.ARTIFACTS_DIR) / relative


class ModelCache:
    """The versions this process has loaded, by algorithm, swapped when the active one changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, LoadedModel] = {}
        self._by_id: dict[int, LoadedModel] = {}
        self._failed: dict[int, float] = {}

    def clear(self) -> None:
        with self._lock:
            self._active.clear()
            self._by_id.clear()
            self._failed.clear()

    def active(self, algorithm: str) -> LoadedModel | None:
        row = (
            ModelVersion.objects.filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE)
            .values_list("id", "version", "artifact")
            .first()
        )
        return None if row is None else self._current(algorithm, *row)

    def served(self) -> LoadedModel | None:
        """``active(served_algorithm())`` in one query: the model end users get."""
        row = _served_row()
        return None if row is None else self._current(*row)

    def _current(self, algorithm: str, version_id: int, number: int, relative: str) -> LoadedModel | None:
        current = self._active.get(algorithm)
        if current is not None and current.version_id == version_id:
            return current
        loaded = self._load(version_id, algorithm, number, relative)
        if loaded is None:
            return current  # keep serving what we had
        with self._lock:
            self._active[algorithm] = loaded
        if current is not None:
            logger.info("Now serving %s v%s (was v%s)", algorithm, loaded.version, current.version)
        return loaded

    def version(self, version: ModelVersion) -> LoadedModel | None:
        if version.pk in self._by_id:
            return self._by_id[version.pk]
        loaded = self._load(version.pk, version.algorithm, version.version, version.artifact)
        if loaded is not None:
            with self._lock:
                if len(self._by_id) >= 8:
                    self._by_id.pop(next(iter(self._by_id)))
                self._by_id[version.pk] = loaded
        return loaded

    def _load(self, version_id: int, algorithm: str, number: int, relative: str) -> LoadedModel | None:
        failed_at = self._failed.get(version_id)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_AFTER:
            return None
        try:
            scorer, item_ids, meta = load_policy(artifact_path(relative), algorithm)
        except ArtifactError as error:
            self._failed[version_id] = time.monotonic()
            logger.error("Refusing %s v%s: %s", algorithm, number, error)
            return None
        self._failed.pop(version_id, None)
        return LoadedModel(version_id, algorithm, number, scorer, np.asarray(item_ids), meta)


def _reference_version(version_id: int | None) -> LoadedModel | None:
    """The loaded recommender version a policy artifact was built over, if it loads."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    return models.version(version) if version else None


def load_policy(path: Path, name: str) -> tuple[Scorer, np.ndarray, dict]:
    """Load any servable artifact as a scorer over its catalogue, by its algorithm's loader."""
    loader = algorithm(name).loader if name in SERVABLE else "scorer"
    if loader == "slate_policy":
        return load_slate_policy(path, name, reference_version=_reference_version)
    if loader == "reranker":
        return load_reranker(path, name, reference_version=_reference_version)
    return load_scorer(path)


models = ModelCache()


def _served_row() -> tuple[str, int, int, str] | None:
    """(algorithm, id, version, artifact) of what end users get: the latest serving decision whose
    version is still active; before any decision, the most recently activated servable version."""
    row = (
        ServingDecision.objects.filter(version__status=ModelVersion.Status.ACTIVE)
        .order_by("-at", "-id")
        .values_list("version__algorithm", "version_id", "version__version", "version__artifact")
        .first()
    )
    if row is not None:
        return row
    return (
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE, algorithm__in=SERVABLE_ALGORITHMS)
        .order_by(F("activated_at").desc(nulls_last=True), "-id")
        .values_list("algorithm", "id", "version", "artifact")
        .first()
    )


def served_version_ids() -> set[int]:
    """The id of the version end users get, if this process can load it (a version whose artifact
    fails to load is not served: the process keeps serving the one it had)."""
    loaded = models.served()
    return set() if loaded is None else {loaded.version_id}


def served_algorithm() -> str | None:
    """The policy end users get (the serving decision in force)."""
    row = _served_row()
    return None if row is None else row[0]
