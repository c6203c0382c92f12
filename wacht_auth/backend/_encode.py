"""How the Backend API clients encode a request: query values, JSON and multipart bodies.

Bodies are built once per call, so every try (and either client) sends the same bytes.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidArgumentError

__all__ = ["HEADER_VALUE", "clean_params", "file_part", "form_value", "multipart", "to_json"]

#: RFC 9110 §5.5 field values, ASCII only (httpx encodes headers as ASCII).
HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def _query_value(value: Any) -> str | int | float:
    """A query value as httpx sends it: booleans as ``true``/``false`` (httpx says ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return value
    raise InvalidArgumentError(f"a query value must be a string or a number, got {value!r}")


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop ``None`` values; booleans as ``true``/``false``; sequences repeat the name."""
    out: dict[str, Any] = {}
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgumentError("params must be a mapping of query parameters")
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out[str(key)] = [_query_value(v) for v in value]
        else:
            out[str(key)] = _query_value(value)
    return out


def form_value(value: Any) -> str:
    """A ``multipart/form-data`` text field: objects and arrays as JSON, booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return to_json(value).decode()


def file_part(value: Any, field: str) -> tuple[str, bytes, str]:
    """``(filename, content, content type)`` for a :data:`FileInput`, read once (retries and
    the sync/async twins may send it more than once)."""
    name, content_type = field, "application/octet-stream"
    if isinstance(value, tuple) and len(value) in (2, 3):
        if len(value) == 3:
            content_type = str(value[2])
            if not content_type or not HEADER_VALUE.fullmatch(content_type):
                raise InvalidArgumentError(f"{field}: the content type is not a header value")
        name, value = value[0], value[1]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return str(name), bytes(value), content_type
    read = getattr(value, "read", None)
    if callable(read):
        data = read()
        if isinstance(data, (bytes, bytearray)):
            return str(name), bytes(data), content_type
    raise InvalidArgumentError(
        f"{field} must be bytes, a binary file, or (filename, bytes or file[, content type])"
    )


def _quote(text: str) -> str:
    """A ``name``/``filename`` parameter of a form part (RFC 7578 §4.2: escape quote, CR, LF)."""
    for char, escaped in (("\\", "\\\\"), ('"', "%22"), ("\r", "%0D"), ("\n", "%0A")):
        text = text.replace(char, escaped)
    return text


def multipart(
    form: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (RFC 7578) and its content type, built once so every
    try sends the same bytes; text fields first, then files."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in form.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for name, (filename, data, content_type) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def to_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON; a value JSON cannot carry is an invalid argument."""
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the request body cannot be sent as JSON: {exc}") from None
