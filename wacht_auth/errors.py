"""The exception tree of wacht_auth: one base class, stable codes, HTTP answers.

Every error a caller can see is a :class:`WachtAuthError` with a stable snake_case ``code``
(never renamed once released, see ``docs/errors.md``), the HTTP ``status`` an adapter answers
with, and a human ``message`` that may change between releases. Adapters turn an error into a
response with :meth:`WachtAuthError.response_headers` and :meth:`WachtAuthError.to_dict`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "AlgorithmNotAllowedError",
    "AudienceInvalidError",
    "ClaimsInvalidError",
    "ConfigurationError",
    "CredentialInvalidError",
    "CsrfFailedError",
    "ForbiddenError",
    "GatewayUnavailableError",
    "IssuerInvalidError",
    "JWKSUnavailableError",
    "KeyNotFoundError",
    "OrganizationRequiredError",
    "PartyNotAuthorizedError",
    "PermissionDeniedError",
    "RateLimitedError",
    "SessionExchangeUnavailableError",
    "SignatureInvalidError",
    "TokenExpiredError",
    "TokenInvalidError",
    "TokenMalformedError",
    "TokenMissingError",
    "TokenNotYetValidError",
    "TokenTooLargeError",
    "TokenUseInvalidError",
    "WachtAuthError",
    "WebhookError",
    "WebhookHeadersMalformedError",
    "WebhookHeadersMissingError",
    "WebhookMethodNotAllowedError",
    "WebhookPayloadInvalidError",
    "WebhookPayloadTooLargeError",
    "WebhookReplayedError",
    "WebhookSignatureInvalidError",
    "WebhookTimestampInFutureError",
    "WebhookTimestampTooOldError",
    "WorkspaceRequiredError",
]

#: The realm named in every ``WWW-Authenticate`` challenge (RFC 6750 §3).
REALM = "wacht"


def _quote(value: str) -> str:
    """Return ``value`` as an RFC 7230 quoted-string (backslash-escape ``"`` and ``\\``)."""
    cleaned = "".join(ch if 0x20 <= ord(ch) < 0x7F else " " for ch in value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shown(value: object, limit: int = 100) -> str:
    """``value`` quoted for a message: control characters dropped, cut to ``limit``.

    For public values that may come from a token (its ``iss``): a message is returned to the
    caller and logged, so it must not carry line breaks or unbounded text.
    """
    text = value if isinstance(value, str) else repr(value)
    cleaned = "".join(ch for ch in text if ch.isprintable())
    return repr(cleaned if len(cleaned) <= limit else cleaned[:limit] + "...")


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment: where a secret could hide in a URL."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class WachtAuthError(Exception):
    """Base class of every error wacht_auth raises.

    Attributes:
        code: stable machine-readable code (docs/errors.md).
        status: HTTP status an adapter answers with.
        message: human-readable explanation; may change between releases.
    """

    code: ClassVar[str] = "wacht_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str | None = None) -> None:
        self.message: str = message or self.default_message()
        super().__init__(self.message)

    @classmethod
    def default_message(cls) -> str:
        """The message used when none is given."""
        return cls.__doc__.strip().splitlines()[0] if cls.__doc__ else cls.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON body in the Backend API's documented error envelope."""
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}

    def to_json(self) -> bytes:
        """:meth:`to_dict` encoded as compact UTF-8 JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """Headers an HTTP response for this error carries (besides ``Content-Type``)."""
        return {}


class ConfigurationError(WachtAuthError, ValueError):
    """wacht_auth is not configured correctly."""

    code = "configuration_error"
    status = 500


class TokenInvalidError(WachtAuthError):
    """The request is not authenticated (HTTP 401)."""

    code = "token_invalid"
    status = 401

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """``WWW-Authenticate: Bearer`` as RFC 6750 §3 describes.

        ``error="invalid_token"`` and an ``error_description`` are sent only when a token was
        presented; a request without credentials gets the bare challenge (RFC 6750 §3.1).
        """
        if not token_presented:
            return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
        return {
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
            f"error_description={_quote(self.message)}"
        }


class TokenMissingError(TokenInvalidError):
    """No session token was sent (no bearer header or session cookie)."""

    code = "token_missing"

    def response_headers(self, *, token_presented: bool = False) -> dict[str, str]:
        """The bare challenge: no token was presented (RFC 6750 §3.1)."""
        return super().response_headers(token_presented=False)


class TokenMalformedError(TokenInvalidError):
    """The token is not a well-formed compact JWS."""

    code = "token_malformed"


class TokenTooLargeError(TokenInvalidError):
    """The token is larger than the configured size cap."""

    code = "token_too_large"


class AlgorithmNotAllowedError(TokenInvalidError):
    """The token's signing algorithm is not allowed."""

    code = "algorithm_not_allowed"


class KeyNotFoundError(TokenInvalidError):
    """No trusted signing key fits the token."""

    code = "key_not_found"


class SignatureInvalidError(TokenInvalidError):
    """The token's signature does not verify."""

    code = "signature_invalid"


class TokenExpiredError(TokenInvalidError):
    """The token has expired."""

    code = "token_expired"


class TokenNotYetValidError(TokenInvalidError):
    """The token is not valid yet (nbf or iat in the future)."""

    code = "token_not_yet_valid"


class IssuerInvalidError(TokenInvalidError):
    """The token was not issued by the configured Wacht deployment."""

    code = "issuer_invalid"


class AudienceInvalidError(TokenInvalidError):
    """The token is not meant for the configured audience."""

    code = "audience_invalid"


class PartyNotAuthorizedError(TokenInvalidError):
    """The token's authorized party (azp) is not one of the configured ones."""

    code = "party_not_authorized"


class ClaimsInvalidError(TokenInvalidError):
    """The token's claims are missing or of the wrong type."""

    code = "claims_invalid"


class TokenUseInvalidError(TokenInvalidError):
    """The token is not an OAuth access token (``token_use`` is not ``"access_token"``): an
    OpenID Connect id_token sent as a bearer, for one."""

    code = "token_use_invalid"


class ForbiddenError(WachtAuthError):
    """The caller is authenticated but not allowed (HTTP 403)."""

    code = "forbidden"
    status = 403

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """``WWW-Authenticate`` with ``error="insufficient_scope"`` (RFC 6750 §3.1)."""
        return {
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", '
            f"error_description={_quote(self.message)}"
        }


class PermissionDeniedError(ForbiddenError):
    """The caller lacks a required permission."""

    code = "permission_denied"


class OrganizationRequiredError(ForbiddenError):
    """An active organization (or a specific one) is required."""

    code = "organization_required"


class WorkspaceRequiredError(ForbiddenError):
    """An active workspace (or a specific one) is required."""

    code = "workspace_required"


class CsrfFailedError(ForbiddenError):
    """A cookie-borne token was sent on an unsafe method from a foreign origin."""

    code = "csrf_failed"

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """No challenge: the credentials are fine, the request's origin is not."""
        return {}


class JWKSUnavailableError(WachtAuthError):
    """The signing keys cannot be fetched and none are cached."""

    code = "jwks_unavailable"
    status = 503

    def __init__(
        self, message: str | None = None, *, retry_after: int = 30, url: str | None = None
    ) -> None:
        # The JWKS URL says which deployment's key server failed; it is public, but user info
        # or a query string (where a secret could hide) never reaches the message.
        self.url: str | None = public_url(url) if url else None
        if self.url is not None:
            message = f"{message or self.default_message()} (JWKS URL: {self.url})"
        super().__init__(message)
        self.retry_after: int = max(1, int(retry_after))

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """``Retry-After``: a 503 must never look like a sign-out (docs/architecture.md,
        Error table)."""
        return {"Retry-After": str(self.retry_after)}


class CredentialInvalidError(TokenInvalidError):
    """The bearer is neither a session token nor a credential Wacht's gateway knows."""

    code = "credential_invalid"


class RateLimitedError(WachtAuthError):
    """The rate limit of this API key or OAuth token is reached (Wacht's gateway)."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after: int = max(1, int(retry_after))

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """``Retry-After`` (RFC 6585 §4): when the client may try again."""
        return {"Retry-After": str(self.retry_after)}


class GatewayUnavailableError(WachtAuthError):
    """Wacht's gateway cannot be reached or failed; the credential was not judged."""

    code = "gateway_unavailable"
    status = 503

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after: int = max(1, int(retry_after))

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """``Retry-After``: a 503, never a 401 that would look like a bad credential."""
        return {"Retry-After": str(self.retry_after)}


class SessionExchangeUnavailableError(WachtAuthError):
    """The frontend API cannot exchange the session cookie for a session token."""

    code = "session_exchange_unavailable"
    status = 503

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after: int = max(1, int(retry_after))

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """``Retry-After``: the session may well be fine; answering 401 or redirecting to a
        sign-in page that is down too would sign the user out or loop (docs/pages.md)."""
        return {"Retry-After": str(self.retry_after)}


# -- webhooks: Wacht's signed deliveries (docs/webhooks.md explains each status) ---------------


class WebhookError(WachtAuthError):
    """A webhook delivery was refused (HTTP 400: Wacht drops it for good)."""

    code = "webhook_invalid"
    status = 400


class WebhookMethodNotAllowedError(WebhookError):
    """Webhook deliveries are POST requests."""

    code = "webhook_method_not_allowed"
    status = 405

    def response_headers(self, *, token_presented: bool = True) -> dict[str, str]:
        """``Allow: POST`` (RFC 9110 §15.5.6)."""
        return {"Allow": "POST"}


class WebhookPayloadTooLargeError(WebhookError):
    """The delivery's body is larger than the configured cap."""

    code = "webhook_payload_too_large"
    status = 413


class WebhookHeadersMissingError(WebhookError):
    """The webhook-id, webhook-timestamp or webhook-signature header is missing."""

    code = "webhook_headers_missing"


class WebhookHeadersMalformedError(WebhookError):
    """A webhook header is malformed (the timestamp is not whole Unix seconds, ...)."""

    code = "webhook_headers_malformed"


class WebhookSignatureInvalidError(WebhookError):
    """No signature of the delivery matches a configured webhook secret."""

    code = "webhook_signature_invalid"
    # 503, not 401: after a secret rotation every genuine delivery lands here until the app
    # has the new secret; Wacht drops a delivery answered 4xx but retries a 5xx for days.
    status = 503


class WebhookTimestampTooOldError(WebhookError):
    """The delivery's timestamp is older than the configured tolerance."""

    code = "webhook_timestamp_too_old"


class WebhookTimestampInFutureError(WebhookError):
    """The delivery's timestamp is too far in the future (a clock is off)."""

    code = "webhook_timestamp_in_future"
    # Wacht's retries keep their timestamp: once the clocks agree a retry is accepted.
    status = 503


class WebhookPayloadInvalidError(WebhookError):
    """The delivery's body is not a JSON object with a string "type"."""

    code = "webhook_payload_invalid"


class WebhookReplayedError(WebhookError):
    """This delivery (its webhook-id) was handled already."""

    code = "webhook_replayed"
    status = 409
