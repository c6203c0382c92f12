"""What the generated operations table holds for one Backend API operation (no I/O, no httpx).

``wacht_auth.backend.OPERATIONS`` maps each ``operationId`` of Wacht's API description to an
:class:`Operation`; the generated namespaces (``client.users`` …) pass one to the client's single
``_call``. Importing this module, or ``_operations``, never imports httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Literal, TypeAlias, TypedDict

#: How an operation's request body is sent: a JSON object of fields, one JSON value, or a
#: ``multipart/form-data`` form (with files).
BodyKind = Literal["json", "json_value", "multipart"]


@dataclass(frozen=True)
class PageInfo:
    """How a list operation pages: the answer's array member and the query it pages with.

    Attributes:
        items: the member of the answer holding the page's items (``"data"`` in Wacht's API).
        offset: the operation takes ``offset`` (an integer in the description, a string cursor
            in the prose docs: the walkers follow both).
        cursor: the operation takes ``cursor`` (answered with ``next_cursor``).
    """

    items: str = "data"
    offset: bool = True
    cursor: bool = False


@dataclass(frozen=True)
class Operation:
    """One operation of the Backend API, as the generated code and the clients see it.

    ``getattr(getattr(client, op.namespace), op.name)`` is its method on either client; for a
    list operation, ``getattr(getattr(client, op.namespace), op.walker)`` walks every page.

    Attributes:
        id: the description's ``operationId`` (``"getUserDetails"``).
        method: the HTTP method, upper case.
        path: the description's path template (``"/users/{user_id}/details"``).
        namespace: the client attribute grouping the operation's tag (``"users"``).
        name: the method name, ``operationId`` in snake_case (``"get_user_details"``).
        path_params: the template's parameters, in order (the method's positional arguments).
        query: the query parameters' wire names (the keys the method passes their values by).
        body: how the body is sent, or ``None`` when the operation takes none.
        body_fields: the body's field names on the wire, files excepted (the keys the method
            passes their values by).
        required_body: the body fields the description marks required (sent even when null).
        path_in_body: body fields named like a path parameter; left out (``None``), they are
            sent with that parameter's value.
        path_in_body_int: the ``path_in_body`` fields the description types as integers: the
            path's value (a string) is copied as the integer it spells, or left out when it
            spells none (the path still names the object).
        files: the ``multipart/form-data`` fields that carry files (keys, like ``body_fields``).
        page: how the operation pages, for list operations; ``None`` otherwise.
        walker: the name of the method walking every page, for list operations.
        unwrap: a ``{"data": …}`` envelope around the answer is removed (the answer's schema
            has no ``data`` member of its own).
    """

    id: str
    method: str
    path: str
    namespace: str
    name: str
    path_params: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    body: BodyKind | None = None
    body_fields: tuple[str, ...] = ()
    required_body: frozenset[str] = frozenset()
    path_in_body: tuple[str, ...] = ()
    path_in_body_int: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    page: PageInfo | None = None
    walker: str | None = None
    unwrap: bool = True


#: A file for a ``multipart/form-data`` field: its bytes or a binary file object, optionally
#: with a filename and a content type (``("avatar.png", data, "image/png")``).
FileInput: TypeAlias = (
    bytes | IO[bytes] | tuple[str, bytes | IO[bytes]] | tuple[str, bytes | IO[bytes], str]
)


class RequestOptions(TypedDict, total=False):
    """Per-call options, accepted as keyword arguments by every operation method.

    Attributes:
        timeout: seconds this call's each try may take (default: the client's ``timeout``).
        retries: how many times this call may be retried (``0``: never); the client's
            :class:`RetryPolicy` decides when, and its ``max_attempts`` applies otherwise.
        extra_headers: headers added to this call (``Authorization`` cannot be replaced).
        idempotency_key: sent as ``Idempotency-Key``; ``True`` generates a random one. With a
            key, POST and PATCH calls are retried like GETs.
    """

    timeout: float
    retries: int
    extra_headers: Mapping[str, str]
    idempotency_key: str | bool
