"""REST endpoints for recommendations and training."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from movies.models import Movie, Rater
from movies.selectors import genre_list, rater_for_user
from recsys_site.converters import MAX_ID
from recsys_site.openapi import error
from recsys_site.query import QueryIntegerField

from . import registry
from .exceptions import BrokerUnavailable, InvalidRunConfig, RunAlreadyInFlight, VersionStateError
from .jsonsafe import json_safe
from .ml.steering import STEPS, Steering
from .models import ModelVersion, OnlineExperiment, ServingDecision, TrainingRun
from .online import online_experiment_results, online_experiment_start, online_experiment_stop
from .ope import describe as describe_off_policy
from .ope import off_policy_estimate
from .runs import BROKER_RETRY_AFTER_SECONDS, training_run_start
from .serving import POLICY_CHOICES, recommend_steered, similar_movies
from .store import SERVABLE_ALGORITHMS, served_version_ids


class RecommendationQuerySerializer(serializers.Serializer):
    """The query parameters, which the schema shows with these bounds and help texts."""

    k = QueryIntegerField(min_value=1, max_value=100, default=20, help_text="How many movies.")
    policy = serializers.ChoiceField(
        choices=POLICY_CHOICES, default="active", help_text="Staff only, except 'active'."
    )
    user = QueryIntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        help_text="Staff only: a MovieLens user id of the imported dataset.",
    )
    popularity = serializers.ChoiceField(
        choices=["less", "more"],
        default="",
        allow_blank=True,
        help_text="Re-rank towards less or more popular titles; omit for the policy's order.",
    )
    recency = serializers.ChoiceField(
        choices=["less", "more"],
        default="",
        allow_blank=True,
        help_text="Re-rank towards older ('less') or newer ('more') titles; omit for as is.",
    )
    genre = serializers.CharField(
        max_length=64,
        default="",
        allow_blank=True,
        help_text="A genre name (e.g. 'Comedy') to put first; 400 for a genre the catalogue lacks.",
    )

    def validate_genre(self, value: str) -> str:
        if value and not genre_list().filter(name=value).exists():
            names = ", ".join(genre_list().values_list("name", flat=True))
            raise serializers.ValidationError(f"Unknown genre {value!r}; choose one of {names}.")
        return value

    def steering(self) -> Steering:
        data = self.validated_data
        return Steering(
            popularity=STEPS[data["popularity"]], recency=STEPS[data["recency"]], genre=data["genre"]
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
        parameters=[RecommendationQuerySerializer],
        responses={200: RecommendationListSerializer, 404: error("No dataset user with that id.")},
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
        recs = recommend_steered(
            rater_id=rater_id, policy=params["policy"], k=params["k"], steering=query.steering()
        )
        return Response(RecommendationListSerializer(recs).data)


class SimilarQuerySerializer(serializers.Serializer):
    k = QueryIntegerField(min_value=1, max_value=50, default=10, help_text="How many movies.")


class SimilarMoviesApi(APIView):
    """ "More like this": by the active recommender's embeddings, or by genres (``serving.similar_movies``)."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[SimilarQuerySerializer],
        responses=RecommendationListSerializer,
    )
    def get(self, request, movie_id: int):
        query = SimilarQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        movie = Movie.objects.prefetch_related("genres").filter(pk=movie_id).first()
        if movie is None:
            raise NotFound("No movie with this MovieLens id.")
        similar = similar_movies(movie=movie, k=query.validated_data["k"])
        return Response(RecommendationListSerializer(similar).data)


# --- Training runs and model versions (staff) --------------------------------------------------


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."


VERSION_CONFLICT = error("The version's state does not allow it (the message says why).")


class BrokerDown(APIException):
    """503 with Retry-After: DRF's exception handler sends ``wait`` as that header."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The task broker is unreachable; try again later."

    def __init__(self, detail: str, wait: int):
        super().__init__(detail)
        self.wait = wait


def choice_filters(request, **choices) -> dict[str, str]:
    """Query parameters named in ``choices`` as queryset filters, each checked against its choices."""
    filters = {}
    for name, allowed in choices.items():
        if value := request.query_params.get(name):
            if value not in allowed:
                raise ValidationError({name: [f"expected one of {', '.join(allowed)}"]})
            filters[name] = value
    return filters


class ModelVersionSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    served = serializers.SerializerMethodField(
        help_text="Whether end users get this version now (the serving decision in force; null for the "
        "reward model, which is never served). An active version may be loaded without being served; "
        "a served version whose artifact fails to load is not: the process keeps what it had."
    )

    def get_served(self, version: ModelVersion) -> bool | None:
        if version.algorithm not in SERVABLE_ALGORITHMS:
            return None
        if "served_ids" not in self.context:
            self.context["served_ids"] = served_version_ids()
        return version.pk in self.context["served_ids"]

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "label",
            "kind",
            "algorithm",
            "version",
            "status",
            "served",
            "metrics",
            "config",
            "seed",
            "data_snapshot",
            "gate",
            "run",
            "created_at",
            "activated_at",
        ]
        read_only_fields = fields


class TrainingRunSerializer(serializers.ModelSerializer):
    versions = ModelVersionSerializer(many=True, read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "kind",
            "status",
            "trigger",
            "seed",
            "config",
            "step",
            "progress",
            "metrics",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "versions",
        ]
        read_only_fields = fields


class TrainingRunDetailSerializer(TrainingRunSerializer):
    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "log", "history"]
        read_only_fields = fields


class TrainingRunStartSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TrainingRun.Kind.choices)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    config = serializers.DictField(
        required=False,
        help_text='Settings to change from the defaults, by stage, e.g. {"ppo": {"iterations": 60}}.',
    )


class TrainingRunListApi(generics.ListAPIView):
    """Staff: training runs, newest first; POST queues one on the training queue."""

    permission_classes = [IsAdminUser]
    serializer_class = TrainingRunSerializer

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=list(TrainingRun.Status.values))])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = choice_filters(self.request, status=TrainingRun.Status.values)
        return TrainingRun.objects.prefetch_related("versions").filter(**filters)

    @extend_schema(
        request=TrainingRunStartSerializer,
        responses={
            202: TrainingRunSerializer,
            409: error("Another run is queued or running."),
            503: error("The task broker is unreachable; Retry-After says when to try again."),
        },
    )
    def post(self, request):
        start = TrainingRunStartSerializer(data=request.data)
        start.is_valid(raise_exception=True)
        data = start.validated_data
        try:
            run = training_run_start(
                kind=data["kind"],
                trigger=TrainingRun.Trigger.API,
                user=request.user,
                seed=data["seed"],
                config=data.get("config"),
            )
        except InvalidRunConfig as error:
            raise ValidationError({"config": [str(error)]}) from None
        except RunAlreadyInFlight as error:
            raise Conflict(str(error)) from None
        except BrokerUnavailable as error:
            raise BrokerDown(str(error), wait=BROKER_RETRY_AFTER_SECONDS) from None
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(generics.RetrieveAPIView):
    """Staff: one run with its progress, log, metric history and the versions it registered."""

    permission_classes = [IsAdminUser]
    serializer_class = TrainingRunDetailSerializer
    queryset = TrainingRun.objects.prefetch_related("versions")


class ModelVersionListApi(generics.ListAPIView):
    """Staff: registered model versions, newest first, optionally by algorithm and status."""

    permission_classes = [IsAdminUser]
    serializer_class = ModelVersionSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("algorithm", str, enum=list(registry.ALGORITHMS)),
            OpenApiParameter("status", str, enum=list(ModelVersion.Status.values)),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = choice_filters(
            self.request, algorithm=registry.ALGORITHMS, status=ModelVersion.Status.values
        )
        return ModelVersion.objects.order_by("-created_at", "-id").filter(**filters)


class ModelVersionDetailApi(generics.RetrieveAPIView):
    """Staff: one model version with its metrics, config, data snapshot and the gate's full report."""

    permission_classes = [IsAdminUser]
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.all()


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PromoteSerializer(NoteSerializer):
    override_gate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Serve a version the gate held back; a note saying why is then required.",
    )


