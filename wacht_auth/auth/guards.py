"""Guards: what a route requires of its caller, and the decorators that enforce it.

:class:`Requirement` is a route's requirement and :meth:`Requirement.check` the one place that
judges a state against it; :func:`requirement` is the one builder, with the guards'
validation, used by the decorators, FastAPI's dependencies, DRF's permission classes and
Django's mixins (:meth:`Requirement.of` reads the same names as attributes). :class:`Guards`
turns requirements into view decorators for any framework.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast, overload

from ..errors import (
    ConfigurationError,
    CredentialInvalidError,
    OrganizationRequiredError,
    PermissionDeniedError,
    WachtAuthError,
    WorkspaceRequiredError,
)
from ..session import PermissionScope
from .decide import _kinds
from .state import AuthState, Caller, PageError, Redirect

__all__ = [
    "Decorator",
    "Guards",
    "PathParam",
    "Requirement",
    "Requirements",
    "public",
    "request_argument",
    "requirement",
]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
G = TypeVar("G")


@dataclass(frozen=True, slots=True)
class PathParam:
    """A requirement's organization or workspace named by the route's path parameter ``name``
    (``/orgs/{org_id}/invoices``): the caller's active one must be that one, or 403 as for a
    fixed id. The guards read it from the view's keyword arguments (Django, Flask), Starlette's
    ``request.path_params``, FastAPI's path, DRF's ``view.kwargs``; a route without that
    parameter is a misused guard (``configuration_error``), never an open door."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"PathParam needs a path parameter's name, got {self.name!r}")

    def value(self, params: Mapping[str, Any] | None, guard: str) -> str:
        """The parameter's value in ``params``, as text (a converter may have made it an
        int)."""
        if not params or params.get(self.name) is None:
            raise ConfigurationError(
                f"{guard}(path_param={self.name!r}) guards a route without a path parameter "
                f"{self.name!r}; name one the route has"
            )
        return str(params[self.name])


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route requires of its caller; ``check`` returns the caller or raises.

    Attributes:
        permissions: permissions to hold (any one of them, or all with ``require_all``).
        scope: ``"organization"``/``"workspace"`` to look in one place only; None for either.
        require_all: require every permission instead of any one.
        organization: True for "some active organization", a specific organization id, or
            the one a path parameter names (:class:`PathParam`).
        workspace: True for "some active workspace", a specific workspace id, or the one a
            path parameter names.
        accept: the credential kinds this route takes (None: every kind the app accepts).
        scopes: OAuth scopes the caller must have been granted, every one of them (only an
            OAuth access token has scopes, opaque or JWT alike: a session token or an API key
            is refused with 403 ``permission_denied``).
        redirect: a page: a visitor who is not signed in is sent to the sign-in page (302)
            instead of getting a 401, like Django's ``login_required``.
    """

    permissions: tuple[str, ...] = ()
    scope: PermissionScope | None = None
    require_all: bool = False
    organization: bool | str | PathParam = False
    workspace: bool | str | PathParam = False
    accept: tuple[str, ...] | None = None
    redirect: bool = False
    scopes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.accept is not None:
            object.__setattr__(self, "accept", _kinds(self.accept, "accept"))
        if self.scope not in (None, "organization", "workspace"):
            raise ValueError(f"scope must be 'organization', 'workspace' or None: {self.scope!r}")
        for permission in (*self.permissions, *self.scopes):
            if not isinstance(permission, str) or not permission:
                raise ValueError(
                    f"permissions and scopes must be non-empty strings: {permission!r}"
                )

    @classmethod
    def of(cls, source: object, prefix: str = "") -> Requirement:
        """The requirement that the attributes of ``source`` name: ``permissions``,
        ``scope``, ``require_all``, ``organization``, ``workspace``, ``accept``, ``redirect``,
        ``scopes``,
        each behind ``prefix`` (Django's mixins use ``wacht_``; DRF's permission classes
        none), through :func:`requirement`'s validation."""

        def get(name: str, default: Any) -> Any:
            return getattr(source, prefix + name, default)

        return requirement(
            *get("permissions", ()),
            scope=get("scope", None),
            require_all=get("require_all", False),
            organization=get("organization", False),
            workspace=get("workspace", False),
            accept=get("accept", None),
            redirect=get("redirect", False),
            scopes=get("scopes", ()),
        )

    def check(self, state: AuthState, params: Mapping[str, Any] | None = None) -> Caller:
        """Return the caller (a session, or a gateway-checked credential) when it meets this
        requirement, else raise the error of the error table (401 when not authenticated, or
        authenticated with a kind this route does not take; 403 when not allowed). ``params``
        are the route's path parameters, for a :class:`PathParam`."""
        session = state.require()
        if self.accept is not None and state.token_type not in self.accept:
            raise CredentialInvalidError(
                f"this endpoint does not accept {state.token_type} credentials; it takes "
                f"{', '.join(self.accept)}"
            )
        for place, required, active, refusal in (
            ("organization", self.organization, session.organization_id, OrganizationRequiredError),
            ("workspace", self.workspace, session.workspace_id, WorkspaceRequiredError),
        ):
            if required is False:
                continue
            wanted = _wanted(required, params, f"require_{place}")
            if active is None or (wanted is not None and active != wanted):
                raise refusal(
                    f"this endpoint requires the active {place} {wanted}"
                    if wanted
                    else f"this endpoint requires an active {place}"
                )
        if self.permissions:
            held = [p for p in self.permissions if session.has_permission(p, self.scope)]
            if not held or (self.require_all and len(held) != len(self.permissions)):
                missing = [p for p in self.permissions if p not in held]
                needed = "all of" if self.require_all else "one of"
                raise PermissionDeniedError(
                    f"this endpoint requires {needed}: {', '.join(self.permissions)} "
                    f"(missing: {', '.join(missing)})"
                )
        if self.scopes:
            granted = getattr(session, "scopes", ())  # a Session has none
            missing = [s for s in self.scopes if s not in granted]
            if missing:
                raise PermissionDeniedError(
                    f"this endpoint requires an OAuth access token granted the scopes "
                    f"{', '.join(self.scopes)} (missing: {', '.join(missing)})"
                )
        return session


