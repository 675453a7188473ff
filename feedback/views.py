"""Pages for annotators (the comparison queue), end users (feedback on their list) and staff (quality, leaderboard).

Every htmx interaction is also a plain form post: without htmx the view redirects back with a
message instead of returning a partial.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from movies.roles import is_annotator

from . import selectors, services
from .exceptions import (
    InvalidFeedback,
    NoComparisonAvailable,
    NotAnnotator,
    NotAssigned,
    TaskAlreadyJudged,
    UndoUnavailable,
)
from .models import Comparison, ItemFeedback

# --- Forms ----------------------------------------------------------------------------------


class JudgmentForm(forms.Form):
    choice = forms.ChoiceField(
        choices=Comparison.Choice.choices, error_messages={"required": "Choose left, right, tie or both bad."}
    )
    confidence = forms.TypedChoiceField(
        choices=[(1, "unsure"), (2, "fairly sure"), (3, "sure")], coerce=int, required=False, empty_value=None
    )
    reason = forms.CharField(required=False, max_length=services.MAX_TEXT_CHARS, widget=forms.Textarea)
    decision_ms = forms.IntegerField(required=False, min_value=0)


class ItemFeedbackForm(forms.Form):
    kind = forms.ChoiceField(choices=ItemFeedback.Kind.choices)
    policy = forms.CharField(required=False, max_length=16)
    version = forms.IntegerField(required=False, min_value=0)


class ListFeedbackForm(forms.Form):
    text = forms.CharField(max_length=services.MAX_TEXT_CHARS, widget=forms.Textarea)
    items = forms.CharField(required=False)
    policy = forms.CharField(required=False, max_length=16)
    version = forms.IntegerField(required=False, min_value=0)

    def clean_items(self) -> list[int]:
        raw = self.cleaned_data["items"]
        try:
            return [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("The list is comma-separated MovieLens ids.") from None


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


# --- Annotators: the comparison queue -------------------------------------------------------


_UNDONE_ANSWERS = "compare_undone_answers"


def _require_annotator(request: HttpRequest) -> None:
    if not is_annotator(request.user):
        raise PermissionDenied("Only annotators compare recommendation lists.")


def _seconds_left_to_undo(comparison: Comparison | None) -> int:
    if comparison is None:
        return 0
    elapsed = (timezone.now() - comparison.created_at).total_seconds()
    return max(0, int(settings.COMPARISON_UNDO_SECONDS - elapsed))


def _task_context(
    request: HttpRequest, *, task=None, form: JudgmentForm | None = None, flash: str = ""
) -> dict:
    """The next task (or the given one, re-shown with form errors) and the annotator's progress."""
    unavailable = ""
    view = None
    try:
        if task is None:
            task = services.comparison_task_next(annotator=request.user)
        view = selectors.task_view(task=task)
    except NoComparisonAvailable as error:
        unavailable = str(error)
    except NotAnnotator as error:
        raise PermissionDenied(str(error)) from None
    undoable = selectors.comparison_undoable(annotator=request.user)
    return {
        "view": view,
        "form": form or JudgmentForm(),
        "progress": selectors.annotator_progress(annotator=request.user),
        "undoable": undoable,
        "undo_expires_in": _seconds_left_to_undo(undoable),
        "undo_seconds": settings.COMPARISON_UNDO_SECONDS,
        "unavailable": unavailable,
        "flash": flash,
        "choices": [
            ("left", "Left better", ["1", "←"]),
            ("right", "Right better", ["2", "→"]),
            ("tie", "Tie", ["T"]),
            ("both_bad", "Both bad", ["B"]),
        ],
        "confidences": [(1, "unsure", "7"), (2, "fairly sure", "8"), (3, "sure", "9")],
    }


