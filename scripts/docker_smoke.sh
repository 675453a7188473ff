#!/usr/bin/env bash
# Build the Docker images, run the whole stack and use it as a client would; then remove it all.
#
# Builds both images (docker-compose.yml), starts PostgreSQL, Redis, the migrations, the web server,
# both workers and the scheduler, waits until they are healthy, imports the bundled ml-latest-small,
# trains the recommender on the training worker (POST /api/training/runs/) and checks over HTTP a
# page and its CSS, the movie API and a recommendation from the trained model. Then it removes its
# containers, volumes and images and stops the engine if it started one, on failure too (after
# printing the services' logs). Timings and image sizes are printed at the end.
#
# Where no Docker engine runs (our machines), it starts its own dockerd (Debian's docker.io,
# installed if missing) with its data in SMOKE_DIR and no networks of its own: containers and
# builds use the host's network (docker/compose.host-network.yml), on ports clear of the host's
# PostgreSQL, Redis and port 8000. Where no registry is reachable, it makes the base image with
# debootstrap from Debian's packages (kept in its engine for the next run) and builds PostgreSQL
# and Redis on it (docker/compose.offline.yml).
#
#   scripts/docker_smoke.sh           as root where it has to install packages or start dockerd
#   scripts/docker_smoke.sh --purge   also deletes SMOKE_DIR (its engine's data, the base image)
#
# SMOKE_DIR (/var/tmp/reelfeel-docker-smoke), SMOKE_KEEP_IMAGES=1 (keep the built images: a
# rebuild after a code change reuses their layers), SMOKE_WEB_PORT (18000), SMOKE_DB_PORT (55432),
# SMOKE_REDIS_PORT (56379), SMOKE_TRAIN_TIMEOUT (seconds, 900), SMOKE_DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE_DIR=${SMOKE_DIR:-/var/tmp/reelfeel-docker-smoke}
WEB_PORT=${SMOKE_WEB_PORT:-18000}
DB_PORT=${SMOKE_DB_PORT:-55432}
REDIS_PORT=${SMOKE_REDIS_PORT:-56379}
TRAIN_TIMEOUT=${SMOKE_TRAIN_TIMEOUT:-900}
MIRROR=${SMOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEEP_IMAGES=${SMOKE_KEEP_IMAGES:-0}
PROJECT=reelfeel-smoke
IMAGE=reelfeel-smoke  # the images are $IMAGE:latest (web) and $IMAGE:latest-training
BASE_TAG=reelfeel-smoke-base:bookworm
URL=http://127.0.0.1:$WEB_PORT
PURGE=0
case ${1:-} in
  --purge) PURGE=1 ;;
  "") ;;
  *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac
[[ $SMOKE_DIR == /?* && $SMOKE_DIR != *..* ]] || { echo "SMOKE_DIR must be an absolute path" >&2; exit 2; }
export COMPOSE_HTTP_TIMEOUT=600 DOCKER_CLI_HINTS=false

