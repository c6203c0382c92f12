"""Test kit for webhook receivers: sign Wacht-format deliveries and post them to an app.

:class:`WebhookSigner` signs deliveries exactly as Wacht's platform does (any event, id,
timestamp and secret); :meth:`Delivery.post` sends one through a framework's test client
(Django's ``Client``/``AsyncClient``, Flask's ``test_client()``, Starlette's or FastAPI's
``TestClient``, an ``httpx`` client) and :meth:`Delivery.send` to a URL on a loopback host.
Re-exported by :mod:`wacht_auth.testing`; the pytest fixture ``wacht_webhooks`` gives a
signer with a new secret. See ``docs/webhooks.md``.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from ..config import is_loopback_host
from ..webhooks import USER_AGENT, Secrets, WebhookSecret, parse_secrets, sign

__all__ = ["Delivery", "WebhookSigner"]


@dataclass(frozen=True)
class Delivery:
    """One signed delivery: the raw body and the headers Wacht sends with it.

    ``dataclasses.replace(delivery, body=...)`` (or :meth:`with_headers`) breaks it on
    purpose in a test: the signature then no longer matches.
    """

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``webhook-id``."""
        return self.headers.get("webhook-id", "")

    @property
    def timestamp(self) -> int:
        """``webhook-timestamp`` (Unix seconds)."""
        return int(self.headers.get("webhook-timestamp", "0"))

    def with_headers(self, **changes: str | None) -> Delivery:
        """A copy with headers changed (``webhook_id="msg_x"`` sets ``webhook-id``; ``None``
        removes one)."""
        headers = dict(self.headers)
        for name, value in changes.items():
            key = name.replace("_", "-")
            if value is None:
                headers.pop(key, None)
            else:
                headers[key] = value
        return replace(self, headers=headers)

    def post(self, client: Any, path: str = "/webhooks") -> Any:
        """POST this delivery to ``path`` through a test client; returns the client's response
        (awaitable for Django's ``AsyncClient`` and ``httpx.AsyncClient``).

        Django's clients get the body as ``data`` with its content type, Flask's (Werkzeug's)
        as ``data``, httpx-style clients (Starlette's and FastAPI's ``TestClient``) as
        ``content``.
        """
        headers = dict(self.headers)
        module = type(client).__module__
        if module.startswith("django."):
            content_type = headers.pop("Content-Type", "application/json")
            return client.post(path, data=self.body, content_type=content_type, headers=headers)
        if module.startswith(("flask.", "werkzeug.")):
            return client.post(path, data=self.body, headers=headers)
        return client.post(path, content=self.body, headers=headers)

    def send(self, url: str, *, timeout: float = 10) -> tuple[int, bytes]:
        """POST this delivery to ``url`` on a loopback host (a local server); returns the
        status and the body of the answer (a refusal's JSON envelope included).

        Raises:
            ValueError: ``url`` is not http(s) on a loopback host.
            OSError: the server cannot be reached.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname):
            raise ValueError("send() posts to a local server only (http://127.0.0.1:PORT/...)")
        request = urllib.request.Request(url, data=self.body, headers=dict(self.headers))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
        try:
            with opener.open(request, timeout=timeout) as answer:
                return int(answer.status), bytes(answer.read(1 << 20))
        except urllib.error.HTTPError as error:
            with error:
                return int(error.code), bytes(error.read(1 << 20))


def _rfc3339(timestamp: int) -> str:
    """Wacht's body timestamp: RFC 3339 UTC with milliseconds and ``Z``."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class WebhookSigner:
    """Signs deliveries as Wacht does, with ``secret`` (a new random one when not given).

    Args:
        secret: the secret(s) to sign with; several make one ``v1`` signature each.
        clock: POSIX seconds, for the default ``webhook-timestamp``.
    """

    def __init__(
        self, secret: Secrets | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._secrets = parse_secrets(secret) if secret is not None else (WebhookSecret.generate(),)
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookSigner(secrets={len(self._secrets)})"

    @property
    def secret(self) -> str:
        """The (first) secret as Wacht shows it, ``whsec_…``: configure the app with it
        (``WACHT_WEBHOOK_SECRET``)."""
        return self._secrets[0].text

    def delivery(
        self,
        type: str = "user.created",
        data: Any = None,
        *,
        webhook_id: str | None = None,
        timestamp: float | None = None,
        body: bytes | None = None,
    ) -> Delivery:
        """A delivery of event ``type`` with ``data`` (default ``{"entity_id": 1}``), signed.

        ``webhook_id`` defaults to a new ``msg_…`` and ``timestamp`` to now (a retry keeps
        both: pass the original's); ``body`` replaces the whole body (any bytes, signed as
        given). The body is compact JSON, as Wacht serialises it.
        """
        stamp = int(self._clock() if timestamp is None else timestamp)
        if body is None:
            envelope = {
                "type": type,
                "timestamp": _rfc3339(stamp),
                "data": {"entity_id": 1} if data is None else data,
            }
            body = json.dumps(envelope, separators=(",", ":")).encode()
        webhook_id = webhook_id or "msg_" + secrets.token_hex(12)
        headers = sign(body, self._secrets, webhook_id=webhook_id, timestamp=stamp)
        headers["User-Agent"] = USER_AGENT
        return Delivery(body, headers)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional at runtime
    pass
else:

    @pytest.fixture
    def wacht_webhooks() -> WebhookSigner:
        """A :class:`WebhookSigner` with a new secret: configure the app under test with
        ``wacht_webhooks.secret`` and post ``wacht_webhooks.delivery(...)`` to it."""
        return WebhookSigner()
