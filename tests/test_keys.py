"""Verification rules 4-7 (docs/architecture.md): JWK parsing, key choice, signature checks,
pinned PEM keys."""

from __future__ import annotations

import base64
import logging
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.helpers import select_keys
from wacht_auth.errors import WachtAuthError
from wacht_auth.keys import Key, KeyIndex, key_from_pem, parse_jwks
from wacht_auth.tokens import b64url_decode as b64url
from wacht_auth.tokens import parse

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_KEY_2 = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())
P521_KEY = ec.generate_private_key(ec.SECP521R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ALL_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64int(value: int, size: int | None = None) -> str:
    return b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def rsa_jwk(key: rsa.RSAPrivateKey = RSA_KEY, **extra: Any) -> dict[str, Any]:
    nums = key.public_key().public_numbers()
    jwk: dict[str, Any] = {"kty": "RSA", "n": b64int(nums.n), "e": b64int(nums.e)}
    jwk.update(extra)
    return jwk


def ec_jwk(key: ec.EllipticCurvePrivateKey = EC_KEY, **extra: Any) -> dict[str, Any]:
    nums = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
    jwk: dict[str, Any] = {
        "kty": "EC",
        "crv": crv,
        "x": b64int(nums.x, size),
        "y": b64int(nums.y, size),
    }
    jwk.update(extra)
    return jwk


def ed_jwk(**extra: Any) -> dict[str, Any]:
    raw = ED_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw), **extra}


def one_key(jwk: dict[str, Any]) -> Key:
    keys, skipped = parse_jwks({"keys": [jwk]})
    assert skipped == [] and len(keys) == 1
    return keys[0]


def verify_token(index: KeyIndex, token: str, algorithms: tuple[str, ...] = ALL_ALGS) -> str:
    """A miniature verifier: parse, select, verify; returns "ok" or an error code."""
    try:
        parsed = parse(token, max_bytes=8192, algorithms=algorithms)
        keys = index.select(parsed.alg, parsed.kid)
    except WachtAuthError as exc:
        return exc.code
    if not keys:
        return "key_not_found"
    if any(k.verify(parsed.alg, parsed.signing_input, parsed.signature) for k in keys):
        return "ok"
    return "signature_invalid"


PAYLOAD = {"sub": "1", "exp": 2_000_000_000}


# --- rule 6: which JWKs are trusted ------------------------------------------------------------

SKIP_CASES: list[tuple[str, Any]] = [
    ("symmetric oct", {"kty": "oct", "k": "AAAA", "alg": "HS256"}),
    ("use enc", rsa_jwk(use="enc")),
    ("use other", ec_jwk(use="wrap")),
    ("key_ops without verify", rsa_jwk(key_ops=["encrypt"])),
    ("key_ops not a list", rsa_jwk(key_ops="verify")),
    ("private d (EC)", ec_jwk(d="AAAA")),
    ("private d (RSA)", rsa_jwk(d="AAAA")),
    ("private p", rsa_jwk(p="AAAA")),
    ("private q", rsa_jwk(q="AAAA")),
    ("private dp", rsa_jwk(dp="AAAA")),
    ("private dq", rsa_jwk(dq="AAAA")),
    ("private qi", rsa_jwk(qi="AAAA")),
    ("not an object", "RSA"),
    ("kty missing", {"n": "AQAB", "e": "AQAB"}),
    ("kty unknown", {"kty": "XYZ"}),
    ("RSA n missing", {"kty": "RSA", "e": "AQAB"}),
    ("RSA n not base64url", rsa_jwk(n="@@@@")),
    ("RSA n padded", rsa_jwk(n=rsa_jwk()["n"] + "==")),
    ("RSA 1024 bits", rsa_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024))),
    ("RSA e = 1", rsa_jwk(e="AQ")),
    ("RSA e even", rsa_jwk(e=b64int(65536))),
    ("RSA e huge", rsa_jwk(e=b64int((1 << 100) + 1))),
    ("EC wrong curve name", ec_jwk(crv="P-384")),
    ("EC unsupported curve", ec_jwk(crv="secp256k1")),
    ("EC point not on curve", ec_jwk(y=b64int(12345, 32))),
    ("EC short coordinate", ec_jwk(x=b64(b"\x01" * 31))),
    ("EC coordinate with a leading zero byte", ec_jwk(x=b64(b"\x00" + b64url(ec_jwk()["x"])))),
    ("OKP X25519", {"kty": "OKP", "crv": "X25519", "x": b64(b"\x01" * 32)}),
    ("alg HS256 on RSA", rsa_jwk(alg="HS256")),
    ("alg RSA1_5", rsa_jwk(alg="RSA1_5")),
    ("alg ES224", ec_jwk(alg="ES224")),
    ("alg does not fit kty", ec_jwk(alg="RS256")),
    ("alg does not fit curve", ec_jwk(alg="ES512")),
    ("kid not a string", rsa_jwk(kid=5)),
]


