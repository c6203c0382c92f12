"""Signing keys and minting helpers: :class:`SigningKey`, compact JWS, Wacht's claim shapes."""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

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

_EC_CURVES: dict[str, tuple[ec.EllipticCurve, str, int]] = {
    "ES256": (ec.SECP256R1(), "P-256", 32),
    "ES384": (ec.SECP384R1(), "P-384", 48),
    "ES512": (ec.SECP521R1(), "P-521", 66),
}
_RSA_BITS = 2048
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
        _merge(header, headers)
        signing_input = _b64url(_json(header)) + "." + _b64url(_json(claims))
        signature = _PyJWT_ALGORITHMS[self.alg].sign(
            signing_input.encode("ascii"), self.private_key
        )
        return signing_input + "." + _b64url(signature)


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
            stacklevel=_outside_this_package(),
        )
        ids[index] = value
    return ids[0], ids[1]


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _outside_this_package() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside the test kit."""
    level, frame = 1, sys._getframe(1)
    while (
        os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR
        and frame.f_back is not None
    ):
        level, frame = level + 1, frame.f_back
    return level


def _merge(payload: dict[str, Any], claims: Mapping[str, Any] | None) -> None:
    """Merge ``claims`` into ``payload``; a value of ``None`` deletes that claim (or header
    member)."""
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
