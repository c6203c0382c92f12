"""Django REST framework: an authentication class, permission classes and an exception handler.

``request.user`` is a :class:`WachtUser` (no database row), ``request.auth`` the verified
:class:`~wacht_auth.Session`. The request's state is the one the Django middleware attached
(verified once); without the middleware, ``settings.WACHT_AUTH`` is read the same way.
Install :func:`exception_handler` so that every 401/403 carries the JSON envelope and codes of
``docs/errors.md``; see ``docs/django.md``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions  # type: ignore[import-untyped]  # DRF ships no types
from rest_framework.authentication import BaseAuthentication  # type: ignore[import-untyped]
from rest_framework.permissions import BasePermission  # type: ignore[import-untyped]

from ..auth import Caller, Requirement
from ..errors import PermissionDeniedError, TokenMissingError, WachtAuthError
from ..session import PermissionScope
from ._django_pages import WachtUser
from .django import _json, auth_state

__all__ = [
    "HasOrganization",
    "HasWachtPermission",
    "HasWachtScope",
    "HasWorkspace",
    "IsWachtAuthenticated",
    "WachtAuthentication",
    "WachtUser",
    "exception_handler",
]


def _api_exception(error: WachtAuthError) -> Any:
    """The DRF exception for ``error``, carrying our code and the error itself."""
    kind = {401: exceptions.AuthenticationFailed, 403: exceptions.PermissionDenied}
    exc = kind.get(error.status, exceptions.APIException)(error.message, error.code)
    exc.status_code, exc.wacht_error = error.status, error
    return exc


class WachtAuthentication(BaseAuthentication):  # type: ignore[misc]  # DRF is untyped
    """Authenticate with the Wacht session token; a token that fails is refused (401, or 403
    ``csrf_failed``), as DRF's ``TokenAuthentication`` does, even on open views."""

    def authenticate(self, request: Any) -> tuple[WachtUser, Caller] | None:
        """``(WachtUser, Session)`` (or ``Credential`` for an API key or OAuth token), None
        without a token, or raise with our code."""
        state = auth_state(request._request)
        caller = state.session or state.credential
        if caller is not None:
            return WachtUser(caller), caller
        if state.error is not None:
            raise _api_exception(state.error)
        return None

    def authenticate_header(self, request: Any) -> str:
        """The challenge that makes DRF answer 401 rather than 403."""
        return TokenMissingError().response_headers()["WWW-Authenticate"]


class _WachtPermission(BasePermission):  # type: ignore[misc]  # DRF is untyped
    """The base of the permission classes: the requirement their attributes name
    (:meth:`~wacht_auth.auth.Requirement.of`: ``permissions``, ``scope``, ``require_all``,
    ``organization``, ``workspace``, ``accept``, ``scopes``), set in a subclass or with
    :meth:`with_`."""

    @classmethod
    def with_(cls, **attributes: Any) -> type[_WachtPermission]:
        """A subclass with ``attributes`` set, validated now (a bad one raises here)."""
        Requirement.of(type("_", (), attributes))
        return type(f"{cls.__name__}{attributes}", (cls,), attributes)

    #: The attribute a subclass must set (``permissions``, ``scopes``), and how to set it.
    needs: tuple[str, str] | None = None

    def requirement(self) -> Requirement:
        """The requirement the class attributes name."""
        if self.needs and not getattr(self, self.needs[0], ()):
            name, (attribute, example) = type(self).__name__, self.needs
            raise ImproperlyConfigured(f"{name} needs {attribute}: use {example} or set it")
        return Requirement.of(self)

    def has_permission(self, request: Any, view: Any) -> bool:
        """Check the requirement; on failure keep the error for :func:`exception_handler`
        and return False, so that DRF's ``&``/``|`` composition keeps working."""
        requirement = self.requirement()
        try:
            state = auth_state(request._request, requirement.permissions)
            requirement.check(state, getattr(view, "kwargs", None))
        except WachtAuthError as error:
            request._request.__dict__["_wacht_denied"] = error
            self.message, self.code = error.message, error.code
            return False
        return True


class IsWachtAuthenticated(_WachtPermission):
    """Allow signed-in callers (401 with the precise code otherwise)."""


class HasWachtPermission(_WachtPermission):
    """Allow callers holding one (or all) of ``permissions``; 403 ``permission_denied``."""

    needs = ("permissions", 'HasWachtPermission.with_permissions("invoices:write")')

    @classmethod
    def with_permissions(
        cls,
        *permissions: str,
        scope: PermissionScope | None = None,
        require_all: bool = False,
        accept: tuple[str, ...] | None = None,
    ) -> type[_WachtPermission]:
        """A permission class requiring ``permissions``, e.g. ``("invoices:write")``."""
        return cls.with_(
            permissions=permissions, scope=scope, require_all=require_all, accept=accept
        )


class HasWachtScope(_WachtPermission):
    """Allow OAuth access tokens granted every one of ``scopes`` (opaque or JWT); others get
    403 ``permission_denied``: ``HasWachtScope.with_(scopes=("invoices:read",))``."""

    needs = ("scopes", 'HasWachtScope.with_(scopes=("invoices:read",))')


class HasOrganization(_WachtPermission):
    """Allow callers with an active organization (``organization``: an id, when set)."""

    organization: bool | str = True


class HasWorkspace(_WachtPermission):
    """Allow callers with an active workspace (``workspace``: an id, when set)."""

    workspace: bool | str = True


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: our 401/403/503 answers (codes, envelope,
    ``WWW-Authenticate``, ``Retry-After``), DRF's own ``NotAuthenticated`` as ``token_missing``
    and ``PermissionDenied`` as ``permission_denied``; everything else as DRF does."""
    # Imported here: rest_framework.views imports the authentication classes named in settings.
    from rest_framework import views

    error = getattr(exc, "wacht_error", None)
    request = getattr(context.get("request"), "_request", None)
    denied = getattr(request, "_wacht_denied", None)
    if error is None and isinstance(exc, exceptions.NotAuthenticated):
        error = denied or TokenMissingError()
    elif error is None and isinstance(exc, exceptions.PermissionDenied):
        same = denied is not None and denied.code == exc.get_codes()
        error = denied if same else PermissionDeniedError(str(exc.detail))
    if not isinstance(error, WachtAuthError):
        return views.exception_handler(exc, context)
    views.set_rollback()
    return _json(error)
