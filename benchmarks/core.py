"""Core: ``Verifier.verify`` against the ``cryptography`` floor and PyJWT (issue 2).

Everything is measured in one run, on one key and one set of tokens, for RS256-2048 and ES256:

- **floor**: ``public_key.verify`` of ``cryptography`` alone, on each token's signing input
  and signature, both decoded outside the loop (for ES256 the r||s signature is converted to
  DER outside the loop too). No JOSE library can be faster than this.
- **fresh**: ``Verifier.verify`` with the verified-token cache off, on a pool of distinct
  tokens: every call splits, decodes, parses, picks the key, checks the signature and claims.
- **fresh, cache on**: the same pool through verifiers with the default cache, a new
  verifier per round (keys fetched before the round starts), so every call is a miss that
  also stores its result: the cost a new token pays in production.
- **cache hit**: ``Verifier.verify`` on one token over and over.
- **PyJWT**: ``jwt.decode`` with the public key object preloaded, checking ``iss`` and
  requiring ``exp``, ``iat``, ``sub``, on the same pool of tokens.
- **key lookup**: ``KeyIndex.select`` for a known ``kid`` and for a kid-less token.
- **where the time goes**: the steps of a fresh verification timed alone (parsing, the
  signature through ``Key.verify``, the claim checks, building the ``Session``); what is left
  of the fresh figure is the verifier's own glue.

Tokens carry no ``kid`` (as Wacht's usually do not) and come from ``wacht_auth.testing``'s
issuer, whose JWKS the verifier fetches over loopback before any round starts.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from itertools import repeat
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from wacht_auth.keys import Key, KeyIndex
from wacht_auth.oauth import OAuthVerifier
from wacht_auth.session import Session
from wacht_auth.testing import Issuer, OAuthServer
from wacht_auth.tokens import check_claims, parse
from wacht_auth.verifier import Verifier

from ._harness import Measured, Plan, Report, Target, measure

__all__ = ["ALGORITHMS", "bench", "bench_oauth", "mint_oauth_pool", "mint_pool", "tamper"]

#: The algorithms of the core table, with the fresh-verify guard (x the floor).
ALGORITHMS: dict[str, float] = {"RS256": 1.8, "ES256": 1.35}
#: A cache hit costs under 1 µs; a key lookup well under 1 µs.
CACHE_HIT_TARGET_US = 1.0
LOOKUP_TARGET_US = 1.0
#: Tokens live long enough for any run; the verifier re-checks exp on every call anyway.
TOKEN_LIFETIME = 3600
_LABEL = {"RS256": "RS256-2048", "ES256": "ES256 (P-256)"}


def _row(label: str, r: Measured, *, floor: Measured, ratio: bool = True) -> tuple[str, str, str]:
    """A table row: the median and, against ``floor``, the ratio (paired per round)."""
    note = f"{r.ratio(floor):5.2f}x floor" if ratio else " " * 11
    return (label, f"{r.us:9.3f} µs", f"{note}   IQR {r.spread:4.1f}%")


def tamper(token: str) -> str:
    """``token`` with one character of its signature changed (still canonical base64url)."""
    at = len(token) - 20
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def mint_pool(issuer: Issuer, count: int, alg: str | None = None) -> list[str]:
    """``count`` distinct tokens (distinct ``sub`` and ``sid``) from ``issuer``."""
    return [
        issuer.token(
            user_id=f"{100000 + i}",
            session_id=f"{900000 + i}",
            lifetime=TOKEN_LIFETIME,
            alg=alg,
        )
        for i in range(count)
    ]


def _floor(public_key: Any, alg: str, pool: list[str]) -> Callable[[], int]:
    """The floor: ``cryptography`` signature checks alone over the pool's tokens."""
    items: list[tuple[bytes, bytes]] = []
    for token in pool:
        signing_input, _, signature_b64 = token.rpartition(".")
        signature = _b64(signature_b64)
        if alg == "ES256":
            half = len(signature) // 2
            signature = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
        items.append((signing_input.encode("ascii"), signature))
    verify = public_key.verify
    if isinstance(public_key, rsa.RSAPublicKey):
        pad, digest = padding.PKCS1v15(), hashes.SHA256()

        def run() -> int:
            for signing_input, signature in items:
                verify(signature, signing_input, pad, digest)
            return len(items)

    else:
        ecdsa = ec.ECDSA(hashes.SHA256())

        def run() -> int:
            for signing_input, signature in items:
                verify(signature, signing_input, ecdsa)
            return len(items)

    return run


