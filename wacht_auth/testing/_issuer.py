"""The in-process issuer: keys, token minting and a JWKS server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import DEFAULT_ALGORITHMS, Config
from ._server import _MAX_RECORDED, _Answer, _Handler, _Loopback, _send
from ._server import MAX_DELAY as MAX_DELAY  # the bound of delay(); FrontendAPI's too
from ._signing import SigningKey, _b64url, _json, _merge, _permissions, _renamed_ids

#: Where a Wacht frontend API serves its signing keys.
JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class KeyRequest:
    """A request the issuer's key server received for :data:`JWKS_PATH`.

    Attributes:
        method: the HTTP method (``"GET"``).
        path: the request target as sent, query string included.
        headers: the request headers, names lowercased (``headers["user-agent"]``).
    """

    method: str
    path: str
    headers: Mapping[str, str]


class Issuer(_Loopback):
    """An in-process Wacht issuer: keys, token minting and a JWKS server on loopback.

    One key is made per entry of ``algorithms``; the first signs by default. Start the server
    with :meth:`start` (or ``with Issuer() as issuer:``); :attr:`url` is then both the frontend
    API origin and the ``iss`` of every token, and :meth:`config` returns a
    :class:`~wacht_auth.Config` pointing at it.

    Args:
        algorithms: algorithms to make keys for; the first is the default signer.
        include_kid: whether minted tokens carry a ``kid`` header (Wacht's usually don't).
        host: loopback address to listen on.
        port: port to listen on; 0 picks a free one.
        clock: returns POSIX seconds; used for ``iat`` and shared with :meth:`config`.

    The key-server controls (:meth:`fail`, :meth:`set_response`, :meth:`redirect_to`,
    :meth:`delay`, :meth:`set_cache_control`, :meth:`down`/:meth:`up`, :meth:`rotate` …) take
    effect on the next request. A request to :data:`JWKS_PATH` first waits out the
    :meth:`delay`, then answers the redirect if one is set, else the failure, else the custom
    response, else the JWK Set. Other paths answer 404.
    """

    _kind = "issuer"

    def __init__(
        self,
        *,
        algorithms: Iterable[str] = ("ES256",),
        include_kid: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        algs = (algorithms,) if isinstance(algorithms, str) else tuple(algorithms)
        if not algs:
            raise ValueError("algorithms must name at least one algorithm, e.g. ES256")
        super().__init__(host=host, port=port)
        self.include_kid: bool = include_kid
        self.clock: Callable[[], float] = clock
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._signers: dict[str, SigningKey] = {}
        for alg in algs:
            if alg not in self._signers:
                key = SigningKey.generate(alg)
                self._signers[alg] = key
                self._keys.append(key)
        self._default_alg = algs[0]
        self._forgers: dict[str, SigningKey] = {}
        self._fetch_count = 0
        self._requests: list[KeyRequest] = []
        self._delay = 0.0
        self._failure: _Answer | None = None
        self._response: _Answer | None = None
        self._redirect: _Answer | None = None
        self._cache_control: str | None = None

    # -- server lifecycle (start, stop, url, port, host: see _Loopback) ----------------------

    def down(self) -> None:
        """Close the listening socket: connections are refused until :meth:`up`."""
        with self._lifecycle:
            if not self._started:
                raise RuntimeError("the issuer is not started")
            self._close()

    def up(self) -> None:
        """Listen again, on the same port, after :meth:`down`. No-op when already up."""
        with self._lifecycle:
            if not self._started:
                raise RuntimeError("the issuer is not started")
            self._listen()

    @property
    def is_up(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    @property
    def jwks_url(self) -> str:
        """``{url}/.well-known/jwks.json``."""
        return self.url + JWKS_PATH

    def config(self, **overrides: Any) -> Config:
        """A :class:`~wacht_auth.Config` for this issuer; ``overrides`` are passed to it.

        Sets ``frontend_api_url`` to :attr:`url`, ``clock`` to the issuer's clock, and
        ``algorithms`` to the defaults (RS256, ES256) plus any other algorithm the issuer's
        keys use, so every key it publishes is accepted.
        """
        with self._lock:
            extra = [k.alg for k in self._keys] + list(self._signers)
        algorithms = list(DEFAULT_ALGORITHMS)
        for alg in extra:
            if alg not in algorithms:
                algorithms.append(alg)
        values: dict[str, Any] = {
            "frontend_api_url": self.url,
            "clock": self.clock,
            "algorithms": tuple(algorithms),
        }
        values.update(overrides)
        return Config(**values)

    # -- keys -------------------------------------------------------------------------------

    @property
    def signing_key(self) -> SigningKey:
        """The key that signs tokens by default."""
        with self._lock:
            return self._signers[self._default_alg]

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """The keys currently published in the JWKS, in order."""
        with self._lock:
            return tuple(self._keys)

    def jwks(self) -> dict[str, Any]:
        """The JWK Set the server answers with: ``{"keys": [...]}``."""
        with self._lock:
            return {"keys": [key.public_jwk() for key in self._keys]}

    def key_for(self, alg: str | None = None) -> SigningKey:
        """The signer for ``alg`` (the default signer when ``None``)."""
        with self._lock:
            alg = alg or self._default_alg
            key = self._signers.get(alg)
        if key is None:
            raise ValueError(
                f"the issuer has no {alg} key: create it with Issuer(algorithms=(..., {alg!r})) "
                f"or issuer.rotate({alg!r})"
            )
        return key

    def rotate(self, alg: str | None = None, *, keep_old: bool = False) -> SigningKey:
        """Make a new key (default: the current signer's algorithm) and sign with it.

        The new key is published and becomes the default signer. The key it replaces (the
        previous signer for that algorithm) leaves the JWKS unless ``keep_old``.
        """
        with self._lock:
            alg = alg or self._default_alg
        new = SigningKey.generate(alg)
        with self._lock:
            old = self._signers.get(alg)
            if old is not None and not keep_old:
                self._keys = [k for k in self._keys if k is not old]
            self._keys.append(new)
            self._signers[alg] = new
            self._default_alg = alg
        return new

    def add_key(self, key: SigningKey) -> None:
        """Publish ``key`` in the JWKS (it does not become a signer; pass ``key=`` to mint)."""
        with self._lock:
            self._keys.append(key)

    def remove_key(self, kid: str) -> None:
        """Remove every published key with ``kid``; ``KeyError`` when there is none.

        Signers stay signers: tokens minted with a removed key no longer verify.
        """
        with self._lock:
            kept = [k for k in self._keys if k.kid != kid]
            if len(kept) == len(self._keys):
                raise KeyError(kid)
            self._keys = kept

    # -- minting ----------------------------------------------------------------------------

    def claims(
        self,
        user_id: str | None = "user_1",
        *,
        session_id: str | None = "sess_1",
        organization_id: str | None = None,
        workspace_id: str | None = None,
        permissions: Iterable[str] | Mapping[str, Iterable[str] | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        lifetime: float = 60,
        iat: float | None = None,
        exp: float | None = None,
        nbf: float | None = None,
        claims: Mapping[str, Any] | None = None,
        organization: str | None = None,
        workspace: str | None = None,
    ) -> dict[str, Any]:
        """The claims :meth:`token` signs, with the same arguments (see there)."""
        organization_id, workspace_id = _renamed_ids(
            organization_id, workspace_id, organization, workspace
        )
        issued = int(self.clock()) if iat is None else iat
        out: dict[str, Any] = {"iss": self.url}
        if user_id is not None:
            out["sub"] = user_id
        if session_id is not None:
            out["sid"] = session_id
        out["iat"] = issued
        out["exp"] = issued + lifetime if exp is None else exp
        if nbf is not None:
            out["nbf"] = nbf
        if organization_id is not None:
            out["organization"] = organization_id
        if workspace_id is not None:
            out["workspace"] = workspace_id
        out["permissions"] = _permissions(permissions)
        if metadata:
            out["metadata"] = dict(metadata)
        _merge(out, claims)
        return out

    def token(
        self,
        user_id: str | None = "user_1",
        *,
        session_id: str | None = "sess_1",
        organization_id: str | None = None,
        workspace_id: str | None = None,
        permissions: Iterable[str] | Mapping[str, Iterable[str] | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
        lifetime: float = 60,
        iat: float | None = None,
        exp: float | None = None,
        nbf: float | None = None,
        claims: Mapping[str, Any] | None = None,
        alg: str | None = None,
        key: SigningKey | None = None,
        include_kid: bool | None = None,
        headers: Mapping[str, Any] | None = None,
        organization: str | None = None,
        workspace: str | None = None,
    ) -> str:
        """Mint a Wacht session token, as ``GET {frontend}/session/token`` would.

        Claims: ``iss`` = :attr:`url`, ``sub`` = ``user_id``, ``sid`` = ``session_id`` (each
        left out when ``None``), ``iat`` (default: now by the issuer's clock), ``exp`` (default
        ``iat + lifetime``), ``nbf`` when given, ``organization`` = ``organization_id`` and
        ``workspace`` = ``workspace_id`` when given (the names of
        :attr:`~wacht_auth.Session.organization_id` and :attr:`~wacht_auth.Session.workspace_id`;
        the older keywords ``organization=`` and ``workspace=`` still work but warn with a
        :class:`DeprecationWarning`), ``permissions`` always as
        ``{"organization": [...], "workspace": [...]}`` (a list means organization permissions;
        a mapping gives both), ``metadata`` only when non-empty.
        ``claims`` is merged last; a value of ``None`` there deletes the claim.

        Signed by ``key`` if given, else the issuer's signer for ``alg`` (default: the default
        signer). ``include_kid`` defaults to the issuer's setting; ``headers`` are merged into
        the JWS header as :meth:`SigningKey.sign` describes.
        """
        organization_id, workspace_id = _renamed_ids(
            organization_id, workspace_id, organization, workspace
        )
        payload = self.claims(
            user_id,
            session_id=session_id,
            organization_id=organization_id,
            workspace_id=workspace_id,
            permissions=permissions,
            metadata=metadata,
            lifetime=lifetime,
            iat=iat,
            exp=exp,
            nbf=nbf,
            claims=claims,
        )
        signer = key if key is not None else self.key_for(alg)
        return signer.sign(
            payload,
            include_kid=self.include_kid if include_kid is None else include_kid,
            headers=headers,
        )

    def expired_token(self, user_id: str | None = "user_1", **kwargs: Any) -> str:
        """A token that expired an hour ago, beyond any allowed leeway (300 s at most).

        Takes the arguments of :meth:`token` (``user_id`` positional too); ``iat``/``exp``
        given there win.
        """
        now = int(self.clock())
        kwargs.setdefault("iat", now - 7200)
        kwargs.setdefault("exp", now - 3600)
        return self.token(user_id, **kwargs)

    def forged_token(self, user_id: str | None = "user_1", **kwargs: Any) -> str:
        """A well-formed token signed by a key that is *not* in the JWKS.

        The forging key has the signer's algorithm and ``kid``, so a verifier that picks keys by
        ``kid`` finds the real key and must reject the signature. Takes the arguments of
        :meth:`token` (``user_id`` positional too; ``key`` excepted).
        """
        if "key" in kwargs:
            raise TypeError("forged_token() makes its own key; do not pass key=")
        real = self.key_for(kwargs.get("alg"))
        with self._lock:
            forger = self._forgers.get(real.kid)
        if forger is None:
            forger = SigningKey.generate(real.alg, kid=real.kid)
            with self._lock:
                forger = self._forgers.setdefault(real.kid, forger)
        return self.token(user_id, key=forger, **kwargs)

    def transport_token(
        self,
        *,
        session_id: str = "sess_1",
        lifetime: float = 30 * 24 * 3600,
        claims: Mapping[str, Any] | None = None,
        alg: str | None = None,
        key: SigningKey | None = None,
        include_kid: bool | None = None,
    ) -> str:
        """A validly signed ``__session`` cookie token, which a backend must not accept.

        It carries ``iss``, ``iat``, ``exp`` (long-lived), ``sess`` and ``rotating_token`` but
        no ``sub``: it identifies the browser to the frontend API, not the user to a backend.
        ``claims`` is merged last (``None`` deletes).
        """
        now = int(self.clock())
        payload: dict[str, Any] = {
            "iss": self.url,
            "iat": now,
            "exp": now + lifetime,
            "sess": session_id,
            "rotating_token": secrets.token_urlsafe(24),
        }
        _merge(payload, claims)
        signer = key if key is not None else self.key_for(alg)
        return signer.sign(
            payload, include_kid=self.include_kid if include_kid is None else include_kid
        )

    def insecure_token(
        self,
        alg: str = "none",
        *,
        secret: bytes | str | None = None,
        headers: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """A token with valid claims that a verifier must refuse for its algorithm alone.

        ``alg="none"`` gives an unsecured JWS (RFC 7515 §A.5: empty signature).
        ``"HS256"``/``"HS384"``/``"HS512"`` are HMAC-signed with ``secret``, by default the
        signer's public PEM: the classic key-confusion attack, which a verifier that handed a
        public key to an HMAC check would accept. Other arguments are those of :meth:`token`
        (claims only); ``headers`` are merged into the header (``None`` deletes).
        """
        digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
        if alg != "none" and alg not in digests:
            raise ValueError("insecure_token() makes alg none, HS256, HS384 or HS512 tokens")
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        _merge(header, headers)
        signing_input = _b64url(_json(header)) + "." + _b64url(_json(self.claims(**kwargs)))
        if alg == "none":
            return signing_input + "."
        if secret is None:
            secret = self.signing_key.public_pem()
        key = secret.encode() if isinstance(secret, str) else secret
        mac = hmac.new(key, signing_input.encode("ascii"), digests[alg]).digest()
        return signing_input + "." + _b64url(mac)

    # -- key server control ------------------------------------------------------------------

    @property
    def fetch_count(self) -> int:
        """Requests to :data:`JWKS_PATH` received so far, whatever the answer."""
        with self._lock:
            return self._fetch_count

    @property
    def requests(self) -> tuple[KeyRequest, ...]:
        """The last (up to 1,000) requests counted in :attr:`fetch_count`, oldest first."""
        with self._lock:
            return tuple(self._requests)

    def reset_count(self) -> None:
        """Set :attr:`fetch_count` back to 0 and forget :attr:`requests`."""
        with self._lock:
            self._fetch_count = 0
            self._requests.clear()

    def fail(
        self,
        status: int | None = 500,
        body: bytes = b'{"error":"unavailable"}',
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer JWKS requests with ``status`` and ``body``; ``fail(None)`` restores."""
        answer = None
        if status is not None:
            answer = _Answer(status, body, content_type, tuple((headers or {}).items()))
        with self._lock:
            self._failure = answer

    def set_response(
        self,
        body: bytes | None,
        content_type: str = "application/json",
        status: int = 200,
    ) -> None:
        """Answer JWKS requests with this raw body (HTML, garbage, huge …); ``None`` restores."""
        with self._lock:
            self._response = None if body is None else _Answer(status, body, content_type)

    def redirect_to(self, url: str | None, status: int = 302) -> None:
        """Answer JWKS requests with a redirect to ``url``; ``None`` restores."""
        answer = None
        if url is not None:
            answer = _Answer(status, b"", "text/plain", (("Location", url),))
        with self._lock:
            self._redirect = answer

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` (at most 30) before answering each JWKS request; 0 restores.

        :meth:`down` and :meth:`stop` cut a pending wait short.
        """
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._delay = min(float(seconds), MAX_DELAY)

    def set_cache_control(self, value: str | None) -> None:
        """Send ``Cache-Control: value`` with the JWK Set (e.g. ``"max-age=120"``); ``None``
        sends none."""
        with self._lock:
            self._cache_control = value

    def restore(self) -> None:
        """Undo :meth:`fail`, :meth:`set_response`, :meth:`redirect_to`, :meth:`delay` and
        :meth:`set_cache_control` (keys and :attr:`fetch_count` are kept)."""
        with self._lock:
            self._failure = self._response = self._redirect = None
            self._delay = 0.0
            self._cache_control = None

    def _handle(self, handler: _Handler) -> None:
        """Answer one request (runs in a server thread)."""
        if urlsplit(handler.path).path != JWKS_PATH or handler.command != "GET":
            _send(handler, _Answer(404, b'{"error":"not_found"}', "application/json"))
            return
        with self._lock:
            self._fetch_count += 1
            self._requests.append(
                KeyRequest("GET", handler.path, {k.lower(): v for k, v in handler.headers.items()})
            )
            del self._requests[:-_MAX_RECORDED]
            delay = self._delay
            answer = self._redirect or self._failure or self._response
            if answer is None:
                extra = (("Cache-Control", self._cache_control),) if self._cache_control else ()
                answer = _Answer(
                    200,
                    _json({"keys": [key.public_jwk() for key in self._keys]}),
                    "application/json",
                    extra,
                )
        self._pause(delay)
        _send(handler, answer)

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"Issuer({where}, keys={[k.alg for k in self.keys]})"
