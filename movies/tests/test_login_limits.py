"""Sign-in limits: repeated wrong passwords lock out an account or an address, for a cool-off only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from rest_framework.test import APIClient

from recsys_site.throttling import LoginAccountThrottle, LoginAddressThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters(settings):
    settings.AXES_FAILURE_LIMIT = 3
    cache.clear()  # the token API's rate-limit windows
    yield
    cache.clear()


def cool_off_passes(settings):
    """Moves every recorded failure back past the cool-off, as if that time had gone by."""
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
        attempt.save()


def login(client, password, username="alice", address="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def token(api, password, username="alice", address="10.0.0.1"):
    return api.post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=address,
    )


def test_repeated_wrong_passwords_lock_the_login_page_with_a_clear_message(client, alice, settings):
    assert [login(client, "wrong").status_code for _ in range(2)] == [200, 200]
    locked = login(client, "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert locked["Retry-After"] == str(settings.LOGIN_COOLOFF_MINUTES * 60)
    assert login(client, "alice-pass-123").status_code == 429  # the right password waits too


def test_the_correct_password_works_again_after_the_cool_off(client, alice, settings):
    for _ in range(3):
        login(client, "wrong")
    assert login(client, "alice-pass-123").status_code == 429
    cool_off_passes(settings)
    response = login(client, "alice-pass-123")
    assert response.status_code == 302
    assert client.get("/my/ratings/").status_code == 200


def test_failures_during_a_lockout_do_not_extend_it(client, alice, settings):
    for _ in range(3):
        login(client, "wrong")
    cool_off_passes(settings)
    assert login(client, "wrong").status_code == 200  # counted afresh, not locked
    assert login(client, "alice-pass-123").status_code == 302


def test_an_account_is_locked_from_every_address(client, alice):
    for n in range(3):
        login(client, "wrong", address=f"10.0.0.{n + 1}")
    assert login(client, "alice-pass-123", address="10.0.0.9").status_code == 429


def test_an_address_is_locked_for_every_account(client, alice, bob):
    for n in range(3):
        login(client, "wrong", username=f"guess{n}")
    assert login(client, "bob-pass-123", username="bob").status_code == 429
    assert login(client, "bob-pass-123", username="bob", address="10.0.0.2").status_code == 302


def test_the_token_api_locks_out_with_a_clear_message_then_recovers(alice, settings):
    api = APIClient()
    assert [token(api, "wrong").status_code for _ in range(3)] == [400, 400, 429]
    refused = token(api, "alice-pass-123")
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.json()["detail"]
    assert refused["Retry-After"] == str(settings.LOGIN_COOLOFF_MINUTES * 60)
    cool_off_passes(settings)
    assert "token" in token(api, "alice-pass-123").json()


def test_a_forged_forwarded_for_header_does_not_escape_the_address_limit(alice, settings, monkeypatch):
    rates = {**LoginAddressThrottle.THROTTLE_RATES, "login_address": "2/minute"}
    monkeypatch.setattr(LoginAddressThrottle, "THROTTLE_RATES", rates)
    api = APIClient()
    codes = [
        api.post(
            "/api/auth/token/",
            {"username": f"user{n}", "password": "x"},
            format="json",
            REMOTE_ADDR="10.0.3.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        ).status_code
        for n in range(3)
    ]
    assert codes == [400, 400, 429]


def test_the_token_api_is_rate_limited_per_account_and_per_address(alice, settings, monkeypatch):
    settings.AXES_FAILURE_LIMIT = 1000
    rates = {**LoginAccountThrottle.THROTTLE_RATES, "login_account": "2/minute", "login_address": "3/minute"}
    monkeypatch.setattr(LoginAccountThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(LoginAddressThrottle, "THROTTLE_RATES", rates)
    api = APIClient()
    codes = [token(api, "alice-pass-123", address=f"10.0.1.{n}").status_code for n in range(3)]
    assert codes == [200, 200, 429]  # one account, many addresses
    codes = [token(api, "x", username=f"user{n}", address="10.0.2.1").status_code for n in range(4)]
    assert codes == [400, 400, 400, 429]  # one address, many accounts
