"""How the walkers page through a list operation (no I/O): the next query, the items, bounds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import BackendAPIError, InvalidArgumentError
from ._operation import PageInfo

__all__ = ["DEFAULT_MAX_PAGES", "check_walk", "next_query", "page_items", "too_many_pages"]

#: Pages a walker fetches at most, unless told otherwise.
DEFAULT_MAX_PAGES = 1000


def _integer(value: Any) -> int | None:
    """An offset as an integer: an ``int`` or a string of digits; ``None`` for a cursor."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _cursor(value: Any) -> str | None:
    return value if isinstance(value, str) and value and not value.isdigit() else None


def page_items(body: Any, page: PageInfo) -> list[Any]:
    """The items of one page (a bare JSON array counts as a single, last page)."""
    if isinstance(body, list):
        return body
    items = body.get(page.items) if isinstance(body, Mapping) else None
    return items if isinstance(items, list) else []


def check_walk(query: Mapping[str, Any], max_pages: Any) -> None:
    """A walk's bounds, checked before any request: ``limit`` ≥ 1, ``max_pages`` ≥ 1, an
    ``offset`` that is an integer ≥ 0 or a string cursor."""
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise InvalidArgumentError(f"max_pages must be an integer >= 1, got {max_pages!r}")
    limit = query.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be an integer >= 1, got {limit!r}")
    offset = query.get("offset")
    if offset is not None and not (
        (isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0)
        or (isinstance(offset, str) and offset)
    ):
        raise InvalidArgumentError(f"offset must be an integer >= 0 or a cursor, got {offset!r}")


def next_query(query: Mapping[str, Any], body: Any, page: PageInfo) -> dict[str, Any] | None:
    """The query for the page after the answer ``body``, or ``None`` when it was the last.

    The walk ends on ``has_more: false``, on an empty (or missing) item list, and on an answer
    that is not an object. A ``next_cursor`` is followed as ``cursor`` (operations that take
    one) or as ``offset`` (the prose docs' string cursors). Without one, an integer offset
    advances by the items received, until ``total`` is reached or, when the server says
    nothing of more pages, a page comes back shorter than ``limit``; a string offset (the
    prose docs' form) advances to the answer's own string ``offset`` when it moved, else to
    the last item's ``id``. A cursor that does not move ends the walk.
    """
    if not isinstance(body, Mapping):
        return None
    items = body.get(page.items)
    if not isinstance(items, list) or not items or body.get("has_more") is False:
        return None
    has_more = body.get("has_more") is True
    sent = query.get("offset")
    following = body.get("next_cursor")
    if isinstance(following, str) and following:
        name = "cursor" if page.cursor else "offset"
        if query.get(name) == following:
            return None
        out = {**query, name: following}
        if name == "cursor":
            out.pop("offset", None)
        return out
    if not page.offset:
        return None  # pages by cursor only, and the answer gave none: the last page
    if _cursor(sent) is not None or _cursor(body.get("offset")) is not None:
        following = _cursor(body.get("offset"))
        if following is None or following == sent:
            last = items[-1]
            following = str(last.get("id")) if isinstance(last, Mapping) else None
        if not following or following == sent:
            return None
        return {**query, "offset": following}
    start = _integer(body.get("offset"))
    if start is None:
        start = _integer(sent) or 0
    after = start + len(items)
    total = _integer(body.get("total"))
    if total is not None and after >= total:
        return None
    if not has_more:
        limit = _integer(body.get("limit")) or _integer(query.get("limit"))
        if limit is None or len(items) < limit:
            return None
    return {**query, "offset": after}


def too_many_pages(op_path: str, max_pages: int) -> BackendAPIError:
    """The error that ends a walk which would go past ``max_pages``."""
    return BackendAPIError(
        f"more than max_pages={max_pages} pages; raise max_pages or narrow the query",
        code="too_many_pages",
        method="GET",
        path=op_path,
    )
