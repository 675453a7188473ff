"""The web container's health check: gunicorn answers GET /api/genres/ (a database read) with 200."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("PORT", "8000")
    # Asked as the site's own name, which ALLOWED_HOSTS accepts whatever it is set to (".example.org"
    # allows "example.org"), and as a proxy that terminated HTTPS would, so that
    # SECURE_SSL_REDIRECT does not answer with a redirect.
    allowed = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "localhost").split(",")]
    host = next((name.lstrip(".") for name in allowed if name and name != "*"), "localhost")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/genres/", headers={"Host": host, "X-Forwarded-Proto": "https"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:  # refused, timed out, or an HTTP error status
        print(f"GET /api/genres/ on port {port} as {host}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
