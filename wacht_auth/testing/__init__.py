"""Test helpers: an in-process Wacht issuer, token minting and pytest fixtures.

:class:`Issuer` plays the part of a Wacht deployment's frontend API for tests and local
development: it makes signing keys, mints Wacht-shaped session tokens and serves its JWK Set at
``GET /.well-known/jwks.json`` from a real HTTP server on a loopback port, so the verifier
under test fetches keys exactly as it would in production. It can also misbehave on demand
(errors, garbage, redirects, slow answers, refused connections, key rotation) for the tests of
the key cache. :class:`FrontendAPI` extends it into a fake frontend API for server-rendered
pages: the session exchange at ``GET /session/token`` and a sign-in page that sets
``__session`` and redirects back.

The package is registered as a pytest plugin (``pytest11`` entry point ``wacht_auth``): when
pytest is installed, the fixtures ``wacht_issuer``, ``wacht_issuer_rs256``, ``wacht_config``
and ``wacht_token`` are available in every test without an import. Importing it needs only the
runtime dependencies (``cryptography`` and ``PyJWT``); see ``docs/testing.md``.

Where things are: ``_signing`` (signing keys, compact JWS, claim shapes), ``_server`` (the
loopback HTTP server every fake runs on), ``_issuer`` (:class:`Issuer`), ``_frontend``
(:class:`FrontendAPI`), ``_gateway`` (:class:`FakeGateway`), ``_backend``
(:class:`FakeBackendAPI`), ``_oauth`` (:class:`OAuthServer`), ``_webhooks``
(:class:`WebhookSigner`), ``_plugin`` (the pytest marker and fixtures).
"""

from __future__ import annotations

from ._backend import BackendAnswer, BackendRequest, FakeBackendAPI
from ._frontend import SESSION_TOKEN_PATH, SIGN_IN_PATH, ExchangeRequest, FrontendAPI
from ._gateway import FakeGateway
from ._issuer import JWKS_PATH, Issuer, KeyRequest
from ._oauth import OAuthServer, OAuthSigningKey
from ._server import MAX_DELAY
from ._signing import SIGNING_ALGORITHMS, SigningKey
from ._webhooks import Delivery, WebhookSigner

__all__ = [
    "JWKS_PATH",
    "MAX_DELAY",
    "SESSION_TOKEN_PATH",
    "SIGNING_ALGORITHMS",
    "SIGN_IN_PATH",
    "BackendAnswer",
    "BackendRequest",
    "Delivery",
    "ExchangeRequest",
    "FakeBackendAPI",
    "FakeGateway",
    "FrontendAPI",
    "Issuer",
    "KeyRequest",
    "OAuthServer",
    "OAuthSigningKey",
    "SigningKey",
    "WebhookSigner",
]

try:
    import pytest  # noqa: F401  (the plugin below needs it; pytest is optional at runtime)
except ImportError:  # pragma: no cover - pytest is optional at runtime
    pass
else:
    # pytest finds a plugin's hooks and fixtures among the entry-point module's names.
    from ._backend import wacht_backend as wacht_backend
    from ._plugin import pytest_configure as pytest_configure
    from ._plugin import wacht_config as wacht_config
    from ._plugin import wacht_issuer as wacht_issuer
    from ._plugin import wacht_issuer_rs256 as wacht_issuer_rs256
    from ._plugin import wacht_token as wacht_token
    from ._webhooks import wacht_webhooks as wacht_webhooks
