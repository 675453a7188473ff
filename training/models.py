"""Model versions, their artifacts, and the runs that trained them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from training.ml.algorithms import ALGORITHMS
from training.ml.algorithms import CHOICES as ALGORITHM_CHOICES

# How people read each algorithm's name: in messages, on pages and in the admin.
ALGORITHM_NAMES = {
    **{algorithm.name: algorithm.label for algorithm in ALGORITHMS},
    "popularity": "Popularity",
    "interleaved": "Interleaved (online comparison)",
}


def algorithm_name(algorithm: str) -> str:
    return ALGORITHM_NAMES.get(algorithm, algorithm)


class TrainingRun(models.Model):
    """One execution of the training pipeline, with its progress and results."""

    class Kind(models.TextChoices):
        BASE = "base", "Recommender"
        REWARD = "reward", "Reward model"
        PPO = "ppo", "PPO policy"
        QLEARNING = "qlearning", "Q-learning policy"
        ALL = "all", "Full RLHF pipeline"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        ADMIN = "admin"
        API = "api"
        SCHEDULE = "schedule"
        COMMAND = "command"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.COMMAND)
    # True while queued or running, NULL afterwards: the unique constraint below makes two runs
    # at once impossible at the database level, whatever the number of workers.
    in_flight = models.BooleanField(null=True, default=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    seed = models.PositiveIntegerField(default=0)
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text='Settings changed from the defaults, by stage, e.g. {"base": {"epochs": 5}}.',
    )
    step = models.CharField(max_length=128, blank=True)
    progress = models.FloatField(default=0.0, help_text="Percent done, 0 to 100.")
    log = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    history = models.JSONField(
        default=dict, blank=True, help_text="Per-epoch or per-iteration metric series."
    )
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["in_flight"], name="one_training_run_in_flight"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.kind}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ModelVersion(models.Model):
    """A trained model: its artifact folder, metrics and where it stands in the serving lifecycle."""

    class Kind(models.TextChoices):
        RECOMMENDER = "recommender"
        REWARD_MODEL = "reward_model", "Reward model"
        POLICY = "policy"

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    algorithm = models.CharField(
        max_length=16,
        choices=ALGORITHM_CHOICES,
        help_text="base, reward, or a policy: ppo, qlearning, quality_rerank, rm_rerank, best_of_n, mmr, rm_greedy or rm_mmr.",
    )
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    artifact = models.CharField(max_length=512, help_text="Folder under ARTIFACTS_DIR.")
    metrics = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    seed = models.PositiveIntegerField(default=0)
    data_snapshot = models.JSONField(
        default=dict, blank=True, help_text="Counts and latest timestamps of the training data."
    )
    gate = models.JSONField(default=dict, blank=True, help_text="The promotion gate's checks and verdict.")
    run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["algorithm", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["algorithm", "version"], name="one_number_per_algorithm_version"),
            models.UniqueConstraint(
                fields=["algorithm"], condition=Q(status="active"), name="one_active_version_per_algorithm"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} v{self.version} ({self.status})"

    @property
    def label(self) -> str:
        return f"{self.algorithm} v{self.version}"

    @property
    def display_name(self) -> str:
        """The label as people read it, for messages and pages: "PPO v1"."""
        return f"{algorithm_name(self.algorithm)} v{self.version}"

    @property
    def headline(self) -> str:
        """The one number that matters most for this kind of model."""
        for key in ("ndcg@10", "heldout/accuracy", "gate/win_rate"):
            if self.metrics.get(key) is not None:
                low, high = self.metrics.get(f"{key}_low"), self.metrics.get(f"{key}_high")
                interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
                return f"{key} {self.metrics[key]:.4f}{interval}"
        return ""


class ServingDecision(models.Model):
    """What end users get, decided by the gate or a person. The latest decision whose version is
    still active is in force; ``previous`` is the decision a roll-back returns to."""

    class Action(models.TextChoices):
        ACTIVATED = "activated", "served by training (the gate chose it)"
        PROMOTED = "promoted"
        ROLLED_BACK = "rolled_back", "rolled back"
        RETIRED = "retired", "served version retired"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="serving_decisions")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)
    overrode_gate = models.BooleanField(
        default=False, help_text="A person served a version the gate held back."
    )
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The decision a roll-back returns to (none: the recommender alone).",
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.version.label} {self.get_action_display().lower()}"


class OnlineExperiment(models.Model):
    """An online comparison of a candidate with what users get, by team-draft interleaving on
    "For you": a share of users see one list both build; their actions on it credit the side
    that contributed each movie (``training.online``)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        STOPPED = "stopped"

    control = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="+", help_text="What users got when it started."
    )
    candidate = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="online_experiments")
    share = models.FloatField(
        help_text="Share of users (by a hash of their id) who see the interleaved list."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    note = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="one_running_online_experiment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.candidate.label} vs {self.control.label} ({self.status})"


class InterleavedImpression(models.Model):
    """A movie a user was shown in an online experiment's interleaved list, and whose it was."""

    class Team(models.TextChoices):
        CONTROL = "control"
        CANDIDATE = "candidate"

    experiment = models.ForeignKey(OnlineExperiment, on_delete=models.CASCADE, related_name="impressions")
    rater = models.ForeignKey("movies.Rater", on_delete=models.CASCADE, related_name="+")
    movie = models.ForeignKey("movies.Movie", on_delete=models.CASCADE, related_name="+")
    team = models.CharField(max_length=16, choices=Team.choices)
    position = models.PositiveSmallIntegerField()
    shown_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "rater", "movie"], name="one_impression_per_movie_and_user"
            )
        ]

    def __str__(self) -> str:
        return f"movie {self.movie_id} for rater {self.rater_id} ({self.team}, position {self.position + 1})"


class ShownList(models.Model):
    """A list "For you" showed a user: which policy and version made it and the movies in order
    (``propensities``: each movie's probability under a stochastic policy; empty for the
    deterministic ones served today). Kept IMPRESSIONS_KEEP_DAYS days."""

    rater = models.ForeignKey("movies.Rater", on_delete=models.CASCADE, related_name="+")
    policy = models.CharField(max_length=16)
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    movies = models.JSONField(help_text="Movie ids, best position first.")
    propensities = models.JSONField(default=list, blank=True)
    steered = models.BooleanField(default=False, help_text="Re-ranked by the user's For-you controls.")
    shown_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-shown_at", "-id"]

    def __str__(self) -> str:
        return f"{self.policy} list of {len(self.movies)} for rater {self.rater_id}"


class ModelEvent(models.Model):
    """Audit trail of the serving lifecycle: who activated, promoted or rolled back what, and when."""

    class Action(models.TextChoices):
        REGISTERED = "registered"
        ACTIVATED = "activated"
        PROMOTED = "promoted"
        ROLLED_BACK = "rolled_back", "rolled back"
        RETIRED = "retired"
        GATE_REJECTED = "gate_rejected", "rejected by the gate"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        # The version's label, not str(version): that carries its status today, not at the event.
        return f"{self.version.label} {self.get_action_display().lower()}"
