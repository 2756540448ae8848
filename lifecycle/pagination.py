from datetime import UTC, datetime

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from .serializers import find_unstorable


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
        self._model = queryset.model
        return ordering

    def decode_cursor(self, request):
        # DRF says 404 for a cursor it cannot read; it is bad input, so 400.
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from exc
        if cursor is not None and cursor.position is not None:
            position = self._checked_position(cursor.position)
            if position is None:
                raise ValidationError({self.cursor_query_param: ["Invalid cursor."]})
            cursor = cursor._replace(position=position)
        return cursor

    def _checked_position(self, position: str) -> str | None:
        """A cursor's position as the database can compare it with the ordering field, or None.

        A cursor is client input: DRF filters on its position as is, so "1.5" against an
        integer, a NUL, a number past the column's range, or a datetime that overflows
        (or whose offset PostgreSQL refuses) on conversion to UTC were all 500s.
        """
        if find_unstorable(position) is not None:
            return None
        try:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        except FieldDoesNotExist:
            return position
        try:
            value = field.to_python(position)
            field.run_validators(value)  # integer fields carry the database's range
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC)  # OverflowError past year 9999
                position = value.isoformat()
            field.get_db_prep_value(value, connection)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            return None
        return position

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
