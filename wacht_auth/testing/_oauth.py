"""A fake Wacht OAuth server for tests (``wacht_auth.testing.OAuthServer``).

It mints what Wacht's OAuth server mints in the JWT format (``docs/architecture.md``): RS256
access tokens whose header names the key (``kid`` ``oas-<app id>-<n>``) and whose claims are
``iss``, ``sub``, ``aud`` (the granted resource, else the client id), ``exp``, ``iat``,
``jti``, ``client_id``, ``scope``, ``sid`` and ``token_use: "access_token"``, and id tokens
signed with the same keys, without ``token_use``. Its JWK Set (every active and retired key,
newest first, no ``Cache-Control``, as Wacht serves it) is at
``GET /.well-known/jwks.json`` on a loopback port, so the verifier under test fetches its
keys exactly as it would in production.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..oauth import OAuthIssuer
from ._server import _Answer, _Handler, _Loopback, _send
from ._signing import _b64url, _int_bytes, _json, _merge

__all__ = ["OAuthServer", "OAuthSigningKey"]

_JWKS_PATH = "/.well-known/jwks.json"
_DISCOVERY_PATH = "/.well-known/openid-configuration"


class OAuthSigningKey:
    """An RSA-2048 signing key of the fake OAuth server.

    Attributes:
        kid: the key id, ``oas-<app id>-<n>`` as Wacht names them.
        private_key: the ``cryptography`` private key.
    """

    def __init__(self, kid: str, private_key: rsa.RSAPrivateKey | None = None) -> None:
        self.kid = kid
        self.private_key = private_key or rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )

    def __repr__(self) -> str:
        return f"OAuthSigningKey(kid={self.kid!r})"

    def public_jwk(self) -> dict[str, Any]:
        """The public key as the JWK Set lists it."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url(_int_bytes(numbers.n)),
            "e": _b64url(_int_bytes(numbers.e)),
        }

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        """``claims`` as an RS256 JWS; ``headers`` are merged into the header (None deletes
        a member, so ``headers={"kid": None}`` drops the kid)."""
        header: dict[str, Any] = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        _merge(header, headers)
        signing_input = _b64url(_json(header)) + "." + _b64url(_json(claims))
        signature = self.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return signing_input + "." + _b64url(signature)


