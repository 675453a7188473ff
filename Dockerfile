# Two images from one file: `web` (gunicorn, the default worker and the scheduler; no TensorFlow)
# and `training` (the training queue's worker: the web image's packages plus TensorFlow).
# docker-compose.yml builds both; scripts/docker_smoke.sh builds, runs and checks them.
#
# The base is python:3.11-slim-bookworm pinned by digest: the tag's digest as a public record of
# August 2026 gives it, never pulled here (our machines reach no image registry). Check or refresh
# it with `docker buildx imagetools inspect python:3.11-slim-bookworm`. --build-arg
# BASE_IMAGE replaces it with any Debian bookworm image that has python3 and python3-venv: where no
# registry is reachable, scripts/docker_smoke.sh passes one it makes with debootstrap. (Empty, as
# docker-compose 1.x passes it when unset, means the default.)
ARG BASE_IMAGE

FROM ${BASE_IMAGE:-python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    VAR_DIR=/var/lib/reelfeel \
    STATIC_ROOT=/app/staticfiles \
    STATIC_MANIFEST=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_ENABLE_ONEDNN_OPTS=0
# Before any COPY, so that a code change does not re-run it. The artifacts folder is the one volume
# (docker-compose.yml); it is made here so that a new volume starts out owned by the app's user.
RUN groupadd --system --gid 10001 reelfeel \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/reelfeel \
        --shell /usr/sbin/nologin reelfeel \
    && mkdir -p /var/lib/reelfeel/artifacts \
    && chown -R 10001:10001 /var/lib/reelfeel
WORKDIR /app

# The web's packages in a virtualenv (pip may not write to a Debian python's own site-packages),
# without the test suites of numpy, scipy, pandas and matplotlib: 95 MB that nothing here runs.
FROM base AS web-packages
COPY requirements-web.txt ./
RUN python3 -m venv /opt/venv \
    && pip install -r requirements-web.txt \
    && packages=$(echo /opt/venv/lib/python3*/site-packages) \
    && rm -rf "$packages"/pandas/tests "$packages"/matplotlib/tests "$packages"/mpl_toolkits/*/tests \
    && find "$packages"/numpy "$packages"/scipy -depth -type d -name tests -exec rm -rf {} +

FROM web-packages AS web
COPY . .
# Hashed, compressed static files, inside the image: the volume never hides them, and a rebuilt
# CSS is served under its new name. Build-only settings, written nowhere the image keeps.
RUN VAR_DIR=/tmp/collectstatic SECRET_KEY=build-only-not-a-secret-00000000000000000000000000000000 \
        python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/collectstatic
USER 10001:10001
ENV PORT=8000
EXPOSE 8000
# gunicorn binds 0.0.0.0:$PORT when PORT is set and no --bind is given.
CMD ["gunicorn", "recsys_site.wsgi", "--workers", "2", "--access-logfile", "-"]

# After `web`, so that a builder without BuildKit (which builds every stage up to its target)
# does not install TensorFlow for the web image. TensorFlow's layer sits on the web's packages,
# so the two images share everything but it and the code.
FROM web-packages AS training
COPY requirements.txt ./
# Without TensorFlow's C++ headers (290 MB), which only building custom operations needs.
RUN pip install -r requirements.txt \
    && rm -rf /opt/venv/lib/python3*/site-packages/tensorflow/include
COPY --from=web /app /app
USER 10001:10001
CMD ["celery", "-A", "recsys_site", "worker", "-n", "training@%h", "-Q", "training", \
    "--concurrency=1", "--max-tasks-per-child=1", "-l", "info"]
