#!/usr/bin/env bash
# Serve the site with gunicorn plus two Celery workers and the beat scheduler; Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-8000}
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null; wait' EXIT INT TERM
# Two workers: the default queue, and the training queue in a prefork pool with one task per child,
# so TensorFlow is only ever imported inside a forked child's task body (never before a fork),
# time limits are enforced, and each run's memory is returned to the system when it ends.
$BIN/celery -A recsys_site worker -n default@%h -Q default --concurrency=2 -l info &
$BIN/celery -A recsys_site worker -n training@%h -Q training --concurrency=1 --max-tasks-per-child=1 -l info &
$BIN/celery -A recsys_site beat -l info &
echo "Serving on http://127.0.0.1:${PORT}/  (Ctrl-C to stop)"
$BIN/gunicorn recsys_site.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --access-logfile - &
wait -n
