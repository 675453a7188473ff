"""Top-level URLs: the site, the admin and the REST API."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("recsys_site.api_urls")),
    path("accounts/", include("movies.account_urls")),
    path("", include("training.urls")),
    path("", include("feedback.urls")),
    path("", include("movies.urls")),
]
