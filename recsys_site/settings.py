"""Django settings, read from the environment; with nothing set, everything runs on one machine.

Nothing configured: SQLite in ``var/``, a local-memory cache and an embedded Celery broker
(kombu's filesystem transport in ``var/celery``), so ``make demo`` needs no other service.
``DATABASE_URL`` switches to PostgreSQL, ``REDIS_URL`` to Redis for the broker and the cache.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/ (never in git)."""
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "django_celery_beat",
    "django_celery_results",
    "movies",
    "feedback",
    "training",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "recsys_site.urls"
WSGI_APPLICATION = "recsys_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "movies.context_processors.roles",
                "movies.context_processors.rating_stars",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    if not DATABASE_URL.startswith(("postgres://", "postgresql://", "sqlite:")):
        raise ImproperlyConfigured("DATABASE_URL must be a postgresql:// or sqlite:// URL")
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # Reused across requests like PostgreSQL's: opening SQLite and running the pragmas
            # below costs ~0.9 ms, a sixth of a recommendation request.
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a Celery worker writes; IMMEDIATE avoids
    # "database is locked" upgrades from read to write transactions.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery -----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _broker_dir = VAR_DIR / "celery" / "broker"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _folder in (_broker_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
    }

CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    # The reaper must not wait behind a training run (or a dead training worker) on its queue.
    "training.tasks.training_runs_reap": {"queue": "default"},
    "training.tasks.*": {"queue": "training"},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out account or address before any check
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# --- Sign-in lockout (django-axes) ------------------------------------------------------------
# Failed sign-ins are counted per account and per address, each on its own: LOGIN_FAILURE_LIMIT
# failures lock that account (from any address) and that address (for any account) for
# LOGIN_COOLOFF_MINUTES. Failures during a lockout do not extend it, so nobody is locked out for good.
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15)
if LOGIN_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured(
        f"LOGIN_COOLOFF_MINUTES must be at least 1 (a lockout must end), got {LOGIN_COOLOFF_MINUTES}"
    )
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "movies.lockout.lockout_response"  # 429, Retry-After, the styled page
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not stored: only failures matter here

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
# The Docker image collects into its own folder at build time, outside the artifacts volume.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# --- Security -------------------------------------------------------------------------------
# HTTPS is owned by the reverse proxy in front of gunicorn; these four stay off unless it says so.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("BEHIND_HTTPS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles, fonts and API calls from this site only;
# no inline script or style anywhere (pages, admin, API docs), images also as data: URLs (the
# leaderboard's plot, Swagger UI's icons). CSP_REPORT_ONLY=1 reports violations without blocking.
_CSP = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "movies.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "recsys_site.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "recsys_site.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "recsys_site.throttling.AnonRateThrottle",
        "recsys_site.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "3000/minute"),
        "user": env_str("API_THROTTLE_USER", "120000/minute"),
        # POST /api/auth/token/, on top of the sign-in lockout: any attempt counts, good or bad.
        "login_address": env_str("API_THROTTLE_LOGIN_ADDRESS", "30/minute"),
        "login_account": env_str("API_THROTTLE_LOGIN_ACCOUNT", "10/minute"),
    },
    # Throttles count per REMOTE_ADDR, like the sign-in lockout: DRF would otherwise take a client's
    # own X-Forwarded-For header, which anyone can change on every request to escape the limits.
    "NUM_PROXIES": 0,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "rest_framework.views.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MovieLens RLHF recommender API",
    "DESCRIPTION": "Catalogue, ratings, recommendations, human feedback and model training.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # <id:...> in the API's routes (recsys_site/converters.py): 0 to MAX_ID
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}},
    "ENUM_NAME_OVERRIDES": {  # several models have a "kind" and a "status"
        "TrainingRunKindEnum": "training.models.TrainingRun.Kind",
        "TrainingRunStatusEnum": "training.models.TrainingRun.Status",
        "ModelVersionKindEnum": "training.models.ModelVersion.Kind",
        "ModelVersionStatusEnum": "training.models.ModelVersion.Status",
    },
}

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"no_traceback_for_refusals": {"()": "recsys_site.logging_filters.NoTracebackForRefusals"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # a 403 is logged as one line; its traceback is noise (recsys_site/logging_filters.py)
        "django.request": {"filters": ["no_traceback_for_refusals"]},
    },
}

