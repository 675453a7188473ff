"""Schemathesis against the app's own OpenAPI schema: every operation answers as documented.

For each operation, a bounded, derandomized set of generated requests (valid and invalid ones)
goes through the whole Django stack as staff with a token, over a small catalogue; every response
must be no server error, and have a documented status code, content type and body. Write
operations are included: the test's transaction is rolled back, and a queued training run is
never handed to the broker (``transaction.on_commit`` does not fire inside it).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def staff_token(sam):
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=sam).key


@pytest.fixture
def api_schema(db, catalogue):
    """The schema, and the app called straight through WSGI. As Django's test client does, the
    requests keep the test's database connection: with ``CONN_MAX_AGE`` 0 (CI's setting) the end
    of each request would otherwise close it, and the test's transaction with it."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from recsys_site.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_every_operation_answers_as_its_schema_says(api_schema, staff_token):
    # One loop rather than schemathesis' pytest plugin, which does not run under pytest 9.
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,  # the same requests on every run: CI is deterministic
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
            )
            def call_and_validate(case):
                case.call_and_validate(headers={"Authorization": f"Token {staff_token}"}, checks=CHECKS)

            try:
                call_and_validate()
            except Unsatisfiable:  # nothing to make invalid: the operation takes no input
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (
                Exception,
                BaseExceptionGroup,
            ) as error:  # each operation's failure is reported, not only the first
                failures.append(f"{operation.label} ({mode.value}):\n{error}")
    assert not failures, "\n\n".join(failures)
