#!/usr/bin/env bash
# Serve the site with gunicorn plus one Celery worker and the beat scheduler; Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-8000}
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null; wait' EXIT INT TERM
# The training queue runs in a threads pool: TensorFlow is imported inside task bodies, never before a fork.
$BIN/celery -A recsys_site worker -Q default,training --pool=threads --concurrency=2 -l info &
$BIN/celery -A recsys_site beat -l info &
echo "Serving on http://127.0.0.1:${PORT}/  (Ctrl-C to stop)"
$BIN/gunicorn recsys_site.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --access-logfile - &
wait -n