@pytest.mark.parametrize(("name", "jwk"), SKIP_CASES, ids=[c[0] for c in SKIP_CASES])
def test_untrusted_jwks_are_skipped_and_logged(
    name: str, jwk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wacht_auth"):
        keys, skipped = parse_jwks({"keys": [jwk, ec_jwk(EC_KEY_2, kid="good")]})
    assert [k.kid for k in keys] == ["good"]
    assert len(skipped) == 1
    assert any(r.name == "wacht_auth" and r.levelno == logging.WARNING for r in caplog.records)
    # Skip reasons never carry key material.
    if isinstance(jwk, dict):
        for member in ("n", "x", "y", "d", "k"):
            value = jwk.get(member)
            if isinstance(value, str) and len(value) > 8:
                assert value not in skipped[0]


@pytest.mark.parametrize("data", [None, [], "keys", {}, {"keys": None}, {"keys": {"a": 1}}])
def test_not_a_jwk_set(data: Any) -> None:
    with pytest.raises(ValueError):
        parse_jwks(data)


def test_supported_keys_parse() -> None:
    keys, skipped = parse_jwks(
        {
            "keys": [
                rsa_jwk(kid="r", alg="RS256", use="sig"),
                ec_jwk(kid="e", alg="ES256", use="sig", key_ops=["verify"]),
                ec_jwk(P384_KEY, kid="e384"),
                ec_jwk(P521_KEY, kid="e521"),
                ed_jwk(kid="ed"),
                rsa_jwk(RSA_KEY_2, kid="r-any", x5c=["ignored"]),
            ]
        }
    )
    assert skipped == []
    by_kid = {k.kid: k for k in keys}
    assert by_kid["r"].algorithms == {"RS256"}
    assert by_kid["r-any"].algorithms == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    assert by_kid["e"].algorithms == {"ES256"} and by_kid["e"].crv == "P-256"
    assert by_kid["e384"].algorithms == {"ES384"}
    assert by_kid["e521"].algorithms == {"ES512"}
    assert by_kid["ed"].algorithms == {"EdDSA"} and by_kid["ed"].kty == "OKP"


# --- rule 4/5: fitting and choosing keys -------------------------------------------------------


def test_fits_type_curve_alg() -> None:
    rsa_any = one_key(rsa_jwk())
    rsa_pinned = one_key(rsa_jwk(alg="PS256"))
    p256 = one_key(ec_jwk())
    assert rsa_any.fits("RS256") and rsa_any.fits("PS512")
    assert not rsa_any.fits("ES256") and not rsa_any.fits("HS256") and not rsa_any.fits("none")
    assert rsa_pinned.fits("PS256") and not rsa_pinned.fits("RS256")
    assert p256.fits("ES256") and not p256.fits("ES384") and not p256.fits("RS256")


def test_declared_alg_must_equal_token_alg() -> None:
    index = KeyIndex(parse_jwks({"keys": [rsa_jwk(kid="k", alg="RS256")]})[0])
    token = jwt.encode(PAYLOAD, RSA_KEY, algorithm="PS256", headers={"kid": "k"})
    assert verify_token(index, token) == "algorithm_not_allowed"
    kidless = jwt.encode(PAYLOAD, RSA_KEY, algorithm="PS256")
    assert verify_token(index, kidless) == "key_not_found"
    assert verify_token(index, jwt.encode(PAYLOAD, RSA_KEY, algorithm="RS256")) == "ok"


def test_select_with_kid() -> None:
    index, _ = KeyIndex.from_jwks(
        {"keys": [ec_jwk(kid="a", alg="ES256"), ec_jwk(EC_KEY_2, kid="b", alg="ES256")]}
    )
    assert [k.kid for k in index.select("ES256", "b")] == ["b"]
    assert index.select("ES256", "zzz") == []
    with pytest.raises(WachtAuthError) as info:  # the key named by kid declares ES256
        index.select("RS256", "a")
    assert info.value.code == "algorithm_not_allowed"
    undeclared, _ = KeyIndex.from_jwks({"keys": [ec_jwk(kid="a")]})
    assert undeclared.select("RS256", "a") == []
    token = jwt.encode(PAYLOAD, EC_KEY_2, algorithm="ES256", headers={"kid": "b"})
    assert verify_token(index, token) == "ok"
    wrong = jwt.encode(PAYLOAD, EC_KEY_2, algorithm="ES256", headers={"kid": "a"})
    assert verify_token(index, wrong) == "signature_invalid"


def test_select_without_kid_tries_at_most_limit() -> None:
    many = [ec.generate_private_key(ec.SECP256R1()) for _ in range(6)]
    index = KeyIndex(parse_jwks({"keys": [ec_jwk(k, kid=str(i)) for i, k in enumerate(many)]})[0])
    assert len(index) == 6
    assert len(index.select("ES256", None)) == 4
    assert verify_token(index, jwt.encode(PAYLOAD, many[0], algorithm="ES256")) == "ok"
    # The fifth key is never tried for a kid-less token.
    assert verify_token(index, jwt.encode(PAYLOAD, many[5], algorithm="ES256")) == (
        "signature_invalid"
    )
    assert len(select_keys(index.keys, "ES256", None)) == 4
    assert len(select_keys(index.keys, "ES256", None, limit=6)) == 6


def test_use_and_key_ops_must_allow_verify() -> None:
    keys, skipped = parse_jwks(
        {"keys": [rsa_jwk(kid="enc", use="enc"), rsa_jwk(kid="ops", key_ops=["sign"])]}
    )
    assert keys == [] and len(skipped) == 2
    direct = Key(RSA_KEY.public_key(), use="enc")
    assert not direct.fits("RS256")
    assert not direct.verify("RS256", b"x", RSA_KEY.sign(b"x", *_rs256()))


def _rs256() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PKCS1v15(), hashes.SHA256()


def test_duplicate_kid_is_ambiguous(caplog: pytest.LogCaptureFixture) -> None:
    data = {"keys": [ec_jwk(kid="dup"), ec_jwk(EC_KEY_2, kid="dup"), rsa_jwk(kid="other")]}
    with caplog.at_level(logging.WARNING, logger="wacht_auth"):
        index, skipped = KeyIndex.from_jwks(data)
    assert any("ambiguous" in s for s in skipped)
    token = jwt.encode(PAYLOAD, EC_KEY, algorithm="ES256", headers={"kid": "dup"})
    assert verify_token(index, token) == "key_not_found"
    with pytest.raises(WachtAuthError) as info:
        index.select("ES256", "dup")
    assert info.value.code == "key_not_found"
    # Neither key of the ambiguous pair serves kid-less tokens either.
    assert verify_token(index, jwt.encode(PAYLOAD, EC_KEY, algorithm="ES256")) == "key_not_found"
    assert verify_token(index, jwt.encode(PAYLOAD, RSA_KEY, algorithm="RS256")) == "ok"


def test_duplicate_kid_with_a_skipped_entry_is_ambiguous() -> None:
    index, _ = KeyIndex.from_jwks(
        {"keys": [{"kty": "oct", "k": "AAAA", "kid": "k"}, ec_jwk(kid="k")]}
    )
    with pytest.raises(WachtAuthError) as info:
        index.select("ES256", "k")
    assert info.value.code == "key_not_found"


def test_same_key_listed_twice_is_not_ambiguous() -> None:
    index, skipped = KeyIndex.from_jwks({"keys": [ec_jwk(kid="k"), ec_jwk(kid="k")]})
    assert skipped == [] and len(index) == 1
    assert len(index.select("ES256", "k")) == 1


def test_key_index_detects_duplicates_itself() -> None:
    keys = [Key(EC_KEY.public_key(), kid="x"), Key(EC_KEY_2.public_key(), kid="x")]
    with pytest.raises(WachtAuthError):
        KeyIndex(keys).select("ES256", "x")
    with pytest.raises(WachtAuthError):
        select_keys(keys, "ES256", "x")


# --- rule 7 and signatures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "private", "jwk"),
    [
        ("RS256", RSA_KEY, rsa_jwk()),
        ("RS384", RSA_KEY, rsa_jwk()),
        ("RS512", RSA_KEY, rsa_jwk()),
        ("PS256", RSA_KEY, rsa_jwk()),
        ("PS384", RSA_KEY, rsa_jwk()),
        ("PS512", RSA_KEY, rsa_jwk()),
        ("ES256", EC_KEY, ec_jwk()),
        ("ES384", P384_KEY, ec_jwk(P384_KEY)),
        ("ES512", P521_KEY, ec_jwk(P521_KEY)),
        ("EdDSA", ED_KEY, ed_jwk()),
    ],
)
def test_every_algorithm_verifies(alg: str, private: Any, jwk: dict[str, Any]) -> None:
    index = KeyIndex([one_key(jwk)])
    token = jwt.encode(PAYLOAD, private, algorithm=alg)
    assert verify_token(index, token, (*ALL_ALGS, "EdDSA")) == "ok"
    head, _, sig = token.split(".")
    other = b64(b'{"sub":"2","exp":2000000000}')
    tampered = f"{head}.{other}.{sig}"
    assert verify_token(index, tampered, (*ALL_ALGS, "EdDSA")) == "signature_invalid"


