"""The CORS-order check of the ASGI adapters, in one place.

Our middleware answers 401/403/503 itself under ``protect_all``; when Starlette's
``CORSMiddleware`` sits *inside* it, those answers carry no ``Access-Control-Allow-Origin`` and a
browser cannot read their error code (``token_expired`` …). :func:`warn_if_inside` warns when
the stack is built that way; :func:`move_inside` is what FastAPI's ``install()`` does instead.
"""

from __future__ import annotations

import warnings
from typing import Any

from .._events import LOGGER

__all__ = ["is_cors_middleware", "move_inside", "warn_if_inside"]

_CORS_ORDER = (
    "CORSMiddleware runs inside WachtMiddleware, so the 401/403/503 answers WachtMiddleware "
    "sends itself (protect_all) carry no Access-Control-Allow-Origin and a browser cannot "
    "read their error code (token_expired ...). Add CORSMiddleware after WachtMiddleware "
    "(app.add_middleware(CORSMiddleware, ...) last, or first in Starlette(middleware=[...])), "
    "or use wacht_auth.integrations.fastapi.install(), which puts WachtMiddleware inside it."
)
_MAX_WRAPPERS = 64  # a middleware stack deeper than this is not looked through


def is_cors_middleware(obj: object) -> bool:
    """True for Starlette's ``CORSMiddleware`` (FastAPI re-exports it), a subclass or instance."""
    try:
        from starlette.middleware.cors import CORSMiddleware
    except ImportError:  # no Starlette: no CORSMiddleware to misplace
        return False
    cls = obj if isinstance(obj, type) else type(obj)
    return issubclass(cls, CORSMiddleware)


def warn_if_inside(app: object) -> bool:
    """Warn (a ``RuntimeWarning`` and a ``wacht_auth`` log record) when a ``CORSMiddleware``
    wraps ``app``, the app WachtMiddleware is given: it then sits inside ours.

    Called when WachtMiddleware is built, which Starlette does at start-up (lifespan) or on
    the first request, once the whole stack is known. Follows the ``.app`` attribute every
    Starlette middleware keeps, at most ``_MAX_WRAPPERS`` deep. Returns whether it warned.
    """
    for _ in range(_MAX_WRAPPERS):
        if app is None:
            return False
        if is_cors_middleware(app):
            warnings.warn(_CORS_ORDER, RuntimeWarning, stacklevel=3)
            LOGGER.warning("wacht_auth: %s", _CORS_ORDER)
            return True
        app = getattr(app, "app", None)
    return False


def move_inside(stack: list[Any]) -> None:
    """Move the WachtMiddleware just added (``stack[0]`` of Starlette's ``user_middleware``,
    outermost first) inside every ``CORSMiddleware`` added before it.

    Starlette makes the middleware added last the outermost, so ``install()`` called after
    ``app.add_middleware(CORSMiddleware, ...)`` would put ours outside CORS. Only its place
    relative to CORS changes; a CORSMiddleware added after ``install()`` is already outside.
    """
    cors = [i for i, entry in enumerate(stack) if i and is_cors_middleware(entry.cls)]
    if cors:
        stack.insert(cors[-1], stack.pop(0))  # after the pop, cors[-1] is just inside it
