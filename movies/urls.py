from django.urls import path

from . import views

urlpatterns = [
    path("movies/", views.movie_list, name="movie-list"),
    path("movies/<int:movie_id>/", views.movie_detail, name="movie-detail"),
    path("movies/<int:movie_id>/rate/", views.movie_rate, name="movie-rate"),
    path("movies/<int:movie_id>/unrate/", views.movie_unrate, name="movie-unrate"),
    path("movies/<int:movie_id>/watchlist/", views.movie_watchlist, name="movie-watchlist"),
    path("my/ratings/", views.my_ratings, name="my-ratings"),
    path("my/watchlist/", views.my_watchlist, name="my-watchlist"),
    path("welcome/", views.onboarding, name="onboarding"),
]
