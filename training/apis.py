"""REST endpoints for recommendations and training."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from movies.models import Rater
from movies.selectors import rater_for_user

from .serving import POLICY_CHOICES, recommend


class RecommendationQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=100, default=20)
    policy = serializers.ChoiceField(choices=POLICY_CHOICES, default="active")
    user = serializers.IntegerField(
        min_value=1, required=False, help_text="A dataset (MovieLens) user id; staff only."
    )


class RecommendationItemSerializer(serializers.Serializer):
    movie = serializers.IntegerField(source="movie.pk")
    title = serializers.CharField(source="movie.display_title")
    score = serializers.FloatField()
    reason = serializers.CharField()


class RecommendationListSerializer(serializers.Serializer):
    policy = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    results = RecommendationItemSerializer(many=True, source="items")

    def to_representation(self, recs):
        # The fields above describe the response (and the OpenAPI schema); building it by hand
        # saves ~0.8 ms of the generic field machinery, a sixth of a request. Tests check both agree.
        return {
            "policy": recs.policy,
            "version": recs.version,
            "results": [
                {
                    "movie": item.movie.pk,
                    "title": item.movie.display_title,
                    "score": item.score,
                    "reason": item.reason,
                }
                for item in recs.items
            ],
        }


class RecommendationApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("k", int, description="How many movies (1 to 100, default 20)."),
            OpenApiParameter(
                "policy", str, enum=list(POLICY_CHOICES), description="Staff only, except 'active'."
            ),
            OpenApiParameter(
                "user", int, description="Staff only: a MovieLens user id of the imported dataset."
            ),
        ],
        responses=RecommendationListSerializer,
    )
    def get(self, request):
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        inspecting = "user" in params or params["policy"] != "active"
        if inspecting and not request.user.is_staff:
            raise PermissionDenied("Only staff may choose the policy or the user.")
        if "user" in params:
            rater_id = Rater.objects.filter(movielens_id=params["user"]).values_list("id", flat=True).first()
            if rater_id is None:
                raise NotFound(f"No dataset user {params['user']}.")
        else:
            rater = rater_for_user(request.user)
            rater_id = rater.pk if rater is not None else None
        recs = recommend(rater_id=rater_id, policy=params["policy"], k=params["k"])
        return Response(RecommendationListSerializer(recs).data)