# --- Output and timings -----------------------------------------------------------------------
timings=()
phase_name=""
phase_start=$SECONDS
phase() {
  end_phase
  phase_name=$1
  phase_start=$SECONDS
  echo "== $phase_name" >&2
}
end_phase() {
  [[ -n $phase_name ]] && timings+=("$(printf '%-44s %5d s' "$phase_name" $((SECONDS - phase_start)))")
  phase_name=""
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() { echo "   ok: $*" >&2; }

# --- Tools ------------------------------------------------------------------------------------
apt_updated=0
apt_install() {  # apt_install PACKAGE...: Debian's packages, when a command is missing
  command -v apt-get >/dev/null || fail "missing $*, and no apt-get to install them"
  ((EUID == 0)) || fail "missing $*: run as root, or install them first"
  if ((!apt_updated)); then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_up() { docker info >/dev/null 2>&1; }

# --- The engine -------------------------------------------------------------------------------
own_engine=0
start_engine() {
  command -v dockerd >/dev/null || apt_install docker.io
  ((EUID == 0)) || fail "no Docker engine is running, and starting one needs root"
  mkdir -p "$SMOKE_DIR"
  export DOCKER_HOST=unix://$SMOKE_DIR/docker.sock
  own_engine=1
  if [[ -f $SMOKE_DIR/dockerd.pid ]] && kill -0 "$(cat "$SMOKE_DIR/dockerd.pid")" 2>/dev/null && engine_up; then
    echo "   reusing the engine a stopped run left (pid $(cat "$SMOKE_DIR/dockerd.pid"))" >&2
    return
  fi
  # No bridge, no iptables rules, no NAT: nothing of the host's network is changed.
  setsid dockerd --data-root "$SMOKE_DIR/data" --exec-root "$SMOKE_DIR/exec" --host "$DOCKER_HOST" \
    --pidfile "$SMOKE_DIR/dockerd.pid" --storage-driver=overlay2 --iptables=false \
    --ip-forward=false --ip-masq=false --bridge=none >>"$SMOKE_DIR/dockerd.log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 60))
  until engine_up; do
    kill -0 "$pid" 2>/dev/null || fail "dockerd exited; see $SMOKE_DIR/dockerd.log"
    ((SECONDS < deadline)) || fail "dockerd did not answer within 60 s; see $SMOKE_DIR/dockerd.log"
    sleep 1
  done
}

stop_engine() {
  local pid deadline=$((SECONDS + 60))
  pid=$(cat "$SMOKE_DIR/dockerd.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "dockerd (pid $pid) did not stop within 60 s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null
    sleep 1
  fi
  # dockerd leaves its network namespace mounted in its exec root.
  local mount
  awk -v root="$SMOKE_DIR/exec/" 'index($2, root) == 1 {print $2}' /proc/mounts | while read -r mount; do
    umount "$mount" 2>/dev/null || echo "could not unmount $mount" >&2
  done
}

# --- The base image where no registry is reachable ----------------------------------------------
make_base() {
  command -v debootstrap >/dev/null || apt_install debootstrap
  local root=$SMOKE_DIR/rootfs
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
    "$MIRROR" >"$SMOKE_DIR/debootstrap.log" 2>&1 || fail "debootstrap failed; see $SMOKE_DIR/debootstrap.log"
  # Like Debian's own images: installing a package starts no service.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  # This machine's own certificate authorities (a TLS-inspecting proxy's, where there is one), so
  # that pip in the builds reaches the package index as the host does.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/*
  tar -C "$root" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_TAG" >/dev/null
  rm -rf "$root"
}

# --- Clean-up, also on failure ------------------------------------------------------------------
stack_defined=0
cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM
  end_phase
  if ((stack_defined)); then
    if ((status != 0)); then
      echo "== the stack when it failed" >&2
      compose ps >&2
      compose logs --no-color --tail=40 >&2
    fi
    phase "tear down"
    compose down --volumes --remove-orphans --timeout 30 >&2
    rm -f "$env_file"
    if [[ $KEEP_IMAGES != 1 ]]; then
      docker rmi "$IMAGE:latest" "$IMAGE:latest-training" "$IMAGE-offline-postgres:15" \
        "$IMAGE-offline-redis:7" >/dev/null 2>&1
      # The base image stays only in this script's own engine, for the next run.
      ((own_engine)) || docker rmi "$BASE_TAG" >/dev/null 2>&1
      ((own_engine)) && docker image prune --force >/dev/null 2>&1
    fi
  fi
  if ((own_engine)); then
    phase "stop the engine"
    stop_engine
  fi
  if ((PURGE)); then
    if grep -q " $SMOKE_DIR/" /proc/mounts; then
      echo "not deleting $SMOKE_DIR: something is still mounted under it" >&2
    else
      rm -rf "$SMOKE_DIR"
    fi
  fi
  end_phase
  echo "== timings" >&2
  printf '   %s\n' "${timings[@]}" >&2
  printf '   %-44s %5d s\n' "total" "$SECONDS" >&2
  for line in "${sizes[@]}"; do echo "   $line" >&2; done
  if ((status == 0)); then echo "PASSED: docker smoke test" >&2; else echo "FAILED: docker smoke test" >&2; fi
  exit "$status"
}
sizes=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. An engine, compose, a base image ----------------------------------------------------------
phase "engine"
if ! engine_up; then
  start_engine
fi
echo "   engine: $(docker version --format '{{.Server.Version}}') at ${DOCKER_HOST:-the default socket}" >&2
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
else
  command -v docker-compose >/dev/null || apt_install docker-compose
  compose_cmd=(docker-compose)
fi

# shellcheck disable=SC2016 # the $ is the Dockerfile's
default_base=$(sed -n 's/^FROM ${BASE_IMAGE:-\(.*\)} AS base$/\1/p' Dockerfile)
[[ -n $default_base ]] || fail "no default base image found in the Dockerfile"
phase "base image"
if docker image inspect "$default_base" >/dev/null 2>&1 || timeout 300 docker pull -q "$default_base" >/dev/null 2>&1; then
  offline=0
  unset BASE_IMAGE
  echo "   base: $default_base" >&2
else
  offline=1
  export BASE_IMAGE=$BASE_TAG
  if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    echo "   base: $BASE_TAG (no registry; made earlier with debootstrap)" >&2
  else
    echo "   base: $BASE_TAG (no registry; making it with debootstrap)" >&2
    make_base
  fi
fi

# --- 2. The stack's settings --------------------------------------------------------------------
mkdir -p "$SMOKE_DIR"
env_file=$SMOKE_DIR/env
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
admin_password=$(random_hex 16)
(
  umask 077
  cat >"$env_file" <<EOF
SECRET_KEY=$(random_hex 32)
POSTGRES_USER=reelfeel
POSTGRES_PASSWORD=$(random_hex 16)
POSTGRES_DB=reelfeel
ALLOWED_HOSTS=127.0.0.1,localhost
REELFEEL_IMAGE=$IMAGE
REELFEEL_TAG=latest
REELFEEL_ENV_FILE=$env_file
WEB_PUBLISH=127.0.0.1:$WEB_PORT
SMOKE_WEB_PORT=$WEB_PORT
SMOKE_DB_PORT=$DB_PORT
SMOKE_REDIS_PORT=$REDIS_PORT
EOF
)
files=(-f docker-compose.yml)
((offline)) && files+=(-f docker/compose.offline.yml)
redis_port=6379
if ((own_engine)); then
  files+=(-f docker/compose.host-network.yml)
  redis_port=$REDIS_PORT
else
  files+=(-f docker-compose.override.yml)  # publishes the web server at WEB_PUBLISH
fi
compose() { "${compose_cmd[@]}" -p "$PROJECT" --env-file "$env_file" "${files[@]}" "$@"; }
stack_defined=1
compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true  # a killed run's leftovers

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$WEB_PORT")
((own_engine)) && ports+=("$DB_PORT" "$REDIS_PORT")
for port in "${ports[@]}"; do
  ! in_use "$port" || fail "port $port is taken; choose others with SMOKE_WEB_PORT, SMOKE_DB_PORT, SMOKE_REDIS_PORT"
done

# --- 3. Build -----------------------------------------------------------------------------------
phase "build"
compose build
sizes+=("$(docker image inspect -f "web image ($IMAGE:latest): {{.Size}} bytes" "$IMAGE:latest")")
sizes+=("$(docker image inspect -f "training image ($IMAGE:latest-training): {{.Size}} bytes" "$IMAGE:latest-training")")
has_tf=$(docker run --rm --network none "$IMAGE:latest" python -c \
  "import importlib.util; print(importlib.util.find_spec('tensorflow') is not None)")
[[ $has_tf == False ]] || fail "the web image has TensorFlow"
ok "the web image has no TensorFlow"

# --- 4. Up: the migrations run once, then the services start and become healthy -----------------
phase "up, migrate, healthy"
compose up -d
migrate_exit=$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -a -q migrate)")
[[ $migrate_exit == 0 ]] || fail "migrate exited with $migrate_exit"
ok "migrate ran and exited 0"
wait_healthy() {  # wait_healthy SERVICE...
  local service id state deadline=$((SECONDS + 300))
  for service in "$@"; do
    while :; do
      id=$(compose ps -q "$service")
      state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
      [[ $state == healthy ]] && break
      ((SECONDS < deadline)) || fail "$service is still $state after 300 s"
      sleep 2
    done
  done
}
wait_healthy db redis web worker training-worker
ok "db, redis, web, worker and training-worker are healthy"
[[ $(docker inspect -f '{{.State.Running}} {{.RestartCount}}' "$(compose ps -q beat)") == "true 0" ]] ||
  fail "beat is not running, or restarted"
ok "beat runs, without restarts"
appendonly=$(compose exec -T redis redis-cli -p "$redis_port" config get appendonly | tail -n 1 | tr -d '\r')
[[ $appendonly == yes ]] || fail "Redis' appendonly is '$appendonly'"
ok "Redis appends to its file"

# --- 5. Data and an account ---------------------------------------------------------------------
phase "import ml-latest-small"
# In the web container: `compose run` would add links to it, which the host's network refuses.
compose exec -T web python manage.py import_movielens data/ml-latest-small
compose exec -T -e DJANGO_SUPERUSER_PASSWORD="$admin_password" web \
  python manage.py createsuperuser --noinput --username smoke --email smoke@example.invalid >/dev/null

# --- 6. Pages and the API -----------------------------------------------------------------------
phase "pages and API"
py() { python3 -c "import json, sys; d = json.load(sys.stdin); $1"; }  # py CODE: d is stdin's JSON
page=$(curl -fsS --max-time 30 "$URL/") || fail "GET / did not answer 200"
css=$(grep -o 'href="/static/css/site\.[0-9a-f]*\.css"' <<<"$page" | head -n 1 | cut -d'"' -f2)
[[ -n $css ]] || fail "the home page links no hashed site.css"
curl -fsS --max-time 30 "$URL$css" | cmp -s - static/css/site.css ||
  fail "GET $css is not this checkout's static/css/site.css"
ok "GET / is 200 and its $css is this checkout's static/css/site.css"
curl -fsSL --max-time 30 -o /dev/null "$URL/favicon.ico" || fail "GET /favicon.ico failed"
page=$(curl -fsS --max-time 30 "$URL/movies/?q=matrix") || fail "GET /movies/?q=matrix did not answer 200"
[[ $page == *Matrix* ]] || fail "GET /movies/?q=matrix shows no Matrix"
ok "GET /favicon.ico and /movies/?q=matrix"
count=$(curl -fsS --max-time 30 "$URL/api/movies/?q=matrix" | py 'print(d["count"])')
((count > 0)) || fail "GET /api/movies/?q=matrix found nothing"
ok "GET /api/movies/?q=matrix: $count movies"
token=$(curl -fsS --max-time 30 -d username=smoke -d "password=$admin_password" "$URL/api/auth/token/" | py 'print(d["token"])')
auth=(-H "Authorization: Token $token")

# --- 7. Training, on the training worker ----------------------------------------------------------
phase "train base through the training worker"
run_id=$(curl -fsS --max-time 30 "${auth[@]}" -H "Content-Type: application/json" -d '{"kind": "base"}' \
  "$URL/api/training/runs/" | py 'print(d["id"])')
deadline=$((SECONDS + TRAIN_TIMEOUT))
last=""
while :; do
  run=$(curl -fsS --max-time 30 "${auth[@]}" "$URL/api/training/runs/$run_id/")
  status=$(py 'print(d["status"])' <<<"$run")
  progress=$(py 'print(d["status"], d["step"], "%.0f%%" % d["progress"])' <<<"$run")
  [[ $progress != "$last" ]] && echo "   run $run_id: $progress" >&2 && last=$progress
  [[ $status == succeeded ]] && break
  [[ $status == failed ]] && fail "training run $run_id failed: $(py 'print(d["error"])' <<<"$run")"
  ((SECONDS < deadline)) || fail "training run $run_id is still $status after $TRAIN_TIMEOUT s"
  sleep 5
done
# The run is marked succeeded before its task returns (the staff plots are drawn after it), so the
# worker's "succeeded" line may come a few seconds later: wait for it.
logged=$((SECONDS + 120))
until [[ $(compose logs --no-color training-worker) =~ execute_training_run\[[^]]*\]\ succeeded ]]; do
  ((SECONDS < logged)) || fail "the training worker's log does not show the run"
  sleep 2
done
worker_log=$(compose logs --no-color worker)
[[ $worker_log != *"execute_training_run["* ]] || fail "the default worker took the training task"
ok "run $run_id succeeded on the training worker"

phase "recommendation"
recs=$(curl -fsS --max-time 30 "${auth[@]}" "$URL/api/recommendations/?user=1&k=10")
summary=$(py 'r = d["results"]; print(d["policy"], "version", d["version"], len(r), "movies, first:", r[0]["title"] if r else None)' <<<"$recs")
[[ $(py 'print(d["policy"] == "base" and d["version"] is not None and len(d["results"]) == 10)' <<<"$recs") == True ]] ||
  fail "GET /api/recommendations/?user=1 did not come from the trained recommender: $summary"
ok "GET /api/recommendations/?user=1&k=10: $summary"
end_phase
