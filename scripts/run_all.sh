#!/usr/bin/env bash
# Serve the site with gunicorn plus two Celery workers and the beat scheduler; Ctrl-C or TERM stops all four.
#
# Each service runs in a session of its own (setsid), so the terminal's Ctrl-C reaches only this
# script, which stops every service once and waits for it: TERM to the service (Celery's warm
# shutdown, gunicorn's graceful one), then, after STOP_TIMEOUT seconds, KILL to whatever is left
# of its process group (a prefork pool's children included). If one service exits on its own, the
# others are stopped too. Nothing is left running re-parented to PID 1.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${RUN_ALL_BIN:-.venv/bin}
PORT=${PORT:-8000}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
pids=()
names=()

start() {  # start NAME COMMAND...
  local name=$1
  shift
  if command -v setsid >/dev/null; then
    setsid "$@" &
  else  # no setsid (macOS): the service shares our process group; stopping still goes by its pid
    "$@" &
  fi
  pids+=("$!")
  names+=("$name")
}

alive() {  # alive PID: the service, or anything left in its process group
  kill -0 "$1" 2>/dev/null || kill -0 -- "-$1" 2>/dev/null
}

stop() {
  trap - INT TERM EXIT
  local i deadline=$((SECONDS + STOP_TIMEOUT))
  echo "Stopping ${names[*]}..." >&2
  for i in "${!pids[@]}"; do kill -TERM "${pids[$i]}" 2>/dev/null; done
  for i in "${!pids[@]}"; do
    while alive "${pids[$i]}" && ((SECONDS < deadline)); do sleep 0.2; done
  done
  for i in "${!pids[@]}"; do
    if alive "${pids[$i]}"; then
      echo "${names[$i]} (pid ${pids[$i]}) did not stop within ${STOP_TIMEOUT} s: killing it" >&2
      kill -KILL -- "-${pids[$i]}" 2>/dev/null || kill -KILL "${pids[$i]}" 2>/dev/null
    fi
  done
  wait 2>/dev/null
  echo "Stopped." >&2
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'stop' EXIT

# Two workers: the default queue, and the training queue in a prefork pool with one task per child,
# so TensorFlow is only ever imported inside a forked child's task body (never before a fork),
# time limits are enforced, and each run's memory is returned to the system when it ends.
start default-worker "$BIN/celery" -A recsys_site worker -n default@%h -Q default --concurrency=2 -l info
start training-worker "$BIN/celery" -A recsys_site worker -n training@%h -Q training --concurrency=1 \
  --max-tasks-per-child=1 -l info
start beat "$BIN/celery" -A recsys_site beat -l info
start web "$BIN/gunicorn" recsys_site.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --access-logfile -
echo "Serving on http://127.0.0.1:${PORT}/ (log in at http://127.0.0.1:${PORT}/accounts/login/; Ctrl-C to stop)"
wait -n
echo "A service exited on its own; stopping the others." >&2
exit 1
