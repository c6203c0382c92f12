"""Strict compact-JWS parsing and claim checks (pure: no I/O, no clock of its own).

This module implements verification rules 1-4 (:func:`parse`) and 8-9 (:func:`check_claims`)
of docs/architecture.md, Verification policy.
Signature verification and key choice (rules 5-7) live in :mod:`wacht_auth.keys`.

It sits on the request path of every verification, so it is written for speed (docs/performance.md):
one ``bytes.translate`` checks the whole token's base64url alphabet in C (no per-character
Python loop), ``binascii`` decodes, JSON goes through one prebuilt strict decoder's C scanner,
and a checked protected header is remembered, since a deployment's tokens share it.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .config import SUPPORTED_ALGORITHMS
from .errors import (
    AlgorithmNotAllowedError,
    AudienceInvalidError,
    ClaimsInvalidError,
    IssuerInvalidError,
    PartyNotAuthorizedError,
    TokenExpiredError,
    TokenMalformedError,
    TokenNotYetValidError,
    TokenTooLargeError,
    shown,
)

__all__ = [
    "JWS",
    "ParsedToken",
    "b64url_decode",
    "check_claims",
    "check_transport_claims",
    "looks_like_jws",
    "parse",
    "parse_jws",
    "peek_issuer",
]

# Rule 2 (RFC 7515 §7.1, §2 "Base64url Encoding"): three non-empty segments of the unpadded
# base64url alphabet. ``bytes.translate(None, delete)`` removes every allowed byte in C; anything
# left over (whitespace, "=" padding, "+", "/", non-ASCII) makes the token malformed. A JWE has
# five segments and fails the segment count.
_B64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL_AND_DOT = _B64URL + b"."

# Canonical encoding (RFC 4648 §3.5): the bits of the last character that do not belong to a
# decoded byte must be zero. With len % 4 == 2 the last character carries 2 data bits (its low
# 4 bits are padding), with len % 4 == 3 it carries 4 (its low 2 bits are padding).
_CANONICAL_LAST: tuple[frozenset[int], ...] = (
    frozenset(_B64URL),  # len % 4 == 0: every character is all data
    frozenset(),  # len % 4 == 1: never valid
    frozenset(_B64URL[i] for i in range(0, 64, 16)),
    frozenset(_B64URL[i] for i in range(0, 64, 4)),
)
_PADDING = (b"", b"", b"==", b"=")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")

# Header parameters that change how the JWS must be processed. We implement none of them, so a
# token carrying one is refused rather than misread: "crit" (RFC 7515 §4.1.11), "b64" (RFC 7797
# unencoded payload), "enc"/"zip" (JWE, RFC 7516 §4.1.2-3).
_REFUSED_HEADER_PARAMS = ("crit", "b64", "enc", "zip")


def b64url_decode(segment: str | bytes) -> bytes:
    """Decode one unpadded base64url segment strictly (RFC 7515 §2, RFC 4648 §5).

    Raises:
        ValueError: characters outside ``[A-Za-z0-9_-]``, padding, a length that is 1 modulo
            4, or non-zero trailing bits (a second spelling of the same bytes).
    """
    if isinstance(segment, str):
        if not segment.isascii():
            raise ValueError("not unpadded base64url")
        segment = segment.encode("ascii")
    if not isinstance(segment, bytes) or segment.translate(None, _B64URL):
        raise ValueError("not unpadded base64url")
    return _decode_checked(segment)


def _decode_checked(segment: bytes) -> bytes:
    """Decode a segment whose alphabet is already checked; enforce length and trailing bits."""
    rem = len(segment) & 3
    if rem and segment[-1] not in _CANONICAL_LAST[rem]:
        raise ValueError("non-canonical base64url (length or trailing bits)")
    return binascii.a2b_base64(segment.translate(_TO_STANDARD) + _PADDING[rem])


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: duplicate member names are ambiguous (RFC 7515 §5.2 step 4)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(name: str) -> Any:
    """``parse_constant``: ``NaN`` and ``Infinity`` are not JSON (RFC 8259 §6)."""
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


# The decoder's C scanner: JSONDecoder.decode minus its Python wrapper and whitespace regexes.
_SCAN: Callable[[str, int], tuple[Any, int]] = _JSON.scan_once  # type: ignore[attr-defined]
_JSON_WS = " \t\n\r"  # the only whitespace JSON allows (RFC 8259 §2)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Decode strict UTF-8 JSON that must be an object (rule 3); anything else is malformed."""
    try:
        text = raw.decode("utf-8")  # strict: invalid UTF-8 raises
        if text[:1] == "{":
            # Fast path for the usual compact object; whatever follows it may only be JSON
            # whitespace. A syntax error raises StopIteration or ValueError from the scanner.
            value, end = _SCAN(text, 0)
            if end != len(text) and text[end:].strip(_JSON_WS):
                raise ValueError("extra data after the JSON value")
        else:
            value = _JSON.decode(text)
        if "\\u" in text:
            # An escaped lone surrogate ("\ud800") decodes to a str that is not Unicode text;
            # such a string cannot be re-encoded as UTF-8, so refuse it here (RFC 8259 §8.2).
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except Exception as exc:  # RecursionError, UnicodeError, ValueError, ...: all malformed
        raise TokenMalformedError(f"the token {what} is not valid UTF-8 JSON") from exc
    if type(value) is not dict:
        raise TokenMalformedError(f"the token {what} is not a JSON object")
    return value