def _over_pool(verify: Callable[[str], object], pool: list[str]) -> Callable[[], int]:
    def run() -> int:
        for token in pool:
            verify(token)
        return len(pool)

    return run


def _repeated(verify: Callable[[str], object], token: str, count: int) -> Callable[[], int]:
    def run() -> int:
        for _ in repeat(None, count):
            verify(token)
        return count

    return run


def _fresh_cache_on(issuer: Issuer, pool: list[str], rounds: int) -> Callable[[], int]:
    """A new verifier with the default cache for each round, keys fetched beforehand, so
    every token of the pool is a miss (each appears once per verifier)."""
    warm = issuer.token(user_id="warm-up", lifetime=TOKEN_LIFETIME)
    verifiers = []
    for _ in range(rounds + 1):  # + the warm-up round of measure()
        verifier = Verifier(issuer.config())
        verifier.verify(warm)  # fetches the JWKS outside the timed round
        verifiers.append(verifier)

    def run() -> int:
        verify = verifiers.pop().verify
        for token in pool:
            verify(token)
        return len(pool)

    return run


def _lookup(index: KeyIndex, alg: str, kid: str | None, count: int) -> Callable[[], int]:
    select = index.select

    def run() -> int:
        for _ in repeat(None, count):
            select(alg, kid)
        return count

    return run


def _verifier_index(verifier: Verifier, issuer: Issuer) -> KeyIndex:
    """The verifier's own key index (its one deployment's fresh key set), else the same JWKS
    indexed here: ``KeyIndex.select`` is the lookup the verifier makes per token."""
    deployments: Any = getattr(verifier, "_all", ())
    if len(deployments) == 1:
        index = deployments[0].keys.current()
        if isinstance(index, KeyIndex):
            return index
    return KeyIndex.from_jwks(issuer.jwks())[0]


_PARTS = (
    ("part_parse", "tokens.parse"),
    ("part_signature", "Key.verify"),
    ("part_claims", "check_claims"),
    ("part_session", "Session.from_claims"),
)


def _parts(verifier: Verifier, key: Key, pool: list[str]) -> list[tuple[str, Callable[[], int]]]:
    """The steps of a fresh verification, each timed alone over the pool (where time goes)."""
    config = verifier.config
    issuer, leeway, clock = config.issuer or "", config.leeway, config.clock
    max_bytes, algorithms = config.max_token_bytes, config.algorithms
    parsed = [parse(t, max_bytes=max_bytes, algorithms=algorithms) for t in pool]

    def parse_all() -> int:
        for token in pool:
            parse(token, max_bytes=max_bytes, algorithms=algorithms)
        return len(pool)

    def signatures() -> int:
        for p in parsed:
            key.verify(p.alg, p.signing_input, p.signature)
        return len(parsed)

    def claims() -> int:
        for p in parsed:
            check_claims(p.claims, issuer=issuer, now=clock(), leeway=leeway)
        return len(parsed)

    def sessions() -> int:
        for p in parsed:
            Session.from_claims(p.claims, p.token)
        return len(parsed)

    runs = (parse_all, signatures, claims, sessions)
    return [(name, run) for (name, _), run in zip(_PARTS, runs, strict=True)]


def _check_setup(verifier: Verifier, pyjwt_decode: Callable[[str], Any], pool: list[str]) -> None:
    """Refuse to time anything that does not actually verify (a benchmark of a no-op)."""
    session: Any = verifier.verify(pool[0])
    if session.user_id != "100000":
        raise RuntimeError(f"verifier returned the wrong user: {session.user_id!r}")
    if pyjwt_decode(pool[0])["sub"] != "100000":
        raise RuntimeError("PyJWT returned the wrong claims")
    try:
        verifier.verify(tamper(pool[0]))
    except Exception as exc:
        if getattr(exc, "code", None) != "signature_invalid":
            raise RuntimeError(f"a forged signature gave {exc!r}, not signature_invalid") from exc
    else:
        raise RuntimeError("the verifier accepted a forged signature")