def _render_task(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    template = "feedback/_task.html" if request.htmx else "feedback/compare.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    _require_annotator(request)
    context = _task_context(request)
    # An undo without htmx (no JavaScript, or a click before htmx set the new form up) redirects
    # here; its answers wait in the session and fill the form when its task is the one shown.
    undone = request.session.pop(_UNDONE_ANSWERS, None)
    if undone and context["view"] is not None and context["view"].task.pk == undone.pop("task", None):
        context["form"] = JudgmentForm(undone)
    return _render_task(request, context)


@login_required
@require_POST
def compare_submit(request: HttpRequest, task_id: int) -> HttpResponse:
    _require_annotator(request)
    form = JudgmentForm(request.POST)
    try:
        task, _ = selectors.task_of_annotator(annotator=request.user, task_id=task_id)
        if form.is_valid():
            comparison = services.comparison_submit(
                annotator=request.user, task_id=task.pk, **form.cleaned_data
            )
    except NotAssigned as error:
        raise PermissionDenied(str(error)) from None
    except TaskAlreadyJudged as error:
        if request.htmx:
            return _render_task(request, _task_context(request, flash=str(error)))
        messages.info(request, str(error))
        return redirect("compare")
    except InvalidFeedback as invalid:
        for field, errors in invalid.errors.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    if form.errors:
        return _render_task(request, _task_context(request, task=task, form=form))
    flash = f"Saved: {comparison.get_choice_display()}."
    if request.htmx:
        return _render_task(request, _task_context(request, flash=flash))
    messages.success(request, flash)
    return redirect("compare")


@login_required
@require_POST
def compare_skip(request: HttpRequest, task_id: int) -> HttpResponse:
    _require_annotator(request)
    try:
        services.comparison_skip(annotator=request.user, task_id=task_id)
    except NotAssigned as error:
        raise PermissionDenied(str(error)) from None
    if request.htmx:
        return _render_task(request, _task_context(request, flash="Skipped."))
    messages.info(request, "Skipped.")
    return redirect("compare")


@login_required
@require_POST
def compare_undo(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """Take back the last judgment: its task comes back with the answers given, to change them."""
    _require_annotator(request)
    try:
        undone = services.comparison_undo(annotator=request.user, comparison_id=comparison_id)
    except UndoUnavailable as error:
        if request.htmx:
            return _render_task(request, _task_context(request, flash=str(error)))
        messages.error(request, str(error))
        return redirect("compare")
    flash = f"Undone: {undone.get_choice_display()}. Judge it again."
    answers = {"choice": undone.choice, "confidence": str(undone.confidence or ""), "reason": undone.reason}
    if not request.htmx:
        messages.info(request, flash)
        request.session[_UNDONE_ANSWERS] = {**answers, "task": undone.task_id}
        return redirect("compare")
    return _render_task(request, _task_context(request, form=JudgmentForm(answers), flash=flash))


# --- End users: feedback on their recommendations -------------------------------------------


@login_required
@require_POST
def item_feedback(request: HttpRequest, movie_id: int) -> HttpResponse:
    form = ItemFeedbackForm(request.POST)
    error, kind = "", None
    if form.is_valid():
        try:
            feedback = services.item_feedback_toggle(
                user=request.user,
                movie_id=movie_id,
                kind=form.cleaned_data["kind"],
                policy=form.cleaned_data["policy"],
                version=form.cleaned_data["version"],
            )
            kind = feedback.kind if feedback else None
        except InvalidFeedback as invalid:
            error = str(invalid)
    else:
        error = "; ".join(message for errors in form.errors.values() for message in errors)
    if request.htmx:
        if error:
            kind = selectors.item_feedback_kinds(user=request.user, movie_ids=[movie_id]).get(movie_id)
        context = {
            "movie_id": movie_id,
            "kind": kind or "",
            "policy": request.POST.get("policy", ""),
            "version": request.POST.get("version", ""),
            "next": _safe_next(request, reverse("recommendations")),
            "error": error,
        }
        return render(request, "feedback/_item_feedback.html", context)
    if error:
        messages.error(request, error)
    elif kind == ItemFeedback.Kind.NOT_INTERESTED:
        messages.success(request, "Noted: you will not see this movie in your recommendations again.")
    else:
        messages.success(request, "Thanks for the feedback." if kind else "Feedback removed.")
    return redirect(_safe_next(request, reverse("recommendations")))


@login_required
@require_POST
def list_feedback(request: HttpRequest) -> HttpResponse:
    form = ListFeedbackForm(request.POST)
    saved = None
    if form.is_valid():
        try:
            saved = services.list_feedback_add(user=request.user, **form.cleaned_data)
        except InvalidFeedback as invalid:
            for field, errors in invalid.errors.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
    if request.htmx:
        context = {
            "form": form if saved is None else ListFeedbackForm(),
            "saved": saved,
            "item_ids": request.POST.get("items", ""),
            "policy": request.POST.get("policy", ""),
            "version": request.POST.get("version", ""),
            "next": _safe_next(request, reverse("recommendations")),
        }
        return render(request, "feedback/_list_feedback.html", context)
    if saved is None:
        messages.error(request, "; ".join(message for errors in form.errors.values() for message in errors))
    else:
        messages.success(request, "Thanks: your comment will help tune the recommendations.")
    return redirect(_safe_next(request, reverse("recommendations")))


MY_FEEDBACK_KINDS = [
    ("", "All"),
    (ItemFeedback.Kind.UP, "Liked"),
    (ItemFeedback.Kind.DOWN, "Disliked"),
    (ItemFeedback.Kind.NOT_INTERESTED, "Not interested"),
]


@login_required
@require_GET
def my_feedback(request: HttpRequest) -> HttpResponse:
    """The user's likes, dislikes and "not interested" movies, to review and undo."""
    kind = request.GET.get("kind", "")
    if kind not in ItemFeedback.Kind.values:
        kind = ""
    counts = selectors.user_item_feedback_counts(user=request.user)
    tabs = [
        {"kind": value, "label": label, "count": counts.get(value, 0) if value else sum(counts.values())}
        for value, label in MY_FEEDBACK_KINDS
    ]
    page = Paginator(selectors.user_item_feedback(user=request.user, kind=kind), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "feedback/my_feedback.html", {"page": page, "kind": kind, "tabs": tabs})


# --- Staff ----------------------------------------------------------------------------------


@staff_member_required
@require_GET
def annotators(request: HttpRequest) -> HttpResponse:
    return render(request, "feedback/annotators.html", {"quality": selectors.annotator_quality()})


@staff_member_required
@require_POST
def annotator_exclusion(request: HttpRequest, user_id: int) -> HttpResponse:
    annotator = selectors.annotator_get(user_id=user_id)
    if annotator is None:
        raise Http404("No such annotator.")
    excluded = request.POST.get("excluded") == "1"
    services.annotator_exclusion_set(
        annotator=annotator, excluded=excluded, actor=request.user, note=request.POST.get("note", "")[:500]
    )
    if request.htmx:
        row = next(row for row in selectors.annotator_quality().rows if row.user_id == annotator.pk)
        return render(request, "feedback/_annotator_row.html", {"row": row})
    verb = "excluded from" if excluded else "included in"
    messages.success(request, f"{annotator.username}'s judgments are {verb} training.")
    return redirect("staff-annotators")


@staff_member_required
@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    include_simulated = request.GET.get("simulated") == "1"
    board = selectors.leaderboard_table(include_simulated=include_simulated)
    return render(
        request, "feedback/leaderboard.html", {"board": board, "include_simulated": include_simulated}
    )
