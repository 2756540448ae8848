from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response


class OrderedCursorPagination(CursorPagination):
    """Cursor pagination that takes its order from the queryset and refuses none.

    A list without an order is a bug: pages would skip and repeat rows.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_ordering(self, request, queryset, view):
        query = queryset.query
        ordering = tuple(query.order_by) or (
            tuple(queryset.model._meta.ordering) if query.default_ordering else ()
        )
        if not ordering:
            raise ImproperlyConfigured(f"{type(view).__name__}: refusing to paginate an unordered queryset.")
        if not all(isinstance(item, str) and "__" not in item for item in ordering):
            raise ImproperlyConfigured(f"{type(view).__name__}: cursor ordering must be plain field names.")
        return ordering

    def decode_cursor(self, request):
        # DRF says 404 for a cursor it cannot read; it is bad input, so 400.
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from exc

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
