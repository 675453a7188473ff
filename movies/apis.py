"""REST endpoints for the catalogue and the signed-in user's ratings."""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_site.converters import MAX_ID
from recsys_site.query import NUMBER_REQUIRED
from recsys_site.throttling import LoginAccountThrottle, LoginAddressThrottle

from . import selectors, services
from .exceptions import InvalidRating, UnknownMovie
from .forms import MovieFilterForm
from .lockout import lockout_message, lockout_minutes
from .models import RATING_MAX, RATING_MIN, Genre, Movie, Rating


class MovieOutputSerializer(serializers.ModelSerializer):
    genres = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    name = serializers.CharField(
        read_only=True, help_text='The title as written: "The Matrix" for the stored "Matrix, The".'
    )
    imdb_url = serializers.CharField(read_only=True)
    tmdb_url = serializers.CharField(read_only=True)

    class Meta:
        model = Movie
        fields = [
            "id",
            "title",
            "name",
            "year",
            "genres",
            "num_ratings",
            "avg_rating",
            "imdb_id",
            "tmdb_id",
            "imdb_url",
            "tmdb_url",
        ]


def _filter_parameter(name: str, description: str = "") -> OpenApiParameter:
    """A movie filter's query parameter, with the bounds its form field checks."""
    field = MovieFilterForm.base_fields[name]
    if isinstance(field, forms.IntegerField):
        schema = {"type": "integer", "minimum": field.min_value, "maximum": field.max_value}
    else:
        schema = {"type": "string", "maxLength": field.max_length}
    return OpenApiParameter(name, schema, description=description)


MOVIE_FILTER_PARAMETERS = [
    _filter_parameter("q", 'Part of the title, case-insensitive; "the matrix" also finds "Matrix, The".'),
    OpenApiParameter("genre", str, description="Genre name, e.g. Comedy."),
    _filter_parameter("year_min"),
    _filter_parameter("year_max", "Not before year_min."),
    _filter_parameter("min_ratings", "Only movies with at least this many ratings."),
    OpenApiParameter("sort", str, enum=["popularity", "rating", "year", "title"]),
]


