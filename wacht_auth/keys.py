"""Signing keys: JWK parsing, key choice and signature verification (docs/architecture.md,
Verification policy, rules 4-7).

Pure code: fetching and caching the JWKS is done elsewhere; this module turns a JWK Set (or a
pinned PEM) into :class:`Key` objects, indexes them once per key set (:class:`KeyIndex`) and
checks signatures with ``cryptography``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from .config import SUPPORTED_ALGORITHMS
from .errors import AlgorithmNotAllowedError, KeyNotFoundError
from .tokens import b64url_decode

__all__ = [
    "MIN_RSA_BITS",
    "Key",
    "KeyIndex",
    "PublicKey",
    "key_from_pem",
    "parse_jwks",
]

logger = logging.getLogger("wacht_auth")

#: The public key types a :class:`Key` can hold.
PublicKey: TypeAlias = "rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey"

#: Rule 6: RSA keys shorter than this are refused (NIST SP 800-131A, RFC 7518 §3.3).
MIN_RSA_BITS = 2048
#: A public exponent longer than this is not "sane": it only makes verification slow.
_MAX_RSA_E_BITS = 64

# Pre-built padding and hash objects (docs/performance.md): building them per call costs time.
_SHA = {256: hashes.SHA256(), 384: hashes.SHA384(), 512: hashes.SHA512()}
_PKCS1 = padding.PKCS1v15()


def _pss(bits: int) -> padding.PSS:
    # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
    return padding.PSS(mgf=padding.MGF1(_SHA[bits]), salt_length=bits // 8)


# kty/curve each algorithm needs (RFC 7518 §3.1, RFC 8037 §3.1) and how it verifies.
_RSA_ALGS: dict[str, tuple[Any, hashes.HashAlgorithm]] = {
    "RS256": (_PKCS1, _SHA[256]),
    "RS384": (_PKCS1, _SHA[384]),
    "RS512": (_PKCS1, _SHA[512]),
    "PS256": (_pss(256), _SHA[256]),
    "PS384": (_pss(384), _SHA[384]),
    "PS512": (_pss(512), _SHA[512]),
}
#: JWK ``crv`` -> (curve, coordinate size in bytes, group order n, the one alg it fits).
_CURVES: dict[str, tuple[ec.EllipticCurve, int, int, str]] = {
    "P-256": (
        ec.SECP256R1(),
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        "ES256",
    ),
    "P-384": (
        ec.SECP384R1(),
        48,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
        "ES384",
    ),
    "P-521": (
        ec.SECP521R1(),
        66,
        int(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
        "ES512",
    ),
}
_EC_BY_CURVE_NAME = {v[0].name: k for k, v in _CURVES.items()}
_ECDSA = {alg: ec.ECDSA(_SHA[int(alg[2:])]) for alg in ("ES256", "ES384", "ES512")}
_ZEROS = {size: bytes(size) for size in (32, 48, 66)}
_DER_LENGTH = [bytes((n,)) if n < 0x80 else bytes((0x81, n)) for n in range(256)]


def _der_integer(value: bytes) -> bytes:
    """A DER INTEGER (X.690 §8.3) of a positive big-endian number: minimal, with a 0x00 in
    front when the top bit is set (it would read as negative)."""
    value = value.lstrip(b"\0")
    if value[0] & 0x80:
        value = b"\0" + value
    return b"\x02" + _DER_LENGTH[len(value)] + value


def _der_signature(r: bytes, s: bytes) -> bytes:
    """The DER ``Ecdsa-Sig-Value`` (RFC 3279 §2.2.3) that ``cryptography`` verifies, built from
    the JWS r||s halves (RFC 7518 §3.4) without a detour through ints (it is on the hot
    path of every fresh ES token)."""
    body = _der_integer(r) + _der_integer(s)
    return b"\x30" + _DER_LENGTH[len(body)] + body


_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k", "oth")


class Key:
    """One trusted public signing key.

    Built by :func:`parse_jwks` or :func:`key_from_pem`, never from a token header.

    Attributes:
        kid: the JWK ``kid``, or ``None``.
        alg: the algorithm the JWK declares, or ``None`` (then any algorithm of its type fits).
        kty: ``"RSA"``, ``"EC"`` or ``"OKP"``.
        crv: the curve (``"P-256"``, ``"P-384"``, ``"P-521"``, ``"Ed25519"``) or ``None``.
        use: the JWK ``use`` (``"sig"``) or ``None``.
        key_ops: the JWK ``key_ops`` or ``None``.
        public_key: the ``cryptography`` public key object.
        algorithms: every algorithm this key can verify, given its type, curve, ``alg``,
            ``use`` and ``key_ops``.
    """

    __slots__ = (
        "_ec",
        "_sig_len",
        "alg",
        "algorithms",
        "crv",
        "key_ops",
        "kid",
        "kty",
        "public_key",
        "use",
    )

    def __init__(
        self,
        public_key: PublicKey,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        key_ops: Sequence[str] | None = None,
    ) -> None:
        """Wrap a public key; raise ``ValueError`` for an unsupported or too weak one."""
        self.public_key: PublicKey = public_key
        self.kid: str | None = kid
        self.alg: str | None = alg
        self.use: str | None = use
        self.key_ops: tuple[str, ...] | None = None if key_ops is None else tuple(key_ops)
        # (coordinate size, group order as big-endian bytes of that size)
        self._ec: tuple[int, bytes] | None = None
        self._sig_len = 0
        candidates: Iterable[str]
        if isinstance(public_key, rsa.RSAPublicKey):
            numbers = public_key.public_numbers()
            _check_rsa(numbers.n, numbers.e)
            self.kty, self.crv = "RSA", None
            self._sig_len = (public_key.key_size + 7) // 8
            candidates = _RSA_ALGS
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            crv = _EC_BY_CURVE_NAME.get(public_key.curve.name)
            if crv is None:
                raise ValueError(f"unsupported EC curve {public_key.curve.name}")
            self.kty, self.crv = "EC", crv
            _, size, order, ec_alg = _CURVES[crv]
            self._ec = (size, order.to_bytes(size, "big"))
            self._sig_len = 2 * size
            candidates = (ec_alg,)
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            self.kty, self.crv = "OKP", "Ed25519"
            self._sig_len = 64
            candidates = ("EdDSA",)
        else:
            raise ValueError("unsupported key type")
        if alg is not None and alg not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"unsupported alg {alg[:20]!r}")
        if alg is not None and alg not in candidates:
            raise ValueError(f"alg {alg} does not fit a {self.kty} {self.crv or ''} key".strip())
        usable = (use is None or use == "sig") and (
            self.key_ops is None or "verify" in self.key_ops
        )
        # Rule 4/5: a declared alg pins the key to it; use/key_ops must allow verification.
        self.algorithms: frozenset[str] = frozenset(
            a for a in candidates if usable and (alg is None or a == alg)
        )

    def __repr__(self) -> str:
        return f"Key(kid={self.kid!r}, kty={self.kty!r}, crv={self.crv!r}, alg={self.alg!r})"

    def fits(self, alg: str) -> bool:
        """Whether this key may verify ``alg`` tokens (type, curve, alg, use, key_ops fit)."""
        return alg in self.algorithms

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Check a JWS signature (RFC 7515 §5.2 step 8, RFC 7518 §3).

        Returns ``False`` for any signature that does not verify, for a malformed one and for
        an algorithm this key does not fit; never raises a ``cryptography`` exception.
        """
        if alg not in self.algorithms or len(signature) != self._sig_len:
            # RSA signatures are exactly k bytes (RFC 8017 §8.2.2); ECDSA ones are r||s, each
            # the coordinate size (rule 7, RFC 7518 §3.4); Ed25519 ones are 64 bytes.
            return False
        key: Any = self.public_key  # the branch below knows its concrete type
        try:
            if self._ec is not None:
                size, order = self._ec
                r, s = signature[:size], signature[size:]
                # Rule 7: 1 <= r, s < n. Equal-length big-endian byte strings compare as
                # the numbers they spell, so no int conversion is needed.
                zero = _ZEROS[size]
                if not (zero < r < order and zero < s < order):
                    return False
                key.verify(_der_signature(r, s), signing_input, _ECDSA[alg])
            elif self.kty == "RSA":
                pad, digest = _RSA_ALGS[alg]
                key.verify(signature, signing_input, pad, digest)
            else:
                key.verify(signature, signing_input)
        except InvalidSignature:
            return False
        except Exception:  # any library error means "does not verify"
            return False
        return True

    def fingerprint(self) -> bytes:
        """The DER SubjectPublicKeyInfo of the key, to recognise the same key listed twice."""
        return self.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


