# The web, worker and scheduler image: `docker compose up` runs all of them against PostgreSQL and Redis.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_ENABLE_ONEDNN_OPTS=0 \
    VAR_DIR=/var/lib/reelfeel

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home --uid 1000 reelfeel && mkdir -p "$VAR_DIR" && chown -R reelfeel "$VAR_DIR"
USER reelfeel
RUN SECRET_KEY=build-only-not-secret-000000000000000000000000000000000000 python manage.py collectstatic --noinput -v0

EXPOSE 8000
CMD ["gunicorn", "recsys_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
