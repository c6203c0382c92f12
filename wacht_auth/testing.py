"""Test helpers: an in-process Wacht issuer, token minting and pytest fixtures.

:class:`Issuer` plays the part of a Wacht deployment's frontend API for tests and local
development: it makes signing keys, mints Wacht-shaped session tokens and serves its JWK Set at
``GET /.well-known/jwks.json`` from a real HTTP server on a loopback port, so the verifier
under test fetches keys exactly as it would in production. It can also misbehave on demand
(errors, garbage, redirects, slow answers, refused connections, key rotation) for the tests of
the key cache. :class:`FrontendAPI` extends it into a fake frontend API for server-rendered
pages: the session exchange at ``GET /session/token`` and a sign-in page that sets
``__session`` and redirects back.

The module is registered as a pytest plugin (``pytest11`` entry point ``wacht_auth``): when
pytest is installed, the fixtures ``wacht_issuer``, ``wacht_issuer_rs256``, ``wacht_config``
and ``wacht_token`` are available in every test without an import. Importing it needs only the
runtime dependencies (``cryptography`` and ``PyJWT``); see ``docs/testing.md``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
import logging
import secrets
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from ._fake_gateway import FakeGateway
from ._kit_webhooks import Delivery, WebhookSigner
from .config import DEFAULT_ALGORITHMS, Config, is_loopback_host

__all__ = [
    "JWKS_PATH",
    "MAX_DELAY",
    "SESSION_TOKEN_PATH",
    "SIGNING_ALGORITHMS",
    "SIGN_IN_PATH",
    "Delivery",
    "ExchangeRequest",
    "FakeGateway",
    "FrontendAPI",
    "Issuer",
    "KeyRequest",
    "SigningKey",
    "WebhookSigner",
]

logger = logging.getLogger("wacht_auth.testing")

#: Where a Wacht frontend API serves its signing keys.
JWKS_PATH = "/.well-known/jwks.json"
#: Algorithms :meth:`SigningKey.generate` can make keys for (never HS* or ``none``).
SIGNING_ALGORITHMS: tuple[str, ...] = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
#: Upper bound of :meth:`Issuer.delay`, so a forgotten delay cannot hang a test run.
MAX_DELAY = 30.0

_EC_CURVES: dict[str, tuple[ec.EllipticCurve, str, int]] = {
    "ES256": (ec.SECP256R1(), "P-256", 32),
    "ES384": (ec.SECP384R1(), "P-384", 48),
    "ES512": (ec.SECP521R1(), "P-521", 66),
}
_RSA_BITS = 2048
_MAX_RECORDED = 1000
_PyJWT_ALGORITHMS = get_default_algorithms()

#: The private key types a :class:`SigningKey` wraps.
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int, size: int | None = None) -> bytes:
    return value.to_bytes(
        size if size is not None else max(1, (value.bit_length() + 7) // 8), "big"
    )


def _json_default(value: object) -> Any:
    # PyJWT accepts datetimes for the time claims; so do we.
    if isinstance(value, _dt.datetime):
        return int(value.timestamp())
    raise TypeError(f"claim value {value!r} is not JSON serializable")


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_json_default).encode("utf-8")


class SigningKey:
    """A private signing key with the public JWK a Wacht deployment would publish.

    Make one with :meth:`generate`; wrap an existing ``cryptography`` private key with the
    constructor. RSA keys are 2048 bits; EC keys use the curve the algorithm names; ``EdDSA``
    keys are Ed25519.

    Attributes:
        alg: the JWS algorithm the key signs with (``"ES256"``, ``"RS256"`` …).
        kid: the key id published in the JWK (and put in token headers when asked).
        private_key: the ``cryptography`` private key object.
    """

    def __init__(self, private_key: PrivateKey, alg: str, kid: str | None = None) -> None:
        if alg not in SIGNING_ALGORITHMS:
            raise ValueError(
                f"unsupported algorithm {alg!r}; choose from {', '.join(SIGNING_ALGORITHMS)}"
            )
        if alg in _EC_CURVES:
            curve = _EC_CURVES[alg][0]
            if not isinstance(private_key, ec.EllipticCurvePrivateKey) or (
                private_key.curve.name != curve.name
            ):
                raise ValueError(f"{alg} needs an EC private key on {curve.name}")
        elif alg == "EdDSA":
            if not isinstance(private_key, ed25519.Ed25519PrivateKey):
                raise ValueError("EdDSA needs an Ed25519 private key")
        elif not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError(f"{alg} needs an RSA private key")
        self.private_key: PrivateKey = private_key
        self.alg: str = alg
        self.kid: str = kid if kid is not None else self.thumbprint()

    @classmethod
    def generate(cls, alg: str = "ES256", kid: str | None = None) -> SigningKey:
        """Generate a fresh key pair for ``alg``.

        ``kid`` defaults to the key's RFC 7638 thumbprint, so it is unique and stable.
        """
        private_key: PrivateKey
        if alg in _EC_CURVES:
            private_key = ec.generate_private_key(_EC_CURVES[alg][0])
        elif alg == "EdDSA":
            private_key = ed25519.Ed25519PrivateKey.generate()
        elif alg in SIGNING_ALGORITHMS:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        else:
            raise ValueError(
                f"unsupported algorithm {alg!r}; choose from {', '.join(SIGNING_ALGORITHMS)}"
            )
        return cls(private_key, alg, kid)

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"

    def _jwk_members(self) -> dict[str, str]:
        """The RFC 7638 required members of the public key."""
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            _, crv, size = _EC_CURVES[self.alg]
            numbers = public.public_numbers()
            return {
                "crv": crv,
                "kty": "EC",
                "x": _b64url(_int_bytes(numbers.x, size)),
                "y": _b64url(_int_bytes(numbers.y, size)),
            }
        if isinstance(public, rsa.RSAPublicKey):
            rsa_numbers = public.public_numbers()
            return {
                "e": _b64url(_int_bytes(rsa_numbers.e)),
                "kty": "RSA",
                "n": _b64url(_int_bytes(rsa_numbers.n)),
            }
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}

    def thumbprint(self) -> str:
        """The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key."""
        digest = hashlib.sha256(
            json.dumps(self._jwk_members(), sort_keys=True, separators=(",", ":")).encode()
        ).digest()
        return _b64url(digest)

    def public_jwk(self) -> dict[str, Any]:
        """The public key as Wacht publishes it: key members plus ``kid``, ``use``, ``alg``."""
        jwk: dict[str, Any] = dict(self._jwk_members())
        jwk.update(kid=self.kid, use="sig", alg=self.alg)
        return jwk

    def public_pem(self) -> str:
        """The public key as a PEM ``SubjectPublicKeyInfo`` (what ``Config.public_key`` takes)."""
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        include_kid: bool = False,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``claims`` into a compact JWS.

        The header is ``{"alg": <self.alg>, "typ": "JWT"}`` plus ``kid`` when ``include_kid``
        (Wacht's own tokens usually carry none), then ``headers`` merged in: a value of
        ``None`` deletes a member, so ``headers={"typ": None}`` drops ``typ``. The signature is
        always made with this key's own algorithm (through PyJWT's algorithm implementations),
        even when ``headers`` names another ``alg``: that is how tests build lying headers.
        ``datetime`` claim values are written as POSIX seconds.
        """
        header: dict[str, Any] = {"alg": self.alg, "typ": "JWT"}
        if include_kid:
            header["kid"] = self.kid
        for name, value in (headers or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
        signing_input = _b64url(_json(header)) + "." + _b64url(_json(claims))
        signature = _PyJWT_ALGORITHMS[self.alg].sign(
            signing_input.encode("ascii"), self.private_key
        )
        return signing_input + "." + _b64url(signature)


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


@dataclass(frozen=True)
class _Answer:
    """A canned answer of the key server."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class _Handler(BaseHTTPRequestHandler):
    """Routes every request to the owning :class:`Issuer`."""

    server: _Server
    server_version = "wacht-auth-testing"
    sys_version = ""
    # HTTP/1.0: one request per connection, so down() really cuts every client off.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.server.issuer._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # Tests open many connections at once (cold-cache stampedes): a deep accept queue keeps
    # the kernel from dropping SYNs, which would add one-second client retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], issuer: Issuer) -> None:
        self.issuer = issuer
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer (timeouts, body caps) are part of the tests: quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        logger.warning("key server error for %s", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class Issuer:
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
        self.include_kid: bool = include_kid
        self.host: str = host
        self.clock: Callable[[], float] = clock
        self._port = port
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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._started = False

    # -- server lifecycle -------------------------------------------------------------------

    def start(self) -> Issuer:
        """Start serving the JWKS in a daemon thread; returns ``self``. Idempotent."""
        if not self._started:
            self._started = True
            self._serve()
        return self

    def stop(self) -> None:
        """Stop the server and release the port. Idempotent."""
        self._started = False
        self._close()

    def __enter__(self) -> Issuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def down(self) -> None:
        """Close the listening socket: connections are refused until :meth:`up`."""
        if not self._started:
            raise RuntimeError("the issuer is not started")
        self._close()

    def up(self) -> None:
        """Listen again, on the same port, after :meth:`down`. No-op when already up."""
        if not self._started:
            raise RuntimeError("the issuer is not started")
        if self._server is None:
            self._serve()

    @property
    def is_up(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    def _serve(self) -> None:
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = server_class((self.host, self._port), self)
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {self.host}:{self._port}: {exc}") from exc
        self._port = server.server_address[1]
        self._wake.clear()
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how fast stop() returns
            name=f"wacht-issuer-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()

    def _close(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._wake.set()  # cut delayed answers short
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (known once started, or when given)."""
        if not self._port:
            raise RuntimeError(
                "the issuer has no port yet: start it first (issuer.start() or "
                "`with Issuer() as issuer:`)"
            )
        return self._port

    @property
    def url(self) -> str:
        """The frontend API origin, ``http://127.0.0.1:<port>``; also every token's ``iss``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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

    def expired_token(self, **kwargs: Any) -> str:
        """A token that expired an hour ago, beyond any allowed leeway (300 s at most).

        Takes the arguments of :meth:`token`; ``iat``/``exp`` given there win.
        """
        now = int(self.clock())
        kwargs.setdefault("iat", now - 7200)
        kwargs.setdefault("exp", now - 3600)
        return self.token(**kwargs)

    def forged_token(self, **kwargs: Any) -> str:
        """A well-formed token signed by a key that is *not* in the JWKS.

        The forging key has the signer's algorithm and ``kid``, so a verifier that picks keys by
        ``kid`` finds the real key and must reject the signature. Takes the arguments of
        :meth:`token` (``key`` excepted).
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
        return self.token(key=forger, **kwargs)

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
        for name, value in (headers or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value
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
        if urlsplit(handler.path).path != JWKS_PATH:
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
        if delay > 0:
            self._wake.wait(delay)
        _send(handler, answer)

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"Issuer({where}, keys={[k.alg for k in self.keys]})"


def _send(handler: _Handler, answer: _Answer) -> None:
    handler.send_response(answer.status)
    handler.send_header("Content-Type", answer.content_type)
    handler.send_header("Content-Length", str(len(answer.body)))
    for name, value in answer.headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(answer.body)


def _renamed_ids(
    organization_id: str | None,
    workspace_id: str | None,
    organization: str | None,
    workspace: str | None,
) -> tuple[str | None, str | None]:
    """Map the deprecated ``organization=``/``workspace=`` onto ``organization_id=``/
    ``workspace_id=`` (the names :class:`~wacht_auth.Session` uses), with a DeprecationWarning."""
    ids = [organization_id, workspace_id]
    olds = (("organization", organization), ("workspace", workspace))
    for index, (old, value) in enumerate(olds):
        if value is None:
            continue
        new = f"{old}_id"
        if ids[index] is not None:
            raise TypeError(f"pass {new}= only (the {old}= keyword is its deprecated name)")
        warnings.warn(
            f"the {old}= keyword of the wacht_auth.testing minting methods is deprecated; "
            f"use {new}= (the name Session.{new} has)",
            DeprecationWarning,
            stacklevel=_outside_this_module(),
        )
        ids[index] = value
    return ids[0], ids[1]


def _outside_this_module() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this module."""
    level, frame = 1, sys._getframe(1)
    while frame.f_code.co_filename == __file__ and frame.f_back is not None:
        level, frame = level + 1, frame.f_back
    return level


def _merge(payload: dict[str, Any], claims: Mapping[str, Any] | None) -> None:
    """Merge ``claims`` into ``payload``; a value of ``None`` deletes that claim."""
    for name, value in (claims or {}).items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value


def _permissions(
    value: Iterable[str] | Mapping[str, Iterable[str] | None] | None,
) -> dict[str, list[str]]:
    """Wacht's ``permissions`` claim: a list is organization permissions."""
    if value is None:
        return {"organization": [], "workspace": []}
    if isinstance(value, str):
        return {"organization": [value], "workspace": []}
    if isinstance(value, Mapping):
        return {
            "organization": list(value.get("organization") or ()),
            "workspace": list(value.get("workspace") or ()),
        }
    return {"organization": list(value), "workspace": []}


# -- the fake frontend API -----------------------------------------------------------------------

#: Where a Wacht frontend API exchanges a transport token for a session token.
SESSION_TOKEN_PATH = "/session/token"
#: The fake accounts portal's sign-in page.
SIGN_IN_PATH = "/sign-in"


@dataclass(frozen=True)
class ExchangeRequest:
    """A request :class:`FrontendAPI` received at :data:`SESSION_TOKEN_PATH`.

    Attributes:
        path: the request target as sent, query string included.
        headers: the request headers, names lowercased.
        dev: whether it carried ``?__dev_session__=`` (a development-session exchange).
    """

    path: str
    headers: Mapping[str, str]
    dev: bool


@dataclass(frozen=True)
class _SignedIn:
    user_id: str
    session_id: str
    claims: Mapping[str, Any]
    dev: bool


class FrontendAPI(Issuer):
    """An :class:`Issuer` that also plays the rest of a Wacht frontend API for pages tests.

    Besides :data:`JWKS_PATH` (and every key-server control of :class:`Issuer`), it serves:

    * ``GET /session/token``: exchanges a transport token it minted (:meth:`sign_in`,
      :meth:`transport_token` or :meth:`dev_session`), sent as ``Cookie: __session=…`` or as
      ``?__dev_session__=…`` (no cookie), for ``{"data": {"token": <a fresh session token of
      this issuer>, "expires": <unix ms>}}``; a development exchange also answers a renewed
      session in ``x-development-session``, and :meth:`set_exchange_cookies` adds
      ``Set-Cookie`` headers. An unknown or ended session gets 401.
    * ``GET /sign-in?redirect_uri=…``: the accounts portal. It signs ``sign_in_user`` in,
      sets ``__session`` (host-only, ``Path=/; HttpOnly; Secure; SameSite=Lax``) and answers
      302 to ``redirect_uri``; with ``dev_sign_in`` it appends ``__dev_session__=<token>`` to
      ``redirect_uri`` instead of setting a cookie, as development instances do. It redirects
      to loopback URLs only (400 otherwise).

    Switches (next request on): :meth:`fail_exchange` (any status, e.g. 500, 503, 429 with
    ``Retry-After``), :meth:`hang_exchange` (answer after a delay, cut short by
    :meth:`stop`/:meth:`down`), :meth:`end_session`/:meth:`end_all_sessions` (401, the
    session is over), :meth:`restore_exchange`. Counters: :attr:`exchange_count`,
    :attr:`exchange_requests`, :attr:`sign_in_count`.

    Args:
        session_lifetime: seconds an exchanged session token lives (Wacht: about 35).
        sign_in_user: the user :meth:`sign_in` and the sign-in page sign in by default.
        dev_sign_in: whether the sign-in page hands out a development session in the URL.
        **kwargs: the arguments of :class:`Issuer`.
    """

    def __init__(
        self,
        *,
        session_lifetime: float = 35,
        sign_in_user: str = "user_1",
        dev_sign_in: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.session_lifetime: float = session_lifetime
        self.sign_in_user: str = sign_in_user
        self.dev_sign_in: bool = dev_sign_in
        self._sessions: dict[str, _SignedIn] = {}
        self._exchange_count = 0
        self._exchange_requests: list[ExchangeRequest] = []
        self._sign_in_count = 0
        self._exchange_failure: _Answer | None = None
        self._exchange_delay = 0.0
        self._exchange_cookies: tuple[str, ...] = ()
        self._serial = 0

    # -- sessions ---------------------------------------------------------------------------

    def sign_in(
        self,
        user_id: str | None = None,
        *,
        session_id: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``user_id`` (default :attr:`sign_in_user`) in: the ``__session`` transport
        token a browser would now hold. ``claims`` go into the exchanged session tokens."""
        return self._register(user_id, session_id, claims, dev=False)

    def dev_session(
        self,
        user_id: str | None = None,
        *,
        session_id: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``user_id`` in on a development instance: the ``__dev_session__`` value."""
        return self._register(user_id, session_id, claims, dev=True)

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
        """:meth:`Issuer.transport_token`, also exchangeable here (for :attr:`sign_in_user`)."""
        token = super().transport_token(
            session_id=session_id,
            lifetime=lifetime,
            claims=claims,
            alg=alg,
            key=key,
            include_kid=include_kid,
        )
        with self._lock:
            self._sessions[token] = _SignedIn(self.sign_in_user, session_id, {}, dev=False)
        return token

    def end_session(self, transport: str) -> None:
        """End the session of ``transport``: its exchanges answer 401 from now on."""
        with self._lock:
            self._sessions.pop(transport, None)

    def end_all_sessions(self) -> None:
        """End every session (a sign-out everywhere): every exchange answers 401."""
        with self._lock:
            self._sessions.clear()

    def _register(
        self,
        user_id: str | None,
        session_id: str | None,
        claims: Mapping[str, Any] | None,
        *,
        dev: bool,
    ) -> str:
        with self._lock:
            self._serial += 1
            serial = self._serial
        session = session_id or f"sess_{serial}"
        if dev:
            token = f"dvb_{secrets.token_urlsafe(24)}"  # opaque, as development sessions are
        else:
            token = Issuer.transport_token(self, session_id=session)
        with self._lock:
            self._sessions[token] = _SignedIn(
                user_id or self.sign_in_user, session, dict(claims or {}), dev
            )
        return token

    # -- switches and counters ----------------------------------------------------------------

    def fail_exchange(
        self,
        status: int | None = 503,
        *,
        retry_after: int | str | None = None,
        body: bytes = b'{"errors":[{"message":"unavailable","code":"unavailable"}]}',
    ) -> None:
        """Answer every exchange with ``status`` (and ``Retry-After``); ``None`` restores."""
        answer = None
        if status is not None:
            extra = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
            answer = _Answer(status, body, "application/json", extra)
        with self._lock:
            self._exchange_failure = answer

    def hang_exchange(self, seconds: float) -> None:
        """Wait ``seconds`` (at most :data:`MAX_DELAY`) before answering each exchange; 0
        restores. :meth:`stop` and :meth:`down` cut a pending wait short."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._exchange_delay = min(float(seconds), MAX_DELAY)

    def set_exchange_cookies(self, *values: str) -> None:
        """``Set-Cookie`` values every successful exchange answers with (none by default)."""
        with self._lock:
            self._exchange_cookies = tuple(values)

    def restore_exchange(self) -> None:
        """Undo :meth:`fail_exchange`, :meth:`hang_exchange` and :meth:`set_exchange_cookies`."""
        with self._lock:
            self._exchange_failure = None
            self._exchange_delay = 0.0
            self._exchange_cookies = ()

    @property
    def exchange_count(self) -> int:
        """Requests to :data:`SESSION_TOKEN_PATH` received so far, whatever the answer."""
        with self._lock:
            return self._exchange_count

    @property
    def exchange_requests(self) -> tuple[ExchangeRequest, ...]:
        """The last (up to 1,000) requests counted in :attr:`exchange_count`, oldest first."""
        with self._lock:
            return tuple(self._exchange_requests)

    @property
    def sign_in_count(self) -> int:
        """Requests to the sign-in page received so far."""
        with self._lock:
            return self._sign_in_count

    def reset_exchange_count(self) -> None:
        """Set :attr:`exchange_count` and :attr:`sign_in_count` back to 0."""
        with self._lock:
            self._exchange_count = self._sign_in_count = 0
            self._exchange_requests.clear()

    @property
    def sign_in_url(self) -> str:
        """``{url}/sign-in``: where :func:`wacht_auth.pages.sign_in_url` sends visitors of a
        loopback frontend API."""
        return self.url + SIGN_IN_PATH

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        if path == SESSION_TOKEN_PATH:
            self._exchange(handler)
        elif path == SIGN_IN_PATH:
            self._sign_in_page(handler)
        else:
            super()._handle(handler)

    def _exchange(self, handler: _Handler) -> None:
        query = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
        dev_token = query.get("__dev_session__")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._exchange_count += 1
            self._exchange_requests.append(
                ExchangeRequest(handler.path, headers, dev_token is not None)
            )
            del self._exchange_requests[:-_MAX_RECORDED]
            delay = self._exchange_delay
            failure = self._exchange_failure
            cookies = self._exchange_cookies
        if delay > 0:
            self._wake.wait(delay)
        if failure is not None:
            _send(handler, failure)
            return
        if dev_token is not None:
            transport: str | None = dev_token
        else:
            transport = _cookie_from_header(headers.get("cookie", ""), "__session")
        with self._lock:
            signed_in = self._sessions.get(transport) if transport else None
        if signed_in is None or signed_in.dev != (dev_token is not None):
            _send(
                handler,
                _Answer(
                    401,
                    b'{"errors":[{"message":"unauthorized","code":"unauthorized"}]}',
                    "application/json",
                ),
            )
            return
        token = self.token(
            signed_in.user_id,
            session_id=signed_in.session_id,
            lifetime=self.session_lifetime,
            claims=signed_in.claims,
        )
        expires = int((int(self.clock()) + self.session_lifetime) * 1000)
        extra = [("Set-Cookie", value) for value in cookies]
        if signed_in.dev:
            renewed = self.dev_session(
                signed_in.user_id, session_id=signed_in.session_id, claims=signed_in.claims
            )
            extra.append(("x-development-session", renewed))
        body = _json({"data": {"token": token, "expires": expires}})
        _send(handler, _Answer(200, body, "application/json", tuple(extra)))

    def _sign_in_page(self, handler: _Handler) -> None:
        query = dict(parse_qsl(urlsplit(handler.path).query, keep_blank_values=True))
        target = query.get("redirect_uri", "")
        with self._lock:
            self._sign_in_count += 1
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname):
            # The fake portal never redirects off this machine (no open redirect, even here).
            _send(handler, _Answer(400, b"redirect_uri must be a loopback URL", "text/plain"))
            return
        if self.dev_sign_in:
            token = self.dev_session()
            joiner = "&" if parts.query else ""
            location = parts._replace(
                query=parts.query + joiner + urlencode({"__dev_session__": token})
            ).geturl()
            _send(handler, _Answer(302, b"", "text/plain", (("Location", location),)))
            return
        token = self.sign_in()
        cookie = f"__session={token}; Path=/; HttpOnly; Secure; SameSite=Lax"
        _send(
            handler,
            _Answer(302, b"", "text/plain", (("Location", target), ("Set-Cookie", cookie))),
        )

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"FrontendAPI({where}, keys={[k.alg for k in self.keys]})"


def _cookie_from_header(header: str, name: str) -> str | None:
    """The first cookie ``name`` of a ``Cookie`` header (RFC 6265 §4.2), percent-decoded."""
    for chunk in header.split(";"):
        key, _, value = chunk.partition("=")
        if key.strip() == name:
            return unquote(value.strip().strip('"'))
    return None


# -- pytest plugin -------------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional at runtime
    pass
else:

    def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
        """The ``wacht`` markers' arguments, module first so the closest one wins."""
        kwargs: dict[str, Any] = {}
        config: dict[str, Any] = {}
        for marker in reversed(list(request.node.iter_markers("wacht"))):
            kwargs.update(marker.kwargs)
            config.update(marker.kwargs.get("config") or {})
        kwargs["config"] = config
        return kwargs

    def pytest_configure(config: pytest.Config) -> None:
        """Register the ``wacht`` marker, so ``--strict-markers`` accepts it."""
        config.addinivalue_line(
            "markers",
            "wacht(**kwargs): arguments for the wacht_issuer fixture's Issuer (algorithms=, "
            "include_kid=, clock=) and config={...} overrides for wacht_config",
        )

    from ._kit_webhooks import wacht_webhooks  # noqa: F401  # a fixture of this plugin

    @pytest.fixture
    def wacht_issuer(request: pytest.FixtureRequest) -> Iterator[Issuer]:
        """A started :class:`Issuer` (ES256 unless a marker says otherwise), stopped after.

        ``@pytest.mark.wacht(algorithms=("RS256",), include_kid=True)`` on a test, class or
        module passes those arguments to :class:`Issuer`; markers at several levels merge, the
        closest winning.
        """
        kwargs = _marker_kwargs(request)
        kwargs.pop("config", None)
        with Issuer(**kwargs) as issuer:
            yield issuer

    @pytest.fixture
    def wacht_issuer_rs256() -> Iterator[Issuer]:
        """A started RS256 :class:`Issuer`, stopped after the test."""
        with Issuer(algorithms=("RS256",)) as issuer:
            yield issuer

    @pytest.fixture
    def wacht_config(request: pytest.FixtureRequest, wacht_issuer: Issuer) -> Config:
        """``wacht_issuer.config()``: a :class:`~wacht_auth.Config` trusting ``wacht_issuer``.

        ``@pytest.mark.wacht(config={"jwks_cooldown": 0})`` passes overrides to it.
        """
        return wacht_issuer.config(**_marker_kwargs(request)["config"])

    @pytest.fixture
    def wacht_token(wacht_issuer: Issuer) -> str:
        """A valid token from ``wacht_issuer`` for ``user_1`` / ``sess_1``."""
        return wacht_issuer.token()