class ServingDecisionSerializer(serializers.ModelSerializer):
    policy = serializers.CharField(source="version.algorithm", read_only=True)
    label = serializers.CharField(source="version.label", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = ServingDecision
        fields = [
            "id",
            "policy",
            "version",
            "label",
            "action",
            "actor",
            "note",
            "overrode_gate",
            "at",
            "previous",
        ]
        read_only_fields = fields


class ServingSerializer(serializers.Serializer):
    policy = serializers.CharField(
        help_text="What end users get: an algorithm, or popularity before any model."
    )
    version = ModelVersionSerializer(allow_null=True)
    decision = ServingDecisionSerializer(allow_null=True, help_text="The decision in force.")
    history = ServingDecisionSerializer(many=True, help_text="The latest decisions, newest first.")


class ServingApi(APIView):
    """Staff: what end users get now, the decision that put it there, and the decisions before it."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=ServingSerializer)
    def get(self, request):
        decision = registry.served_decision()
        history = ServingDecision.objects.select_related("version", "actor")[:20]
        version = decision.version if decision is not None else None
        return Response(
            {
                "policy": version.algorithm if version is not None else "popularity",
                "version": ModelVersionSerializer(version).data if version is not None else None,
                "decision": ServingDecisionSerializer(decision).data if decision is not None else None,
                "history": ServingDecisionSerializer(history, many=True).data,
            }
        )


class OffPolicySerializer(serializers.Serializer):
    lists = serializers.IntegerField(help_text="Explored lists the estimate used.")
    enough = serializers.BooleanField(help_text="At least OPE_MIN_LISTS lists and 30 matched positions.")
    summary = serializers.CharField()
    estimate = serializers.FloatField(required=False, allow_null=True)
    estimate_low = serializers.FloatField(required=False, allow_null=True)
    estimate_high = serializers.FloatField(required=False, allow_null=True)
    logging = serializers.FloatField(
        required=False, allow_null=True, help_text="The served policy's own value."
    )
    difference = serializers.FloatField(required=False, allow_null=True)
    difference_low = serializers.FloatField(required=False, allow_null=True)
    difference_high = serializers.FloatField(required=False, allow_null=True)
    matches = serializers.IntegerField(required=False)
    ess = serializers.FloatField(required=False, help_text="Effective sample size of the importance weights.")


class ModelVersionOffPolicyApi(APIView):
    """Staff: the version's off-policy estimate on the lists "For you" explored (SNIPS, item-position
    model): DCG-weighted good outcomes per list against the served policy's, with 95% intervals."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: OffPolicySerializer, 409: error("The version makes no lists.")})
    def get(self, request, pk: int):
        version = get_object_or_404(ModelVersion, pk=pk)
        if version.algorithm not in registry.SERVABLE:
            raise Conflict(f"{version.display_name} makes no lists.")
        result = off_policy_estimate(version=version)
        return Response(
            OffPolicySerializer({**json_safe(result), "summary": describe_off_policy(result)}).data
        )


class ModelVersionPromoteApi(APIView):
    """Staff: serve this version from now on (a person's decision, recorded with who, when and why).
    A version the gate held back needs ``override_gate`` and a note; 409 otherwise."""

    permission_classes = [IsAdminUser]

    @extend_schema(request=PromoteSerializer, responses={200: ModelVersionSerializer, 409: VERSION_CONFLICT})
    def post(self, request, pk: int):
        version = get_object_or_404(ModelVersion, pk=pk)
        body = PromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        override = body.validated_data["override_gate"]
        try:
            version = registry.model_version_promote(
                version=version,
                actor=request.user,
                note=body.validated_data["note"] or ("" if override else "promoted through the API"),
                override_gate=override,
            )
        except VersionStateError as error:
            raise Conflict(str(error)) from None
        return Response(ModelVersionSerializer(version).data)


class ModelVersionRetireApi(APIView):
    """Staff: take an active version out of service; if users get it, they get the decision before."""

    permission_classes = [IsAdminUser]

    @extend_schema(request=NoteSerializer, responses={200: ModelVersionSerializer, 409: VERSION_CONFLICT})
    def post(self, request, pk: int):
        version = get_object_or_404(ModelVersion, pk=pk)
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            version = registry.model_version_retire(
                version=version,
                actor=request.user,
                note=body.validated_data["note"] or "retired through the API",
            )
        except VersionStateError as error:
            raise Conflict(str(error)) from None
        return Response(ModelVersionSerializer(version).data)


