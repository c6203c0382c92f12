"""wacht_auth.testing: the in-process issuer really serves keys and mints Wacht-shaped tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest

from wacht_auth import Config, WachtAuthError
from wacht_auth.testing import JWKS_PATH, SIGNING_ALGORITHMS, Issuer, SigningKey

TIMEOUT = 5


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, timeout: float = TIMEOUT) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without following redirects; HTTP errors are returned, not raised."""
    try:
        with _opener.open(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def served_jwks(issuer: Issuer) -> dict[str, Any]:
    status, headers, body = fetch(issuer.jwks_url)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    result: dict[str, Any] = json.loads(body)
    return result


def decode(token: str, jwk: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Verify ``token`` with PyJWT against a published JWK."""
    kwargs.setdefault("options", {"verify_aud": False})
    result: dict[str, Any] = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]], **kwargs
    )
    return result


# -- SigningKey ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", SIGNING_ALGORITHMS)
def test_signing_key_round_trips_through_pyjwt(alg: str) -> None:
    key = SigningKey.generate(alg)
    assert key.alg == alg
    jwk = key.public_jwk()
    assert jwk["kid"] == key.kid and jwk["use"] == "sig" and jwk["alg"] == alg
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    token = key.sign({"sub": "1", "exp": 2**40})
    assert jwt.get_unverified_header(token) == {"alg": alg, "typ": "JWT"}
    assert jwt.decode(token, key.public_pem(), algorithms=[alg])["sub"] == "1"
    assert decode(token, jwk)["sub"] == "1"


def test_signing_key_shapes() -> None:
    es = SigningKey.generate("ES256", kid="k1").public_jwk()
    assert es["kty"] == "EC" and es["crv"] == "P-256" and es["kid"] == "k1"
    rs_key = SigningKey.generate("RS256")
    rs = rs_key.public_jwk()
    assert rs["kty"] == "RSA" and rs["e"] == "AQAB"
    assert rs_key.private_key.key_size == 2048  # type: ignore[union-attr]
    assert SigningKey.generate("EdDSA").public_jwk()["crv"] == "Ed25519"
    assert rs_key.kid == rs_key.thumbprint()
    assert rs_key.public_pem().startswith("-----BEGIN PUBLIC KEY-----")


def test_signing_key_rejects_symmetric_and_unknown() -> None:
    for alg in ("HS256", "none", "es256"):
        with pytest.raises(ValueError):
            SigningKey.generate(alg)


def test_sign_headers_kid_and_deletion() -> None:
    key = SigningKey.generate("ES256")
    token = key.sign({"sub": "1"}, include_kid=True, headers={"typ": None, "x": 1})
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": key.kid, "x": 1}
    # A lying alg header: the signature is still made with ES256.
    lying = key.sign({"sub": "1"}, headers={"alg": "RS256"})
    assert jwt.get_unverified_header(lying)["alg"] == "RS256"


# -- the JWKS server -------------------------------------------------------------------------


def test_serves_jwks_over_http() -> None:
    with Issuer(algorithms=("ES256", "RS256")) as issuer:
        assert issuer.url.startswith("http://127.0.0.1:")
        assert issuer.jwks_url == issuer.url + JWKS_PATH
        body = served_jwks(issuer)
        assert body == issuer.jwks()
        assert [k["alg"] for k in body["keys"]] == ["ES256", "RS256"]
        assert issuer.fetch_count == 1
        status, _, _ = fetch(issuer.url + "/other")
        assert status == 404
        assert issuer.fetch_count == 1  # other paths are not key fetches
    with pytest.raises(OSError):
        fetch(issuer.jwks_url, timeout=1)


def test_query_string_is_still_a_fetch(wacht_issuer: Issuer) -> None:
    assert fetch(wacht_issuer.jwks_url + "?x=1")[0] == 200
    assert wacht_issuer.fetch_count == 1


def test_fetch_count_counts_and_resets(wacht_issuer: Issuer) -> None:
    for _ in range(3):
        served_jwks(wacht_issuer)
    assert wacht_issuer.fetch_count == 3
    wacht_issuer.reset_count()
    assert wacht_issuer.fetch_count == 0


def test_fetch_count_is_thread_safe(wacht_issuer: Issuer) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                served_jwks(wacht_issuer)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert wacht_issuer.fetch_count == 40


def test_url_before_start_is_a_clear_error() -> None:
    issuer = Issuer()
    with pytest.raises(RuntimeError, match="start"):
        _ = issuer.url
    assert "not started" in repr(issuer)


def test_start_is_idempotent_and_returns_self() -> None:
    issuer = Issuer()
    try:
        assert issuer.start() is issuer
        url = issuer.url
        issuer.start()
        assert issuer.url == url
        assert served_jwks(issuer)["keys"]
    finally:
        issuer.stop()
        issuer.stop()
    assert not issuer.is_up


# -- minting ---------------------------------------------------------------------------------


def test_token_has_wacht_claims(wacht_issuer: Issuer) -> None:
    now = int(time.time())
    token = wacht_issuer.token()
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT"}  # no kid
    claims = decode(token, served_jwks(wacht_issuer)["keys"][0])
    assert claims["iss"] == wacht_issuer.url
    assert claims["sub"] == "user_1" and claims["sid"] == "sess_1"
    assert abs(claims["iat"] - now) <= 2
    assert claims["exp"] == claims["iat"] + 60
    assert claims["permissions"] == {"organization": [], "workspace": []}
    for absent in ("organization", "workspace", "metadata", "nbf", "aud", "azp"):
        assert absent not in claims


def test_token_with_everything(wacht_issuer: Issuer) -> None:
    token = wacht_issuer.token(
        "3141592653",
        session_id="2718281828",
        organization_id="11",
        workspace_id="22",
        permissions={"organization": ["organization:admin"], "workspace": ["invoices:read"]},
        metadata={"plan": "pro"},
        iat=1000,
        lifetime=35,
        nbf=999,
        claims={"azp": "https://app.example", "sid": None},
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "iss": wacht_issuer.url,
        "sub": "3141592653",
        "iat": 1000,
        "exp": 1035,
        "nbf": 999,
        "organization": "11",
        "workspace": "22",
        "permissions": {"organization": ["organization:admin"], "workspace": ["invoices:read"]},
        "metadata": {"plan": "pro"},
        "azp": "https://app.example",
    }


def test_permission_shapes(wacht_issuer: Issuer) -> None:
    def perms(value: Any) -> Any:
        return wacht_issuer.claims(permissions=value)["permissions"]

    assert perms(["a", "b"]) == {"organization": ["a", "b"], "workspace": []}
    assert perms("a") == {"organization": ["a"], "workspace": []}
    assert perms({"workspace": ["w"]}) == {"organization": [], "workspace": ["w"]}
    assert perms({"organization": None}) == {"organization": [], "workspace": []}


def test_exp_and_user_none(wacht_issuer: Issuer) -> None:
    claims = wacht_issuer.claims(None, session_id=None, exp=5, metadata={})
    assert "sub" not in claims and "sid" not in claims and "metadata" not in claims
    assert claims["exp"] == 5


def test_issuer_clock_drives_iat_and_config() -> None:
    now = [1_700_000_000.5]
    with Issuer(clock=lambda: now[0]) as issuer:
        assert issuer.claims()["iat"] == 1_700_000_000
        config = issuer.config()
        assert config.clock() == now[0]


def test_rs256_issuer_and_kid(wacht_issuer_rs256: Issuer) -> None:
    token = wacht_issuer_rs256.token(include_kid=True)
    header = jwt.get_unverified_header(token)
    jwk = served_jwks(wacht_issuer_rs256)["keys"][0]
    assert header == {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
    assert decode(token, jwk)["sub"] == "user_1"


def test_include_kid_default() -> None:
    with Issuer(include_kid=True) as issuer:
        assert jwt.get_unverified_header(issuer.token())["kid"] == issuer.signing_key.kid
        assert "kid" not in jwt.get_unverified_header(issuer.token(include_kid=False))


def test_alg_picks_the_key() -> None:
    with Issuer(algorithms=("ES256", "RS256")) as issuer:
        assert issuer.signing_key.alg == "ES256"
        token = issuer.token(alg="RS256")
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        decode(token, issuer.key_for("RS256").public_jwk())
        with pytest.raises(ValueError, match="EdDSA"):
            issuer.token(alg="EdDSA")


def test_expired_token_is_expired(wacht_issuer: Issuer) -> None:
    token = wacht_issuer.expired_token(user_id="7")
    jwk = served_jwks(wacht_issuer)["keys"][0]
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(token, jwk, leeway=300)
    claims = decode(token, jwk, options={"verify_exp": False, "verify_aud": False})
    assert claims["sub"] == "7"
    assert claims["exp"] < time.time() - 300


def test_forged_token_is_forged() -> None:
    with Issuer(include_kid=True) as issuer:
        token = issuer.forged_token(user_id="admin")
        jwk = served_jwks(issuer)["keys"][0]
        assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
        with pytest.raises(jwt.InvalidSignatureError):
            decode(token, jwk)
        # The forging key is stable across calls and never published.
        assert issuer.forged_token() != issuer.token()
        assert len(issuer.jwks()["keys"]) == 1
        with pytest.raises(TypeError):
            issuer.forged_token(key=issuer.signing_key)


def test_transport_token_has_no_sub(wacht_issuer: Issuer) -> None:
    token = wacht_issuer.transport_token()
    claims = decode(token, served_jwks(wacht_issuer)["keys"][0])
    assert "sub" not in claims
    assert claims["sess"] == "sess_1" and claims["rotating_token"]
    assert claims["iss"] == wacht_issuer.url
    assert claims["exp"] - claims["iat"] >= 24 * 3600


def test_config_is_ready(wacht_issuer: Issuer, wacht_config: Config) -> None:
    assert wacht_config.frontend_api_url == wacht_issuer.url
    assert wacht_config.issuer == wacht_issuer.url
    assert wacht_config.jwks_url == wacht_issuer.jwks_url
    assert "ES256" in wacht_config.algorithms and "RS256" in wacht_config.algorithms
    assert wacht_issuer.config(leeway=0, jwks_cooldown=0).leeway == 0


def test_config_allows_every_published_algorithm() -> None:
    with Issuer(algorithms=("EdDSA",)) as issuer:
        assert issuer.config().algorithms == ("RS256", "ES256", "EdDSA")
        assert issuer.config(algorithms=("EdDSA",)).algorithms == ("EdDSA",)


def test_wacht_token_fixture(wacht_issuer: Issuer, wacht_token: str) -> None:
    assert decode(wacht_token, wacht_issuer.jwks()["keys"][0])["sub"] == "user_1"


# -- key server control ----------------------------------------------------------------------


def test_fail_and_restore(wacht_issuer: Issuer) -> None:
    wacht_issuer.fail(503, body=b"oops", content_type="text/plain", headers={"Retry-After": "1"})
    status, headers, body = fetch(wacht_issuer.jwks_url)
    assert (status, body, headers["Content-Type"]) == (503, b"oops", "text/plain")
    assert headers["Retry-After"] == "1"
    wacht_issuer.fail()
    assert fetch(wacht_issuer.jwks_url)[0] == 500
    wacht_issuer.fail(None)
    assert served_jwks(wacht_issuer) == wacht_issuer.jwks()
    assert wacht_issuer.fetch_count == 3


def test_set_response(wacht_issuer: Issuer) -> None:
    wacht_issuer.set_response(b"<html>login</html>", "text/html")
    status, headers, body = fetch(wacht_issuer.jwks_url)
    assert (status, headers["Content-Type"], body) == (200, "text/html", b"<html>login</html>")
    big = b"x" * (2 << 20)
    wacht_issuer.set_response(big)
    assert fetch(wacht_issuer.jwks_url)[2] == big
    wacht_issuer.set_response(None)
    assert served_jwks(wacht_issuer) == wacht_issuer.jwks()


def test_client_hanging_up_on_big_body_is_quiet(wacht_issuer: Issuer) -> None:
    wacht_issuer.set_response(b"x" * (8 << 20))
    with urllib.request.urlopen(wacht_issuer.jwks_url, timeout=TIMEOUT) as resp:
        assert len(resp.read(1024)) == 1024
    wacht_issuer.set_response(None)
    assert served_jwks(wacht_issuer)["keys"]


def test_redirect(wacht_issuer: Issuer) -> None:
    wacht_issuer.redirect_to("http://127.0.0.1:9/elsewhere")
    status, headers, _ = fetch(wacht_issuer.jwks_url)
    assert status == 302 and headers["Location"] == "http://127.0.0.1:9/elsewhere"
    wacht_issuer.redirect_to(None)
    assert fetch(wacht_issuer.jwks_url)[0] == 200


def test_delay_slows_and_times_out(wacht_issuer: Issuer) -> None:
    wacht_issuer.delay(0.3)
    started = time.monotonic()
    assert fetch(wacht_issuer.jwks_url)[0] == 200
    assert time.monotonic() - started >= 0.3
    wacht_issuer.delay(5)
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        fetch(wacht_issuer.jwks_url, timeout=0.2)
    wacht_issuer.delay(0)
    started = time.monotonic()
    assert fetch(wacht_issuer.jwks_url)[0] == 200
    assert time.monotonic() - started < 2
    with pytest.raises(ValueError):
        wacht_issuer.delay(-1)


def test_stop_cuts_a_delay_short() -> None:
    issuer = Issuer().start()
    issuer.delay(30)
    results: list[Any] = []

    def client() -> None:
        try:
            results.append(fetch(issuer.jwks_url, timeout=10)[0])
        except OSError as exc:
            results.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    for _ in range(100):  # wait until the request has arrived
        if issuer.fetch_count:
            break
        time.sleep(0.02)
    started = time.monotonic()
    issuer.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert results


def test_cache_control(wacht_issuer: Issuer) -> None:
    assert "Cache-Control" not in fetch(wacht_issuer.jwks_url)[1]
    wacht_issuer.set_cache_control("max-age=120")
    assert fetch(wacht_issuer.jwks_url)[1]["Cache-Control"] == "max-age=120"
    wacht_issuer.set_cache_control(None)
    assert "Cache-Control" not in fetch(wacht_issuer.jwks_url)[1]


def test_restore_undoes_every_control(wacht_issuer: Issuer) -> None:
    wacht_issuer.fail(500)
    wacht_issuer.set_response(b"x")
    wacht_issuer.redirect_to("http://127.0.0.1:9/")
    wacht_issuer.delay(1)
    wacht_issuer.set_cache_control("no-store")
    wacht_issuer.restore()
    status, headers, _ = fetch(wacht_issuer.jwks_url)
    assert status == 200 and "Cache-Control" not in headers


def test_down_refuses_then_up_on_same_port(wacht_issuer: Issuer) -> None:
    url = wacht_issuer.jwks_url
    served_jwks(wacht_issuer)
    wacht_issuer.down()
    assert not wacht_issuer.is_up
    assert wacht_issuer.jwks_url == url
    with pytest.raises(urllib.error.URLError) as info:
        fetch(url, timeout=1)
    assert isinstance(info.value.reason, ConnectionRefusedError)
    wacht_issuer.up()
    wacht_issuer.up()  # no-op when already up
    assert wacht_issuer.jwks_url == url
    assert served_jwks(wacht_issuer) == wacht_issuer.jwks()
    assert wacht_issuer.fetch_count == 2  # refused connections never reach the server


def test_down_needs_a_started_issuer() -> None:
    with pytest.raises(RuntimeError):
        Issuer().down()
    with pytest.raises(RuntimeError):
        Issuer().up()


def test_rotate_replaces_the_key() -> None:
    with Issuer(include_kid=True) as issuer:
        old = issuer.signing_key
        old_token = issuer.token()
        new = issuer.rotate()
        assert new.alg == "ES256" and new.kid != old.kid
        assert issuer.signing_key is new
        keys = served_jwks(issuer)["keys"]
        assert [k["kid"] for k in keys] == [new.kid]
        assert jwt.get_unverified_header(issuer.token())["kid"] == new.kid
        decode(issuer.token(), keys[0])
        with pytest.raises(jwt.InvalidSignatureError):
            decode(old_token, {**keys[0]})


def test_rotate_keep_old_and_other_alg() -> None:
    with Issuer() as issuer:
        old = issuer.signing_key
        new = issuer.rotate("RS256", keep_old=True)
        assert issuer.signing_key is new
        assert [k.kid for k in issuer.keys] == [old.kid, new.kid]
        assert jwt.get_unverified_header(issuer.token())["alg"] == "RS256"
        assert issuer.key_for("ES256") is old
        newer = issuer.rotate()
        assert [k.kid for k in issuer.keys] == [old.kid, newer.kid]


def test_add_and_remove_key(wacht_issuer: Issuer) -> None:
    extra = SigningKey.generate("RS256", kid="extra")
    wacht_issuer.add_key(extra)
    kids = [k["kid"] for k in served_jwks(wacht_issuer)["keys"]]
    assert kids == [wacht_issuer.signing_key.kid, "extra"]
    token = wacht_issuer.token(key=extra, include_kid=True)
    assert jwt.get_unverified_header(token)["kid"] == "extra"
    wacht_issuer.remove_key("extra")
    assert [k["kid"] for k in served_jwks(wacht_issuer)["keys"]] == kids[:1]
    with pytest.raises(KeyError):
        wacht_issuer.remove_key("extra")
    # Removing the signer's key empties the set; the signer still signs.
    wacht_issuer.remove_key(wacht_issuer.signing_key.kid)
    assert served_jwks(wacht_issuer) == {"keys": []}
    assert wacht_issuer.token()


def test_fixed_port_and_reuse() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Issuer(port=port) as issuer:
        assert issuer.url == f"http://127.0.0.1:{port}"
    with Issuer(port=port) as issuer:  # the port is free again after stop()
        assert served_jwks(issuer)["keys"]


def test_plugin_fixtures_are_registered(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("wacht_auth")
    assert plugin is not None
    for name in ("wacht_issuer", "wacht_issuer_rs256", "wacht_config", "wacht_token"):
        assert hasattr(plugin, name)


def test_requests_are_recorded(wacht_issuer: Issuer) -> None:
    req = urllib.request.Request(wacht_issuer.jwks_url + "?v=2", headers={"User-Agent": "ua/1"})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        resp.read()
    fetch(wacht_issuer.url + "/nope")
    (recorded,) = wacht_issuer.requests
    assert recorded.method == "GET" and recorded.path == JWKS_PATH + "?v=2"
    assert recorded.headers["user-agent"] == "ua/1"
    wacht_issuer.reset_count()
    assert wacht_issuer.requests == ()


def test_algorithms_as_a_single_string() -> None:
    assert [k.alg for k in Issuer(algorithms="RS256").keys] == ["RS256"]
    with pytest.raises(ValueError):
        Issuer(algorithms=())


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_insecure_hmac_token_uses_the_public_pem(wacht_issuer: Issuer, alg: str) -> None:
    token = wacht_issuer.insecure_token(alg, user_id="9")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "typ": "JWT"}
    signing_input, _, signature = token.rpartition(".")
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    expected = hmac.new(
        wacht_issuer.signing_key.public_pem().encode(), signing_input.encode(), digest
    ).digest()
    assert signature == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "9" and claims["iss"] == wacht_issuer.url
    other = wacht_issuer.insecure_token(alg, secret="s" * 64)
    assert jwt.decode(other, "s" * 64, algorithms=[alg], options={"verify_aud": False})


def test_insecure_none_token(wacht_issuer: Issuer) -> None:
    token = wacht_issuer.insecure_token(headers={"typ": None})
    assert token.endswith(".") and token.count(".") == 2
    assert jwt.get_unverified_header(token) == {"alg": "none"}
    with pytest.raises(ValueError):
        wacht_issuer.insecure_token("RS256")


def test_plugin_in_a_user_suite(tmp_path: Path) -> None:
    """The pytest11 entry point: a project's own suite gets the fixtures and the marker
    without an import, and the first example of docs/testing.md passes there."""
    (tmp_path / "test_user.py").write_text(
        "def test_it(wacht_issuer, wacht_issuer_rs256, wacht_config, wacht_token):\n"
        "    assert wacht_config.issuer == wacht_issuer.url\n"
        "    assert wacht_token.count('.') == 2\n"
        "    assert wacht_issuer_rs256.signing_key.alg == 'RS256'\n"
    )
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.wacht(algorithms=('RS256', 'EdDSA'), include_kid=True)\n"
        "def test_module_marker(wacht_issuer, wacht_token):\n"
        "    assert [k.alg for k in wacht_issuer.keys] == ['RS256', 'EdDSA']\n"
        "    assert wacht_issuer.include_kid and wacht_token.count('.') == 2\n"
        "@pytest.mark.wacht(config={'jwks_cooldown': 0, 'leeway': 0})\n"
        "def test_config_overrides(wacht_config):\n"
        "    assert wacht_config.jwks_cooldown == 0 and wacht_config.leeway == 0\n"
        "    assert 'EdDSA' in wacht_config.algorithms\n"
    )
    expected = 3
    try:
        import flask  # noqa: F401

        import wacht_auth.integrations.flask  # noqa: F401
    except ImportError:
        pass
    else:
        (tmp_path / "test_views.py").write_text(_doc_blocks()[0])
        expected += 3
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--strict-markers", "-p", "no:cacheprovider", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{expected} passed" in done.stdout


@pytest.mark.wacht(algorithms=("ES384",), config={"leeway": 1})
def test_marker_in_this_suite(wacht_issuer: Issuer, wacht_config: Config) -> None:
    assert wacht_issuer.signing_key.alg == "ES384"
    assert wacht_config.leeway == 1 and "ES384" in wacht_config.algorithms


# -- end to end with the verifier -------------------------------------------------------------


def _verifier(config: Config) -> Any:
    module = pytest.importorskip("wacht_auth.verifier")
    return module.Verifier(config)


@pytest.mark.parametrize("algorithms", [("ES256",), ("RS256",), ("ES256", "RS256")])
def test_verifier_accepts_minted_tokens(algorithms: tuple[str, ...]) -> None:
    with Issuer(algorithms=algorithms) as issuer:
        verifier = _verifier(issuer.config())
        for alg in algorithms:
            session = verifier.verify(
                issuer.token(
                    "2741598367104",
                    session_id="99",
                    organization_id="7",
                    workspace_id="8",
                    permissions={"organization": ["invoices:read"], "workspace": ["w:x"]},
                    metadata={"plan": "pro"},
                    alg=alg,
                )
            )
            assert session.user_id == "2741598367104" and session.session_id == "99"
            assert session.organization_id == "7" and session.workspace_id == "8"
            assert session.has_permission("invoices:read", "organization")
            assert session.has_permission("w:x", "workspace")
            assert dict(session.metadata) == {"plan": "pro"}
        assert issuer.fetch_count == 1


def test_verifier_rejects_the_bad_tokens(wacht_issuer: Issuer) -> None:
    verifier = _verifier(wacht_issuer.config())
    now = time.time()
    bad = {
        "token_expired": wacht_issuer.expired_token(),
        "signature_invalid": wacht_issuer.forged_token(),
        "claims_invalid": wacht_issuer.transport_token(),
        "algorithm_not_allowed": wacht_issuer.insecure_token("HS256"),
        "issuer_invalid": wacht_issuer.token(claims={"iss": "https://other.example"}),
        "token_not_yet_valid": wacht_issuer.token(nbf=now + 600),
    }
    for code, token in bad.items():
        with pytest.raises(WachtAuthError) as info:
            verifier.verify(token)
        assert info.value.code == code
        assert info.value.status == 401
    with pytest.raises(WachtAuthError) as info:
        verifier.verify(wacht_issuer.token(None))
    assert info.value.code == "claims_invalid"
    with pytest.raises(WachtAuthError) as info:
        verifier.verify(wacht_issuer.insecure_token("none"))
    assert info.value.code in ("token_malformed", "algorithm_not_allowed")


@pytest.mark.parametrize("include_kid", [False, True])
def test_verifier_follows_a_rotation(include_kid: bool) -> None:
    with Issuer(include_kid=include_kid) as issuer:
        verifier = _verifier(issuer.config(jwks_cooldown=0))
        verifier.verify(issuer.token())
        issuer.rotate()
        assert verifier.verify(issuer.token("after")).user_id == "after"
        assert issuer.fetch_count == 2


def test_verifier_shares_the_issuer_clock() -> None:
    now = [1_700_000_000.0]
    with Issuer(clock=lambda: now[0]) as issuer:
        verifier = _verifier(issuer.config())
        token = issuer.token(lifetime=35)
        verifier.verify(token)
        now[0] += 60
        with pytest.raises(WachtAuthError) as info:
            verifier.verify(token)
        assert info.value.code == "token_expired"


def test_verifier_keeps_serving_while_the_key_server_is_down(wacht_issuer: Issuer) -> None:
    verifier = _verifier(wacht_issuer.config())
    verifier.verify(wacht_issuer.token())
    wacht_issuer.down()
    assert verifier.verify(wacht_issuer.token("other")).user_id == "other"


def test_many_concurrent_fetches_are_all_answered(wacht_issuer: Issuer) -> None:
    wacht_issuer.delay(0.2)  # hold every answer so the connections really overlap
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        status = fetch(wacht_issuer.jwks_url, timeout=10)[0]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(100)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert statuses == [200] * 100
    assert wacht_issuer.fetch_count == 100
    assert time.monotonic() - started < 10


DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)


def test_docs_plain_example_runs() -> None:
    """The "Without pytest" example of docs/testing.md."""
    verifier_module = pytest.importorskip("wacht_auth.verifier")
    import wacht_auth

    if not hasattr(wacht_auth, "Verifier"):
        pytest.skip("wacht_auth does not export Verifier yet")
    (block,) = [b for b in _doc_blocks() if "with Issuer() as issuer:" in b]
    exec(compile(block, str(DOCS), "exec"), {"__name__": "docs_example"})
    assert verifier_module.Verifier is wacht_auth.Verifier


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        issuer = Issuer(host="::1").start()
    except RuntimeError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert issuer.url == f"http://[::1]:{issuer.port}"
        assert issuer.config().jwks_url == issuer.jwks_url
        assert served_jwks(issuer) == issuer.jwks()
    finally:
        issuer.stop()
