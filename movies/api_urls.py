from django.urls import path

from . import apis

urlpatterns = [
    path("movies/", apis.MovieListApi.as_view(), name="api-movie-list"),
    path("movies/<id:movie_id>/", apis.MovieDetailApi.as_view(), name="api-movie-detail"),
    path("genres/", apis.GenreListApi.as_view(), name="api-genre-list"),
    path("ratings/", apis.RatingListCreateApi.as_view(), name="api-rating-list"),
    path("ratings/<id:movie_id>/", apis.RatingDetailApi.as_view(), name="api-rating-detail"),
    path("auth/token/", apis.TokenApi.as_view(), name="api-token"),
]
