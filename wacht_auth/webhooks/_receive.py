"""The webhook view decorator of a synchronous-request framework (Django, Flask), written once.

An adapter says how to read its native request (method, headers, body) and how to answer
natively; :func:`webhook_view` does the rest for sync and async views alike: verify, refuse
with the error envelope, call the view with the :class:`~wacht_auth.webhooks.Event`, and
remember the delivery's id only once the view answered 2xx (a failed handler is retried by
Wacht with the same id, and that retry must not look like a replay).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..errors import WebhookError
from ._verify import Event, Headers, Receiver

__all__ = ["Read", "succeeded", "webhook_view"]

#: From a view call's positional arguments: the request's method, headers and a function
#: returning its raw body (called only after the checks that need no body).
Read = Callable[[tuple[Any, ...]], tuple[str | None, Headers, Callable[[], bytes]]]


def succeeded(status: int) -> bool:
    """Whether a handler's answer counts as handled: 2xx, as for Wacht."""
    return 200 <= status < 300


def webhook_view(
    view: Callable[..., Any],
    *,
    receiver: Callable[[], Receiver],
    read: Read,
    respond: Callable[[Any], Any],
    refuse: Callable[[WebhookError], Any],
    position: int,
    is_async: bool,
) -> Callable[..., Any]:
    """``view`` wrapped as a webhook receiver.

    Args:
        view: the handler; called with the event inserted at ``position`` among its
            positional arguments (after the request for Django, first for Flask).
        receiver: the :class:`~wacht_auth.webhooks.Receiver` to use (looked up per call, so
            settings overridden in tests apply).
        read: how to read the native request.
        respond: the handler's result as a native response with ``status_code`` (``None``
            becomes a 204).
        refuse: the native answer for a refused delivery.
        is_async: whether ``view`` is a coroutine function.
    """

    def verified(args: tuple[Any, ...]) -> tuple[Receiver, Event]:
        hooks = receiver()
        method, headers, body = read(args)
        return hooks, hooks.receive(method, headers, body)

    def done(hooks: Receiver, event: Event, result: Any) -> Any:
        response = respond(result)
        if succeeded(response.status_code):
            hooks.accepted(event)
        return response

    if is_async:

        @functools.wraps(view)
        async def async_view(*args: Any, **kwargs: Any) -> Any:
            try:
                hooks, event = verified(args)
            except WebhookError as error:
                return refuse(error)
            result = await view(*args[:position], event, *args[position:], **kwargs)
            return done(hooks, event, result)

        return async_view

    @functools.wraps(view)
    def sync_view(*args: Any, **kwargs: Any) -> Any:
        try:
            hooks, event = verified(args)
        except WebhookError as error:
            return refuse(error)
        return done(hooks, event, view(*args[:position], event, *args[position:], **kwargs))

    return sync_view
