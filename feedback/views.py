"""Annotator and end-user feedback pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def compare(request: HttpRequest) -> HttpResponse:
    return render(request, "feedback/compare.html", {})