def _es256_sig(r: int, s: int, size: int = 32) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def test_es256_signature_shape() -> None:
    key = one_key(ec_jwk())
    token = jwt.encode(PAYLOAD, EC_KEY, algorithm="ES256")
    parsed = parse(token, max_bytes=8192, algorithms=("ES256",))
    si, sig = parsed.signing_input, parsed.signature
    assert key.verify("ES256", si, sig)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    assert not key.verify("ES256", si, sig + b"\x00")  # 65 bytes
    assert not key.verify("ES256", si, b"\x00" + sig)
    assert not key.verify("ES256", si, sig[:-1])
    assert not key.verify("ES256", si, sig[:32] + b"\x00" + sig[32:])  # same r, s; 65 bytes
    assert not key.verify("ES256", si, _es256_sig(0, s))
    assert not key.verify("ES256", si, _es256_sig(r, 0))
    assert not key.verify("ES256", si, _es256_sig(P256_N, s))  # r = n
    assert not key.verify("ES256", si, _es256_sig(r, P256_N))  # s = n
    assert not key.verify("ES256", si, _es256_sig(2**256 - 1, s))  # r > n
    assert not key.verify("ES256", si, _es256_sig(r, 2**256 - 1))  # s > n
    # High-s (s' = n - s) is a valid ECDSA signature too; JWS does not forbid it.
    assert key.verify("ES256", si, _es256_sig(r, P256_N - s))
    # A DER-encoded ECDSA signature is not the JWS encoding.
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    assert not key.verify("ES256", si, encode_dss_signature(r, s))