# ROCA (CVE-2017-15361, Nemec et al., CCS 2017): Infineon's RSALib made primes of the form
# k * M + (65537^a mod M), M a primorial, so the modulus n is a power of 65537 modulo each
# small prime that divides M, and such keys can be factored. The published detector tests
# the primes 3..167: for each, n mod p must lie in the subgroup 65537 generates. A sound key
# fails this with overwhelming probability. The subgroups are computed here, not copied.
_ROCA_PRIMES: tuple[int, ...] = (
    *(3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83),
    *(89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167),
)
_ROCA_SUBGROUPS = tuple((p, frozenset(pow(65537, k, p) for k in range(p))) for p in _ROCA_PRIMES)


def _has_roca_fingerprint(n: int) -> bool:
    """Whether the modulus ``n`` has the structure of a ROCA-weak (Infineon RSALib) key."""
    return all(n % p in subgroup for p, subgroup in _ROCA_SUBGROUPS)


def _check_rsa(n: int, e: int) -> None:
    """Rule 6: at least 2048 bits, a sane exponent (odd, >= 3, at most 64 bits), not ROCA."""
    if n.bit_length() < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {n.bit_length()} bits is shorter than {MIN_RSA_BITS}")
    if e < 3 or not e & 1 or e.bit_length() > _MAX_RSA_E_BITS or e >= n:
        raise ValueError("RSA public exponent is not sane (must be odd, >= 3, at most 64 bits)")
    if _has_roca_fingerprint(n):
        raise ValueError("RSA modulus is ROCA-weak (CVE-2017-15361): it can be factored")