# --- The product ----------------------------------------------------------------------------
ARTIFACTS_DIR = Path(env_str("ARTIFACTS_DIR", str(VAR_DIR / "artifacts")))
BUNDLED_DATASET_DIR = BASE_DIR / "data" / "ml-latest-small"
ONBOARDING_MIN_RATINGS = env_int("ONBOARDING_MIN_RATINGS", 5)
RETRAIN_MIN_NEW_FEEDBACK = env_int("RETRAIN_MIN_NEW_FEEDBACK", 50)
# A share of "For you" lists is sampled from the served policy's best candidates rather than its
# top k, with each movie's propensity logged, so candidates can be evaluated off-policy.
FOR_YOU_EXPLORE_SHARE = env_float("FOR_YOU_EXPLORE_SHARE", 0.05)
FOR_YOU_EXPLORE_CANDIDATES = env_int("FOR_YOU_EXPLORE_CANDIDATES", 40)
FOR_YOU_EXPLORE_TEMPERATURE = env_float("FOR_YOU_EXPLORE_TEMPERATURE", 0.5)
OPE_MIN_LISTS = env_int("OPE_MIN_LISTS", 200)  # explored lists an off-policy estimate needs to be relied on
IMPRESSIONS_KEEP_DAYS = env_int("IMPRESSIONS_KEEP_DAYS", 90)  # shown lists older than this are deleted daily
INTERLEAVING_SHARE = env_float("INTERLEAVING_SHARE", 0.5)  # users who see an online comparison's list
# A reaction to a recommended movie counts in the user's profile at once, as this rating would
# (the item-feedback experiment's settings, training.ml.item_feedback.ItemFeedbackConfig).
THUMB_UP_RATING = env_float("THUMB_UP_RATING", 4.5)
THUMB_DOWN_RATING = env_float("THUMB_DOWN_RATING", 2.0)
NOT_INTERESTED_RATING = env_float("NOT_INTERESTED_RATING", 1.5)  # and the movie never comes back
RETRAIN_MIN_NEW_RATINGS = env_int("RETRAIN_MIN_NEW_RATINGS", 500)  # newer than the recommender's data
ANNOTATOR_DAILY_TARGET = env_int("ANNOTATOR_DAILY_TARGET", 40)  # judgments a day the progress bar aims at
COMPARISON_UNDO_SECONDS = env_int("COMPARISON_UNDO_SECONDS", 60)  # how long an annotator may take one back
COMPARISON_OVERLAP_SHARE = env_float("COMPARISON_OVERLAP_SHARE", 0.2)
COMPARISON_GOLD_SHARE = env_float("COMPARISON_GOLD_SHARE", 0.1)
COMPARISON_PERSONA_SHARE = env_float(
    "COMPARISON_PERSONA_SHARE", 0.5
)  # of new tasks, when own taste is possible
# Of new non-gold tasks, the share chosen by the reward model's disagreement (when its artifact has an
# uncertainty estimate; training.ml.active); the rest stay uniformly random, and each task says which.
# Off by default: on the norms population it reached no better reward-model accuracy than random pairs
# (docs/experiment.md, "Active comparisons and label efficiency"), and the gate measures accuracy on
# randomly chosen tasks only, so every active task is one the gate cannot use.
COMPARISON_ACTIVE_SHARE = env_float("COMPARISON_ACTIVE_SHARE", 0.0)
# Who makes the two lists of a comparison task (feedback.lists.ListSource): the served models.
COMPARISON_LIST_SOURCE = "training.comparison_lists.ServedLists"

# --- The promotion gate and the reranker baselines --------------------------------------------
# Defaults are the closed-loop experiment's (training.ml.experiment.ExperimentConfig and the
# baselines' settings there); a test holds them equal.
GATE_MIN_JUDGE_ACCURACY = env_float("GATE_MIN_JUDGE_ACCURACY", 0.55)  # judge's accuracy on gate users
GATE_MIN_JUDGE_COMPARISONS = env_int("GATE_MIN_JUDGE_COMPARISONS", 20)  # strict ones it is measured on
GATE_MIN_HELDOUT_USERS = env_int("GATE_MIN_HELDOUT_USERS", 10)  # gate users the head-to-head needs
GATE_MAX_KL = env_float("GATE_MAX_KL", 10.0)  # nats per list from the reference policy
GATE_JUDGE_USER_SHARE = env_float("GATE_JUDGE_USER_SHARE", 0.2)  # comparison raters kept for the judge
GATE_HELDOUT_USER_SHARE = env_float("GATE_HELDOUT_USER_SHARE", 0.2)  # raters kept for the gate
GATE_NDCG_MIN_RATINGS = env_int("GATE_NDCG_MIN_RATINGS", 10)  # a gate user's ratings for the NDCG check
GATE_BOOTSTRAP_ROUNDS = env_int("GATE_BOOTSTRAP_ROUNDS", 1000)
GATE_MIN_REWARD_ACCURACY = env_float("GATE_MIN_REWARD_ACCURACY", 0.6)  # a reward model is activated above it
GATE_MIN_HELDOUT_COMPARISONS = env_int("GATE_MIN_HELDOUT_COMPARISONS", 10)  # ... on at least this many
# The settings the experiment chose most often on validation users (docs/experiment.md, 20 seed-splits).
RERANK_QUALITY_WEIGHT = env_float("RERANK_QUALITY_WEIGHT", 0.25)  # quality_rerank's a (7 of 20)
RERANK_REWARD_WEIGHT = env_float("RERANK_REWARD_WEIGHT", 0.5)  # rm_rerank's b (7 of 20)
RERANK_BEST_OF_N = env_int("RERANK_BEST_OF_N", 32)  # best_of_n's n (6 of 20)
# The two list builders of issue 15: what validation users of the norms population chose most often
# (docs/experiment.md, second run, seeds 10-19, lambda's grid 1.0 to 0.1).
RERANK_MMR_LAMBDA = env_float("RERANK_MMR_LAMBDA", 0.4)  # mmr's lambda (3 of 10; 0.5 and 0.6 twice each)
RERANK_GREEDY_WEIGHT = env_float("RERANK_GREEDY_WEIGHT", 0.5)  # rm_greedy's b (5 of 10; first run 4 of 10)
RERANK_RM_MMR_WEIGHT = env_float(
    "RERANK_RM_MMR_WEIGHT", 0.25
)  # rm_mmr's b at mmr's lambda (0.25, 0: 4 of 10 each; 0 is mmr)
# The reward model scores a list as a whole (redundancy, genre and decade variety, its worst movie)
# as well as movie by movie; off, it is the additive model (docs/experiment.md, "norms").
REWARD_SET_FEATURES = env_bool("REWARD_SET_FEATURES", True)