def test_verify_never_raises() -> None:
    keys = [one_key(rsa_jwk()), one_key(ec_jwk()), one_key(ed_jwk())]
    for key in keys:
        for alg in (*ALL_ALGS, "EdDSA", "HS256", "none", ""):
            for sig in (b"", b"\x00" * 64, b"\xff" * 256, b"\x01" * 1000):
                assert key.verify(alg, b"data", sig) is False


def test_rsa_signature_length_must_match_modulus() -> None:
    key = one_key(rsa_jwk())
    sig = RSA_KEY.sign(b"data", *_rs256())
    assert key.verify("RS256", b"data", sig)
    assert not key.verify("RS256", b"data", b"\x00" + sig)
    assert not key.verify("RS256", b"data", sig[1:])


# --- pinned PEM keys ---------------------------------------------------------------------------


def _pem(private: Any) -> str:
    return str(
        private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    )


@pytest.mark.parametrize(
    ("private", "alg"),
    [
        (RSA_KEY, "RS256"),
        (EC_KEY, "ES256"),
        (P384_KEY, "ES384"),
        (P521_KEY, "ES512"),
        (ED_KEY, "EdDSA"),
    ],
)
def test_key_from_pem(private: Any, alg: str) -> None:
    key = key_from_pem(_pem(private))
    assert key.kid is None and key.alg is None and key.fits(alg)
    assert key_from_pem(_pem(private).encode()).fits(alg)
    token = jwt.encode(PAYLOAD, private, algorithm=alg)
    assert verify_token(KeyIndex([key]), token, (*ALL_ALGS, "EdDSA")) == "ok"