_SIGNED_IN = Requirement()


def _wanted(
    value: bool | str | PathParam, params: Mapping[str, Any] | None, guard: str
) -> str | None:
    if isinstance(value, PathParam):
        return value.value(params, guard)
    return None if value is True else str(value)


def requirement(
    *permissions: str,
    scope: PermissionScope | None = None,
    require_all: bool = False,
    organization: bool | str | PathParam | None = False,
    workspace: bool | str | PathParam | None = False,
    accept: Iterable[str] | None = None,
    redirect: bool = False,
    scopes: Iterable[str] = (),
) -> Requirement:
    """The one builder of a :class:`Requirement`, with the guards' validation: a function where
    a value belongs (a guard written without its parentheses) is a ``TypeError``, never a
    guard that lets everyone through. ``organization``/``workspace``: True (or None) for
    "some active one", an id for that one, False for no requirement. ``scopes``: OAuth
    scopes, every one required."""
    scopes = (scopes,) if isinstance(scopes, str) else tuple(scopes)
    for value in (*permissions, *scopes, organization, workspace, scope):
        if callable(value):
            raise TypeError(
                "a wacht_auth requirement was given a function: write the guard with its "
                "parentheses, e.g. @require_organization() or Depends(require_organization())"
            )
    return Requirement(
        tuple(permissions),
        scope,
        bool(require_all),
        True if organization is None else organization,
        True if workspace is None else workspace,
        accept=None if accept is None else _kinds(accept, "accept"),
        redirect=bool(redirect),
        scopes=scopes,
    )


