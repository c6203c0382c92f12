"""The ASGI sign-out endpoint (re-exported by :mod:`wacht_auth.integrations.asgi`)."""

from __future__ import annotations

from ..auth import Redirect, signout
from ..errors import WachtAuthError
from ._asgi import Receive, Scope, ScopeView, Send, answer

__all__ = ["SignOut", "sign_out"]


class SignOut:
    """An ASGI endpoint that signs the browser out (POST): ends the Wacht session at the
    frontend API, deletes our cookies and redirects (303) to ``next``.
    ``Route("/sign-out", sign_out, methods=["POST"])`` in Starlette,
    ``app.add_route("/sign-out", SignOut(next="/bye"), methods=["POST"])`` in FastAPI.
    ``next`` is fixed by the app, never read from the request. Needs ``WachtMiddleware``
    (or ``app.state.wacht_verifier``)."""

    wacht_public = True  # open under protect_all

    def __init__(self, next: str = "/") -> None:
        self.next = next

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        from .asgi import _layer

        try:
            done = await signout.asign_out(_layer(scope, None), ScopeView(scope), self.next)
        except WachtAuthError as error:
            await answer(scope, send, error)
            return
        await answer(scope, send, Redirect(done.location, done.status), headers=done.headers)


#: The sign-out endpoint, redirecting to ``/``.
sign_out = SignOut()
