"""The caller's state: what the request layer answers, immutable and shared.

:class:`AuthState` is the answer of the request layer for one request; :class:`Redirect` a
page's answer instead of a 401; :class:`LazyState` the one lazy holder that Django's and
Flask's ``request.wacht`` use, so a view that never looks pays nothing and a request is
resolved at most once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from ..credentials import Credential, CredentialKind
from ..errors import TokenMissingError, WachtAuthError
from ..session import PermissionScope, Session

if TYPE_CHECKING:
    from .decide import Authenticator
    from .view import RequestView

__all__ = ["AuthState", "Caller", "LazyState", "PageError", "Redirect", "Refused"]

#: Who a request authenticated as: a verified session, or a credential Wacht's gateway accepted.
Caller: TypeAlias = "Session | Credential"


class Redirect(NamedTuple):
    """A page's answer instead of a 401: send the browser to ``location`` (302), with the
    state's ``response_headers`` (cookies) on the answer."""

    location: str
    status: int = 302


class PageError(NamedTuple):
    """A page's refusal (a 403, or a 401 where no sign-in page applies): answered the
    framework's own way (Django's ``PermissionDenied``, Flask's ``abort``, Starlette's
    ``HTTPException``), so the app's HTML error page shows; API routes keep the JSON
    envelope. ``error`` keeps the precise code."""

    error: WachtAuthError


#: What a request gets instead of its route: an error (JSON), a page's redirect, or a page's
#: refusal for the framework's own error page.
Refused: TypeAlias = "WachtAuthError | Redirect | PageError"


class AuthState:
    """The caller's authentication state, always present on a request as ``wacht``.

    Immutable: built by the :class:`Authenticator` and never changed afterwards, so it can be
    shared (an assignment raises ``AttributeError``). The caller is a verified ``session``
    (a session token), a ``credential`` (an API key or OAuth access token: checked by Wacht's
    gateway, or an OAuth JWT verified here), or nobody. ``user_id`` is the signed-in user, or
    the user who consented to an OAuth token (both formats): None for anonymous callers and
    for API keys (``owner_user_id`` names a key's owner). When a credential was sent but failed,
    ``error`` keeps the precise failure so that :meth:`require` answers with its code
    (``token_expired`` lets the front end refresh). ``verifier`` is the verifier that produced
    the state: another one never reuses it. ``response_headers`` are to be copied onto the
    response, whatever it is (the gateway's rate-limit state, the cookies of a session
    exchange). ``redirect`` is the clean URL a page request carrying ``?__dev_session__=``
    is sent to once exchanged. ``accept`` are the kinds the layer that made it accepts: an
    inner layer reuses a state only when it would have decided the same.
    """

    __slots__ = (
        "accept",
        "credential",
        "error",
        "redirect",
        "response_headers",
        "session",
        "token_presented",
        "verifier",
    )

    session: Session | None
    credential: Credential | None
    error: WachtAuthError | None
    token_presented: bool
    verifier: object
    response_headers: tuple[tuple[str, str], ...]
    redirect: str | None
    accept: tuple[str, ...]

    def __init__(
        self,
        session: Session | None = None,
        error: WachtAuthError | None = None,
        *,
        token_presented: bool = False,
        verifier: object = None,
        credential: Credential | None = None,
        response_headers: tuple[tuple[str, str], ...] = (),
        redirect: str | None = None,
        accept: tuple[str, ...] = (),
    ) -> None:
        init = object.__setattr__
        init(self, "session", session)
        init(self, "error", error)
        init(self, "token_presented", token_presented or session is not None)
        init(self, "verifier", verifier)
        init(self, "credential", credential)
        init(self, "response_headers", response_headers)
        init(self, "redirect", redirect)
        init(self, "accept", accept)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"AuthState is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"AuthState is read-only: cannot delete {name!r}")

    def __repr__(self) -> str:
        if self.session is not None:
            return f"<AuthState user_id={self.session.user_id!r}>"
        if self.credential is not None:
            return f"<AuthState {self.credential.token_type} key_id={self.credential.key_id!r}>"
        if self.error is not None:
            return f"<AuthState error={self.error.code!r}>"
        return "<AuthState anonymous>"

    @property
    def caller(self) -> Caller | None:
        """The verified session or the accepted credential, or None."""
        return self.session or self.credential

    @property
    def is_authenticated(self) -> bool:
        """True when a valid session token or an accepted credential was presented."""
        return self.session is not None or self.credential is not None

    @property
    def token_type(self) -> CredentialKind | None:
        """``"session_token"``, ``"api_key"``, ``"oauth_token"``, or None when anonymous."""
        if self.session is not None:
            return "session_token"
        return self.credential.token_type if self.credential is not None else None

    @property
    def token_format(self) -> str | None:
        """How the credential travelled: ``"jwt"`` (a session token, an OAuth JWT access
        token), ``"opaque"`` (an API key, an opaque OAuth token), or None when anonymous."""
        if self.session is not None:
            return "jwt"
        return self.credential.token_format if self.credential is not None else None

    @property
    def user_id(self) -> str | None:
        """The signed-in user's id (``sub``), or the user who consented to an OAuth token;
        None when anonymous and for API keys."""
        if self.session is not None:
            return self.session.user_id
        return self.credential.user_id if self.credential is not None else None

    @property
    def client_id(self) -> str | None:
        """The OAuth client (``oc_…``) an OAuth token was issued to, else None."""
        return self.credential.client_id if self.credential is not None else None

    @property
    def owner_user_id(self) -> str | None:
        """The user a credential acts for: the key's owner, or the signed-in user."""
        if self.credential is not None:
            return self.credential.owner_user_id
        return self.user_id

    @property
    def session_id(self) -> str | None:
        """The session id (for an OAuth token: the consenting user's session its grant
        names), or None."""
        if self.session is not None:
            return self.session.session_id
        return self.credential.session_id if self.credential is not None else None

    @property
    def organization_id(self) -> str | None:
        """The active organization (a key's organization), or None."""
        caller = self.session or self.credential
        return caller.organization_id if caller else None

    @property
    def workspace_id(self) -> str | None:
        """The active workspace (a key's workspace), or None."""
        caller = self.session or self.credential
        return caller.workspace_id if caller else None

    @property
    def organization_permissions(self) -> tuple[str, ...]:
        """Permissions in the active organization (empty when anonymous and for keys)."""
        return self.session.organization_permissions if self.session else ()

    @property
    def workspace_permissions(self) -> tuple[str, ...]:
        """Permissions in the active workspace (empty when anonymous and for keys)."""
        return self.session.workspace_permissions if self.session else ()

    @property
    def permissions(self) -> tuple[str, ...]:
        """The caller's permissions (a session's organization then workspace ones, or what
        the gateway granted a credential); empty when anonymous."""
        caller = self.session or self.credential
        return caller.permissions if caller else ()

    @property
    def scopes(self) -> tuple[str, ...]:
        """An OAuth token's granted scopes, either format (empty for session tokens and API
        keys)."""
        return self.credential.scopes if self.credential else ()

    @property
    def identity(self) -> Mapping[str, Any]:
        """The gateway's identity of a credential, read-only (empty otherwise)."""
        return self.credential.identity if self.credential else _NO_CLAIMS

    @property
    def claims(self) -> Mapping[str, Any]:
        """All claims of the verified token (a session token or an OAuth JWT access token),
        deeply read-only (empty otherwise)."""
        caller = self.session or self.credential
        return caller.claims if caller else _NO_CLAIMS

    @property
    def token(self) -> str | None:
        """The verified raw session token, or None (a credential's value is not kept)."""
        return self.session.token if self.session else None

    def has_permission(self, permission: str, scope: PermissionScope | None = None) -> bool:
        """Whether the caller is authenticated and holds ``permission``."""
        caller = self.session or self.credential
        return caller is not None and caller.has_permission(permission, scope)

    def has_scope(self, scope: str) -> bool:
        """Whether the caller is an OAuth token whose grant includes ``scope``."""
        return self.credential is not None and self.credential.has_scope(scope)

    def forward_headers(self) -> dict[str, str]:
        """Headers forwarding the user's token to the Backend API; raises when no user is
        signed in with a session token."""
        return self.require().forward_headers()

    def require(self) -> Caller:
        """The caller, or the error that explains why there is none (401; 429 or 503 for
        keys the gateway could not accept; 503 when no signing keys could be had)."""
        caller = self.session or self.credential
        if caller is not None:
            return caller
        raise self.error or TokenMissingError()


