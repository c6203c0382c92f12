"""Flask: the receiver of Wacht's signed webhook deliveries (``docs/webhooks.md``).

Re-exported by :mod:`wacht_auth.integrations.flask`: ``from wacht_auth.integrations.flask
import webhook``. Everything that decides is in :mod:`wacht_auth.webhooks`; this module reads
Flask's request and answers natively.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request

from ..errors import ConfigurationError
from ..webhooks import Receiver, webhook_view
from .flask import _json

__all__ = ["webhook", "webhook_receiver"]

F = TypeVar("F", bound=Callable[..., Any])


def webhook_receiver(app: Flask | None = None) -> Receiver:
    """The app's :class:`~wacht_auth.webhooks.Receiver`: ``app.config["WACHT_WEBHOOK_SECRET"]``
    over the environment, built once and kept in ``app.extensions["wacht.webhooks"]``. Call it
    in the app factory to make a missing or malformed secret fail at start-up."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    hooks: Receiver | None = app.extensions.get("wacht.webhooks")
    if hooks is None:
        try:
            hooks = Receiver.from_settings(app.config, prefixed=True, where="app.config")
        except ConfigurationError as exc:
            message = f"Wacht webhooks are not configured for {app.name!r}: {exc.message}"
            raise ConfigurationError(message) from exc
        app.extensions["wacht.webhooks"] = hooks
    return hooks


def _body(receiver: Receiver | None) -> bytes:
    """The raw body, never more than the cap + 1 bytes of it: with a ``Content-Length``
    (checked against the cap already) Werkzeug's cached ``get_data()``; without one (a
    chunked body, which Werkzeug reads to its end when the server terminates the stream and
    ``MAX_CONTENT_LENGTH`` is unset) the stream read in pieces up to the cap."""
    cap = (receiver or webhook_receiver()).max_bytes
    length = request.content_length
    if length is not None and length <= cap:
        return request.get_data()
    stream, parts, size = request.stream, [], 0
    while size <= cap:
        chunk = stream.read(min(1 << 16, cap + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def webhook(view: F | None = None, /, *, receiver: Receiver | None = None) -> Any:
    """Make a view a Wacht webhook receiver (``@app.post("/webhooks")`` above it): POST
    only, ``view(event, **url_values)`` called with the verified
    :class:`~wacht_auth.webhooks.Event`; refusals answer the JSON error envelope. A view
    returning ``None`` answers 204."""

    def decorate(view: F) -> F:
        return webhook_view(  # type: ignore[return-value]
            view,
            receiver=(lambda: receiver) if receiver else webhook_receiver,
            read=lambda args: (request.method, request.headers, lambda: _body(receiver)),
            respond=lambda result: current_app.make_response(
                ("", 204) if result is None else result
            ),
            refuse=_json,
            position=0,
            is_async=inspect.iscoroutinefunction(view),
        )

    return decorate if view is None else decorate(view)
