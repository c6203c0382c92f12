"""Project Wycheproof vectors (tests/vectors/README.md) through tokens.py and keys.py.

Primitive files go through :meth:`Key.verify`: ``valid`` must verify, ``invalid`` must give
``False`` (never an exception), ``acceptable`` may go either way. The JSON Web files go through
the same steps as the verifier: :func:`parse_jws`/:func:`parse`, :meth:`KeyIndex.select`,
:meth:`Key.verify`. Their payloads are often not JWT claims (``"foo"``), so the signature stage
is checked with :func:`parse_jws`, and :func:`parse` must then either accept the token or call
it malformed.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from wacht_auth.config import SUPPORTED_ALGORITHMS
from wacht_auth.errors import WachtAuthError
from wacht_auth.keys import Key, KeyIndex, key_from_pem, parse_jwks
from wacht_auth.tokens import parse, parse_jws

VECTORS = Path(__file__).parent / "vectors"
ASYMMETRIC = tuple(sorted(SUPPORTED_ALGORITHMS))


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(group, test) for group in load(name)["testGroups"] for test in group["tests"]]


# --- primitives --------------------------------------------------------------------------------

PRIMITIVES = [
    ("rsa_signature_2048_sha256_test.json", "RS256"),
    ("rsa_signature_3072_sha256_test.json", "RS256"),
    ("rsa_signature_4096_sha256_test.json", "RS256"),
    ("ecdsa_secp256r1_sha256_p1363_test.json", "ES256"),
    ("rsa_pss_2048_sha256_mgf1_32_test.json", "PS256"),
]


def primitive_key(group: dict[str, Any]) -> Key:
    """The group's key through the JWK path (the one a JWKS takes), checked against its PEM.

    A few ECDSA groups have no JWK form (e.g. keys with coordinates of unusual length);
    those come from the PEM, the pinned-key path.
    """
    jwk = group.get("keyJwk") or group.get("publicKeyJwk")
    if jwk is None:
        return key_from_pem(group["publicKeyPem"])
    jwk = dict(jwk)
    jwk.pop("kid", None)
    keys, skipped = parse_jwks({"keys": [jwk]})
    assert skipped == [], skipped
    assert keys[0].fingerprint() == key_from_pem(group["publicKeyPem"]).fingerprint()
    return keys[0]


@pytest.mark.parametrize(("filename", "alg"), PRIMITIVES, ids=[p[0] for p in PRIMITIVES])
def test_primitive_vectors(filename: str, alg: str) -> None:
    counts = {"valid": 0, "invalid": 0, "acceptable": 0}
    for group in load(filename)["testGroups"]:
        key = primitive_key(group)
        assert key.fits(alg)
        for test in group["tests"]:
            result = key.verify(alg, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
            assert type(result) is bool
            if test["result"] == "valid":
                assert result, f"tcId {test['tcId']} ({test['comment']}) must verify"
            elif test["result"] == "invalid":
                assert not result, f"tcId {test['tcId']} ({test['comment']}) must not verify"
            counts[test["result"]] += 1
    assert counts["valid"] > 0 and counts["invalid"] > 0
    assert sum(counts.values()) == load(filename)["numberOfTests"]


# --- JSON Web Signature -----------------------------------------------------------------------


def key_set(group: dict[str, Any]) -> dict[str, Any]:
    """The group's verification keys as a JWK Set: ``public`` when given, else ``private``."""
    jwk = group.get("public") or group["private"]
    return jwk if "keys" in jwk else {"keys": [jwk]}


def outcome(token: Any, index: KeyIndex) -> str:
    """What a verifier allowing every asymmetric algorithm says about ``token``.

    Returns ``"ok"`` when the signature stage passes, else the error code. Any exception that
    is not a :class:`WachtAuthError` propagates and fails the test (verification rule 3).
    """
    try:
        jws = parse_jws(token, max_bytes=8192, algorithms=ASYMMETRIC)
        keys = index.select(jws.alg, jws.kid)
    except WachtAuthError as exc:
        return exc.code
    if not keys:
        return "key_not_found"
    if not any(k.verify(jws.alg, jws.signing_input, jws.signature) for k in keys):
        return "signature_invalid"
    # The full token parser agrees on everything but the payload, which it needs as claims.
    try:
        assert parse(token, max_bytes=8192, algorithms=ASYMMETRIC).signature == jws.signature
    except WachtAuthError as exc:
        assert exc.code == "token_malformed"
    return "ok"