def bench(alg: str, plan: Plan) -> Report:
    """Measure the core table for ``alg`` (``"RS256"`` or ``"ES256"``)."""
    issuer = Issuer(algorithms=(alg,)).start()
    try:
        return _bench(issuer, alg, plan)
    finally:
        issuer.stop()


def _bench(issuer: Issuer, alg: str, plan: Plan) -> Report:
    pool = mint_pool(issuer, plan.ops)
    fresh = Verifier(issuer.config(token_cache_size=0))
    cached = Verifier(issuer.config())
    fresh.verify(pool[0])  # fetches the JWKS
    index = _verifier_index(fresh, issuer)
    key = index.keys[0]
    kid = key.kid
    public_key = key.public_key  # the very key object the verifier checks signatures with
    options: Any = {"require": ["exp", "iat", "sub"]}

    def pyjwt_decode(token: str) -> Any:
        return jwt.decode(token, public_key, algorithms=[alg], issuer=issuer.url, options=options)

    _check_setup(fresh, pyjwt_decode, pool)
    hits = plan.ops * 20
    lookups = plan.ops * 100
    cases: list[tuple[str, Callable[[], int]]] = [
        ("floor", _floor(public_key, alg, pool)),
        ("fresh", _over_pool(fresh.verify, pool)),
        ("fresh_cache_on", _fresh_cache_on(issuer, pool, plan.rounds)),
        ("hit", _repeated(cached.verify, pool[0], hits)),
        ("pyjwt", _over_pool(pyjwt_decode, pool)),
        ("lookup_kid", _lookup(index, alg, kid, lookups)),
        ("lookup_nokid", _lookup(index, alg, None, lookups)),
        *_parts(fresh, key, pool),
    ]
    m = {r.name: r for r in measure(cases, plan.rounds)}
    floor = m["floor"]

    row = functools.partial(_row, floor=floor)

    report = Report(
        f"Core, {_LABEL[alg]}: kid-less tokens, {plan.rounds} rounds, median µs/op "
        f"({plan.ops} distinct tokens per round)"
        "\n  (ratios: median of the per-round ratios; IQR: spread of the rounds)"
    )
    report.rows = [
        row("(a) floor: cryptography verify alone", m["floor"]),
        row("(b) Verifier.verify, fresh tokens, cache off", m["fresh"]),
        row("(b') Verifier.verify, fresh, cache on (misses)", m["fresh_cache_on"]),
        row("(c) Verifier.verify, repeated token (hit)", m["hit"], ratio=False),
        row("(d) PyJWT jwt.decode, preloaded key", m["pyjwt"]),
        row("(e) KeyIndex.select, known kid", m["lookup_kid"], ratio=False),
        row("(e) KeyIndex.select, no kid", m["lookup_nokid"], ratio=False),
        ("PyJWT / fresh verify", f"{m['pyjwt'].ratio(m['fresh']):8.2f}x", ""),
    ]
    parts = [m[name] for name, _ in _PARTS]
    rest = m["fresh"].us - sum(p.us for p in parts)
    report.rows += [
        (f"(f) fresh (b), part: {label}", f"{p.us:9.3f} µs", f"{100 * p.us / m['fresh'].us:4.0f}%")
        for (_, label), p in zip(_PARTS, parts, strict=True)
    ]
    report.rows.append(
        (
            "(f) rest: glue, and the steps run together",
            f"{rest:9.3f} µs",
            f"{100 * rest / m['fresh'].us:4.0f}%",
        )
    )
    report.targets = [
        Target("fresh verify (b) vs floor", m["fresh"].ratio(floor), ALGORITHMS[alg], False),
        Target("cache hit (c)", m["hit"].us, CACHE_HIT_TARGET_US, False, " µs"),
        Target("key lookup, known kid", m["lookup_kid"].us, LOOKUP_TARGET_US, False, " µs"),
        Target("key lookup, no kid", m["lookup_nokid"].us, LOOKUP_TARGET_US, False, " µs"),
    ]
    return report


