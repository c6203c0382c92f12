"""The page pieces of the Django adapter: the state's headers on a response, Django's
``request.user`` as the Wacht caller, the sign-out view.

:class:`WachtUser` is the one user class of Django and DRF (DRF's ``request.user`` too).
:class:`WachtUserMiddleware` is opt-in: after ``WachtMiddleware``, it makes ``request.user`` the
signed-in Wacht user (Django's ``AnonymousUser`` otherwise), lazily, as Django's own
``AuthenticationMiddleware`` does, so ``{{ user }}``, ``login_required`` and
``permission_required`` read naturally. :func:`sign_out` is the sign-out view. Re-exported by
:mod:`wacht_auth.integrations.django`, which imports this module first (it reaches back into
the adapter only inside functions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.functional import SimpleLazyObject

from ..auth import AuthState, Caller
from ..auth import signout as _signout
from ..auth.pages import merged_header
from ..errors import WachtAuthError
from ..session import Session

__all__ = ["WachtUser", "WachtUserMiddleware", "sign_out", "user_of"]


class WachtUser:
    """The caller as ``request.user``: ids and permissions of a session token, or of an API
    key or OAuth token Wacht's gateway accepted (then ``user_id`` is None and
    ``owner_user_id`` names the key's owner). ``pk``/``id`` are the user id; ``has_perm``
    asks Wacht's permissions (``"reports:read"``); no database row behind it."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.session = caller if isinstance(caller, Session) else None
        self.id = self.pk = self.user_id = caller.user_id
        self.owner_user_id: str | None
        if isinstance(caller, Session):
            self.token_type, self.owner_user_id = "session_token", caller.user_id
        else:
            self.token_type, self.owner_user_id = caller.token_type, caller.owner_user_id
        self.session_id = caller.session_id
        self.organization_id = caller.organization_id
        self.workspace_id = caller.workspace_id
        self.permissions = caller.permissions

    def __repr__(self) -> str:
        return f"<WachtUser {self}>"

    def __str__(self) -> str:
        return self.user_id or f"{self.token_type}:{getattr(self.caller, 'key_id', None)}"

    @property
    def username(self) -> str:
        """What templates show: the user id (tokens carry no name)."""
        return str(self)

    def get_username(self) -> str:
        """Django's name for :attr:`username`."""
        return str(self)

    def has_perm(self, perm: str, obj: object = None) -> bool:
        """Whether the caller holds ``perm`` (organization or workspace, or granted to a key)."""
        return self.caller.has_permission(perm)

    def has_perms(self, perm_list: Iterable[str], obj: object = None) -> bool:
        """Whether the caller holds every permission of ``perm_list`` (``permission_required``)."""
        return all(self.has_perm(perm) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        """Whether any permission starts with ``app_label`` and a ``:`` or ``.``."""
        return any(p.startswith((f"{app_label}:", f"{app_label}.")) for p in self.permissions)


def user_of(state: AuthState) -> Any:
    """The ``request.user`` of a state: a :class:`WachtUser`, else Django's ``AnonymousUser``
    (``django.contrib.auth`` must be installed, as for Django's own middleware)."""
    caller = state.caller
    if caller is not None:
        return WachtUser(caller)
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


class WachtUserMiddleware:
    """``request.user`` (and ``await request.auser()``) as the Wacht caller, lazily: a view
    that never looks pays nothing. Place it after ``WachtMiddleware`` (and after Django's
    ``AuthenticationMiddleware`` if you keep it: this one wins)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        """Attach the lazy user, then answer (awaitable in an async stack)."""
        from .django import aauth_state, auth_state

        async def auser() -> Any:
            return user_of(await aauth_state(request))

        request.user = SimpleLazyObject(lambda: user_of(auth_state(request)))  # type: ignore[assignment]
        request.auser = auser
        return self.get_response(request)


def _with_headers(state: AuthState | None, response: HttpResponse) -> HttpResponse:
    """The state's headers on the response: the gateway's rate-limit state, the cookies of a
    session exchange (through ``response.cookies``: Django sends one value per header), the
    private cache headers merged with the view's (:func:`~wacht_auth.auth.pages.merged_header`)."""
    for name, value in state.response_headers if state is not None else ():
        if name.lower() == "set-cookie":
            response.cookies.load(value)
        else:
            response[name] = merged_header(name, response.get(name), value)
    return response


def _redirect(done: _signout.SignedOut) -> HttpResponse:
    response = HttpResponseRedirect(done.location, status=done.status)
    return _with_headers(AuthState(response_headers=done.headers), response)


def sign_out(request: HttpRequest, next: str = "/") -> HttpResponse:
    """The sign-out view (POST): ends the Wacht session, deletes our cookies, 303 to
    ``next``. ``path("sign-out/", sign_out)`` (``{"next": "/bye"}`` as the URL's extra
    arguments), or call it from your own view. Sync: Django runs it in a thread under ASGI."""
    from .django import _json, _lazy, _View

    try:
        done = _signout.sign_out(_lazy(request).layer, _View(request), next)
    except WachtAuthError as error:
        return _json(error)
    return _redirect(done)


sign_out.wacht_public = True  # type: ignore[attr-defined]  # open under protect_all
