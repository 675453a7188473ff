"""Logging filters: expected refusals are one line in the log, not a traceback."""

from __future__ import annotations

import logging

# Django logs a refused request (PermissionDenied: 403) with the exception's traceback. A refusal is
# the site working as intended, so the line stays (who was refused what, at WARNING) without it.
EXPECTED_STATUSES = {403}


class NoTracebackForRefusals(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) in EXPECTED_STATUSES:
            record.exc_info = None
            record.exc_text = None
        return True
