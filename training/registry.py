"""The model registry's writes: register, activate, promote, roll back, retire; each recorded with who
and when. What end users get is one decision at a time (``ServingDecision``): training's activations,
people's promotions, roll-backs and retirements each record one, and a roll-back returns to the
decision before, down to the recommender alone."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from training.ml.algorithms import BY_NAME, NAMES
from training.ml.algorithms import SERVABLE as SERVABLE_NAMES
from training.ml.artifacts import ArtifactError, load_artifact

from .exceptions import ArtifactInvalid, VersionStateError
from .jsonsafe import json_safe
from .models import ModelEvent, ModelVersion, ServingDecision, TrainingRun
from .store import SERVABLE_ALGORITHMS, artifact_path, load_policy

KIND_OF_ALGORITHM = {name: ModelVersion.Kind(row.kind) for name, row in BY_NAME.items()}
ALGORITHMS = NAMES
SERVABLE = SERVABLE_NAMES


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
    """Make `version` the one active version of its algorithm (the previous one is retired) and, for
    a servable version, what end users get: training activates what the gate chose."""
    before = served_decision()  # read before the swap: activation may retire the version it serves
    version = _activate(version=version, actor=actor, action=action, note=note)
    if version.algorithm in SERVABLE and action == ModelEvent.Action.ACTIVATED:
        _decide(
            version=version, action=ServingDecision.Action.ACTIVATED, actor=actor, note=note, previous=before
        )
    return version


def _activate(*, version: ModelVersion, actor, action: str, note: str) -> ModelVersion:
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


def held_back_by_gate(version: ModelVersion) -> bool:
    """The gate judged this version and did not choose it."""
    gate = version.gate or {}
    return bool(gate) and not gate.get("chosen") and not gate.get("passed", False)


def served_decision() -> ServingDecision | None:
    """The decision in force: the latest one whose version is still active."""
    return (
        ServingDecision.objects.select_related("version", "actor")
        .filter(version__status=ModelVersion.Status.ACTIVE)
        .order_by("-at", "-id")
        .first()
    )


def _decide(
    *,
    version: ModelVersion,
    action: str,
    actor,
    note: str = "",
    overrode_gate: bool = False,
    previous: ServingDecision | bool | None = True,
) -> ServingDecision:
    """Record that users get ``version`` from now on; ``previous=True``: the decision in force."""
    if previous is True:
        previous = served_decision()
    return ServingDecision.objects.create(
        version=version,
        action=action,
        actor=actor,
        note=note,
        overrode_gate=overrode_gate,
        previous=previous or None,
    )


@transaction.atomic
def model_version_promote(
    *, version: ModelVersion, actor, note: str = "", override_gate: bool = False
) -> ModelVersion:
    """A person's decision to serve a version (a candidate, a retired one, or an active one again).

    A version the gate held back is served only with ``override_gate`` and a note saying why.
    Refused with ``ArtifactInvalid`` when the artifact does not verify: nothing changes.
    """
    note = note.strip()
    if version.algorithm not in SERVABLE:
        if held_back_by_gate(version) and not override_gate:
            raise VersionStateError(_held_back_message(version))
        if version.status != ModelVersion.Status.ACTIVE:
            model_version_verify(version=version)
        return _activate(version=version, actor=actor, action=ModelEvent.Action.PROMOTED, note=note)
    if held_back_by_gate(version) and not override_gate:
        raise VersionStateError(_held_back_message(version))
    if override_gate and held_back_by_gate(version) and not note:
        raise VersionStateError(
            f"Say why {version.label} should be served over the gate's verdict: a note is required."
        )
    current = served_decision()
    if current is not None and current.version_id == version.pk:
        raise VersionStateError(f"{version.display_name} is already what users get.")
    was_active = ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.ACTIVE).exists()
    if not was_active:
        model_version_verify(version=version)
    version = _activate(version=version, actor=actor, action=ModelEvent.Action.PROMOTED, note=note)
    if was_active:
        ModelEvent.objects.create(version=version, action=ModelEvent.Action.PROMOTED, actor=actor, note=note)
    _decide(
        version=version,
        action=ServingDecision.Action.PROMOTED,
        actor=actor,
        note=note,
        overrode_gate=held_back_by_gate(version),
        previous=current,
    )
    return version


def _held_back_message(version: ModelVersion) -> str:
    reason = (version.gate or {}).get("reason", "")
    return (
        f"The gate held {version.display_name} back ({reason}). To serve it anyway, confirm that you "
        f"override the gate and say why in a note."
    )


def _fallback(*, leaving: ModelVersion | None) -> tuple[ModelVersion, ServingDecision | None]:
    """Where a roll-back or a retirement goes: the decision before the one in force (skipping any for
    ``leaving``), else the active recommender alone."""
    current = served_decision()
    step = current.previous if current is not None else None
    while step is not None and leaving is not None and step.version_id == leaving.pk:
        step = step.previous
    if step is not None:
        return step.version, step.previous
    base = active_version(algorithm="base")
    if base is None or (leaving is not None and base.pk == leaving.pk):
        raise VersionStateError("There is no active recommender to return to: train one first (train base).")
    return base, None


@transaction.atomic
def serving_rollback(*, actor, note: str = "") -> ModelVersion:
    """Return to the served decision before the one in force, whatever it was; after a first
    promotion, to the recommender alone. Every roll-back goes one decision further back."""
    current = served_decision()
    if current is None:
        raise VersionStateError("Nothing has been served yet: there is nothing to roll back.")
    if current.previous is None and current.version.algorithm == "base":
        raise VersionStateError(
            f"Users get the recommender alone ({current.version.label}): there is no earlier decision to return to."
        )
    target, before = _fallback(leaving=None)
    note = note or f"rolled back from {current.version.label}"
    if target.status == ModelVersion.Status.ACTIVE:
        ModelEvent.objects.create(
            version=target, action=ModelEvent.Action.ROLLED_BACK, actor=actor, note=note
        )
    else:
        model_version_verify(version=target)
        target = _activate(version=target, actor=actor, action=ModelEvent.Action.ROLLED_BACK, note=note)
    _decide(
        version=target, action=ServingDecision.Action.ROLLED_BACK, actor=actor, note=note, previous=before
    )
    return target


@transaction.atomic
def model_version_retire(*, version: ModelVersion, actor, note: str = "") -> ModelVersion:
    """Take an active version out of service. If users get it, they get the decision before it
    (or the recommender alone). The only active recommender cannot be retired: every policy
    re-ranks its lists."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != ModelVersion.Status.ACTIVE:
        raise VersionStateError(f"{version.display_name} is not active: there is nothing to retire.")
    if version.algorithm == "base":
        raise VersionStateError(
            f"{version.display_name} is the active recommender, which every policy re-ranks: promote or "
            f"train another recommender version instead."
        )
    current = served_decision()
    if current is not None and current.version_id == version.pk:
        target, before = _fallback(leaving=version)
        if target.status != ModelVersion.Status.ACTIVE:
            model_version_verify(version=target)
            target = _activate(version=target, actor=actor, action=ModelEvent.Action.ROLLED_BACK, note=note)
        _decide(
            version=target,
            action=ServingDecision.Action.RETIRED,
            actor=actor,
            note=note or f"{version.label} retired",
            previous=before,
        )
    version.status = ModelVersion.Status.RETIRED
    version.save(update_fields=["status"])
    ModelEvent.objects.create(version=version, action=ModelEvent.Action.RETIRED, actor=actor, note=note)
    return version


@transaction.atomic
def model_version_rollback(*, algorithm: str, actor, note: str = "") -> ModelVersion:
    """Retire an algorithm's active version and reactivate the one that was active before it (for the
    reward model; what users get is rolled back by ``serving_rollback``)."""
    current = (
        ModelVersion.objects.select_for_update()
        .filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE)
        .first()
    )
    if current is None:
        raise VersionStateError(f"No active {algorithm} version to roll back.")
    in_force = served_decision()
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
    if in_force is not None and in_force.version_id == current.pk:
        _decide(
            version=previous,
            action=ServingDecision.Action.ROLLED_BACK,
            actor=actor,
            note=note or f"rolled back from {current.label}",
            previous=in_force.previous,
        )
    return previous


def model_version_reject(*, version: ModelVersion, gate: dict) -> ModelVersion:
    version.gate = json_safe(gate)
    version.save(update_fields=["gate"])
    ModelEvent.objects.create(
        version=version, action=ModelEvent.Action.GATE_REJECTED, note=gate.get("reason", "")
    )
    return version
