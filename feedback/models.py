"""Human feedback: comparisons of two recommendation lists, and feedback on single movies and lists."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from movies.models import Movie, Rater


class ComparisonTask(models.Model):
    """Two recommendation lists for one context, shown side by side with their sources hidden.

    ``left``/``right`` are what the annotator saw on each side (MovieLens ids, in order); each
    side's source names the policy and version that produced it and, where the policy defines one,
    the probability of that exact list under it (for off-policy evaluation).
    """

    class Context(models.TextChoices):
        OWN = "own", "annotator's own taste"
        PERSONA = "persona", "dataset user persona"

    class Selection(models.TextChoices):
        RANDOM = "random", "random"
        ACTIVE = "active", "by reward-model disagreement"

    context_kind = models.CharField(max_length=16, choices=Context.choices)
    context_rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="comparison_tasks")
    left_items = models.JSONField(help_text="MovieLens ids, in display order.")
    right_items = models.JSONField(help_text="MovieLens ids, in display order.")
    left_source = models.JSONField(help_text="{policy, version, version_id, explore, probability}.")
    right_source = models.JSONField(help_text="{policy, version, version_id, explore, probability}.")
    is_gold = models.BooleanField(
        default=False, help_text="One list is clearly worse; its side is gold_worse."
    )
    gold_worse = models.CharField(max_length=8, blank=True, help_text="left or right, for gold tasks.")
    required_judgments = models.PositiveSmallIntegerField(default=1)
    simulated = models.BooleanField(default=False, help_text="Created for simulated annotators.")
    selection = models.CharField(
        max_length=8,
        choices=Selection.choices,
        default=Selection.RANDOM,
        help_text="How the pair was chosen: at random, or the proposal the reward model was least sure about. "
        "Unbiased estimates use the random ones.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["simulated", "required_judgments"], name="task_open_idx")]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.context_kind})"


class TaskAssignment(models.Model):
    """A task handed to an annotator: only the assignee may answer it."""

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)
    skipped = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="one_assignment_per_annotator")
        ]

    def __str__(self) -> str:
        return f"task {self.task_id} for user {self.annotator_id}"


class Comparison(models.Model):
    """One judgment of a task: which list is better, by a person or a simulated annotator."""

    class Choice(models.TextChoices):
        LEFT = "left", "left better"
        RIGHT = "right", "right better"
        TIE = "tie", "tie"
        BOTH_BAD = "both_bad", "both bad"

    task = models.ForeignKey(ComparisonTask, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="comparisons"
    )
    simulator = models.CharField(
        max_length=64, blank=True, help_text="Name of the simulated annotator, if simulated."
    )
    choice = models.CharField(max_length=16, choices=Choice.choices)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 (unsure) to 3 (sure).")
    reason = models.TextField(blank=True, max_length=2000)
    signals = models.JSONField(
        default=list, blank=True, help_text="Parsed text signals: [{aspect, value, polarity}]."
    )
    sentiment = models.FloatField(null=True, blank=True)
    decision_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time from display to answer.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "annotator"],
                condition=Q(annotator__isnull=False),
                name="one_judgment_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["task", "simulator"], condition=~Q(simulator=""), name="one_judgment_per_simulator"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.choice} on task {self.task_id}"

    @property
    def is_simulated(self) -> bool:
        return bool(self.simulator)


class AnnotatorStatus(models.Model):
    """Staff's decision to leave an annotator's judgments out of training."""

    annotator = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator_status"
    )
    excluded = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "annotator statuses"

    def __str__(self) -> str:
        return f"user {self.annotator_id}: {'excluded' if self.excluded else 'included'}"


class ItemFeedback(models.Model):
    """An end user's reaction to one recommended movie."""

    class Kind(models.TextChoices):
        UP = "up", "thumbs up"
        DOWN = "down", "thumbs down"
        NOT_INTERESTED = "not_interested", "not interested"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="item_feedback")
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="item_feedback")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    policy = models.CharField(max_length=16, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "movie"], name="one_item_feedback_per_movie")]

    def __str__(self) -> str:
        return f"{self.kind} on movie {self.movie_id}"


class ListFeedback(models.Model):
    """An end user's free-text comment on their recommendation list as a whole."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="list_feedback")
    text = models.TextField(max_length=2000)
    signals = models.JSONField(default=list, blank=True)
    sentiment = models.FloatField(null=True, blank=True)
    items = models.JSONField(default=list, blank=True, help_text="The list the user saw (MovieLens ids).")
    policy = models.CharField(max_length=16, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.text if len(self.text) <= 60 else self.text[:57] + "..."

    def echo(self) -> list[str]:
        """What we read, once per phrase: a genre and a tag read from the same words say one thing."""
        phrases: list[str] = []
        for signal in self.signals:
            polarity = signal.get("polarity") or 0
            direction = "more" if polarity > 0 else "less" if polarity < 0 else "about"
            phrase = f"{direction} {signal.get('span') or signal.get('value')}"
            if phrase.lower() not in (seen.lower() for seen in phrases):
                phrases.append(phrase)
        return phrases
