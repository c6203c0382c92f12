"""The development issuer behind ``wacht-auth dev``: a JWKS and a mint endpoint on loopback.

:class:`DevIssuer` serves, on one ``127.0.0.1`` port, the JWK Set of an unstarted
:class:`~wacht_auth.testing.Issuer` (which holds the keys and mints) at
``/.well-known/jwks.json``, and mints tokens at ``GET /dev/token`` (:data:`MINT_PATH`), so
``wacht-auth dev mint``, ``curl`` or a test in any language can ask the running issuer for more
tokens. :func:`mint_remote` is the client that ``wacht-auth dev mint`` uses.

The mint endpoint refuses what a web page could send (DNS rebinding, cross-site fetches): it
answers only a ``Host`` that names the loopback address and port it listens on, and only
requests without ``Origin`` or a cross-site ``Sec-Fetch-Site``; it sends no CORS headers.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .testing import JWKS_PATH, Issuer
from .testing._server import _Answer, _Handler, _Loopback, _send

__all__ = ["DEV_ALGORITHMS", "MINT_PATH", "DevIssuer", "MintError", "TokenRequest", "mint_remote"]

#: Where the development issuer mints tokens.
MINT_PATH = "/dev/token"
#: The algorithms the development issuer has keys for (Wacht signs with ES256 or RS256).
DEV_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256")
_HOST = "127.0.0.1"


@dataclass(frozen=True)
class TokenRequest:
    """What to put in a minted token; the query string of :data:`MINT_PATH` in one object.

    Attributes:
        user_id: ``sub``.
        session_id: ``sid``.
        organization_id: the active organization (``organization`` claim), if any.
        workspace_id: the active workspace (``workspace`` claim), if any.
        organization_permissions: permissions held in the organization.
        workspace_permissions: permissions held in the workspace.
        lifetime: seconds from ``iat`` to ``exp``.
        alg: ``"ES256"`` or ``"RS256"``; ``None`` is the issuer's default signer.
    """

    user_id: str = "user_1"
    session_id: str = "sess_1"
    organization_id: str | None = None
    workspace_id: str | None = None
    organization_permissions: tuple[str, ...] = field(default=())
    workspace_permissions: tuple[str, ...] = field(default=())
    lifetime: float = 3600
    alg: str | None = None

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("user_id must not be empty")
        if not 0 < self.lifetime <= 366 * 86400:
            raise ValueError("lifetime must be between 0 and one year (seconds)")
        if self.alg is not None and self.alg not in DEV_ALGORITHMS:
            raise ValueError(f"alg must be one of {', '.join(DEV_ALGORITHMS)}")

    def query(self) -> str:
        """This request as the query string of :data:`MINT_PATH`."""
        pairs: list[tuple[str, str]] = [
            ("user_id", self.user_id),
            ("session_id", self.session_id),
            ("lifetime", f"{self.lifetime:g}"),
        ]
        for name in ("organization_id", "workspace_id", "alg"):
            value = getattr(self, name)
            if value is not None:
                pairs.append((name, value))
        pairs += [("organization_permission", p) for p in self.organization_permissions]
        pairs += [("workspace_permission", p) for p in self.workspace_permissions]
        return urllib.parse.urlencode(pairs)

    @classmethod
    def from_query(cls, query: str) -> TokenRequest:
        """Parse :meth:`query`'s output; ``ValueError`` for an unknown or repeated field."""
        values = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=False)
        lists = {"organization_permission", "workspace_permission"}
        singles = {"user_id", "session_id", "organization_id", "workspace_id", "lifetime", "alg"}
        unknown = set(values) - lists - singles
        if unknown:
            raise ValueError(f"unknown parameter {sorted(unknown)[0]!r}")
        kwargs: dict[str, Any] = {}
        for name in singles & set(values):
            if len(values[name]) != 1:
                raise ValueError(f"parameter {name!r} given more than once")
            kwargs[name] = values[name][0]
        if "lifetime" in kwargs:
            kwargs["lifetime"] = float(kwargs["lifetime"])
        kwargs["organization_permissions"] = tuple(values.get("organization_permission", ()))
        kwargs["workspace_permissions"] = tuple(values.get("workspace_permission", ()))
        return cls(**kwargs)