class MovieListApi(ListAPIView):
    serializer_class = MovieOutputSerializer
    permission_classes = [AllowAny]

    @extend_schema(parameters=MOVIE_FILTER_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        genres = list(selectors.genre_list().values_list("name", flat=True))
        params = self.request.query_params.copy()
        params.pop("page", None)
        params.pop("page_size", None)
        form = MovieFilterForm(params, genres=genres)
        if params and not form.is_valid():
            raise serializers.ValidationError(
                {name: list(messages) for name, messages in form.errors.items()}
            )
        # The form reads an empty number as "no filter" (the browse page sends every field); a
        # client that sends ?min_ratings= meant a number.
        empty = [
            name
            for name, field in form.fields.items()
            if isinstance(field, forms.IntegerField) and name in params and not params[name].strip()
        ]
        if empty:
            raise serializers.ValidationError({name: [NUMBER_REQUIRED] for name in empty})
        return selectors.movie_list(filters=form.filters())


class MovieDetailApi(RetrieveAPIView):
    serializer_class = MovieOutputSerializer
    permission_classes = [AllowAny]

    def get_object(self):
        movie = selectors.movie_get(movie_id=self.kwargs["movie_id"])
        if movie is None:
            from rest_framework.exceptions import NotFound

            raise NotFound("No movie with this MovieLens id.")
        return movie


class GenreOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Genre
        fields = ["name"]


class GenreListApi(ListAPIView):
    serializer_class = GenreOutputSerializer
    permission_classes = [AllowAny]
    pagination_class = None

    def get_queryset(self):
        return selectors.genre_list()


class RatingOutputSerializer(serializers.ModelSerializer):
    movie = serializers.IntegerField(source="movie_id")
    title = serializers.CharField(source="movie.display_title")

    class Meta:
        model = Rating
        fields = ["movie", "title", "rating", "rated_at"]


class RatingValueField(serializers.FloatField):
    """A rating: a JSON number (DRF's FloatField alone would take `true` as 1.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise serializers.ValidationError("A rating must be a number, not true or false.")
        value = super().to_internal_value(data)
        try:
            return services.validate_rating_value(value)
        except InvalidRating as error:
            raise serializers.ValidationError(str(error)) from None


class RatingInputSerializer(serializers.Serializer):
    movie = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="MovieLens movie id.")
    rating = RatingValueField(
        min_value=RATING_MIN, max_value=RATING_MAX, help_text="0.5 to 5.0 in steps of 0.5."
    )


class RatingUpdateSerializer(serializers.Serializer):
    rating = RatingValueField(min_value=RATING_MIN, max_value=RATING_MAX)


def _rating_of_user(user, movie_id: int) -> Rating:
    """The one permission-checked fetch of a rating: only the owner's own rating exists for them."""
    return get_object_or_404(Rating.objects.select_related("movie"), rater__user=user, movie_id=movie_id)


class RatingListCreateApi(GenericAPIView):
    """GET: your ratings, a page at a time (the default pagination); POST: rate a movie."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=RatingOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.user_ratings(user=request.user))
        return self.get_paginated_response(RatingOutputSerializer(page, many=True).data)

    @extend_schema(request=RatingInputSerializer, responses={201: RatingOutputSerializer})
    def post(self, request):
        serializer = RatingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        movie_id = serializer.validated_data["movie"]
        if Rating.objects.filter(rater__user=request.user, movie_id=movie_id).exists():
            raise serializers.ValidationError(
                {
                    "movie": [
                        f"You already rated movie {movie_id}; use PUT /api/ratings/{movie_id}/ to change it."
                    ]
                }
            )
        try:
            rating = services.rating_set(
                user=request.user, movie_id=movie_id, value=serializer.validated_data["rating"]
            )
        except UnknownMovie as error:
            raise serializers.ValidationError({"movie": [str(error)]}) from None
        return Response(
            RatingOutputSerializer(_rating_of_user(request.user, rating.movie_id)).data,
            status=status.HTTP_201_CREATED,
        )


class RatingDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=RatingOutputSerializer)
    def get(self, request, movie_id: int):
        return Response(RatingOutputSerializer(_rating_of_user(request.user, movie_id)).data)

    @extend_schema(request=RatingUpdateSerializer, responses=RatingOutputSerializer)
    def put(self, request, movie_id: int):
        _rating_of_user(request.user, movie_id)
        serializer = RatingUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.rating_set(user=request.user, movie_id=movie_id, value=serializer.validated_data["rating"])
        return Response(RatingOutputSerializer(_rating_of_user(request.user, movie_id)).data)

    @extend_schema(request=RatingUpdateSerializer, responses=RatingOutputSerializer)
    def patch(self, request, movie_id: int):
        return self.put(request, movie_id)

    @extend_schema(responses={204: None})
    def delete(self, request, movie_id: int):
        _rating_of_user(request.user, movie_id)
        services.rating_delete(user=request.user, movie_id=movie_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenApi(ObtainAuthToken):
    """POST username and password; returns a token for `Authorization: Token <key>`.

    Rate-limited per address and per account name, and refused with 429 while django-axes has the
    account or the address locked out after repeated wrong passwords.
    """

    throttle_classes = [LoginAddressThrottle, LoginAccountThrottle]

    @extend_schema(
        request=inline_serializer(
            "TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}
        ),
        responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # django-axes flags the request when the account or the address is locked out; the
            # lockout refuses even a correct password, so say why instead of "wrong credentials".
            if getattr(request, "axes_locked_out", False):
                return Response(
                    {"detail": lockout_message()},
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                    headers={"Retry-After": str(lockout_minutes() * 60)},
                )
            raise serializers.ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
