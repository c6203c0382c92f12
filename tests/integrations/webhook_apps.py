"""The webhook receivers under test, one per framework, all running :func:`handle`.

Every app trusts :data:`NEW` and :data:`OLD` (an app rolling over from one secret to the
next), each framework in its own spelling of the ``webhook_secret`` setting. The handler
records what it saw and can fail on demand, once per delivery id, so that a test can check
that Wacht's retry of a failed delivery (same id) runs the handler again.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from fastapi import Depends

from wacht_auth.integrations.django import webhook as django_webhook
from wacht_auth.integrations.fastapi import webhook_event
from wacht_auth.testing import WebhookSigner
from wacht_auth.webhooks import Event

NEW = WebhookSigner()  # the app's current secret
OLD = WebhookSigner()  # the one it rolls over from
SECRETS = f"{NEW.secret} {OLD.secret}"
SEEN: list[Event] = []
_FAILED: set[str] = set()


def handle(event: Event) -> int | None:
    """Record ``event``; ``data.fail`` makes the first delivery of an id fail: ``"raise"``
    raises, ``"status"`` answers 500. Returns the status to answer (None: 204)."""
    SEEN.append(event)
    fail = event.data.get("fail") if isinstance(event.data, dict) else None
    if fail and event.id not in _FAILED:
        _FAILED.add(event.id)
        if fail == "raise":
            raise RuntimeError("the handler failed")
        return 500
    return None


# -- Django (ROOT_URLCONF of the Django webhook tests) -----------------------------------------


@django_webhook
def django_sync(request: HttpRequest, event: Event) -> HttpResponse | None:
    status = handle(event)
    return None if status is None else HttpResponse(status=status)


@django_webhook
async def django_async(request: HttpRequest, event: Event) -> HttpResponse | None:
    status = handle(event)
    return None if status is None else HttpResponse(status=status)


urlpatterns = [path("sync/webhooks", django_sync), path("async/webhooks", django_async)]


# -- Flask --------------------------------------------------------------------------------------


def flask_app(secret: Any = SECRETS) -> Any:
    from flask import Flask

    from wacht_auth.integrations.flask import webhook

    app = Flask("webhooks")
    app.config["WACHT_WEBHOOK_SECRET"] = secret
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a failing handler answers 500, as deployed

    @app.route("/sync/webhooks", methods=["GET", "POST"])
    @webhook
    def sync_hook(event: Event) -> Any:
        status = handle(event)
        return None if status is None else ("failed", status)

    @app.route("/async/webhooks", methods=["GET", "POST"])
    @webhook
    async def async_hook(event: Event) -> Any:
        status = handle(event)
        return None if status is None else ("failed", status)

    return app


# -- Starlette and FastAPI ---------------------------------------------------------------------


def starlette_app() -> Any:
    """Reads WACHT_WEBHOOK_SECRET from the environment (set by the test)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from wacht_auth.integrations.asgi import webhook

    @webhook
    async def hook(request: Any, event: Event) -> Any:
        status = handle(event)
        return None if status is None else Response("failed", status)

    return Starlette(routes=[Route("/webhooks", hook, methods=["GET", "POST"])])


def fastapi_app() -> Any:
    """The endpoint helper (an explicit receiver) and the dependency (from the environment)."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    from wacht_auth.errors import WachtAuthError
    from wacht_auth.integrations.fastapi import wacht_exception_handler, webhook
    from wacht_auth.webhooks import Receiver

    app = FastAPI()
    # The annotation is evaluated in this module's globals (webhook_event is imported there).
    app.add_exception_handler(WachtAuthError, wacht_exception_handler)  # type: ignore[arg-type]

    @app.api_route("/endpoint/webhooks", methods=["GET", "POST"])
    @webhook(receiver=Receiver([NEW.secret, OLD.secret]))
    async def endpoint(request: Any, event: Event) -> Any:
        status = handle(event)
        return None if status is None else Response("failed", status)

    @app.api_route("/dependency/webhooks", methods=["GET", "POST"], response_model=None)
    async def dependency(event: Annotated[Event, Depends(webhook_event())]) -> Any:
        status = handle(event)
        if status is not None:
            raise RuntimeError("failed")  # a dependency's handler fails by raising
        return Response(status_code=204)

    return app