# --- OAuth JWT access tokens (issue 16) -------------------------------------------------------

#: The OAuth JWT access token guards are the session token's (docs/performance.md): RS256 only.
OAUTH_FRESH_TARGET = ALGORITHMS["RS256"]


def mint_oauth_pool(server: OAuthServer, count: int) -> list[str]:
    """``count`` distinct OAuth JWT access tokens, shaped as Wacht's OAuth server makes them."""
    return [
        server.access_token(
            f"{100000 + i}",
            client_id="oc_bench",
            scopes=["invoices:read", "profile"],
            resource="urn:wacht:organization:7",
            session_id=f"{900000 + i}",
            expires_in=TOKEN_LIFETIME,
        )
        for i in range(count)
    ]


def bench_oauth(plan: Plan) -> Report:
    """OAuth JWT access tokens: ``OAuthVerifier.verify`` against the RS256 floor, the cache
    hit, and PyJWT with ``PyJWKClient`` (its JWKS fetched and cached before timing)."""
    server = OAuthServer().start()
    try:
        return _bench_oauth(server, plan)
    finally:
        server.stop()


def _bench_oauth(server: OAuthServer, plan: Plan) -> Report:
    pool = mint_oauth_pool(server, plan.ops)
    fresh = OAuthVerifier(server.issuer_settings(token_cache_size=0))
    cached = OAuthVerifier(server.issuer_settings())
    credential = fresh.verify(pool[0])  # fetches the JWKS
    if credential.user_id != "100000" or credential.token_format != "jwt":
        raise RuntimeError(f"the OAuth verifier returned {credential!r}")
    try:
        fresh.verify(tamper(pool[0]))
    except Exception as exc:
        if getattr(exc, "code", None) != "signature_invalid":
            raise RuntimeError(f"a forged signature gave {exc!r}, not signature_invalid") from exc
    else:
        raise RuntimeError("the OAuth verifier accepted a forged signature")
    public_key = server.signing_key.private_key.public_key()
    jwks_client = jwt.PyJWKClient(server.jwks_url, cache_keys=True)
    options: Any = {"require": ["exp", "iat", "sub"]}

    def pyjwk_decode(token: str) -> Any:
        key = jwks_client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            issuer=server.url,
            options={**options, "verify_aud": False},
        )
        if claims.get("token_use") != "access_token":  # the same rule, to be fair
            raise ValueError("not an access token")
        return claims

    if pyjwk_decode(pool[0])["sub"] != "100000":
        raise RuntimeError("PyJWT returned the wrong claims")
    hits = plan.ops * 20
    cases: list[tuple[str, Callable[[], int]]] = [
        ("floor", _floor(public_key, "RS256", pool)),
        ("fresh", _over_pool(fresh.verify, pool)),
        ("hit", _repeated(cached.verify, pool[0], hits)),
        ("pyjwk", _over_pool(pyjwk_decode, pool)),
    ]
    m = {r.name: r for r in measure(cases, plan.rounds)}
    floor = m["floor"]

    row = functools.partial(_row, floor=floor)

    report = Report(
        f"Core, OAuth JWT access tokens (RS256-2048, kid): {plan.rounds} rounds, median µs/op "
        f"({plan.ops} distinct tokens per round)"
    )
    report.rows = [
        row("(a) floor: cryptography verify alone", m["floor"]),
        row("(b) OAuthVerifier.verify, fresh tokens, cache off", m["fresh"]),
        row("(c) OAuthVerifier.verify, repeated token (hit)", m["hit"], ratio=False),
        row("(d) PyJWT PyJWKClient lookup + jwt.decode", m["pyjwk"]),
        ("PyJWT PyJWKClient / fresh verify", f"{m['pyjwk'].ratio(m['fresh']):8.2f}x", ""),
    ]
    report.targets = [
        Target(
            "OAuth fresh verify (b) vs floor", m["fresh"].ratio(floor), OAUTH_FRESH_TARGET, False
        ),
        Target("OAuth cache hit (c)", m["hit"].us, CACHE_HIT_TARGET_US, False, " µs"),
    ]
    return report
