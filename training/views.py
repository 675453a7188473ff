"""Pages for recommendations and for staff: dashboards and training runs."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .serving import recommendations_for_user


@login_required
@require_GET
def recommendations(request: HttpRequest) -> HttpResponse:
    recs = recommendations_for_user(user=request.user, k=20)
    template = "training/_recommendations.html" if request.htmx else "training/recommendations.html"
    return render(request, template, {"recs": recs})


@staff_member_required
@require_GET
def staff_dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "training/dashboard.html", {})
