"""REST API routes, one include per app."""

from django.urls import include, path

urlpatterns = [
    path("", include("movies.api_urls")),
    path("", include("training.api_urls")),
    path("", include("feedback.api_urls")),
]