_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


class LazyState:
    """A request's :class:`AuthState`, resolved on first use and at most once.

    The holder of Django's and Flask's ``request.wacht``: the adapter makes one per request,
    after :meth:`~wacht_auth.auth.Authenticator.lookup` (its hit is ``state``), with the
    native request and how to view it; ``get``/``aget`` resolve a miss through the layer
    (no second lookup). The request is held weakly: it holds
    this object, and a cycle would leave every request to the garbage collector instead of
    freeing it when the response is sent. ``on_resolve`` is told of a state resolved here
    whose ``response_headers`` must reach the response (Flask registers a hook then).
    """

    __slots__ = ("_request", "_view", "layer", "on_resolve", "state")

    def __init__(
        self,
        layer: Authenticator,
        request: Any,
        view: Callable[[Any], RequestView],
        *,
        state: AuthState | None = None,
        on_resolve: Callable[[AuthState], object] | None = None,
    ) -> None:
        self.layer, self.state, self.on_resolve = layer, state, on_resolve
        self._request, self._view = weakref.ref(request), view

    def _request_view(self) -> RequestView:
        request = self._request()
        if request is None:
            raise RuntimeError("request.wacht was first used after its request was gone")
        return self._view(request)

    def _keep(self, state: AuthState) -> AuthState:
        self.state = state
        if state.response_headers and self.on_resolve is not None:
            self.on_resolve(state)
        return state

    def get(self, required_permissions: Collection[str] = ()) -> AuthState:
        """The state, resolved now if it was not yet (an API key is then checked with
        ``required_permissions``)."""
        state = self.state
        if state is None:
            view = self._request_view()
            state = self._keep(
                self.layer.resolve(view, required_permissions=required_permissions, looked_up=True)
            )
        return state

    async def aget(self, required_permissions: Collection[str] = ()) -> AuthState:
        """:meth:`get` for asyncio: keys fetched and credentials checked without blocking."""
        state = self.state
        if state is None:
            view = self._request_view()
            resolved = await self.layer.aresolve(
                view, required_permissions=required_permissions, looked_up=True
            )
            state = self._keep(resolved)
        return state

    __call__ = get
