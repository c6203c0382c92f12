"""Verification rules 1-4 (parse) and 8-9 (check_claims) of docs/architecture.md, one row per
rule."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from wacht_auth.errors import WachtAuthError
from wacht_auth.tokens import (
    b64url_decode,
    check_claims,
    parse,
    parse_jws,
    peek_issuer,
)

ISS = "https://frontend.example.wacht.dev"
NOW = 1_800_000_000.0
ALGS = ("RS256", "ES256")
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: bytes | str, payload: bytes | str, signature: bytes = b"\x01" * 64) -> str:
    """A compact JWS from raw header/payload bytes (the signature is not checked by parse)."""
    h = header.encode() if isinstance(header, str) else header
    p = payload.encode() if isinstance(payload, str) else payload
    return f"{b64(h)}.{b64(p)}.{b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "sub": "1234567890",
        "sid": "987",
        "iat": int(NOW) - 5,
        "exp": int(NOW) + 30,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def signed(payload: dict[str, Any] | None = None, **header: Any) -> str:
    return jwt.encode(
        payload if payload is not None else claims(),
        EC_KEY,
        algorithm="ES256",
        headers=header or None,
    )


GOOD_HEADER = '{"alg":"ES256","typ":"JWT"}'
GOOD_PAYLOAD = json.dumps(claims())


def code_of(token: object, *, max_bytes: int = 8192, algorithms: Any = ALGS) -> str:
    try:
        parse(token, max_bytes=max_bytes, algorithms=algorithms)  # type: ignore[arg-type]
    except WachtAuthError as exc:
        return exc.code
    return "ok"


# --- parse: rules 1-4 --------------------------------------------------------------------------

GOOD = raw_token(GOOD_HEADER, GOOD_PAYLOAD)
H, P, S = GOOD.split(".")

PARSE_CASES: list[tuple[str, object, str]] = [
    ("valid", GOOD, "ok"),
    ("valid signed by PyJWT", signed(), "ok"),
    # rule 1
    ("over the size cap", GOOD + "A" * 9000, "token_too_large"),
    ("garbage over the cap", "!" * 9000, "token_too_large"),
    # rule 2
    ("not a str", GOOD.encode(), "token_malformed"),
    ("None", None, "token_malformed"),
    ("empty", "", "token_malformed"),
    ("two segments", f"{H}.{P}", "token_malformed"),
    ("four segments", f"{H}.{P}.{S}.{S}", "token_malformed"),
    ("JWE, five segments", f"{H}.{P}.{S}.{S}.{S}", "token_malformed"),
    ("empty header", f".{P}.{S}", "token_malformed"),
    ("empty payload", f"{H}..{S}", "token_malformed"),
    ("empty signature", f"{H}.{P}.", "token_malformed"),
    ("padding", f"{H}.{P}.{b64(b'ab')}==", "token_malformed"),
    ("standard alphabet +", f"{H}.{P}.{S[:-2]}+/", "token_malformed"),
    ("whitespace", f"{H}.{P} .{S}", "token_malformed"),
    ("newline", f"{H}.{P}.{S}\n", "token_malformed"),
    ("non-ASCII", f"{H}.{P}.{S}é", "token_malformed"),
    ("length 1 mod 4", f"{H}.{P}.{S}A" if len(S) % 4 == 0 else f"{H}.{P}.AAAAA", "token_malformed"),
    ("non-canonical trailing bits", f"{H}.{P}.AB", "token_malformed"),
    ("non-canonical payload bits", f"{H}.{b64(GOOD_PAYLOAD.encode())[:-1]}.{S}", "token_malformed"),
    # rule 3
    ("header not JSON", raw_token("alg", GOOD_PAYLOAD), "token_malformed"),
    ("header not UTF-8", raw_token(b'{"alg":"ES256","x":"\xff"}', GOOD_PAYLOAD), "token_malformed"),
    ("header a list", raw_token('["ES256"]', GOOD_PAYLOAD), "token_malformed"),
    (
        "header duplicate alg",
        raw_token('{"alg":"ES256","alg":"ES256"}', GOOD_PAYLOAD),
        "token_malformed",
    ),
    ("payload not JSON", raw_token(GOOD_HEADER, "foo"), "token_malformed"),
    ("payload a string", raw_token(GOOD_HEADER, '"sub"'), "token_malformed"),
    ("payload null", raw_token(GOOD_HEADER, "null"), "token_malformed"),
    ("payload duplicate sub", raw_token(GOOD_HEADER, '{"sub":"1","sub":"2"}'), "token_malformed"),
    ("nested duplicate", raw_token(GOOD_HEADER, '{"m":{"a":1,"a":2}}'), "token_malformed"),
    ("NaN", raw_token(GOOD_HEADER, '{"exp":NaN}'), "token_malformed"),
    ("Infinity", raw_token(GOOD_HEADER, '{"exp":Infinity}'), "token_malformed"),
    ("-Infinity", raw_token(GOOD_HEADER, '{"exp":-Infinity}'), "token_malformed"),
    ("payload not UTF-8", raw_token(GOOD_HEADER, b'{"sub":"\xc3\x28"}'), "token_malformed"),
    ("payload UTF-16", raw_token(GOOD_HEADER, '{"sub":"1"}'.encode("utf-16")), "token_malformed"),
    ("lone surrogate escape", raw_token(GOOD_HEADER, '{"sub":"\\ud800"}'), "token_malformed"),
    (
        "deep nesting",
        raw_token(GOOD_HEADER, '{"a":' + "[" * 3000 + "]" * 3000 + "}"),
        "token_malformed",
    ),
    ("trailing data", raw_token(GOOD_HEADER, GOOD_PAYLOAD + "x"), "token_malformed"),
    ("trailing second object", raw_token(GOOD_HEADER, GOOD_PAYLOAD + "{}"), "token_malformed"),
    ("trailing non-JSON space", raw_token(GOOD_HEADER, GOOD_PAYLOAD + "\u00a0"), "token_malformed"),
    ("trailing JSON whitespace", raw_token(GOOD_HEADER, GOOD_PAYLOAD + " \r\n\t"), "ok"),
    ("leading JSON whitespace", raw_token(GOOD_HEADER, "\n " + GOOD_PAYLOAD), "ok"),
    ("UTF-8 BOM", raw_token(GOOD_HEADER, "\ufeff" + GOOD_PAYLOAD), "token_malformed"),
    ("unterminated object", raw_token(GOOD_HEADER, GOOD_PAYLOAD[:-1]), "token_malformed"),
    # rule 4
    ("alg missing", raw_token('{"typ":"JWT"}', GOOD_PAYLOAD), "token_malformed"),
    ("alg none", raw_token('{"alg":"none"}', GOOD_PAYLOAD), "algorithm_not_allowed"),
    ("alg HS256", raw_token('{"alg":"HS256"}', GOOD_PAYLOAD), "algorithm_not_allowed"),
    ("alg lower case", raw_token('{"alg":"es256"}', GOOD_PAYLOAD), "algorithm_not_allowed"),
    ("alg not in allow-list", raw_token('{"alg":"PS256"}', GOOD_PAYLOAD), "algorithm_not_allowed"),
    ("alg a list", raw_token('{"alg":["ES256"]}', GOOD_PAYLOAD), "algorithm_not_allowed"),
    ("alg null", raw_token('{"alg":null}', GOOD_PAYLOAD), "algorithm_not_allowed"),
    ("crit", raw_token('{"alg":"ES256","crit":["exp"],"exp":1}', GOOD_PAYLOAD), "token_malformed"),
    ("b64", raw_token('{"alg":"ES256","b64":false}', GOOD_PAYLOAD), "token_malformed"),
    ("enc", raw_token('{"alg":"ES256","enc":"A256GCM"}', GOOD_PAYLOAD), "token_malformed"),
    ("zip", raw_token('{"alg":"ES256","zip":"DEF"}', GOOD_PAYLOAD), "token_malformed"),
    ("kid a number", raw_token('{"alg":"ES256","kid":7}', GOOD_PAYLOAD), "token_malformed"),
    ("typ a number", raw_token('{"alg":"ES256","typ":1}', GOOD_PAYLOAD), "token_malformed"),
    ("typ at+jwt", raw_token('{"alg":"ES256","typ":"at+jwt"}', GOOD_PAYLOAD), "ok"),
    ("jku ignored", raw_token('{"alg":"ES256","jku":"https://evil.example"}', GOOD_PAYLOAD), "ok"),
    ("jwk ignored", raw_token('{"alg":"ES256","jwk":{"kty":"oct","k":"AA"}}', GOOD_PAYLOAD), "ok"),
    ("x5u and x5c ignored", raw_token('{"alg":"ES256","x5u":"u","x5c":["c"]}', GOOD_PAYLOAD), "ok"),
]


@pytest.mark.parametrize(
    ("name", "token", "expected"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES]
)
def test_parse_rules(name: str, token: object, expected: str) -> None:
    assert code_of(token) == expected


def test_size_cap_is_configurable_and_checked_first() -> None:
    assert code_of(GOOD, max_bytes=len(GOOD)) == "ok"
    assert code_of(GOOD, max_bytes=len(GOOD) - 1) == "token_too_large"
    # Checked before the structure: even a junk string over the cap is "too large".
    assert code_of("." * 100, max_bytes=10) == "token_too_large"


def test_hs_and_none_refused_even_when_allowed() -> None:
    for alg in ("HS256", "HS384", "HS512", "none"):
        token = raw_token(json.dumps({"alg": alg}), GOOD_PAYLOAD)
        assert code_of(token, algorithms=(alg, "ES256")) == "algorithm_not_allowed"


def test_alg_must_be_in_configured_list() -> None:
    token = raw_token('{"alg":"RS256"}', GOOD_PAYLOAD)
    assert code_of(token, algorithms=("ES256",)) == "algorithm_not_allowed"
    assert code_of(token, algorithms=("RS256",)) == "ok"


def test_parsed_fields() -> None:
    token = signed(kid="key-1")
    parsed = parse(token, max_bytes=8192, algorithms=ALGS)
    head, payload, sig = token.split(".")
    assert parsed.token == token
    assert parsed.alg == "ES256"
    assert parsed.kid == "key-1"
    assert parsed.header["kid"] == "key-1"
    assert parsed.claims == claims()
    assert parsed.signing_input == f"{head}.{payload}".encode()
    assert parsed.signature == b64url_decode(sig)
    assert len(parsed.signature) == 64


def test_parse_jws_keeps_raw_payload() -> None:
    token = raw_token(GOOD_HEADER, b"not json")
    jws = parse_jws(token, max_bytes=8192, algorithms=ALGS)
    assert jws.payload == b"not json"
    assert jws.alg == "ES256" and jws.kid is None
    assert code_of(token) == "token_malformed"


@pytest.mark.parametrize(
    ("segment", "ok"),
    [
        *[("", True), ("QQ", True), ("QR", False), ("QUE", True), ("QUF", False)],
        *[("QUFB", True), ("Q", False), ("QQ==", False), ("Q Q", False), ("Q+", False)],
        ("é", False),
    ],
)
def test_b64url_decode_is_strict(segment: str, ok: bool) -> None:
    if ok:
        assert b64url_decode(segment) == base64.urlsafe_b64decode(segment + "==")
    else:
        with pytest.raises(ValueError):
            b64url_decode(segment)


def test_peek_issuer_never_raises() -> None:
    assert peek_issuer(signed()) == ISS
    assert peek_issuer(signed(claims(iss=_DROP))) is None
    assert peek_issuer(raw_token(GOOD_HEADER, json.dumps(claims(iss=7)))) is None
    for junk in ("", "a.b.c", "a.b", None, b"x.y.z", "é.é.é", GOOD + "." + "A" * 100000):
        assert peek_issuer(junk) is None  # type: ignore[arg-type]


# --- check_claims: rules 8-9 -------------------------------------------------------------------


def claims_code(c: dict[str, Any], **kw: Any) -> str:
    opts: dict[str, Any] = {"issuer": ISS, "now": NOW, "leeway": 5.0}
    opts.update(kw)
    try:
        check_claims(c, **opts)
    except WachtAuthError as exc:
        return exc.code
    return "ok"


CLAIM_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("valid", claims(), {}, "ok"),
    # rule 8: exp
    ("exp missing", claims(exp=_DROP), {}, "claims_invalid"),
    ("exp a string", claims(exp=str(int(NOW) + 30)), {}, "claims_invalid"),
    ("exp a bool", claims(exp=True), {}, "claims_invalid"),
    ("exp null", claims(exp=None), {}, "claims_invalid"),
    ("exp NaN", claims(exp=math.nan), {}, "claims_invalid"),
    ("exp inf", claims(exp=math.inf), {}, "claims_invalid"),
    ("exp float", claims(exp=NOW + 0.5), {}, "ok"),
    ("exp huge int", claims(exp=10**400), {}, "claims_invalid"),
    ("exp past year 9999", claims(exp=253_402_300_800), {}, "claims_invalid"),
    ("exp huge float", claims(exp=1e300), {}, "claims_invalid"),
    ("nbf huge negative", claims(nbf=-(10**30)), {}, "claims_invalid"),
    ("expired", claims(exp=int(NOW) - 10), {}, "token_expired"),
    ("expired at the edge", claims(exp=int(NOW) - 5), {}, "token_expired"),
    ("within leeway", claims(exp=int(NOW) - 4), {}, "ok"),
    ("no leeway", claims(exp=int(NOW)), {"leeway": 0}, "token_expired"),
    # rule 8: nbf / iat
    ("nbf in the future", claims(nbf=int(NOW) + 60), {}, "token_not_yet_valid"),
    ("nbf within leeway", claims(nbf=int(NOW) + 5), {}, "ok"),
    ("nbf a string", claims(nbf="0"), {}, "claims_invalid"),
    ("nbf a bool", claims(nbf=False), {}, "claims_invalid"),
    ("iat in the future", claims(iat=int(NOW) + 60), {}, "token_not_yet_valid"),
    ("iat within leeway", claims(iat=int(NOW) + 5), {}, "ok"),
    ("iat absent", claims(iat=_DROP), {}, "ok"),
    ("iat NaN", claims(iat=math.nan), {}, "claims_invalid"),
    ("iat a bool", claims(iat=True), {}, "claims_invalid"),
    # rule 9: iss
    ("iss missing", claims(iss=_DROP), {}, "issuer_invalid"),
    ("iss other", claims(iss="https://evil.example"), {}, "issuer_invalid"),
    ("iss trailing slash", claims(iss=ISS + "/"), {}, "issuer_invalid"),
    ("iss case differs", claims(iss=ISS.upper()), {}, "issuer_invalid"),
    ("iss a list", claims(iss=[ISS]), {}, "issuer_invalid"),
    # rule 9: sub
    ("sub missing", claims(sub=_DROP), {}, "claims_invalid"),
    ("sub empty", claims(sub=""), {}, "claims_invalid"),
    ("sub a number", claims(sub=123), {}, "claims_invalid"),
    ("transport token", claims(sub=_DROP, sess="1", rotating_token="x"), {}, "claims_invalid"),
    # rule 9: aud
    ("aud ignored when not configured", claims(aud="other"), {}, "ok"),
    ("aud required when configured", claims(), {"audience": ("api",)}, "audience_invalid"),
    ("aud string match", claims(aud="api"), {"audience": ("api",)}, "ok"),
    ("aud list match", claims(aud=["x", "api"]), {"audience": ("api", "y")}, "ok"),
    ("aud mismatch", claims(aud="apix"), {"audience": ("api",)}, "audience_invalid"),
    ("aud list mismatch", claims(aud=["x"]), {"audience": ("api",)}, "audience_invalid"),
    ("aud empty list", claims(aud=[]), {"audience": ("api",)}, "audience_invalid"),
    ("aud substring of a str audience", claims(aud="ap"), {"audience": "api"}, "audience_invalid"),
    ("aud with a str audience", claims(aud="api"), {"audience": "api"}, "ok"),
    ("aud wrong type", claims(aud={"api": 1}), {"audience": ("api",)}, "audience_invalid"),
    # rule 9: azp
    ("azp absent is fine", claims(), {"authorized_parties": ("https://app.example",)}, "ok"),
    (
        "azp match",
        claims(azp="https://app.example"),
        {"authorized_parties": ("https://app.example",)},
        "ok",
    ),
    (
        "azp mismatch",
        claims(azp="https://evil.example"),
        {"authorized_parties": ("https://app.example",)},
        "party_not_authorized",
    ),
    (
        "azp wrong type",
        claims(azp=1),
        {"authorized_parties": ("https://app.example",)},
        "party_not_authorized",
    ),
    ("azp not checked without config", claims(azp="https://evil.example"), {}, "ok"),
    # Wacht's claim shapes, old and new
    ("sid a number", claims(sid=987), {}, "ok"),
    ("sid a list", claims(sid=["1"]), {}, "claims_invalid"),
    ("session_id an object", claims(sid=_DROP, session_id={}), {}, "claims_invalid"),
    ("organization a bool", claims(organization=True), {}, "claims_invalid"),
    ("workspace a float", claims(workspace=1.5), {}, "claims_invalid"),
    ("permissions empty", claims(permissions={}), {}, "ok"),
    (
        "permissions null arrays",
        claims(permissions={"organization": None, "workspace": None}),
        {},
        "ok",
    ),
    (
        "permissions lists",
        claims(permissions={"organization": ["organization:admin"], "workspace": []}),
        {},
        "ok",
    ),
    ("permissions a list", claims(permissions=["a"]), {}, "claims_invalid"),
    ("permissions non-string", claims(permissions={"organization": [1]}), {}, "claims_invalid"),
    (
        "permissions.workspace a string",
        claims(permissions={"workspace": "a"}),
        {},
        "claims_invalid",
    ),
    (
        "flat permissions",
        claims(organization_permissions=["a"], workspace_permissions=None),
        {},
        "ok",
    ),
    ("flat permissions wrong", claims(organization_permissions="a"), {}, "claims_invalid"),
    ("metadata object", claims(metadata={"plan": "pro"}), {}, "ok"),
    ("metadata a list", claims(metadata=["pro"]), {}, "claims_invalid"),
]


@pytest.mark.parametrize(
    ("name", "payload", "options", "expected"), CLAIM_CASES, ids=[c[0] for c in CLAIM_CASES]
)
def test_claim_rules(
    name: str, payload: dict[str, Any], options: dict[str, Any], expected: str
) -> None:
    assert claims_code(payload, **options) == expected


def test_claim_check_order() -> None:
    """Structure first, then time, then iss, aud, azp: a token with many faults gets one code."""
    everything_wrong = claims(
        exp=int(NOW) - 100, iss="https://evil.example", aud="x", azp="https://evil.example"
    )
    opts = {"audience": ("api",), "authorized_parties": ("https://app.example",)}
    assert claims_code({**everything_wrong, "sub": ""}, **opts) == "claims_invalid"
    assert claims_code(everything_wrong, **opts) == "token_expired"
    del everything_wrong["exp"]
    assert claims_code({**everything_wrong, "exp": NOW + 10}, **opts) == "issuer_invalid"
    assert (
        claims_code({**everything_wrong, "exp": NOW + 10, "iss": ISS}, **opts) == "audience_invalid"
    )
    assert (
        claims_code({**everything_wrong, "exp": NOW + 10, "iss": ISS, "aud": "api"}, **opts)
        == "party_not_authorized"
    )


def test_transport_token_is_named() -> None:
    with pytest.raises(WachtAuthError) as info:
        check_claims(claims(sub=_DROP, sess="1", rotating_token="r"), issuer=ISS, now=NOW, leeway=5)
    assert info.value.code == "claims_invalid"
    assert "__session" in info.value.message


def test_header_cache_respects_allow_list_and_is_read_only() -> None:
    token = raw_token('{"alg":"ES256","kid":"k"}', GOOD_PAYLOAD)
    allowed, other = ("ES256",), ("RS256",)
    assert code_of(token, algorithms=allowed) == "ok"
    assert code_of(token, algorithms=other) == "algorithm_not_allowed"
    assert code_of(token, algorithms=allowed) == "ok"
    assert code_of(token, algorithms=("RS256",)) == "algorithm_not_allowed"  # equal, not same
    mutable = ["ES256"]
    assert code_of(token, algorithms=mutable) == "ok"
    mutable[0] = "RS256"  # a list is never trusted from the cache
    assert code_of(token, algorithms=mutable) == "algorithm_not_allowed"
    first = parse(token, max_bytes=8192, algorithms=allowed)
    with pytest.raises(TypeError):
        first.header["kid"] = "changed"  # type: ignore[index]  # shared by later tokens
    again = parse(token, max_bytes=8192, algorithms=allowed)
    assert again.header["kid"] == "k" and again.kid == "k"
    for i in range(200):  # the cache stays bounded and correct past its size
        other = raw_token(json.dumps({"alg": "ES256", "kid": str(i)}), GOOD_PAYLOAD)
        assert parse(other, max_bytes=8192, algorithms=ALGS).kid == str(i)


def test_fuzzed_tokens_only_raise_wacht_errors() -> None:
    """Rule 3: whatever the bytes, parse() answers with a 401 error or a parsed token."""
    import random

    rng = random.Random(20261123)
    seeds = [GOOD, signed(kid="k"), raw_token('{"alg":"ES256","kid":"a"}', '{"a":[1,{"b":null}]}')]
    alphabet = 'AQgw-_09azAZ.=+/ \\"{}[]:,\x00\x7fé'
    for _ in range(3000):
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(chars) + 1)
            if op < 0.4 and chars:
                chars[min(pos, len(chars) - 1)] = rng.choice(alphabet)
            elif op < 0.7:
                chars.insert(pos, rng.choice(alphabet))
            elif chars:
                del chars[min(pos, len(chars) - 1)]
        token = "".join(chars)
        try:
            parse(token, max_bytes=8192, algorithms=ALGS)
        except WachtAuthError as exc:
            assert exc.status == 401
        peek_issuer(token)
    # Decoded JSON fuzz: random payload bytes, properly encoded.
    for _ in range(2000):
        payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        try:
            parse(raw_token(GOOD_HEADER, payload), max_bytes=8192, algorithms=ALGS)
        except WachtAuthError as exc:
            assert exc.code == "token_malformed"
