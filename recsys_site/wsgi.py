"""WSGI entry point (gunicorn recsys_site.wsgi)."""

import os

# Web workers score one request at a time with small matrix-vector products: BLAS thread pools
# only add contention between gunicorn workers, so each uses one thread.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after the BLAS settings)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")
application = get_wsgi_application()
