"""REST API routes, one include per app."""

from django.urls import include, path, register_converter

from .converters import IdConverter

register_converter(IdConverter, "id")  # before the apps' routes, which use <id:...>

urlpatterns = [
    path("", include("movies.api_urls")),
    path("", include("training.api_urls")),
    path("", include("feedback.api_urls")),
]