def request_argument(
    view: Callable[..., Any], *, first: bool = True
) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """Where ``view`` takes its request, found once, when it is decorated (as Starlette's
    ``requires`` does): a parameter named ``request`` or ``websocket``, else one annotated
    with a request type (``Request``, ``HttpRequest``, ``WebSocket``, ``HTTPConnection``),
    else, with ``first``, the first parameter (``self`` of a method skipped).

    Raises:
        TypeError: ``view`` takes no request argument.
    """
    params = list(inspect.signature(view).parameters.values())
    names = [p.name for p in params]

    def annotated(param: inspect.Parameter) -> bool:
        note = param.annotation
        text = note if isinstance(note, str) else getattr(note, "__name__", "")
        return text.rsplit(".", 1)[-1] in _REQUEST_TYPES

    candidates = [p for p in params if p.name in ("request", "websocket")]
    candidates += [p for p in params if annotated(p)]
    if first:
        candidates += [p for p in params if p.name not in ("self", "cls")]
    if not candidates:
        raise TypeError(
            f"{view.__qualname__} needs a request argument (a Request or WebSocket named "
            "request or websocket) for a wacht_auth decorator"
        )
    name = candidates[0].name
    index = names.index(name)
    if candidates[0].kind is inspect.Parameter.KEYWORD_ONLY:
        return lambda args, kwargs: kwargs[name]
    return lambda args, kwargs: args[index] if len(args) > index else kwargs[name]


_REQUEST_TYPES = frozenset({"Request", "HttpRequest", "WebSocket", "HTTPConnection"})


class Decorator(Protocol):
    """What a guard is in a framework of decorators: a view in, the same view guarded out."""

    def __call__(self, view: Callable[P, T], /) -> Callable[P, T]:
        """Guard ``view``."""
        ...


class Requirements(Generic[G]):
    """The requirement factories of a framework, with one set of names and one validation
    (:func:`requirement`): ``make`` turns a :class:`Requirement` into the framework's guard (a
    decorator for :class:`Guards`, a dependency for FastAPI). Bind an instance's methods as
    the adapter's module functions: ``require_permission = requirements.require_permission``.
    """

    def __init__(self, make: Callable[[Requirement], G]) -> None:
        self._make = make

    def require_caller(self, *, accept: Iterable[str] | None = None, redirect: bool = False) -> G:
        """A signed-in caller of the kinds in ``accept`` (others: 401 ``credential_invalid``);
        ``redirect=True`` makes it a page: visitors who are not signed in go to sign in."""
        return self._make(requirement(accept=accept, redirect=redirect))

    def require_permission(
        self,
        *permissions: str,
        scope: PermissionScope | None = None,
        require_all: bool = False,
        accept: Iterable[str] | None = None,
        redirect: bool = False,
    ) -> G:
        """403 ``permission_denied`` unless the caller holds one of ``permissions`` (every one
        with ``require_all``), in ``scope`` (None: either); with an API key, the gateway is
        asked for them too."""
        if not permissions:
            raise TypeError('write require_permission("name", ...) with at least one permission')
        return self._make(
            requirement(
                *permissions, scope=scope, require_all=require_all, accept=accept, redirect=redirect
            )
        )

    def require_scope(
        self, *scopes: str, accept: Iterable[str] | None = None, redirect: bool = False
    ) -> G:
        """403 ``permission_denied`` unless the caller is an OAuth access token (opaque or
        JWT) granted every one of ``scopes``."""
        if not scopes:
            raise TypeError('write require_scope("name", ...) with at least one scope')
        return self._make(requirement(scopes=scopes, accept=accept, redirect=redirect))

    def require_organization(
        self,
        organization_id: str | None = None,
        *,
        path_param: str | None = None,
        accept: Iterable[str] | None = None,
    ) -> G:
        """403 ``organization_required`` without an active organization, this one, or (with
        ``path_param``) the one the route's path parameter names (``/orgs/{org_id}/...``)."""
        wanted = _target(organization_id, path_param, "require_organization")
        return self._make(requirement(organization=wanted, accept=accept))

    def require_workspace(
        self,
        workspace_id: str | None = None,
        *,
        path_param: str | None = None,
        accept: Iterable[str] | None = None,
    ) -> G:
        """403 ``workspace_required`` without an active workspace, this one, or (with
        ``path_param``) the one the route's path parameter names."""
        wanted = _target(workspace_id, path_param, "require_workspace")
        return self._make(requirement(workspace=wanted, accept=accept))


def _target(given: str | None, path_param: str | None, guard: str) -> str | PathParam | bool:
    if given is not None and path_param is not None:
        raise TypeError(f"{guard}() takes an id or a path_param, not both")
    return PathParam(path_param) if path_param is not None else given or True


class Guards(Requirements[Decorator], Generic[R]):
    """The requirement decorators of one framework, over one implementation.

    An adapter gives how to get the state of its native request (sync and async) and how to
    answer natively; everything else (finding the request argument once, at decoration time;
    sync and async views; what each requirement means) is here.

    Args:
        state: the request's :class:`AuthState` (sync views), given the permissions the
            route requires (sent to the gateway when this call is what checks an API key).
        astate: the same, awaited (async views); without it, async views use ``state``
            (a framework whose requests are resolved synchronously, such as Flask).
        refuse: the native answer for a failed requirement (an error) or a page's
            :class:`Redirect`, with the state's response headers; may be awaitable
            (websockets). A page's 403 (or 401 without a sign-in page) comes as a
            :class:`PageError`: the framework's own error handling answers it (its HTML
            error page).
        sign_in: the sign-in page for a request (the handshake's ``sign_in_location``), for
            pages; without it, ``redirect=True`` is refused.
        find: given a view, a function from its call's ``(args, kwargs)`` to the request
            (default :func:`request_argument`; Flask's views take none and read a global).
        is_async: whether a view is a coroutine function.
        params: the route's path parameters, from the request and the view's keyword
            arguments (default: those arguments, as Django and Flask pass them).
    """

    def __init__(
        self,
        *,
        state: Callable[[R, tuple[str, ...]], AuthState],
        refuse: Callable[[R, WachtAuthError | Redirect | PageError, AuthState], Any],
        astate: Callable[[R, tuple[str, ...]], Awaitable[AuthState]] | None = None,
        sign_in: Callable[[R], str | None] | None = None,
        find: Callable[[Callable[..., Any]], Callable[[tuple[Any, ...], dict[str, Any]], R]] = (
            request_argument
        ),
        is_async: Callable[[Any], bool] = inspect.iscoroutinefunction,
        params: Callable[[R, dict[str, Any]], Mapping[str, Any]] = lambda request, kwargs: kwargs,
    ) -> None:
        super().__init__(self.guard)
        self._params = params
        self._state, self._astate, self._refuse = state, astate or _awaitable(state), refuse
        self._sign_in, self._find, self._is_async = sign_in, find, is_async

    def guard(self, requirement: Requirement) -> Decorator:
        """A decorator refusing callers who do not meet ``requirement``."""
        # require_auth asks for a caller and nothing more: one that is there needs no check.
        signed_in_only = requirement == _SIGNED_IN
        state_of, astate_of = self._state, self._astate
        needs = requirement.permissions
        if requirement.redirect and self._sign_in is None:
            raise TypeError("this framework's guards cannot redirect to a sign-in page")
        answer, params_of = self._answer, self._params

        def decorate(view: Callable[P, T]) -> Callable[P, T]:
            request_of = self._find(view)
            if self._is_async(view):

                @functools.wraps(view)
                async def async_view(*args: P.args, **kwargs: P.kwargs) -> Any:
                    request = request_of(args, kwargs)
                    state = await astate_of(request, needs)
                    if state.caller is None or not signed_in_only or state.redirect:
                        refusal = answer(requirement, request, state, params_of(request, kwargs))
                        if refusal is not _PASS:
                            return await refusal if inspect.isawaitable(refusal) else refusal
                    return await view(*args, **kwargs)  # type: ignore[misc]

                return cast("Callable[P, T]", async_view)

            @functools.wraps(view)
            def sync_view(*args: P.args, **kwargs: P.kwargs) -> Any:
                request = request_of(args, kwargs)
                state = state_of(request, needs)
                if state.caller is None or not signed_in_only or state.redirect:
                    refusal = answer(requirement, request, state, params_of(request, kwargs))
                    if refusal is not _PASS:
                        return refusal
                return view(*args, **kwargs)

            return cast("Callable[P, T]", sync_view)

        return decorate

    def _answer(
        self, requirement: Requirement, request: R, state: AuthState, params: Mapping[str, Any]
    ) -> Any:
        """The native answer when ``requirement`` refuses, or ``_PASS``: the error, or for a
        page the redirect (to the clean URL after a ``?__dev_session__=`` exchange, or to the
        sign-in page instead of a 401)."""
        page = requirement.redirect
        if page and state.redirect is not None:
            return self._refuse(request, Redirect(state.redirect), state)
        try:
            requirement.check(state, params)
        except WachtAuthError as error:
            if page and error.status == 401:
                assert self._sign_in is not None
                location = self._sign_in(request)
                if location is not None:
                    return self._refuse(request, Redirect(location), state)
            if page and error.status in (401, 403):
                return self._refuse(request, PageError(error), state)
            return self._refuse(request, error, state)
        return _PASS

    @overload
    def require_auth(self, view: Callable[P, T], *, accept: None = None) -> Callable[P, T]: ...

    @overload
    def require_auth(
        self,
        view: None = None,
        *,
        accept: Iterable[str] | None = None,
        redirect: bool = False,
    ) -> Decorator: ...

    def require_auth(
        self,
        view: Callable[P, T] | None = None,
        *,
        accept: Iterable[str] | None = None,
        redirect: bool = False,
    ) -> Callable[P, T] | Decorator:
        """Decorator: 401 with the precise code (``token_expired`` …) unless the caller is
        authenticated; ``@require_auth(accept=("api_key",))`` narrows the kinds this route
        takes (401 ``credential_invalid`` for others); ``@require_auth(redirect=True)`` makes
        it a page: visitors who are not signed in go to the sign-in page instead."""
        if view is None:
            return self.require_caller(accept=accept, redirect=redirect)
        if not callable(view) or accept is not None or redirect:
            raise TypeError("write @require_auth, or @require_auth(accept=..., redirect=...)")
        return self.guard(_SIGNED_IN)(view)