class DevIssuer(_Loopback):
    """A local Wacht issuer for development: serves its JWKS and mints tokens on request.

    Args:
        port: the loopback port to listen on; 0 picks a free one.
        algorithm: the default signing algorithm (``"ES256"`` or ``"RS256"``); the issuer has
            a key for each of :data:`DEV_ALGORITHMS`.

    The port is taken when it is made (``OSError`` when it is busy), so :attr:`url`, the
    tokens' ``iss``, is known at once. Use it as a context manager; :attr:`issuer` mints
    in-process as well.
    """

    _kind = "dev issuer"

    def __init__(self, *, port: int = 0, algorithm: str = "ES256") -> None:
        if algorithm not in DEV_ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(DEV_ALGORITHMS)}")
        super().__init__(host=_HOST, port=port)
        self._bind()
        others = tuple(a for a in DEV_ALGORITHMS if a != algorithm)
        #: Holds the keys and mints; never started: this class serves its JWK Set.
        self.issuer = Issuer(algorithms=(algorithm, *others), port=self.port)

    @property
    def mint_url(self) -> str:
        """``{url}/dev/token``."""
        return self.url + MINT_PATH

    def mint(self, request: TokenRequest) -> tuple[str, dict[str, Any]]:
        """Mint a token for ``request``; returns it with its claims."""
        kwargs: dict[str, Any] = {
            "session_id": request.session_id,
            "organization_id": request.organization_id,
            "workspace_id": request.workspace_id,
            "permissions": {
                "organization": list(request.organization_permissions),
                "workspace": list(request.workspace_permissions),
            },
        }
        now = int(self.issuer.clock())
        kwargs.update(iat=now, exp=now + math.ceil(request.lifetime))  # whole seconds
        token = self.issuer.token(request.user_id, alg=request.alg, **kwargs)
        return token, self.issuer.claims(request.user_id, **kwargs)

    def _handle(self, handler: _Handler) -> None:
        status, body = self._answer(handler)
        # RFC 6749 §5.1, as for any token: no cache keeps a minted one.
        extra = (("Cache-Control", "no-store"),) if status == 200 and "token" in body else ()
        _send(
            handler,
            _Answer(status, json.dumps(body, separators=(",", ":")).encode(), headers=extra),
        )

    def _answer(self, handler: _Handler) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one GET (runs in a server thread)."""
        target = urllib.parse.urlsplit(handler.path)
        if target.path == JWKS_PATH:
            return 200, self.issuer.jwks()
        if target.path != MINT_PATH:
            return 404, _error(
                "not_found", "this development issuer serves the JWKS and /dev/token"
            )
        port = self.port
        if handler.headers.get("Host") not in (f"{_HOST}:{port}", f"localhost:{port}"):
            return 403, _error("forbidden", "minting answers only a loopback Host")
        if handler.headers.get("Origin") or handler.headers.get("Sec-Fetch-Site") not in (
            None,
            "none",
            "same-origin",
        ):
            return 403, _error("forbidden", "minting answers no request made by a web page")
        try:
            request = TokenRequest.from_query(target.query)
        except ValueError as error:
            return 400, _error("bad_request", str(error))
        token, claims = self.mint(request)
        return 200, {"token": token, "claims": claims}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class MintError(Exception):
    """``dev mint`` could not get a token.

    Attributes:
        code: ``issuer_unreachable`` (nothing answers), ``not_a_dev_issuer`` (something else
            answers) or the code of the issuer's error answer (``bad_request`` …).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def mint_remote(url: str, request: TokenRequest, *, timeout: float = 5) -> Mapping[str, Any]:
    """Ask the development issuer at ``url`` for a token: ``{"token": ..., "claims": ...}``.

    Raises:
        MintError: the issuer cannot be reached or refuses.
    """
    target = f"{url.rstrip('/')}{MINT_PATH}?{request.query()}"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            body: Any = json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            try:
                detail = json.loads(error.read())["error"]
                code, message = str(detail["code"]), str(detail["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "not_a_dev_issuer", f"{url} answered {error.code}"
        if code == "not_found":
            code = "not_a_dev_issuer"
        raise MintError(code, message) from error
    except urllib.error.URLError as error:
        reason = error.reason
        raise MintError("issuer_unreachable", f"nothing answers at {url} ({reason})") from error
    except OSError as error:
        raise MintError("issuer_unreachable", f"nothing answers at {url} ({error})") from error
    except ValueError as error:
        raise MintError("not_a_dev_issuer", f"{url} did not answer with JSON") from error
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        raise MintError("not_a_dev_issuer", f"{url} did not answer with a token")
    return body