class OAuthServer(_Loopback):
    """A Wacht OAuth server on ``127.0.0.1``: RS256 keys, token minting, its JWK Set.

    ::

        with OAuthServer() as oauth:
            verifier = OAuthVerifier(oauth.issuer_settings())
            token = oauth.access_token("42", scopes=["invoices:read"],
                                       resource="urn:wacht:organization:7")

    Args:
        app_id: the OAuth app's id, used in key ids (``oas-<app id>-<n>``).
        clock: POSIX seconds for ``iat``/``exp``; shared with :meth:`issuer_settings`.

    Its :attr:`url` (the OAuth server's origin) is the ``iss`` of its tokens.
    """

    _kind = "OAuth server"

    def __init__(self, *, app_id: str = "1", clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.app_id = app_id
        self.clock = clock
        self._lock = threading.Lock()
        self._serial = 0
        self._keys: list[OAuthSigningKey] = []  # newest first, as Wacht lists them
        self._retired: set[str] = set()
        self._fetches = 0
        self._failure: int | None = None
        self.rotate()

    # -- addresses (start, stop, url, port, host: see _Loopback) -----------------------------

    @property
    def jwks_url(self) -> str:
        """Where its JWK Set is served."""
        return self.url + _JWKS_PATH

    def issuer_settings(self, **options: Any) -> OAuthIssuer:
        """:class:`~wacht_auth.oauth.OAuthIssuer` settings for this server (its clock);
        ``options`` (``audiences``, ``client_ids`` …) are passed on."""
        options.setdefault("clock", self.clock)
        return OAuthIssuer(issuer=self.url, **options)

    # -- keys -------------------------------------------------------------------------------

    @property
    def signing_key(self) -> OAuthSigningKey:
        """The key that signs now (the newest active one)."""
        with self._lock:
            return next(k for k in self._keys if k.kid not in self._retired)

    @property
    def keys(self) -> tuple[OAuthSigningKey, ...]:
        """Every published key, newest first (retired ones included)."""
        with self._lock:
            return tuple(self._keys)

    def rotate(self) -> OAuthSigningKey:
        """Make a new key that signs from now on; the previous ones are retired but stay
        in the JWK Set (tokens they signed keep verifying until they expire)."""
        with self._lock:
            self._serial += 1
            key = OAuthSigningKey(f"oas-{self.app_id}-{self._serial}")
            self._retired.update(k.kid for k in self._keys)
            self._keys.insert(0, key)
        return key

    def remove_key(self, kid: str) -> None:
        """Drop a key from the JWK Set (tokens it signed stop verifying)."""
        with self._lock:
            self._keys = [k for k in self._keys if k.kid != kid]

    def jwks(self) -> dict[str, Any]:
        """The JWK Set as served: every key, newest first."""
        return {"keys": [k.public_jwk() for k in self.keys]}

    # -- minting ----------------------------------------------------------------------------

    def access_token(
        self,
        user_id: str = "1",
        *,
        client_id: str = "oc_test",
        scopes: Iterable[str] = (),
        resource: str | None = None,
        session_id: str | None = None,
        expires_in: float = 300,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        key: OAuthSigningKey | None = None,
    ) -> str:
        """A JWT access token ``user_id`` granted to ``client_id``.

        ``resource`` is the granted resource (``aud``; defaults to the client id, as Wacht
        does without one). ``claims`` are merged last (None deletes a claim), ``headers``
        into the header; ``key`` signs instead of the current key.
        """
        now = int(self.clock())
        payload: dict[str, Any] = {
            "iss": self.url,
            "sub": user_id,
            "aud": resource or client_id,
            "exp": now + int(expires_in),
            "iat": now,
            "jti": secrets.token_hex(8),
            "client_id": client_id,
            "scope": " ".join(scopes),
            "token_use": "access_token",
        }
        if session_id is not None:
            payload["sid"] = session_id
        return self.sign(payload, claims=claims, headers=headers, key=key)

    def id_token(
        self,
        user_id: str = "1",
        *,
        client_id: str = "oc_test",
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """An OpenID Connect id token: same keys, ``aud`` the client id, no ``token_use``."""
        now = int(self.clock())
        payload = {
            "iss": self.url,
            "sub": user_id,
            "aud": client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
        }
        return self.sign(payload, claims=claims)

    def sign(
        self,
        payload: Mapping[str, Any],
        *,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        key: OAuthSigningKey | None = None,
    ) -> str:
        """Sign any ``payload`` (then ``claims`` merged, None deleting) with ``key`` or the
        current signing key."""
        merged = dict(payload)
        _merge(merged, claims)
        return (key or self.signing_key).sign(merged, headers)

    # -- the key server ---------------------------------------------------------------------

    @property
    def fetch_count(self) -> int:
        """How many times the JWK Set was fetched."""
        with self._lock:
            return self._fetches

    def fail(self, status: int | None = 503) -> None:
        """Answer key fetches with HTTP ``status`` (None: serve the keys again)."""
        with self._lock:
            self._failure = status

    def _handle(self, handler: _Handler) -> None:
        _send(handler, self._answer(handler.path))

    def _answer(self, path: str) -> _Answer:
        if path == _DISCOVERY_PATH:
            return _Answer(200, _json({"issuer": self.url, "jwks_uri": self.jwks_url}))
        if path != _JWKS_PATH:
            return _Answer(404, b'{"error":"not_found"}')
        with self._lock:
            self._fetches += 1
            failure = self._failure
        if failure is not None:
            return _Answer(failure, b'{"error":"unavailable"}')
        return _Answer(200, _json(self.jwks()))

    def __repr__(self) -> str:
        return f"OAuthServer(app_id={self.app_id!r}, keys={len(self._keys)})"
