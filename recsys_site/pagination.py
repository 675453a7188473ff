"""Page-number pagination whose page size the client may choose within a bound."""

from __future__ import annotations

from rest_framework import pagination

from .query import query_int


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        size = query_int(request, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return size if size is not None else self.page_size

    def get_page_number(self, request, paginator) -> int:
        number = query_int(request, self.page_query_param, minimum=1)
        return number if number is not None else 1

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1},
            self.page_size_query_param: {
                "minimum": 1,
                "maximum": self.max_page_size,
                "default": self.page_size,
            },
        }
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters
