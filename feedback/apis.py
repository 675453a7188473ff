"""REST endpoints for comparisons (annotators), item and list feedback (end users) and the preference export (staff)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from movies.roles import is_annotator
from recsys_site.converters import MAX_ID
from recsys_site.csv_safety import csv_writer
from recsys_site.openapi import error

from . import selectors, services
from .exceptions import (
    FeedbackError,
    InvalidFeedback,
    NoComparisonAvailable,
    NotAnnotator,
    NotAssigned,
    TaskAlreadyJudged,
)
from .models import Comparison, ItemFeedback, ListFeedback


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Nothing to compare yet."


def api_error(error: FeedbackError) -> APIException:
    """The HTTP meaning of each feedback exception."""
    if isinstance(error, InvalidFeedback):
        return ValidationError(error.errors)
    if isinstance(error, (NotAssigned, NotAnnotator)):
        return PermissionDenied(str(error))
    if isinstance(error, NoComparisonAvailable):
        return ServiceUnavailable(str(error))
    if isinstance(error, TaskAlreadyJudged):
        return Conflict(str(error))
    return ValidationError({"detail": [str(error)]})


class IsAnnotator(BasePermission):
    message = "Only annotators compare recommendation lists."

    def has_permission(self, request, view) -> bool:
        return is_annotator(request.user)


# --- GET /api/comparisons/next/ -------------------------------------------------------------


class ShownMovieSerializer(serializers.Serializer):
    movie = serializers.IntegerField(source="movie_id", help_text="MovieLens id.")
    title = serializers.CharField()
    year = serializers.IntegerField(allow_null=True)
    genres = serializers.ListField(child=serializers.CharField())


class PersonaMovieSerializer(serializers.Serializer):
    movie = serializers.IntegerField()
    title = serializers.CharField()
    rating = serializers.FloatField()


class GenreShareSerializer(serializers.Serializer):
    genre = serializers.CharField()
    percent = serializers.IntegerField(help_text="Share of the persona's ratings in this genre.")
    mean_rating = serializers.FloatField()


class ContextSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["own", "persona"])
    movielens_id = serializers.IntegerField(required=False)
    ratings = serializers.IntegerField(required=False)
    favourites = PersonaMovieSerializer(many=True, required=False)
    recent = PersonaMovieSerializer(many=True, required=False)
    genres = GenreShareSerializer(many=True, required=False)


class NextComparisonOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="task.pk")
    context = ContextSerializer()
    left = ShownMovieSerializer(many=True)
    right = ShownMovieSerializer(many=True)


class NextComparisonApi(APIView):
    """The comparison to judge now: your open one, one needing a second opinion, or a new one."""

    permission_classes = [IsAuthenticated, IsAnnotator]

    @extend_schema(
        responses={200: NextComparisonOutputSerializer, 503: error("Nothing to compare yet.")},
    )
    def get(self, request):
        try:
            task = services.comparison_task_next(annotator=request.user)
        except FeedbackError as error:
            raise api_error(error) from None
        return Response(NextComparisonOutputSerializer(selectors.task_view(task=task)).data)


# --- POST /api/comparisons/ -----------------------------------------------------------------


class ComparisonInputSerializer(serializers.Serializer):
    task = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    choice = serializers.ChoiceField(choices=Comparison.Choice.values)
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=services.MAX_TEXT_CHARS, default=""
    )
    confidence = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=3, default=None
    )
    decision_ms = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, default=None, help_text="From display to submit."
    )


class SignalSerializer(serializers.Serializer):
    aspect = serializers.CharField()
    value = serializers.CharField()
    polarity = serializers.FloatField()
    span = serializers.CharField(required=False)


class ComparisonOutputSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", allow_null=True, default=None)
    signals = SignalSerializer(many=True)

    class Meta:
        model = Comparison
        fields = [
            "id",
            "task",
            "annotator",
            "choice",
            "confidence",
            "reason",
            "signals",
            "sentiment",
            "decision_ms",
            "created_at",
        ]


class ComparisonCreateApi(APIView):
    """Judge a comparison handed to you; a repeat returns the first judgment with 200."""

    permission_classes = [IsAuthenticated, IsAnnotator]

    @extend_schema(
        request=ComparisonInputSerializer,
        responses={
            201: ComparisonOutputSerializer,
            200: ComparisonOutputSerializer,
            409: error("The task has all the judgments it needs."),
        },
    )
    def post(self, request):
        serializer = ComparisonInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            comparison = services.comparison_submit(
                annotator=request.user,
                task_id=data["task"],
                choice=data["choice"],
                reason=data["reason"],
                confidence=data["confidence"],
                decision_ms=data["decision_ms"],
            )
        except FeedbackError as error:
            raise api_error(error) from None
        code = status.HTTP_201_CREATED if comparison.created else status.HTTP_200_OK
        return Response(ComparisonOutputSerializer(comparison).data, status=code)


# --- POST /api/feedback/items/ and /api/feedback/lists/ -------------------------------------


class ItemFeedbackInputSerializer(serializers.Serializer):
    movie = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="MovieLens id.")
    kind = serializers.ChoiceField(
        choices=[*ItemFeedback.Kind.values, "none"], help_text='"none" removes your reaction.'
    )


class ItemFeedbackOutputSerializer(serializers.Serializer):
    movie = serializers.IntegerField()
    kind = serializers.CharField(allow_null=True)


class ItemFeedbackApi(APIView):
    """Thumbs up, thumbs down or "not interested" (never recommended again) on one movie."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=ItemFeedbackInputSerializer, responses=ItemFeedbackOutputSerializer)
    def post(self, request):
        serializer = ItemFeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        kind = None if data["kind"] == "none" else data["kind"]
        try:
            feedback = services.item_feedback_set(user=request.user, movie_id=data["movie"], kind=kind)
        except FeedbackError as error:
            raise api_error(error) from None
        output = {"movie": data["movie"], "kind": feedback.kind if feedback else None}
        return Response(ItemFeedbackOutputSerializer(output).data)


class ListFeedbackInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=services.MAX_TEXT_CHARS)
    items = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=200,
        help_text="The list you are commenting on (MovieLens ids), if you have it.",
    )


class ListFeedbackOutputSerializer(serializers.ModelSerializer):
    signals = SignalSerializer(many=True)

    class Meta:
        model = ListFeedback
        fields = ["id", "text", "signals", "sentiment", "items", "created_at"]


class ListFeedbackApi(APIView):
    """A free-text comment on your recommendations as a whole; returns the signals read from it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=ListFeedbackInputSerializer, responses={201: ListFeedbackOutputSerializer})
    def post(self, request):
        serializer = ListFeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            feedback = services.list_feedback_add(
                user=request.user,
                text=serializer.validated_data["text"],
                items=serializer.validated_data["items"],
            )
        except FeedbackError as error:
            raise api_error(error) from None
        return Response(ListFeedbackOutputSerializer(feedback).data, status=status.HTTP_201_CREATED)


# --- GET /api/comparisons/export/?format=jsonl|csv ------------------------------------------


def jsonl_lines(records: Iterable[dict]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


class _Line:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


CSV_JSON_FIELDS = {"left", "right", "left_source", "right_source", "signals"}


def csv_lines(records: Iterable[dict]) -> Iterator[str]:
    """CSV with a header; lists and objects (lists, sources, signals) as JSON in their cell.

    Free text (reasons, user names) that a spreadsheet would run as a formula is escaped.
    """
    writer = csv_writer(_Line())
    yield writer.writerow(selectors.EXPORT_FIELDS)
    for record in records:
        yield writer.writerow(
            [
                json.dumps(record[name], ensure_ascii=False, separators=(",", ":"))
                if name in CSV_JSON_FIELDS
                else ("" if record[name] is None else record[name])
                for name in selectors.EXPORT_FIELDS
            ]
        )


class JSONLinesRenderer(BaseRenderer):
    media_type = "application/x-ndjson"
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # errors only; rows stream
        return json.dumps(data).encode()


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):  # errors only; rows stream
        return json.dumps(data).encode()


def export_response(records: Iterable[dict], *, fmt: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(records), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(
            jsonl_lines(records), content_type="application/x-ndjson; charset=utf-8"
        )
    response["Content-Disposition"] = f'attachment; filename="preferences-{stamp}.{fmt}"'
    return response


class ComparisonExportApi(APIView):
    """Every preference (human and simulated), streamed as JSON lines or CSV; staff only.

    ``?format=`` picks the renderer (DRF's URL_FORMAT_OVERRIDE): jsonl (default) or csv.
    """

    permission_classes = [IsAdminUser]
    renderer_classes = [JSONLinesRenderer, CSVRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force=force)
        except (NotFound, Http404):  # DRF's answer to an unknown ?format=
            raise ValidationError({"format": ["Use format=jsonl or format=csv."]}) from None

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "csv"], description="Default jsonl.")],
        responses={(200, "application/x-ndjson"): str, (200, "text/csv"): str},
    )
    def get(self, request):
        return export_response(selectors.export_records(), fmt=request.accepted_renderer.format)
