"""The OpenAPI schema's error responses: one error body, and the errors every operation can answer."""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    """DRF's body for every refusal but bad input: ``{"detail": "..."}``."""

    detail = serializers.CharField(help_text="What went wrong, for a person to read.")


def error(description: str) -> OpenApiResponse:
    """A documented error response, for ``extend_schema(responses={409: error("...")})``."""
    return OpenApiResponse(ErrorSerializer, description=description)


# Bad input: {"<field>": ["message", ...]}, {"detail": "<why the body could not be read>"}, or nested
# messages for a field that holds a list or an object.
VALIDATION_ERROR = {
    "type": "object",
    "description": "Messages by the name of each wrong field or parameter.",
    "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "string"}, {"type": "object"}]},
    "example": {"page_size": ["Ensure this value is from 1 to 200."]},
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the errors that DRF itself answers for any view.

    Operation-specific errors (409, 503) are declared on the view with ``error()``.
    """

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code, description in self._framework_errors(operation).items():
            body = self._validation_error_ref() if code == "400" else ErrorSerializer
            responses.setdefault(code, self._get_response_for_code(OpenApiResponse(body, description), code))
        return operation

    def _framework_errors(self, operation: dict) -> dict[str, str]:
        errors = {}
        takes_query = any(p["in"] == "query" for p in operation.get("parameters", []))
        if takes_query or "requestBody" in operation:
            errors["400"] = "Bad input: a message per wrong field or parameter."
        if self.view.get_authenticators():
            # Session authentication comes first, so DRF answers 403 (not 401) to a missing or
            # wrong token as well as to an account without the permission.
            errors["403"] = (
                "A wrong token." if self._allows_anyone() else "Not signed in, a wrong token, or not allowed."
            )
        if "{" in self.path or self._is_paginated():
            errors["404"] = "No such object, or a page after the last."
        if self.view.get_throttles():
            errors["429"] = "Rate-limited; Retry-After says for how many seconds."
        return errors

    def _allows_anyone(self) -> bool:
        return all(isinstance(permission, AllowAny) for permission in self.view.get_permissions())

    def _is_paginated(self) -> bool:
        return self.method == "GET" and self._get_paginator() is not None and self._is_list_view()

    def _validation_error_ref(self) -> dict:
        component = ResolvedComponent(
            name="ValidationError",
            type=ResolvedComponent.SCHEMA,
            object="ValidationError",
            schema=VALIDATION_ERROR,
        )
        self.registry.register_on_missing(component)
        return component.ref
