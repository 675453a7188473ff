"""Errors the feedback services raise; views map them to HTTP 400, 403 or 503 and to form errors."""

from __future__ import annotations


class FeedbackError(Exception):
    """Base class for the feedback app's expected failures."""


class NotAnnotator(FeedbackError):
    """The user is not in the annotators group (HTTP 403)."""


class NotAssigned(FeedbackError):
    """The comparison task does not exist or was not handed to this annotator (HTTP 403)."""


class TaskAlreadyJudged(FeedbackError):
    """The task already has every judgment it requires, from other annotators (HTTP 409)."""


class InvalidFeedback(FeedbackError):
    """Field-level validation errors (HTTP 400): ``errors`` maps a field name to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))


class UndoUnavailable(FeedbackError):
    """The judgment is not the annotator's last one, or its undo window has passed (HTTP 409)."""


class NoComparisonAvailable(FeedbackError):
    """Nothing to compare yet: no movies, or no context rater with a usable history (HTTP 503)."""
