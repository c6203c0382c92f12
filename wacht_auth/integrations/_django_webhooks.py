"""Django: the receiver of Wacht's signed webhook deliveries (``docs/webhooks.md``).

Re-exported by :mod:`wacht_auth.integrations.django`: ``from
wacht_auth.integrations.django import webhook``. Everything that decides is in
:mod:`wacht_auth.webhooks`; this module reads Django's request and answers natively.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

from ..errors import ConfigurationError
from ..settings import DJANGO_SETTING
from ..webhooks import Receiver, webhook_view
from .django import _json

__all__ = ["webhook", "webhook_receiver"]

_V = TypeVar("_V", bound=Callable[..., Any])


@functools.cache
def webhook_receiver() -> Receiver:
    """The :class:`~wacht_auth.webhooks.Receiver` of ``settings.WACHT_AUTH["webhook_secret"]``
    (over ``WACHT_WEBHOOK_SECRET``), once per process (again when a test overrides it)."""
    try:
        where = f"settings.{DJANGO_SETTING}"
        return Receiver.from_settings(getattr(settings, DJANGO_SETTING, None), where=where)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"wacht_auth: {exc.message}") from exc


def webhook(view: _V | None = None, /, *, receiver: Receiver | None = None) -> Any:
    """Make a view a Wacht webhook receiver: CSRF-exempt, POST only, ``view(request, event)``
    called with the verified :class:`~wacht_auth.webhooks.Event` (sync or async views);
    refusals answer the JSON error envelope. A view returning ``None`` answers 204."""

    def decorate(view: _V) -> _V:
        run = webhook_view(
            view,
            receiver=(lambda: receiver) if receiver else webhook_receiver,
            read=lambda args: (args[0].method, args[0].headers, lambda: args[0].body),
            respond=lambda result: HttpResponse(status=204) if result is None else result,
            refuse=_json,
            position=1,
            is_async=iscoroutinefunction(view),
        )
        run.csrf_exempt = True  # type: ignore[attr-defined]  # what @csrf_exempt sets
        return run  # type: ignore[return-value]

    return decorate if view is None else decorate(view)
