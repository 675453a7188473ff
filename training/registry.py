"""The model registry's writes: register, activate, promote, roll back; each recorded with who and when."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from training.ml.rerankers import RERANKER_KINDS

from .exceptions import ArtifactInvalid, VersionStateError
from .models import ModelEvent, ModelVersion, TrainingRun
from .runs import json_safe

KIND_OF_ALGORITHM = {
    "base": ModelVersion.Kind.RECOMMENDER,
    "reward": ModelVersion.Kind.REWARD_MODEL,
    "ppo": ModelVersion.Kind.POLICY,
    "qlearning": ModelVersion.Kind.POLICY,
    **{kind: ModelVersion.Kind.POLICY for kind in RERANKER_KINDS},
}
ALGORITHMS = tuple(KIND_OF_ALGORITHM)


def next_version_number(*, algorithm: str) -> int:
    current = ModelVersion.objects.filter(algorithm=algorithm).aggregate(top=Max("version"))["top"]
    return (current or 0) + 1


@transaction.atomic
def model_version_register(
    *,
    algorithm: str,
    version: int,
    artifact: str,
    metrics: dict,
    config: dict,
    seed: int,
    data_snapshot: dict,
    run: TrainingRun | None = None,
) -> ModelVersion:
    model_version = ModelVersion.objects.create(
        kind=KIND_OF_ALGORITHM[algorithm],
        algorithm=algorithm,
        version=version,
        artifact=artifact,
        metrics=json_safe(metrics),
        config=json_safe(config),
        seed=seed,
        data_snapshot=json_safe(data_snapshot),
        run=run,
    )
    ModelEvent.objects.create(
        version=model_version, action=ModelEvent.Action.REGISTERED, actor=run.created_by if run else None
    )
    return model_version


def active_version(*, algorithm: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE).first()


@transaction.atomic
def model_version_activate(
    *, version: ModelVersion, actor=None, action: str = ModelEvent.Action.ACTIVATED, note: str = ""
) -> ModelVersion:
    """Make `version` the one active version of its algorithm; the previous one is retired."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == ModelVersion.Status.ACTIVE:
        return version
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(algorithm=version.algorithm, status=ModelVersion.Status.ACTIVE)
        .first()
    )
    if previous is not None:
        previous.status = ModelVersion.Status.RETIRED
        previous.save(update_fields=["status"])
        ModelEvent.objects.create(
            version=previous,
            action=ModelEvent.Action.RETIRED,
            actor=actor,
            note=f"replaced by v{version.version}",
        )
    version.status = ModelVersion.Status.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at"])
    ModelEvent.objects.create(version=version, action=action, actor=actor, note=note)
    return version


def model_version_verify(*, version: ModelVersion) -> None:
    """Raise ``ArtifactInvalid`` unless the version's artifact loads the way it will be used.

    Every file is checked against the manifest's checksum, shape and dtype; a servable version is
    loaded as the web process loads it (a policy with its reference recommender). Training-time
    activations come straight from a freshly written artifact; people's promotions and roll-backs
    may reach for an old one, whose files may have changed on disk since.
    """
    from training.ml.artifacts import ArtifactError, load_artifact

    from .serving import SERVABLE_ALGORITHMS, artifact_path, load_policy

    path = artifact_path(version.artifact)
    try:
        if version.algorithm in SERVABLE_ALGORITHMS:
            load_policy(path, version.algorithm)
        else:
            load_artifact(path)
    except (ArtifactError, OSError, KeyError, ValueError) as error:
        raise ArtifactInvalid(
            f"{version.label} cannot be activated: its artifact failed verification ({error}). "
            f"Nothing was changed."
        ) from None


def model_version_promote(*, version: ModelVersion, actor, note: str = "") -> ModelVersion:
    """A person's decision to serve a candidate (or a retired version), overriding the gate.

    Refused with ``ArtifactInvalid`` when the artifact does not verify: the active version stays.
    """
    if version.status != ModelVersion.Status.ACTIVE:
        model_version_verify(version=version)
    return model_version_activate(version=version, actor=actor, action=ModelEvent.Action.PROMOTED, note=note)


@transaction.atomic
def model_version_rollback(*, algorithm: str, actor, note: str = "") -> ModelVersion:
    """Retire the active version and reactivate the one that was active before it."""
    current = (
        ModelVersion.objects.select_for_update()
        .filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE)
        .first()
    )
    if current is None:
        raise VersionStateError(f"No active {algorithm} version to roll back.")
    previous = (
        ModelVersion.objects.filter(
            algorithm=algorithm, status=ModelVersion.Status.RETIRED, activated_at__lt=current.activated_at
        )
        .order_by("-activated_at", "-pk")
        .first()
    )
    if previous is None:
        raise VersionStateError(f"{current.label} has no earlier active version to roll back to.")
    model_version_verify(version=previous)
    current.status = ModelVersion.Status.RETIRED
    current.save(update_fields=["status"])
    ModelEvent.objects.create(
        version=current, action=ModelEvent.Action.RETIRED, actor=actor, note="rolled back"
    )
    previous.status = ModelVersion.Status.ACTIVE
    previous.activated_at = timezone.now()
    previous.save(update_fields=["status", "activated_at"])
    ModelEvent.objects.create(
        version=previous,
        action=ModelEvent.Action.ROLLED_BACK,
        actor=actor,
        note=note or f"rolled back from v{current.version}",
    )
    return previous


def model_version_reject(*, version: ModelVersion, gate: dict) -> ModelVersion:
    version.gate = json_safe(gate)
    version.save(update_fields=["gate"])
    ModelEvent.objects.create(
        version=version, action=ModelEvent.Action.GATE_REJECTED, note=gate.get("reason", "")
    )
    return version
