"""403, 404 and 500 pages: in the site's layout, saying what happened; a refusal logs no traceback."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import include, path


def broken_view(request):
    raise RuntimeError("the view broke")


urlpatterns = [path("broken/", broken_view), path("", include("recsys_site.urls"))]


@pytest.mark.django_db
def test_a_refusal_is_a_styled_403_with_its_reason_and_one_log_line_without_traceback(client, alice, caplog):
    client.force_login(alice)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/compare/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Only annotators compare recommendation lists." in page
    assert 'class="topbar"' in page and "<h1>Not allowed</h1>" in page
    refusals = [record for record in caplog.records if record.name == "django.request"]
    assert [record.getMessage() for record in refusals] == ["Forbidden (Permission denied): /compare/"]
    assert refusals[0].exc_info is None
    assert "Traceback" not in caplog.text


@pytest.mark.django_db
def test_an_unknown_address_is_a_styled_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "<h1>Not found</h1>" in page and "/no/such/page/" in page and 'class="topbar"' in page


@pytest.mark.django_db
def test_a_crash_is_a_styled_500_and_keeps_its_traceback_in_the_log(settings, caplog):
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/broken/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "<h1>Something went wrong</h1>" in page and 'class="topbar"' in page
    assert any(record.exc_info for record in caplog.records if record.name == "django.request")
