"""Checks every request passes before a view reads it: bad input is a 4xx, never a 500.

- The JSON API takes bodies up to API_MAX_CONTENT_LENGTH; other pages up to
  MAX_CONTENT_LENGTH (sized for CSV uploads).
- No NUL character in a query parameter, form field or JSON string or key: PostgreSQL text
  cannot hold one, and no real name, note or date contains one.
- A JSON body nests at most MAX_JSON_DEPTH levels (no API body needs more than 4), and one
  too deep for the parser is refused the same way instead of raising RecursionError.
"""

from __future__ import annotations

from flask import Flask, current_app, request

from app.errors import UnstorableInput

MAX_JSON_DEPTH = 32
NUL = "\x00"


def register(app: Flask) -> None:
    app.before_request(check_request)


def check_request() -> None:
    api = request.path.startswith("/api/")
    if api:
        request.max_content_length = current_app.config["API_MAX_CONTENT_LENGTH"]
    for where, values in (("query", request.args), ("form", request.form)):
        for key, items in values.lists():
            if _has_nul(key) or any(_has_nul(item) for item in items):
                name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
                raise UnstorableInput(name.replace(NUL, "") or where,
                                      "must not contain NUL characters")
    if api and request.is_json and request.content_length != 0:
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            raise UnstorableInput("body", f"nests deeper than {MAX_JSON_DEPTH} levels") from None
        _check_json(data)


def _has_nul(value: object) -> bool:
    """A form value (or a field's name) is text, but a multipart part that is not valid in
    the form's charset reaches us as bytes (seen by the API fuzz test): both are checked,
    neither raises."""
    if isinstance(value, bytes):
        return b"\x00" in value
    return isinstance(value, str) and NUL in value


def _check_json(data: object) -> None:
    """Walk the parsed body without recursion: (value, depth, field path) on a stack."""
    stack = [(data, 1, "body")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                raise UnstorableInput(path, "must not contain NUL characters")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise UnstorableInput("body", f"nests deeper than {MAX_JSON_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and NUL in key:
                raise UnstorableInput("body", "keys must not contain NUL characters")
            field = str(key) if path == "body" else f"{path}.{key}"
            stack.append((item, depth + 1, field))
