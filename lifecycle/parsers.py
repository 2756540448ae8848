"""The API's JSON parser: bad input stops here, as a 400, before any code walks it."""

from __future__ import annotations

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from .serializers import UNSTORABLE_MESSAGE, find_unstorable, printable

# Far deeper than any document the API takes (serializers stop at 20 levels), far
# shallower than what makes a later json.dumps or recursive walk hit the recursion limit.
MAX_PARSED_DEPTH = 64
TOO_DEEP_MESSAGE = f"JSON nested deeper than {MAX_PARSED_DEPTH} levels is not accepted."


class SafeJSONParser(JSONParser):
    """JSONParser that answers 400 for nesting the decoder cannot hold, and for text no
    database column can store (NUL, lone surrogates) anywhere in the document.

    `[[[[…` 100k deep made json.load raise RecursionError (a 500, on the anonymous token
    endpoint too), and `"\\ud800"` decodes fine only to break on encode or in PostgreSQL.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - {TOO_DEEP_MESSAGE}") from exc
        problem = json_problem(data)
        if problem is not None:
            path, message = problem
            raise ValidationError({path: [message]} if path else [message])
        return data


def json_problem(data) -> tuple[str, str] | None:
    """(dotted path, message) of the first over-deep or unstorable place in parsed JSON.

    Iterative on purpose: a recursive walk is what the deep document would break.
    """
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_PARSED_DEPTH:
            return path, TOO_DEEP_MESSAGE
        if isinstance(value, str):
            if find_unstorable(value) is not None:
                return path, UNSTORABLE_MESSAGE
        elif isinstance(value, dict):
            items = []
            for key, item in value.items():
                sub = f"{path}.{printable(key)}" if path else printable(key)
                if find_unstorable(key) is not None:
                    return sub, UNSTORABLE_MESSAGE
                items.append((item, sub, depth + 1))
            stack.extend(reversed(items))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}.{index}" if path else str(index), depth + 1)
                for index, item in reversed(list(enumerate(value)))
            )
    return None