_PASS: Any = object()  # the guard's "no refusal": the view runs
F = TypeVar("F", bound=Callable[..., Any])


def uncalled_refused(factory: F, injected: type) -> F:
    """``factory`` (a requirement factory) as a dependency-injection framework cannot
    mistake it for a guard: given uncalled (FastAPI's ``Depends(require_organization)``), the
    framework fills the last parameter its signature declares, of type ``injected`` (the
    connection), and the call raises ``TypeError``: a misused guard refuses, as the
    decorators do, and never lets the route run."""
    signature = inspect.signature(factory, eval_str=True)
    last = inspect.Parameter("_injected", inspect.Parameter.KEYWORD_ONLY, default=None)

    @functools.wraps(factory)
    def checked(*args: Any, _injected: object = None, **kwargs: Any) -> Any:
        if _injected is not None:
            name = factory.__name__
            raise TypeError(f"write Depends({name}(...)) with parentheses, not Depends({name})")
        return factory(*args, **kwargs)

    parameters = [*signature.parameters.values(), last.replace(annotation=injected)]
    checked.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return cast("F", checked)


def public(view: F) -> F:
    """Leave ``view`` open under ``protect_all`` (like Django's ``login_not_required``): a
    marker on the callable, so it may sit above or below a route decorator."""
    view.wacht_public = True  # type: ignore[attr-defined]  # a marker on any callable
    return view


def _awaitable(
    state: Callable[[R, tuple[str, ...]], AuthState],
) -> Callable[[R, tuple[str, ...]], Awaitable[AuthState]]:
    async def astate(request: R, needs: tuple[str, ...]) -> AuthState:
        return state(request, needs)

    return astate
