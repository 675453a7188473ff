from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from recsys_site.wsgi import application
from django.urls import get_resolver
from django.contrib import admin
get_resolver().url_patterns  # import every view module
admin.autodiscover()
import training.serving, training.store, training.policies, training.admin, training.apis, training.views, feedback.views
from django.test import Client
client = Client(HTTP_HOST="localhost")
for url in ["/", "/movies/", "/api/movies/", "/api/schema/"]:
    assert client.get(url).status_code == 200, url
from django.core.management import call_command
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""


def run_probe(tmp_path: Path, probe: str = PROBE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "recsys_site.settings",
        },
    )


def test_the_web_process_never_imports_tensorflow(tmp_path):
    result = run_probe(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_the_web_process_does_not_load_the_trainers(tmp_path):
    # Checking a run's settings needs the trainers' config classes; they are imported on use,
    # so serving pages and the API does not load them (nor scipy.linalg, which EASE pulls in).
    trainers = ["training.ml.ppo", "training.ml.dqn", "training.ml.recommender", "training.ml.reward_model"]
    result = run_probe(tmp_path, PROBE + f"print([m for m in {trainers!r} if m in sys.modules])\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
