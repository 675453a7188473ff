"""Top-level URLs: the site, the admin and the REST API."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico whatever the page's <link rel=icon> says."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An API client gets JSON for a URL no route matches (``/api/movies/abc/``), as the API's own 404s."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, so the CSP needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("recsys_site.api_urls")),
    path("accounts/", include("movies.account_urls")),
    path("", include("training.urls")),
    path("", include("feedback.urls")),
    path("", include("movies.urls")),
]
