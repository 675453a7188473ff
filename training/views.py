"""Pages for recommendations, and for staff: dashboards, run progress and plots."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from feedback.selectors import item_feedback_kinds
from movies import selectors as movie_selectors
from movies.models import Rating
from movies.roles import is_annotator
from movies.selectors import genre_list, watchlist_movie_ids

from . import dashboard_plots, registry
from .forms import SteeringForm
from .models import ModelVersion, OnlineExperiment, TrainingRun
from .online import online_experiment_results, reward_hacking_warning
from .serving import SIMILAR_MIN_RATINGS, recommendations_for_user, shown_list_outcomes, similar_movies

SIMILAR_COUNT = 8  # "More like this" on a movie's page


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The start page: a first look at one's recommendations and latest ratings, or what is popular."""
    user = request.user
    if (
        user.is_authenticated
        and not is_annotator(user)  # staff are annotators too; they have their own pages to go to
        and movie_selectors.user_rating_count(user=user) < settings.ONBOARDING_MIN_RATINGS
    ):
        return redirect("onboarding")
    context: dict = {}
    if user.is_authenticated:
        context["recommendations"] = recommendations_for_user(user=user, k=12)
        movie_selectors.watchlist_mark(
            user=user, movies=[rec.movie for rec in context["recommendations"].items]
        )
        context["recent_ratings"] = movie_selectors.user_ratings(user=user)[:6]
    else:
        filters = movie_selectors.MovieFilters(sort="popularity")
        context["popular"] = movie_selectors.movie_list(filters=filters)[:12]
    return render(request, "training/home.html", context)


@require_GET
def movie_similar(request: HttpRequest, movie_id: int) -> HttpResponse:
    """A movie's "more like this": the fragment its page loads, or a page of its own without htmx."""
    movie = movie_selectors.movie_get(movie_id=movie_id)
    if movie is None:
        raise Http404("No such movie.")
    similar = similar_movies(movie=movie, k=SIMILAR_COUNT)
    own = movie_selectors.user_ratings_for_movies(
        user=request.user, movie_ids=[item.movie.pk for item in similar.items]
    )
    for item in similar.items:
        item.movie.user_rating = own.get(item.movie.pk)
    movie_selectors.watchlist_mark(user=request.user, movies=[item.movie for item in similar.items])
    context = {"movie": movie, "similar": similar, "similar_min_ratings": SIMILAR_MIN_RATINGS}
    template = "training/_similar.html" if request.htmx else "training/similar.html"
    return render(request, template, context)


@login_required
@require_GET
def recommendations(request: HttpRequest) -> HttpResponse:
    genres = list(genre_list().values_list("name", flat=True))
    form = SteeringForm(request.GET, genres=genres)
    recs = recommendations_for_user(user=request.user, k=20, steering=form.steering())
    feedback = item_feedback_kinds(user=request.user, movie_ids=[rec.movie.pk for rec in recs.items])
    watchlisted = watchlist_movie_ids(user=request.user, movie_ids=[rec.movie.pk for rec in recs.items])
    for rec in recs.items:  # the thumbs shown by feedback/_item_feedback.html, the "want to watch" button
        rec.feedback = feedback.get(rec.movie.pk, "")
        rec.movie.on_watchlist = rec.movie.pk in watchlisted
    template = "training/_recommendations.html" if request.htmx else "training/recommendations.html"
    return render(request, template, {"recs": recs, "form": form})


@staff_member_required
@require_GET
def staff_dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "runs": TrainingRun.objects.select_related("created_by")[:10],
        "versions": ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).order_by("algorithm"),
        "candidates": ModelVersion.objects.filter(status=ModelVersion.Status.CANDIDATE).order_by(
            "-created_at"
        )[:10],
        "counts": Rating.objects.aggregate(total=Count("id")),
        "served": registry.served_decision(),
        "outcomes": shown_list_outcomes(since=timezone.now() - timedelta(days=30)),
        "online": [
            (experiment, results, reward_hacking_warning(experiment, results))
            for experiment in OnlineExperiment.objects.select_related("control", "candidate")[:5]
            for results in [online_experiment_results(experiment)]
        ],
    }
    return render(request, "training/dashboard.html", context)


@staff_member_required
@require_GET
def version_lineage(request: HttpRequest, version_id: int) -> HttpResponse:
    """Where a version came from: its run, its data, the versions it was built on, and the
    comparisons and annotators its reward model learned from; and every serving decision about it."""
    from django.db.models import Max, Min

    from feedback.models import Comparison

    version = get_object_or_404(ModelVersion.objects.select_related("run", "run__created_by"), pk=version_id)
    built_on = {
        role: ModelVersion.objects.filter(pk=version.config.get(key)).first()
        for role, key in (("recommender", "base_version_id"), ("reward model", "reward_version_id"))
        if version.config.get(key)
    }
    reward = version if version.algorithm == "reward" else built_on.get("reward model")
    learned_from = None
    if reward is not None and reward.run is not None and reward.run.started_at is not None:
        comparisons = Comparison.objects.filter(
            task__context_rater_id__in=reward.data_snapshot.get("learner_raters") or [],
            created_at__lt=reward.run.started_at,
        )
        by_annotator = (
            comparisons.values("annotator__username", "simulator").annotate(n=Count("id")).order_by("-n")[:20]
        )
        learned_from = {
            "reward": reward,
            "span": comparisons.aggregate(first=Min("created_at"), last=Max("created_at"), n=Count("id")),
            "annotators": [
                {"name": row["annotator__username"] or f"{row['simulator']} (simulated)", "n": row["n"]}
                for row in by_annotator
            ],
        }
    context = {
        "version": version,
        "built_on": built_on,
        "learned_from": learned_from,
        "decisions": version.serving_decisions.select_related("actor").order_by("-at")[:20],
        "served": registry.served_decision(),
    }
    return render(request, "training/lineage.html", context)


@staff_member_required
@require_GET
def training_run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=run_id)
    watching = request.GET.get("watching") == "1"  # a poll while the run was in flight
    return render(request, "training/_run_progress.html", {"run": run, "watching": watching})


@staff_member_required
@require_GET
def training_run_plot(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=run_id)
    if not run.history:
        raise Http404("This run recorded no curves.")
    return _png(dashboard_plots.run_plot(run))


def _png(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


@staff_member_required
@require_GET
def plot_ratings(request: HttpRequest) -> HttpResponse:
    return _png(dashboard_plots.ratings_plot())


@staff_member_required
@require_GET
def plot_versions(request: HttpRequest) -> HttpResponse:
    metric = request.GET.get("metric", "win_rate")
    if metric not in dashboard_plots.VERSION_METRICS:
        raise Http404("Unknown metric.")
    return _png(dashboard_plots.versions_plot(metric))


@staff_member_required
@require_GET
def plot_genre_mix(request: HttpRequest) -> HttpResponse:
    return _png(dashboard_plots.genre_mix_plot())
