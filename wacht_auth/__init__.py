"""wacht_auth: verify Wacht session tokens locally, with adapters for Python web frameworks.

The public names are re-exported here; the modules behind them are an implementation detail.
"""

from __future__ import annotations

from .auth import AuthState
from .config import Config
from .credentials import Credential
from .errors import (
    AlgorithmNotAllowedError,
    AudienceInvalidError,
    ClaimsInvalidError,
    ConfigurationError,
    CredentialInvalidError,
    CsrfFailedError,
    ForbiddenError,
    GatewayUnavailableError,
    IssuerInvalidError,
    JWKSUnavailableError,
    KeyNotFoundError,
    OrganizationRequiredError,
    PartyNotAuthorizedError,
    PermissionDeniedError,
    RateLimitedError,
    SessionExchangeUnavailableError,
    SignatureInvalidError,
    TokenExpiredError,
    TokenInvalidError,
    TokenMalformedError,
    TokenMissingError,
    TokenNotYetValidError,
    TokenTooLargeError,
    TokenUseInvalidError,
    WachtAuthError,
    WorkspaceRequiredError,
)
from .session import Session
from .verifier import Verifier

__version__ = "0.1.0"

__all__ = [
    "AlgorithmNotAllowedError",
    "AudienceInvalidError",
    "AuthState",
    "ClaimsInvalidError",
    "Config",
    "ConfigurationError",
    "Credential",
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
    "Session",
    "SessionExchangeUnavailableError",
    "SignatureInvalidError",
    "TokenExpiredError",
    "TokenInvalidError",
    "TokenMalformedError",
    "TokenMissingError",
    "TokenNotYetValidError",
    "TokenTooLargeError",
    "TokenUseInvalidError",
    "Verifier",
    "WachtAuthError",
    "WorkspaceRequiredError",
    "__version__",
]