class RollbackSerializer(NoteSerializer):
    algorithm = serializers.ChoiceField(
        choices=list(registry.ALGORITHMS),
        required=False,
        help_text="Only for the reward model (`reward`): reactivate its previous version. Without it "
        "(or for a servable algorithm), what users get returns to the decision before.",
    )


class ModelVersionRollbackApi(APIView):
    """Staff: users get the served decision before the one in force (after a first promotion, the
    recommender alone); with ``algorithm=reward``, the reward model's previous version comes back."""

    permission_classes = [IsAdminUser]

    @extend_schema(request=RollbackSerializer, responses={200: ModelVersionSerializer, 409: VERSION_CONFLICT})
    def post(self, request):
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = body.validated_data["note"] or "rolled back through the API"
        algorithm = body.validated_data.get("algorithm")
        try:
            if algorithm is not None and algorithm not in registry.SERVABLE:
                version = registry.model_version_rollback(algorithm=algorithm, actor=request.user, note=note)
            else:
                version = registry.serving_rollback(actor=request.user, note=note)
        except VersionStateError as error:
            raise Conflict(str(error)) from None
        return Response(ModelVersionSerializer(version).data)


class OnlineExperimentSerializer(serializers.ModelSerializer):
    control = serializers.CharField(source="control.label", read_only=True)
    candidate_label = serializers.CharField(source="candidate.label", read_only=True)
    results = serializers.SerializerMethodField(
        help_text="Per-user outcomes for the candidate: wins, ties, losses, users, the win share "
        "((wins + ties / 2) / users) with a bootstrap 95% interval, the sign test's p value, and "
        "shown_users (users who saw the interleaved list)."
    )

    def get_results(self, experiment: OnlineExperiment) -> dict:
        return json_safe(online_experiment_results(experiment))

    class Meta:
        model = OnlineExperiment
        fields = [
            "id",
            "candidate",
            "candidate_label",
            "control",
            "share",
            "status",
            "note",
            "started_at",
            "stopped_at",
            "results",
        ]
        read_only_fields = [
            "id",
            "candidate_label",
            "control",
            "status",
            "started_at",
            "stopped_at",
            "results",
        ]


class OnlineExperimentStartSerializer(serializers.Serializer):
    candidate = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    share = serializers.FloatField(
        min_value=0.01, max_value=1.0, required=False, help_text="Default: INTERLEAVING_SHARE."
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class OnlineExperimentListApi(APIView):
    """Staff: online comparisons by team-draft interleaving on "For you", newest first, with
    results; POST starts one between a candidate and what users get (one at a time)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=OnlineExperimentSerializer(many=True))
    def get(self, request):
        experiments = OnlineExperiment.objects.select_related("control", "candidate")[:50]
        return Response(OnlineExperimentSerializer(experiments, many=True).data)

    @extend_schema(
        request=OnlineExperimentStartSerializer,
        responses={201: OnlineExperimentSerializer, 409: VERSION_CONFLICT},
    )
    def post(self, request):
        body = OnlineExperimentStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            experiment = online_experiment_start(
                candidate=body.validated_data["candidate"],
                actor=request.user,
                share=body.validated_data.get("share"),
                note=body.validated_data["note"],
            )
        except VersionStateError as error:
            raise Conflict(str(error)) from None
        return Response(OnlineExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)


class OnlineExperimentStopApi(APIView):
    """Staff: stop an online comparison (its results stay)."""

    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses={200: OnlineExperimentSerializer, 409: VERSION_CONFLICT})
    def post(self, request, pk: int):
        experiment = get_object_or_404(OnlineExperiment, pk=pk)
        try:
            experiment = online_experiment_stop(experiment=experiment, actor=request.user)
        except VersionStateError as error:
            raise Conflict(str(error)) from None
        return Response(OnlineExperimentSerializer(experiment).data)