def _b64_int(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"member {name!r} is missing or not a string")
    return int.from_bytes(b64url_decode(value), "big")


def _b64_fixed(jwk: dict[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ValueError(f"member {name!r} is missing or not a string")
    raw = b64url_decode(value)
    # RFC 7518 §6.2.1.2 / RFC 8037 §2: coordinates are the full size, leading zeros kept.
    if len(raw) != size:
        raise ValueError(f"member {name!r} is {len(raw)} bytes, expected {size}")
    return raw


def _key_from_jwk(jwk: Any) -> Key:
    """One JWK (RFC 7517 §4) to a :class:`Key`; ``ValueError`` says why it is unusable."""
    if not isinstance(jwk, dict):
        raise ValueError("entry is not a JSON object")
    kty = jwk.get("kty")
    if kty == "oct":
        raise ValueError("symmetric (oct) key: HMAC keys are never trusted")
    private = [m for m in _PRIVATE_MEMBERS if m in jwk]
    if private:
        raise ValueError(f"carries private key members ({', '.join(private)})")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("kid is not a string")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise ValueError(f"use is {str(use)[:20]!r}, not 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None:
        if not isinstance(key_ops, list) or not all(isinstance(op, str) for op in key_ops):
            raise ValueError("key_ops is not a list of strings")
        if "verify" not in key_ops:
            raise ValueError("key_ops does not include 'verify'")
    alg = jwk.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS):
        raise ValueError(f"alg {str(alg)[:20]!r} is not a supported signature algorithm")

    public_key: PublicKey
    if kty == "RSA":
        n, e = _b64_int(jwk, "n"), _b64_int(jwk, "e")
        _check_rsa(n, e)
        public_key = rsa.RSAPublicNumbers(e, n).public_key()
    elif kty == "EC":
        crv = jwk.get("crv")
        if not isinstance(crv, str) or crv not in _CURVES:
            raise ValueError(f"EC curve {str(crv)[:20]!r} is not supported")
        curve, size, _, _ = _CURVES[crv]
        x = int.from_bytes(_b64_fixed(jwk, "x", size), "big")
        y = int.from_bytes(_b64_fixed(jwk, "y", size), "big")
        # Raises ValueError when the point is not on the named curve.
        public_key = ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    elif kty == "OKP":
        if jwk.get("crv") != "Ed25519":
            raise ValueError(f"OKP curve {str(jwk.get('crv'))[:20]!r} is not supported")
        public_key = ed25519.Ed25519PublicKey.from_public_bytes(_b64_fixed(jwk, "x", 32))
    else:
        raise ValueError(f"key type {str(kty)[:20]!r} is not supported")
    return Key(public_key, kid=kid, alg=alg, use=use, key_ops=key_ops)


def _parse_jwks(data: Any) -> tuple[list[Key], list[str], frozenset[str]]:
    """:func:`parse_jwks` plus the set of ambiguous kids."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("a JWK Set is a JSON object with a 'keys' list (RFC 7517 §5)")
    keys: list[Key] = []
    skipped: list[str] = []
    kid_count: dict[str, int] = {}
    for index, jwk in enumerate(data["keys"]):
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        label = f"key #{index}" + (f" (kid {kid[:64]!r})" if isinstance(kid, str) else "")
        if isinstance(kid, str):
            kid_count[kid] = kid_count.get(kid, 0) + 1
        try:
            keys.append(_key_from_jwk(jwk))
        except Exception as exc:  # every bad entry is skipped, never fatal
            reason = f"{label} skipped: {exc}"
            skipped.append(reason)
            logger.warning("JWKS %s", reason)

    # Rule 5: two entries with one kid are ambiguous, unless they are the very same public
    # key listed twice (same material, same alg/use), which is harmless.
    ambiguous: set[str] = set()
    for kid, count in kid_count.items():
        if count < 2:
            continue
        same = [k for k in keys if k.kid == kid]
        if len(same) == count and len({(k.fingerprint(), k.algorithms) for k in same}) == 1:
            keys = [k for k in keys if k.kid != kid or k is same[0]]
            continue
        ambiguous.add(kid)
        keys = [k for k in keys if k.kid != kid]
        reason = f"kid {kid[:64]!r} is used by {count} different keys: ambiguous, not used"
        skipped.append(reason)
        logger.warning("JWKS %s", reason)
    return keys, skipped, frozenset(ambiguous)


def parse_jwks(data: Any) -> tuple[list[Key], list[str]]:
    """Parse a decoded JWK Set into trusted keys (verification rule 6).

    Entries that cannot be trusted are skipped, logged at WARNING on the ``wacht_auth`` logger
    and described in the second list (never with key material): symmetric (``oct``) keys,
    ``use`` other than ``sig``, ``key_ops`` without ``verify``, private members, malformed
    members, RSA shorter than 2048 bits or with an odd/small/huge exponent, EC points not on
    the named curve or unsupported curves, an ``alg`` that is not a supported asymmetric
    algorithm or does not fit the key, and every key whose ``kid`` is shared with another
    (ambiguous) entry.

    Raises:
        ValueError: ``data`` is not an object with a ``keys`` list (a failed fetch).
    """
    keys, skipped, _ = _parse_jwks(data)
    return keys, skipped


def key_from_pem(pem: str | bytes) -> Key:
    """A :class:`Key` from a pinned PEM public key (``WACHT_JWT_KEY``), with no kid or alg.

    Accepts RSA (at least 2048 bits), EC P-256/P-384/P-521 and Ed25519.

    Raises:
        ValueError: not a PEM public key, or a type or size that is not accepted.
    """
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        public_key = load_pem_public_key(data)
    except Exception as exc:
        raise ValueError("not a PEM public key") from exc
    if not isinstance(
        public_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)
    ):
        raise ValueError(f"unsupported public key type {type(public_key).__name__}")
    return Key(public_key)


class KeyIndex:
    """The trusted keys of one key set, indexed once for constant-time choice (rule 5).

    Build one per fetched JWKS (or pinned key); :meth:`select` is then a dictionary lookup.
    """

    __slots__ = ("_ambiguous", "_by_alg", "_by_kid", "_keys", "limit")

    def __init__(self, keys: Iterable[Key], *, ambiguous: Iterable[str] = (), limit: int = 4):
        """Index ``keys``; kids in ``ambiguous`` or shared by two keys are refused.

        Args:
            keys: the trusted keys.
            ambiguous: kids known to be shared by several JWKS entries.
            limit: how many keys a kid-less token may be tried against (rule 5).
        """
        self._keys: tuple[Key, ...] = tuple(keys)
        self.limit = limit
        ambiguous_kids = set(ambiguous)
        by_kid: dict[str, Key] = {}
        for key in self._keys:
            if key.kid is None:
                continue
            if key.kid in by_kid:
                ambiguous_kids.add(key.kid)
            by_kid[key.kid] = key
        for kid in ambiguous_kids:
            by_kid.pop(kid, None)
        self._by_kid = by_kid
        self._ambiguous = frozenset(ambiguous_kids)
        by_alg: dict[str, list[Key]] = {}
        for alg in SUPPORTED_ALGORITHMS:
            fitting = [k for k in self._keys if alg in k.algorithms and k.kid not in ambiguous_kids]
            if fitting:
                by_alg[alg] = fitting[:limit]
        self._by_alg = by_alg

    @classmethod
    def from_jwks(cls, data: Any, *, limit: int = 4) -> tuple[KeyIndex, list[str]]:
        """Parse a JWK Set (see :func:`parse_jwks`) and index it; returns the skip reasons too.

        Raises:
            ValueError: ``data`` is not an object with a ``keys`` list.
        """
        keys, skipped, ambiguous = _parse_jwks(data)
        return cls(keys, ambiguous=ambiguous, limit=limit), skipped

    def __len__(self) -> int:
        """The number of usable keys."""
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyIndex({list(self._keys)!r})"

    @property
    def keys(self) -> tuple[Key, ...]:
        """Every key in the set."""
        return self._keys

    def select(self, alg: str, kid: str | None) -> list[Key]:
        """The keys to try for a token with this ``alg`` and ``kid`` (rule 5).

        With a kid: the key with that kid when it fits ``alg``; an unknown kid gives ``[]``
        (the caller may refresh the key set). Without a kid: the keys that fit, at most
        ``limit``. The returned list must not be modified.

        Raises:
            KeyNotFoundError: the kid is shared by several keys (ambiguous).
            AlgorithmNotAllowedError: the kid's key declares another ``alg`` (rule 4).
        """
        if kid is None:
            return self._by_alg.get(alg, _NONE)
        key = self._by_kid.get(kid)
        if key is not None:
            if alg in key.algorithms:
                return [key]
            if key.alg is not None and key.alg != alg:
                raise AlgorithmNotAllowedError(
                    f"the token algorithm {alg} does not match its key's alg {key.alg}"
                )
            return _NONE
        if kid in self._ambiguous:
            raise KeyNotFoundError(f"the token kid {kid[:64]!r} is ambiguous: several keys use it")
        return _NONE


_NONE: list[Key] = []
