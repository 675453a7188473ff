"""scripts/run_all.sh (make demo / make serve) stops everything it started, on Ctrl-C, TERM or a crash.

The services are stand-ins: a "celery" that forks a pool child and takes a moment for its warm
shutdown, and a "gunicorn" that exits on TERM; each writes the pids it owns to a file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "run_all.sh"

CELERY = """#!/usr/bin/env bash
sleep 1000 &
child=$!
echo "$$ $child" >> "$PIDS"
trap '{TERM}' TERM
while true; do sleep 0.1; done
"""
WARM_SHUTDOWN = "sleep 0.5; kill $child; exit 0"
STUCK = 'echo "not stopping"'  # ignores TERM: only KILL ends it

GUNICORN = """#!/usr/bin/env bash
echo "$$" > "$PIDS.web"
echo "$$" >> "$PIDS"
trap 'exit 0' TERM
while true; do sleep 0.1; done
"""


def fake_bin(tmp_path: Path, *, celery_on_term: str) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in (("celery", CELERY.replace("{TERM}", celery_on_term)), ("gunicorn", GUNICORN)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return True
    return state == "Z"  # exited, waiting for init to reap it


def run(tmp_path: Path, *, celery_on_term: str, stop_timeout: int = 10) -> tuple[subprocess.Popen, Path]:
    pids = tmp_path / "pids"
    env = {
        **os.environ,
        "RUN_ALL_BIN": str(fake_bin(tmp_path, celery_on_term=celery_on_term)),
        "PIDS": str(pids),
        "PORT": "8123",
        "STOP_TIMEOUT": str(stop_timeout),
    }
    process = subprocess.Popen(
        ["bash", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pids.exists() and len(pids.read_text().split()) == 7:  # 3 celery (pid + child) + gunicorn
            return process, pids
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"the stand-in services did not start: {process.communicate()[0]}")


@pytest.fixture(autouse=True)
def _nothing_left_behind(tmp_path):
    """Should a test fail half-way, its stand-ins (each the leader of its own group) are still killed."""
    yield
    pids = tmp_path / "pids"
    for pid in started(pids) if pids.exists() else []:
        for target in (-pid, pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)


def started(pids: Path) -> list[int]:
    return [int(pid) for pid in pids.read_text().split()]


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_term_stops_every_service_and_its_children(tmp_path, stop_with):
    process, pids = run(tmp_path, celery_on_term=WARM_SHUTDOWN)
    process.send_signal(stop_with)
    output = process.communicate(timeout=20)[0]
    assert process.returncode == 128 + stop_with
    assert all(gone(pid) for pid in started(pids)), output
    assert "http://127.0.0.1:8123/accounts/login/" in output
    assert "Stopped." in output


def test_a_service_that_ignores_term_is_killed_after_the_timeout(tmp_path):
    process, pids = run(tmp_path, celery_on_term=STUCK, stop_timeout=1)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=20)[0]
    assert "did not stop within 1 s: killing it" in output
    assert all(gone(pid) for pid in started(pids)), output


def test_when_one_service_dies_the_others_are_stopped(tmp_path):
    process, pids = run(tmp_path, celery_on_term=WARM_SHUTDOWN)
    web = int(Path(f"{pids}.web").read_text())
    os.kill(web, signal.SIGKILL)
    output = process.communicate(timeout=20)[0]
    assert process.returncode == 1 and "A service exited on its own" in output
    assert all(gone(pid) for pid in started(pids)), output