@dataclass(slots=True)
class JWS:
    """A compact JWS whose structure and header passed rules 1, 2 and 4 (payload not decoded).

    Attributes:
        token: the token as received.
        header: the decoded protected header (read-only: shared by the deployment's tokens).
        payload: the decoded payload bytes (not interpreted).
        signing_input: ``ASCII(header "." payload)``, the bytes the signature covers.
        signature: the decoded signature bytes.
        alg: the header's ``alg`` (one of the allowed algorithms).
        kid: the header's ``kid``, or ``None``.
    """

    token: str
    header: Mapping[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str | None


@dataclass(slots=True)
class ParsedToken:
    """A token that passed verification rules 1-4; its signature is **not** verified yet.

    Attributes:
        token: the token as received.
        header: the decoded protected header (read-only: shared by the deployment's tokens).
        claims: the decoded payload, a JSON object.
        signing_input: ``ASCII(header "." payload)``, the bytes the signature covers.
        signature: the decoded signature bytes.
        alg: the header's ``alg`` (one of the allowed algorithms).
        kid: the header's ``kid``, or ``None`` (Wacht usually sends none).
    """

    token: str
    header: Mapping[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str | None


# Tokens of one deployment share their header byte for byte ({"alg":"ES256","typ":"JWT"}), so
# the outcome of checking a header segment is remembered (docs/performance.md): header segment ->
# (the allow-list it was checked against, read-only header, alg, kid). An entry serves only
# the very allow-list object it was checked against (an identity test: no hashing or
# comparing of the list per token; a Config's tuple is one object for its lifetime, and the
# entry keeps it alive, so the identity cannot be reused). Only successes are stored, and the
# size is bounded.
_HeaderEntry = tuple[Collection[str], Mapping[str, Any], str, str | None]
_HEADER_CACHE: dict[bytes, _HeaderEntry] = {}
_HEADER_CACHE_SIZE = 64


def _check_header(header_b64: bytes, algorithms: Collection[str]) -> _HeaderEntry:
    """Decode and check a protected header (rules 2, 3, 4) and remember the outcome.

    Returns ``(algorithms, header, alg, kid)``, the header read-only (it is shared).
    """
    try:
        header_raw = _decode_checked(header_b64)
    except (ValueError, binascii.Error) as exc:
        raise TokenMalformedError("the token header is not strict base64url") from exc
    header = _json_object(header_raw, "header")

    # Rule 4. "alg" is required (RFC 7515 §4.1.1); its value is compared case-sensitively and
    # must be allowed by configuration *and* implemented here: HS* and "none" never pass, even
    # if someone put them in the allow-list.
    if "alg" not in header:
        raise TokenMalformedError("the token header has no alg")
    alg = header["alg"]
    if type(alg) is not str or alg not in algorithms or alg not in SUPPORTED_ALGORITHMS:
        raise AlgorithmNotAllowedError(f"the token algorithm {str(alg)[:20]!r} is not allowed")
    for name in _REFUSED_HEADER_PARAMS:
        if name in header:
            raise TokenMalformedError(f"the token header parameter {name!r} is not supported")
    # "jku", "x5u", "jwk", "x5c" are ignored on purpose: keys come only from configuration.
    kid = header.get("kid")
    if kid is not None and type(kid) is not str:
        raise TokenMalformedError("the token header kid must be a string")
    typ = header.get("typ")
    if typ is not None and type(typ) is not str:
        raise TokenMalformedError("the token header typ must be a string")
    entry: _HeaderEntry = (algorithms, MappingProxyType(header), alg, kid)
    if type(algorithms) is tuple or type(algorithms) is frozenset:  # immutable allow-lists only
        if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[header_b64] = entry
    return entry


def _split(
    token: object, max_bytes: int, algorithms: Collection[str]
) -> tuple[str, Mapping[str, Any], bytes, bytes, bytes, str, str | None]:
    """Rules 1, 2, 4 and the header half of 3.

    Returns ``(token, header, payload_segment, signing_input, signature, alg, kid)``.
    """
    if type(token) is not str:
        if not isinstance(token, str):
            raise TokenMalformedError("the token must be a string")
        token = str(token)  # a str subclass: its methods must not run below
    # Rule 1: the cap comes before any decoding work. A str longer than max_bytes characters
    # is at least that many bytes; a shorter non-ASCII one fails the alphabet check next.
    if len(token) > max_bytes:
        raise TokenTooLargeError(f"the token is longer than {max_bytes} bytes")
    if not token.isascii():
        raise TokenMalformedError("the token contains characters outside base64url")
    raw = token.encode("ascii")
    parts = raw.split(b".")
    if raw.translate(None, _B64URL_AND_DOT) or len(parts) != 3 or not all(parts):
        raise TokenMalformedError(
            "the token is not a compact JWS (three non-empty base64url segments)"
        )
    header_b64, payload_b64, signature_b64 = parts

    cached = _HEADER_CACHE.get(header_b64)
    if cached is None or cached[0] is not algorithms:
        cached = _check_header(header_b64, algorithms)
    _, header, alg, kid = cached

    # Rule 2's canonical trailing bits (RFC 4648 §3.5) for the payload and the signature;
    # the header's were checked when it was decoded.
    rem = len(signature_b64) & 3
    if (rem and signature_b64[-1] not in _CANONICAL_LAST[rem]) or (
        len(payload_b64) & 3 and payload_b64[-1] not in _CANONICAL_LAST[len(payload_b64) & 3]
    ):
        raise TokenMalformedError("the token is not strict base64url (length or trailing bits)")
    try:
        signature = binascii.a2b_base64(signature_b64.translate(_TO_STANDARD) + _PADDING[rem])
    except (ValueError, binascii.Error) as exc:  # not reachable after the checks above
        raise TokenMalformedError("the token signature is not strict base64url") from exc
    signing_input = raw[: len(header_b64) + 1 + len(payload_b64)]
    return token, header, payload_b64, signing_input, signature, alg, kid


def _payload(payload_b64: bytes) -> bytes:
    """Decode the payload segment (its trailing bits were checked by :func:`_split`)."""
    return binascii.a2b_base64(payload_b64.translate(_TO_STANDARD) + _PADDING[len(payload_b64) & 3])


def parse_jws(token: str, *, max_bytes: int, algorithms: Collection[str]) -> JWS:
    """Parse a compact JWS without interpreting its payload (rules 1, 2, 4, header of 3).

    Used where the payload is not a JWT claims set (test vectors, tooling); the verifier
    uses :func:`parse`.

    Raises:
        TokenTooLargeError: over ``max_bytes``.
        TokenMalformedError: structure, base64url, header JSON or header parameters.
        AlgorithmNotAllowedError: ``alg`` not in ``algorithms`` (or not implemented).
    """
    token, header, payload_b64, signing_input, signature, alg, kid = _split(
        token, max_bytes, algorithms
    )
    return JWS(token, header, _payload(payload_b64), signing_input, signature, alg, kid)


def parse(token: str, *, max_bytes: int, algorithms: Collection[str]) -> ParsedToken:
    """Parse a session token: verification rules 1-4. The signature is not checked here.

    Args:
        token: the compact JWS as received (a ``str``).
        max_bytes: size cap, checked before anything is decoded (rule 1).
        algorithms: the allowed ``alg`` values, compared case-sensitively (rule 4).

    Raises:
        TokenTooLargeError: the token is longer than ``max_bytes``.
        TokenMalformedError: not three non-empty strict base64url segments; header or payload
            not a strict UTF-8 JSON object (duplicate names, ``NaN``, nesting too deep ...);
            ``crit``/``b64``/``enc``/``zip`` in the header; ``alg`` missing; ``kid`` or
            ``typ`` not a string.
        AlgorithmNotAllowedError: ``alg`` is not an allowed, implemented algorithm.
    """
    token, header, payload_b64, signing_input, signature, alg, kid = _split(
        token, max_bytes, algorithms
    )
    claims = _json_object(_payload(payload_b64), "payload")
    return ParsedToken(token, header, claims, signing_input, signature, alg, kid)


def looks_like_jws(token: str) -> bool:
    """Whether ``token`` looks like a compact JWS: three segments whose first decodes to a
    JSON object (the header). Nothing is checked; anything else is an opaque value (an API
    key; see docs/architecture.md, Credential routing)."""
    header, dot, rest = token.partition(".")
    if not dot or rest.count(".") != 1 or len(header) > 4096:
        return False
    try:
        return isinstance(json.loads(b64url_decode(header)), dict)
    except Exception:
        return False


def peek_issuer(token: str) -> str | None:
    """The unverified ``iss`` of a token, or ``None``; never raises.

    Only for choosing which deployment's verifier should check the token (multi-tenant
    setups); the value is not trusted until that verifier has checked the signature.
    """
    try:
        if not isinstance(token, str) or len(token) > 65536:
            return None
        parts = token.split(".")
        if len(parts) != 3:
            return None
        iss = _json_object(b64url_decode(parts[1]), "payload").get("iss")
    except Exception:
        return None
    return iss if type(iss) is str else None


# --- claims (rules 8 and 9) --------------------------------------------------------------------


# NumericDate bounds (RFC 7519 §2): beyond year 9999 a value is not a date anyone issues, and
# datetime cannot represent it (Session.expires_at), so it is refused as a wrong type.
_MAX_NUMERIC_DATE = 253_402_300_799


def _is_number(value: object) -> bool:
    """A finite JSON number within NumericDate range; ``bool`` is not a number here."""
    kind = type(value)
    # NaN and infinities fail the range comparison.
    return (kind is int or kind is float) and (
        -_MAX_NUMERIC_DATE <= value <= _MAX_NUMERIC_DATE  # type: ignore[operator]
    )


def _is_str_list(value: object) -> bool:
    """A JSON array of strings (permission lists); the empty list needs no scan."""
    return type(value) is list and (not value or all(type(v) is str for v in value))


def _is_id(value: object) -> bool:
    """An id claim: a decimal string, or a number in older tokens (not bool, not float)."""
    return type(value) is str or type(value) is int


def _is_object(value: object) -> bool:
    return type(value) is dict


def _is_permissions(value: object) -> bool:
    """``{"organization": [...], "workspace": [...]}``; either array may be null or absent."""
    if type(value) is not dict:
        return False
    org, ws = value.get("organization"), value.get("workspace")
    return (org is None or _is_str_list(org)) and (ws is None or _is_str_list(ws))


# The claims this library reads and what each must be when present and not null (Wacht's
# claims, verification rules 8-9); ``nbf``/``iat`` may not be null either. Other claims are
# carried along unread. The table is walked over the token's own claims, not the other way
# round: a token has about seven, this table eleven (docs/performance.md).
_SHAPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "exp": (_is_number, "a NumericDate (a finite number)"),
    "nbf": (_is_number, "a NumericDate"),
    "iat": (_is_number, "a NumericDate"),
    "sid": (_is_id, "a string"),
    "session_id": (_is_id, "a string"),
    "organization": (_is_id, "a string"),
    "workspace": (_is_id, "a string"),
    "permissions": (_is_permissions, "an object of string lists"),
    "organization_permissions": (_is_str_list, "a string list"),
    "workspace_permissions": (_is_str_list, "a string list"),
    "metadata": (_is_object, "an object"),
}
_NULL_REFUSED = frozenset({"exp", "nbf", "iat"})


def _check_structure(claims: Mapping[str, Any]) -> None:
    """Types of the claims this library reads (verification rules 8 and 9, Wacht's claim shapes)."""
    shapes = _SHAPES
    for name, value in claims.items():
        shape = shapes.get(name)
        if shape is not None and not shape[0](value):
            if value is None and name not in _NULL_REFUSED:
                continue  # null is "absent" for these (Wacht may send a null permissions array)
            raise ClaimsInvalidError(f"the token {name} claim must be {shape[1]}")
    if "exp" not in claims:
        raise ClaimsInvalidError("the token has no exp claim")
    sub = claims.get("sub")
    if type(sub) is not str or not sub:
        if sub is None and ("sess" in claims or "rotating_token" in claims):
            # Wacht's __session cookie: the long-lived token has sess/rotating_token and
            # no sub. It identifies the browser to the frontend API, not the user to a backend.
            raise ClaimsInvalidError(
                "this is the __session transport cookie token, not a session token: send the "
                "short-lived token from GET /session/token (the Wacht SDK's getToken())"
            )
        raise ClaimsInvalidError("the token sub claim must be a non-empty string")


def check_transport_claims(
    claims: Mapping[str, Any], *, issuer: str, now: float, leeway: float
) -> None:
    """Check the claims of Wacht's ``__session`` transport token (a JWT of the deployment
    with ``sess``, ``rotating_token``, ``iat``, ``nbf``, ``exp`` and ``iss``), in the order of
    :func:`check_claims`: ``claims_invalid`` unless ``exp`` is a number and ``sess`` a
    non-empty string (a session token, with ``sub``, is no transport token); the time rules;
    ``issuer_invalid`` unless ``iss`` is ``issuer`` exactly.

    Raises:
        ClaimsInvalidError, TokenExpiredError, TokenNotYetValidError, IssuerInvalidError.
    """
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if (value is not None or name == "exp") and not _is_number(value):
            raise ClaimsInvalidError(f"the transport token {name} claim must be a NumericDate")
    sess = claims.get("sess")
    if type(sess) is not str or not sess or "sub" in claims:
        raise ClaimsInvalidError("this is not a __session transport token")
    if not claims["exp"] > now - leeway:
        raise TokenExpiredError()
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and value > now + leeway:
            raise TokenNotYetValidError(f"the transport token is not valid yet ({name})")
    if claims.get("iss") != issuer:
        raise IssuerInvalidError("the transport token is not of this deployment")


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    now: float,
    leeway: float,
    audience: Collection[str] = (),
    authorized_parties: Collection[str] = (),
) -> None:
    """Check a token's claims: verification rules 8 and 9.

    The checks run in a fixed order, so a token with several faults always gets the same code:

    1. structure (``claims_invalid``): ``exp`` present and a finite number (not bool);
       ``nbf``/``iat`` finite numbers when present; ``sub`` a non-empty string (the
       ``__session`` transport token is named as such); ``sid``/``session_id``/
       ``organization``/``workspace`` strings (or integers); ``permissions`` an object whose
       ``organization``/``workspace`` are string lists or null; flat
       ``organization_permissions``/``workspace_permissions`` string lists or null;
       ``metadata`` an object;
    2. time: ``token_expired`` unless ``now < exp + leeway`` (RFC 7519 §4.1.4);
       ``token_not_yet_valid`` when ``nbf`` or ``iat`` is later than ``now + leeway``
       (RFC 7519 §4.1.5);
    3. ``issuer_invalid`` unless ``iss`` equals ``issuer`` exactly;
    4. ``audience_invalid`` when ``audience`` is configured and ``aud`` (a string or list of
       strings, RFC 7519 §4.1.3) is missing or contains none of them; ``aud`` is not looked
       at when no audience is configured (Wacht tokens normally carry none);
    5. ``party_not_authorized`` when ``authorized_parties`` is configured and an ``azp`` is
       present that is not one of them (trailing ``/`` ignored, as in the configuration).

    Args:
        claims: the decoded payload.
        issuer: the exact ``iss`` expected.
        now: the current POSIX time (from the configured clock).
        leeway: tolerated clock skew, seconds.
        audience: accepted ``aud`` values; empty means "not checked".
        authorized_parties: accepted ``azp`` values; empty means "not checked".

    Raises:
        ClaimsInvalidError, TokenExpiredError, TokenNotYetValidError, IssuerInvalidError,
        AudienceInvalidError, PartyNotAuthorizedError: as listed above.
    """
    _check_structure(claims)

    # now < exp + leeway, written so a huge integer exp is never converted to float.
    if not claims["exp"] > now - leeway:
        raise TokenExpiredError()
    latest = now + leeway
    nbf = claims.get("nbf")
    if nbf is not None and nbf > latest:
        raise TokenNotYetValidError("the token is not valid yet (nbf is in the future)")
    iat = claims.get("iat")
    if iat is not None and iat > latest:
        raise TokenNotYetValidError("the token was issued in the future (iat)")

    iss = claims.get("iss")
    if type(iss) is not str or iss != issuer:
        # Both issuers are public (the frontend API origin): saying them turns a puzzling 401
        # into an obvious staging-versus-production mix-up. shown() bounds the token's text.
        raise IssuerInvalidError(
            f"the token has no iss claim; expected {shown(issuer)}"
            if iss is None
            else f"the token issuer {shown(iss)} is not the configured issuer {shown(issuer)}"
        )

    if audience:
        if isinstance(audience, str):  # one value, not a string to search substrings in
            audience = (audience,)
        aud = claims.get("aud")
        if type(aud) is str:
            ok = aud in audience
        elif type(aud) is list:
            ok = any(type(a) is str and a in audience for a in aud)
        else:
            ok = False
        if not ok:
            raise AudienceInvalidError(
                "the token has no aud claim"
                if aud is None
                else "the token audience is not accepted"
            )

    if authorized_parties:
        if isinstance(authorized_parties, str):
            authorized_parties = (authorized_parties,)
        azp = claims.get("azp")
        if azp is not None and (type(azp) is not str or azp.rstrip("/") not in authorized_parties):
            raise PartyNotAuthorizedError()