# The only JWS vectors that may pass: valid, asymmetric key, allowed algorithm. Valid cases
# left out on purpose: 1, 348, 352, 357-359, 376, 377 (HS256: never), 346 and 350 (PS384
# token, key declares alg PS256: rule 4), 347 and 351 (key declares "ES521", which is not a
# JWA algorithm, so the key is skipped), 372 and 373 (bytes changed after signing: not strict
# base64url), 259, 264, 268, 272, 320, 325 (empty payload segment: rule 2 wants three
# non-empty segments; a session token always has claims).
JWS_MUST_PASS = {18, 33, *range(260, 264), *range(265, 268), *range(269, 272)}
JWS_MUST_PASS |= {273, 274, 275, 287, 288, *range(321, 324), *range(326, 329)}
JWS_MUST_PASS |= {345, 349, 378}


def test_json_web_signature_vectors() -> None:
    passed = set()
    for group, test in cases("json_web_signature_test.json"):
        index, _ = KeyIndex.from_jwks(key_set(group))
        result = outcome(test["jws"], index)
        if result == "ok":
            passed.add(test["tcId"])
        if test["result"] == "invalid":
            assert result != "ok", f"tcId {test['tcId']} ({test['comment']}) was accepted"
    assert passed == JWS_MUST_PASS


@pytest.mark.parametrize("tc_id", [372, 373])
def test_jws_bytes_changed_after_signing_fail_base64url(tc_id: int) -> None:
    """Labelled valid by Wycheproof, but a strict base64url decoder must refuse them."""
    [(_, test)] = [c for c in cases("json_web_signature_test.json") if c[1]["tcId"] == tc_id]
    with pytest.raises(WachtAuthError) as info:
        parse_jws(test["jws"], max_bytes=8192, algorithms=("HS256", *ASYMMETRIC))
    assert info.value.code == "token_malformed"


def test_jws_hs_none_and_embedded_keys_rejected() -> None:
    for group, test in cases("json_web_signature_test.json"):
        header_alg = None
        try:
            header_alg = parse_jws(test["jws"], max_bytes=8192, algorithms=ASYMMETRIC).alg
        except WachtAuthError:
            pass
        jwk = group.get("public") or group["private"]
        if jwk.get("kty") == "oct" or "embedded" in test["comment"].lower():
            index, _ = KeyIndex.from_jwks(key_set(group))
            assert outcome(test["jws"], index) != "ok", test["tcId"]
        assert header_alg is None or not header_alg.startswith(("HS", "none"))


# --- JSON Web Key -------------------------------------------------------------------------------

# Valid Wycheproof cases that pass our verifier: an ordinary 2048-bit RS256 key. The valid
# HS256/384/512 cases (2, 13-15) use symmetric keys, which are never trusted; case 7's key is
# ROCA-weak (CVE-2017-15361) and is skipped when the key set is read.
JWK_MUST_PASS = {5}
ROCA_CASE = 7


@pytest.mark.parametrize("tc_id", [t["tcId"] for _, t in cases("json_web_key_test.json")])
def test_json_web_key_vectors(tc_id: int) -> None:
    [(group, test)] = [c for c in cases("json_web_key_test.json") if c[1]["tcId"] == tc_id]
    index, _ = KeyIndex.from_jwks(key_set(group))
    result = outcome(test["jws"], index)
    if tc_id == ROCA_CASE:
        assert not index.keys, "the ROCA-weak key was trusted"
    if tc_id in JWK_MUST_PASS:
        assert result == "ok"
    else:
        assert result != "ok", f"tcId {tc_id} ({test['comment']}) was accepted"


# --- JSON Web Encryption -----------------------------------------------------------------------


def test_json_web_encryption_vectors_rejected() -> None:
    total = 0
    for _, test in cases("json_web_encryption_test.json"):
        with pytest.raises(WachtAuthError) as info:
            parse(test["jwe"], max_bytes=8192, algorithms=ASYMMETRIC)
        assert info.value.code == "token_malformed", test["tcId"]
        total += 1
    assert total == load("json_web_encryption_test.json")["numberOfTests"]