@pytest.mark.parametrize(
    "pem",
    [
        "not a pem",
        _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        _pem(ec.generate_private_key(ec.SECP256K1())),
        _pem(rsa.generate_private_key(public_exponent=3, key_size=2048)).replace("A", "B", 1),
    ],
)
def test_key_from_pem_refuses(pem: str) -> None:
    with pytest.raises(ValueError):
        key_from_pem(pem)


@pytest.mark.parametrize("size", [32, 48, 66])
def test_der_signature_matches_cryptography(size: int) -> None:
    """The hand-built DER of r||s equals cryptography's encoding, leading zeros and high
    bits included (a wrong encoding would make every ES* signature fail, or worse, pass)."""
    import random

    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from wacht_auth.keys import _der_signature

    rng = random.Random(7)
    shapes = [
        lambda: rng.randbytes(size),
        lambda: b"\x00" + rng.randbytes(size - 1),  # a leading zero byte: stripped
        lambda: b"\x00\x00\x80" + rng.randbytes(size - 3),  # zeros, then the top bit set
        lambda: b"\xff" + rng.randbytes(size - 1),  # the top bit set: 0x00 in front
        lambda: bytes(size - 1) + b"\x01",  # the number 1
    ]
    for make_r in shapes:
        for make_s in shapes:
            for _ in range(20):
                r, s = make_r(), make_s()
                expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
                assert _der_signature(r, s) == expected


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_group_orders_are_right(crv: str) -> None:
    """(r, n - s) verifies whenever (r, s) does, for the true group order n only (rule 7's
    range check depends on it; P-521's once had one hex digit too many)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature,
        encode_dss_signature,
    )

    from wacht_auth.keys import _CURVES

    curve, size, order, _ = _CURVES[crv]
    assert (order.bit_length() + 7) // 8 == size
    private = ec.generate_private_key(curve)
    algorithm = ec.ECDSA(hashes.SHA256())
    r, s = decode_dss_signature(private.sign(b"data", algorithm))
    private.public_key().verify(encode_dss_signature(r, order - s), b"data", algorithm)


def test_roca_weak_moduli_are_refused_and_sound_ones_are_not() -> None:
    """Rule 6: a ROCA-weak modulus (CVE-2017-15361) is skipped like a short one. The weak
    modulus is built with the RSALib structure (primes k*M + 65537^a mod M); freshly generated
    keys never carry the fingerprint."""
    from wacht_auth.keys import _ROCA_PRIMES, _has_roca_fingerprint

    primorial = 1
    for p in _ROCA_PRIMES:
        primorial *= p
    weak_p = 1234567 * primorial + pow(65537, 11, primorial)
    weak_q = 7654321 * primorial + pow(65537, 29, primorial)
    assert _has_roca_fingerprint(weak_p * weak_q)
    for _ in range(3):
        sound = rsa.generate_private_key(65537, 2048).public_key().public_numbers().n
        assert not _has_roca_fingerprint(sound)
