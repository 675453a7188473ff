from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from recsys_site.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]
HTTPS_OWNED_BY_PROXY = {"security.W004", "security.W008", "security.W012", "security.W016"}


def test_env_helpers_parse_and_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    monkeypatch.setenv("X_NUMBER", "12")
    monkeypatch.setenv("X_HOSTS", "a.example, b.example,")
    assert env_bool("X_FLAG") is True
    assert env_int("X_NUMBER", 0) == 12
    assert env_list("X_HOSTS", []) == ["a.example", "b.example"]
    assert env_int("X_MISSING", 7) == 7
    monkeypatch.setenv("X_FLAG", "maybe")
    monkeypatch.setenv("X_NUMBER", "twelve")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")
    with pytest.raises(ImproperlyConfigured, match="X_NUMBER"):
        env_int("X_NUMBER", 0)


def _check_deploy(tmp_path, **extra) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "k" * 20 + "-not-a-real-secret-but-long-enough-for-the-check-0123456789",
        "VAR_DIR": str(tmp_path),
        **extra,
    }
    for name in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_apart_from_the_https_settings_the_proxy_owns(tmp_path):
    result = _check_deploy(tmp_path)
    warnings = {word.strip("():") for word in result.stderr.split() if word.startswith("(security.")}
    assert warnings <= HTTPS_OWNED_BY_PROXY, result.stderr


def test_check_deploy_is_silent_once_https_is_switched_on(tmp_path):
    result = _check_deploy(
        tmp_path,
        SECURE_SSL_REDIRECT="1",
        SESSION_COOKIE_SECURE="1",
        CSRF_COOKIE_SECURE="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_PRELOAD="1",
    )
    assert result.returncode == 0, result.stderr
    assert "security." not in result.stderr


def test_a_short_secret_key_is_refused(tmp_path):
    result = _check_deploy(tmp_path, SECRET_KEY="short")
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr
