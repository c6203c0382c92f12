"""Starlette and FastAPI: the receiver of Wacht's signed webhook deliveries
(``docs/webhooks.md``).

Re-exported by :mod:`wacht_auth.integrations.asgi` (:func:`webhook`) and
:mod:`wacht_auth.integrations.fastapi` (both). The raw body is read from the request's stream,
capped, before anything parses it; everything that decides is in :mod:`wacht_auth.webhooks`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..webhooks import Event, Receiver, WebhookError, succeeded
from ._asgi import Refusal

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["webhook", "webhook_event"]

Handler = Callable[[Any, Event], Awaitable[Any]]


def webhook(handler: Handler | None = None, /, *, receiver: Receiver | None = None) -> Any:
    """Make ``async handler(request, event)`` a Starlette endpoint receiving Wacht's
    deliveries (FastAPI routes take it too): POST only, the raw body read (capped) before
    anything parses it, the verified :class:`~wacht_auth.webhooks.Event` passed; refusals
    answer the JSON error envelope; a handler returning ``None`` answers 204. Without
    ``receiver`` it is built now from ``WACHT_WEBHOOK_SECRET``: a bad secret fails at start-up.
    """

    def decorate(handler: Handler) -> Any:
        from starlette.requests import Request
        from starlette.responses import Response

        hooks = receiver or Receiver.from_settings()

        async def endpoint(request: Request) -> Response:
            try:
                event = await hooks.areceive(request.method, request.headers, request.stream())
            except WebhookError as error:
                return Refusal(error)
            response = await handler(request, event)
            response = Response(status_code=204) if response is None else response
            if succeeded(response.status_code):
                hooks.accepted(event)
            return response

        # Not functools.wraps: FastAPI would read the handler's signature through __wrapped__.
        endpoint.__name__, endpoint.__doc__ = handler.__name__, handler.__doc__
        endpoint.__annotations__ = {"request": Request, "return": Response}
        return endpoint

    return decorate if handler is None else decorate(handler)


def webhook_event(receiver: Receiver | None = None) -> Callable[[Request], AsyncIterator[Event]]:
    """FastAPI dependency factory: ``event: Annotated[Event, Depends(webhook_event())]`` is the
    verified delivery (the raw body read first, capped). A refusal raises its
    :class:`~wacht_auth.errors.WebhookError`, answered as JSON by
    ``wacht_exception_handler``; the delivery's id is remembered once the endpoint returned
    without raising. Without ``receiver`` it is built now from ``WACHT_WEBHOOK_SECRET``.
    :func:`webhook` answers refusals itself."""
    from starlette.requests import Request

    hooks = receiver or Receiver.from_settings()

    async def dependency(request: Request) -> AsyncIterator[Event]:
        event = await hooks.areceive(request.method, request.headers, request.stream())
        yield event  # the endpoint runs here; an exception it raises skips the next line
        hooks.accepted(event)

    # FastAPI reads the annotations: real classes, not this module's postponed strings.
    dependency.__annotations__ = {"request": Request, "return": AsyncIterator[Event]}
    return dependency
