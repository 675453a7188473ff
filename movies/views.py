"""Browser pages: catalogue, movie page, rating, onboarding and accounts (htmx-enhanced)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors, services
from .exceptions import MoviesError
from .forms import MovieFilterForm, MyRatingsFilterForm, RatingForm, SignupForm
from .models import RATING_MAX, RATING_MIN, RATING_STEP
from .roles import landing_url_name

PAGE_SIZE = 24
STAR_VALUES = [
    {"value": value, "half": value % 1 != 0}
    for value in (
        RATING_MIN + RATING_STEP * i for i in range(int((RATING_MAX - RATING_MIN) / RATING_STEP) + 1)
    )
]


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def star_context(*, movie_id: int, rating: float | None, error: str = "", next_url: str = "") -> dict:
    return {"movie_id": movie_id, "rating": rating, "stars": STAR_VALUES, "error": error, "next": next_url}


class LoginView(auth_views.LoginView):
    """Log in, then go to the page asked for, or else to where the account's role works."""

    def get_default_redirect_url(self) -> str:
        return reverse(landing_url_name(self.request.user))


@require_GET
def movie_list(request: HttpRequest) -> HttpResponse:
    genres = list(selectors.genre_list().values_list("name", flat=True))
    form = MovieFilterForm(request.GET or None, genres=genres)
    movies = selectors.movie_list(filters=form.filters())
    page = Paginator(movies, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    own = selectors.user_ratings_for_movies(user=request.user, movie_ids=[movie.pk for movie in page])
    for movie in page:
        movie.user_rating = own.get(movie.pk)
    selectors.watchlist_mark(user=request.user, movies=page)
    context = {"form": form, "page": page, "query": query.urlencode(), "stars": STAR_VALUES}
    if request.htmx and request.htmx.target == "movie-results":
        return render(request, "movies/_movie_results.html", context)
    return render(request, "movies/movie_list.html", context)


@require_GET
def movie_detail(request: HttpRequest, movie_id: int) -> HttpResponse:
    """A movie's page. Its "more like this" list comes as a fragment from the floor that owns lists
    (``training``), so the catalogue never imports serving."""
    movie = selectors.movie_get(movie_id=movie_id)
    if movie is None:
        raise Http404("No such movie.")
    own = selectors.user_ratings_for_movies(user=request.user, movie_ids=[movie.pk])
    selectors.watchlist_mark(user=request.user, movies=[movie])
    context = {
        "movie": movie,
        "tags": selectors.movie_top_tags(movie=movie),
        **star_context(movie_id=movie.pk, rating=own.get(movie.pk), next_url=request.get_full_path()),
    }
    return render(request, "movies/movie_detail.html", context)


@login_required
@require_POST
def movie_rate(request: HttpRequest, movie_id: int) -> HttpResponse:
    form = RatingForm(request.POST)
    fallback = reverse("movie-detail", args=[movie_id])
    error, value = "", None
    if form.is_valid():
        try:
            value = services.rating_set(
                user=request.user, movie_id=movie_id, value=form.cleaned_data["rating"]
            ).rating
        except MoviesError as failure:
            error = str(failure)
    else:
        error = "; ".join(message for messages_ in form.errors.values() for message in messages_)
    if request.htmx:
        if error:
            value = selectors.user_ratings_for_movies(user=request.user, movie_ids=[movie_id]).get(movie_id)
        response = render(
            request,
            "movies/_stars.html",
            star_context(
                movie_id=movie_id, rating=value, error=error, next_url=_safe_next(request, fallback)
            ),
        )
        if not error:
            response["HX-Trigger"] = "ratings-changed"
        return response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Rated {value:g} stars.")
    return redirect(_safe_next(request, fallback))


@login_required
@require_POST
def movie_unrate(request: HttpRequest, movie_id: int) -> HttpResponse:
    removed = services.rating_delete(user=request.user, movie_id=movie_id)
    fallback = reverse("movie-detail", args=[movie_id])
    if request.htmx:
        response = render(
            request,
            "movies/_stars.html",
            star_context(movie_id=movie_id, rating=None, next_url=_safe_next(request, fallback)),
        )
        response["HX-Trigger"] = "ratings-changed"
        return response
    if removed:
        messages.success(request, "Rating removed.")
    return redirect(_safe_next(request, fallback))


@login_required
@require_POST
def movie_watchlist(request: HttpRequest, movie_id: int) -> HttpResponse:
    """Add a movie to the watchlist (action=add) or take it off (action=remove)."""
    fallback = reverse("movie-detail", args=[movie_id])
    action = request.POST.get("action")
    error = ""
    if action == "add":
        try:
            services.watchlist_add(user=request.user, movie_id=movie_id)
        except MoviesError as failure:
            error = str(failure)
    elif action == "remove":
        services.watchlist_remove(user=request.user, movie_id=movie_id)
    else:
        error = "Choose add or remove."
    if request.htmx:
        on_list = movie_id in selectors.watchlist_movie_ids(user=request.user, movie_ids=[movie_id])
        context = {
            "movie_id": movie_id,
            "on_watchlist": on_list,
            "error": error,
            "next": _safe_next(request, fallback),
        }
        return render(request, "movies/_watchlist_button.html", context, status=400 if error else 200)
    if error:
        messages.error(request, error)
    elif action == "add":
        messages.success(request, "Added to your watchlist.")
    else:
        messages.success(request, "Taken off your watchlist.")
    return redirect(_safe_next(request, fallback))


@login_required
@require_GET
def my_watchlist(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.user_watchlist(user=request.user), 50).get_page(request.GET.get("page"))
    own = selectors.user_ratings_for_movies(user=request.user, movie_ids=[entry.movie_id for entry in page])
    for entry in page:
        entry.movie.user_rating = own.get(entry.movie_id)
        entry.movie.on_watchlist = True
    return render(request, "movies/my_watchlist.html", {"page": page, "stars": STAR_VALUES})


@login_required
@require_GET
def my_ratings(request: HttpRequest) -> HttpResponse:
    genres = list(selectors.genre_list().values_list("name", flat=True))
    form = MyRatingsFilterForm(request.GET or None, genres=genres)
    ratings = selectors.user_ratings(user=request.user, filters=form.filters(now=timezone.now()))
    page = Paginator(ratings, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "filtered": any(value for key, value in query.items() if key != "sort"),
        "total": selectors.user_rating_count(user=request.user),
        "stars": STAR_VALUES,
    }
    if request.htmx and request.htmx.target == "movie-results":
        return render(request, "movies/_my_ratings_results.html", context)
    return render(request, "movies/my_ratings.html", context)


@login_required
@require_GET
def onboarding(request: HttpRequest) -> HttpResponse:
    count = selectors.user_rating_count(user=request.user)
    needed = settings.ONBOARDING_MIN_RATINGS
    movies = selectors.onboarding_movies(user=request.user)
    selectors.watchlist_mark(user=request.user, movies=movies)
    context = {
        "movies": movies,
        "count": count,
        "needed": needed,
        "remaining": max(0, needed - count),
        "stars": STAR_VALUES,
    }
    if request.htmx and request.htmx.target == "onboarding-progress":
        return render(request, "movies/_onboarding_progress.html", context)
    return render(request, "movies/onboarding.html", context)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.account_create(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password1"],
            email=form.cleaned_data.get("email") or "",
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Rate a few movies so we can learn your taste.")
        return redirect("onboarding")
    return render(request, "registration/signup.html", {"form": form})
