"""Query parameters for the APIs: a number must be a number; an empty one is an error, not "absent"."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

NUMBER_REQUIRED = "A valid integer is required."  # as DRF says it


def query_int(request, name: str, *, minimum: int, maximum: int | None = None) -> int | None:
    """An integer query parameter within its bounds, None when absent; a 400 naming it otherwise.

    An empty value (``?page_size=``) is wrong too: a client that sends one meant something.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not text.lstrip("-").isdecimal():
        raise ValidationError({name: [NUMBER_REQUIRED]})
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise ValidationError({name: [f"Ensure this value is {bound}."]})
    return value


class QueryIntegerField(serializers.IntegerField):
    """An optional integer query parameter: DRF would read ``?k=`` as absent and use the default."""

    def get_value(self, dictionary):
        if self.field_name in dictionary and not str(dictionary[self.field_name]).strip():
            return ""  # to_internal_value refuses it, naming the field
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, str) and not data.strip():
            self.fail("invalid")
        return super().to_internal_value(data)
