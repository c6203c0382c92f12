"""The wacht-auth command line against a local issuer: exit codes, error codes, JSON fields."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wacht_auth
from wacht_auth import Config, Verifier, _demo
from wacht_auth._dev import DevIssuer
from wacht_auth.cli import EXIT_CODES, main
from wacht_auth.testing import Issuer, OAuthServer

ROOT = Path(__file__).resolve().parent.parent
CLEARED = (
    "WACHT_FRONTEND_API_URL",
    "WACHT_FRONTEND_HOST",
    "WACHT_PUBLISHABLE_KEY",
    "NEXT_PUBLIC_WACHT_PUBLISHABLE_KEY",
    "WACHT_JWT_KEY",
    "WACHT_PUBLIC_SIGNING_KEY",
    "WACHT_ISSUER",
    "WACHT_JWKS_URL",
    "WACHT_OAUTH_ISSUERS",
)


@pytest.fixture(autouse=True)
def no_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, wacht_issuer: Issuer) -> Issuer:
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", wacht_issuer.url)
    return wacht_issuer


@pytest.fixture
def dev() -> Iterator[DevIssuer]:
    with DevIssuer() as issuer:
        yield issuer


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str) -> tuple[int, dict[str, Any]]:
    """Run with --json; returns the exit code and the result, or the error object."""
    code, out, err = run(*argv, "--json")
    (line,) = out.splitlines()  # one verdict, on stdout, whatever the outcome
    if code == 0:
        assert err == ""
        return code, json.loads(line)
    return code, json.loads(line)["error"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the command itself ---------------------------------------------------------------------


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.split() == ["wacht-auth", wacht_auth.__version__]
    assert run_json("--version") == (0, {"version": wacht_auth.__version__})


@pytest.mark.parametrize("command", ["verify", "decode", "jwks", "dev", "demo", "dev mint"])
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command.split(), "--help"]) == 0
    text = capsys.readouterr().out
    examples = text.split("examples:\n", 1)[1]
    assert f"wacht-auth {command}" in examples
    assert all(f"  {code}  " in text for code in EXIT_CODES)


def test_usage_errors_exit_2() -> None:
    code, error = run_json("verfy")
    assert code == 2 and error["code"] == "usage_error"
    code, error = run_json()
    assert code == 2 and error["code"] == "usage_error"
    code, out, err = run("dev", "--lifetime", "0", "--seconds", "0")
    assert code == 2 and out == "" and err.startswith("wacht-auth: usage_error")


def test_configuration_errors_exit_2_and_name_the_variable() -> None:
    code, error = run_json("verify", "x.y.z")
    assert code == 2 and error["code"] == "configuration_error"
    assert "WACHT_FRONTEND_API_URL" in error["message"] and "--frontend-api-url" in error["message"]
    code, out, err = run("jwks")
    assert code == 2 and out == "" and "WACHT_FRONTEND_API_URL" in err
    code, error = run_json("verify", "x.y.z", "--public-key-file", "/no/such/file.pem")
    assert code == 2 and error["code"] == "configuration_error"


# -- verify -----------------------------------------------------------------------------------


def test_verify_prints_the_session_and_claims(env: Issuer) -> None:
    token = env.token(
        user_id="42",
        organization_id="7",
        workspace_id="8",
        permissions={"organization": ["a"], "workspace": ["b"]},
    )
    code, report = run_json("verify", token)
    assert code == 0 and report["valid"] is True
    assert (report["user_id"], report["session_id"]) == ("42", "sess_1")
    assert (report["organization_id"], report["workspace_id"]) == ("7", "8")
    assert report["permissions"] == {"organization": ["a"], "workspace": ["b"]}
    assert report["claims"]["iss"] == env.url
    assert report["times"]["exp"]["seconds_from_now"] > 0
    code, out, err = run("verify", token)
    assert code == 0 and err == "" and "42" in out


def test_verify_reads_standard_input_with_a_bearer_prefix(
    env: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"Bearer {env.token(user_id='9')}\n"))
    code, report = run_json("verify", "-")
    assert code == 0 and report["user_id"] == "9"


def test_verify_reports_the_exact_reason_on_stderr(env: Issuer) -> None:
    code, out, err = run("verify", env.expired_token())
    assert code == 1 and out == "" and err.startswith("wacht-auth: token_expired")
    for token, expected in (
        (env.expired_token(), "token_expired"),
        (env.transport_token(), "claims_invalid"),
        (env.forged_token(), "signature_invalid"),
        ("not.a.token", "token_malformed"),
    ):
        code, error = run_json("verify", token)
        assert (code, error["code"], error["status"]) == (1, expected, 401)


def test_verify_exits_3_when_the_keys_are_unavailable(env: Issuer) -> None:
    env.fail(500)
    code, error = run_json("verify", env.token())
    assert (code, error["code"], error["status"]) == (3, "jwks_unavailable", 503)


def test_verify_with_a_pinned_key_file(env: Issuer, tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(env.signing_key.public_pem())
    env.down()
    code, report = run_json(
        "verify", env.token(), "--public-key-file", str(path), "--issuer", env.url
    )
    assert code == 0 and report["user_id"] == "user_1"


# -- decode -----------------------------------------------------------------------------------


def test_decode_shows_header_claims_and_times_unverified(wacht_issuer: Issuer) -> None:
    token = wacht_issuer.forged_token(user_id="5", nbf=wacht_issuer.clock() - 10, lifetime=120)
    code, report = run_json("decode", token)
    assert code == 0 and report["verified"] is False  # a forged token decodes all the same
    assert report["header"]["alg"] == "ES256" and report["claims"]["sub"] == "5"
    assert set(report["times"]) == {"iat", "nbf", "exp"}
    exp = report["times"]["exp"]
    assert 100 < exp["seconds_from_now"] <= 120 and exp["utc"].endswith("Z")
    assert report["times"]["nbf"]["seconds_from_now"] < 0
    code, out, err = run("decode", token)
    assert code == 0 and err == "" and out.startswith("UNVERIFIED")


def test_decode_an_expired_token_shows_it_in_the_past(wacht_issuer: Issuer) -> None:
    code, report = run_json("decode", wacht_issuer.expired_token())
    assert code == 0 and report["times"]["exp"]["seconds_from_now"] < -3000


@pytest.mark.parametrize("token", ["abc", "a.b.c", "e30.bm90IGpzb24.c2ln", "W10.W10.c2ln"])
def test_decode_refuses_what_is_not_a_jws(token: str) -> None:
    code, error = run_json("decode", token)
    assert code == 1 and error["code"] == "token_malformed"


# -- jwks -------------------------------------------------------------------------------------


def test_jwks_lists_the_keys(env: Issuer) -> None:
    code, report = run_json("jwks")
    assert code == 0 and report["jwks_url"] == env.jwks_url
    assert [key["kid"] for key in report["keys"]] == [env.signing_key.kid]
    assert report["keys"][0]["algorithms"] == ["ES256"] and report["skipped"] == []


def test_jwks_exits_3_when_the_keys_are_unavailable(env: Issuer) -> None:
    env.fail(500)
    code, error = run_json("jwks")
    assert (code, error["code"], error["outcome"]) == (3, "jwks_unavailable", "http_500")
    env.fail(None)
    env.set_response(b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    code, error = run_json("jwks")
    assert (code, error["code"]) == (3, "jwks_invalid")


# -- dev --------------------------------------------------------------------------------------


def test_dev_serves_prints_a_config_and_a_token() -> None:
    code, report = run_json(
        "dev", "--seconds", "0.2", "--user", "9", "--permission", "a:b,c:d", "--workspace", "3"
    )
    assert code == 0
    assert report["env"] == {"WACHT_FRONTEND_API_URL": report["issuer"]}
    assert report["issuer"].startswith("http://127.0.0.1:")
    assert report["mint_url"] == report["issuer"] + "/dev/token"
    assert report["algorithms"] == ["ES256", "RS256"]
    claims = report["claims"]
    assert (claims["sub"], claims["workspace"], claims["iss"]) == ("9", "3", report["issuer"])
    assert claims["permissions"] == {"organization": ["a:b", "c:d"], "workspace": []}
    code, out, _ = run("dev", "--seconds", "0")
    assert code == 0 and out.strip().splitlines()[-1].count(".") == 2


def test_dev_algorithm_picks_the_default_signer() -> None:
    code, report = run_json("dev", "--algorithm", "RS256", "--seconds", "0")
    assert code == 0
    code, decoded = run_json("decode", report["token"])
    assert decoded["header"]["alg"] == "RS256"


def test_dev_on_a_busy_or_impossible_port_exits_2(dev: DevIssuer) -> None:
    code, error = run_json("dev", "--port", dev.url.rsplit(":", 1)[1], "--seconds", "0")
    assert (code, error["code"]) == (2, "port_unavailable")
    code, error = run_json("dev", "--port", "70000", "--seconds", "0")
    assert (code, error["code"]) == (2, "usage_error")


def test_dev_mint_asks_the_running_issuer(dev: DevIssuer) -> None:
    code, report = run_json(
        "dev", "mint", "--url", dev.url, "--user", "43", "--session", "s9",
        "--organization", "7", "--workspace", "9", "--organization-permission", "a,b",
        "--workspace-permission", "c", "--algorithm", "RS256", "--lifetime", "120",
    )  # fmt: skip
    assert code == 0
    session = Verifier(Config(frontend_api_url=dev.url)).verify(report["token"])
    assert (session.user_id, session.session_id) == ("43", "s9")
    assert (session.organization_id, session.workspace_id) == ("7", "9")
    assert session.organization_permissions == ("a", "b")
    assert session.workspace_permissions == ("c",)
    assert report["claims"]["exp"] - report["claims"]["iat"] == 120
    code, decoded = run_json("decode", report["token"])
    assert decoded["header"]["alg"] == "RS256"


def test_dev_mint_prints_the_token_alone_and_reads_the_environment(
    dev: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", dev.url)
    code, out, err = run("dev", "mint", "--user", "44")
    assert code == 0 and err == "" and len(out.split()) == 1
    assert Verifier(Config(frontend_api_url=dev.url)).verify(out.strip()).user_id == "44"


def test_dev_mint_failures(monkeypatch: pytest.MonkeyPatch, wacht_issuer: Issuer) -> None:
    code, error = run_json("dev", "mint")
    assert (code, error["code"]) == (2, "configuration_error")
    assert "WACHT_FRONTEND_API_URL" in error["message"]
    code, error = run_json("dev", "mint", "--url", "https://example.com")
    assert (code, error["code"]) == (2, "configuration_error")
    code, error = run_json("dev", "mint", "--url", f"http://127.0.0.1:{free_port()}")
    assert (code, error["code"]) == (3, "issuer_unreachable")
    code, error = run_json("dev", "mint", "--url", wacht_issuer.url)  # serves no /dev/token
    assert (code, error["code"]) == (2, "not_a_dev_issuer")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_the_mint_endpoint_refuses_web_pages_and_bad_parameters(dev: DevIssuer) -> None:
    status, body = get(dev.mint_url + "?user_id=1&organization_id=2")
    assert status == 200 and body["claims"]["organization"] == "2"
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "evil.example"},
    ):
        status, body = get(dev.mint_url, headers)
        assert (status, body["error"]["code"]) == (403, "forbidden")
    for query in ("bogus=1", "alg=HS256", "lifetime=-1", "user_id=a&user_id=b", "lifetime=x"):
        status, body = get(f"{dev.mint_url}?{query}")
        assert (status, body["error"]["code"]) == (400, "bad_request")
    status, body = get(dev.url + "/.well-known/jwks.json")
    assert status == 200 and [key["alg"] for key in body["keys"]] == ["ES256", "RS256"]


# -- demo -------------------------------------------------------------------------------------


def test_demo_runs_end_to_end() -> None:
    code, report = run_json("demo")
    assert code == 0 and (report["passed"], report["failed"]) == (11, 0)
    assert all(case["ok"] for case in report["cases"])
    assert {case["code"] for case in report["cases"]} >= {"token_expired", "permission_denied"}
    # The server-rendered page: anonymous → 302 to the sign-in page; __session → signed in,
    # __auth_<scope> set by the exchange.
    redirect, signed_in = (case for case in report["cases"] if case["path"] == "/page")
    assert redirect["status"] == 302 and "/sign-in?redirect_uri=" in redirect["location"]
    assert signed_in["status"] == 200 and "signed in as 2741" in signed_in["body"]
    assert any(name.startswith("__auth_") for name in signed_in["cookies_set"])
    code, out, _ = run("demo")
    assert code == 0 and out.splitlines()[-1] == "11 passed, 0 failed"  # what `make demo` shows


def test_demo_runs_a_checkout_example_too() -> None:
    code, report = run_json("demo", "--app", "examples.starlette_app:create_app")
    assert code == 0 and report["failed"] == 0
    assert all(case["path"] != "/page" for case in report["cases"])  # the built-in app's page


def test_demo_needs_no_checkout(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom wacht_auth.cli import main\nrc = main(['demo', '--json'])\n"
        "sys.exit(rc or ('examples' in sys.modules and 9))\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=environ, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["failed"] == 0


def test_demo_with_an_unknown_app_exits_2() -> None:
    code, error = run_json("demo", "--app", "no_such_module:create_app")
    assert (code, error["code"], error["app"]) == (2, "app_not_found", "no_such_module:create_app")


def test_demo_without_its_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_demo, "DEMO_REQUIRES", ("no_such_server_module",))
    code, error = run_json("demo")
    assert (code, error["code"], error["extra"]) == (2, "missing_dependency", "demo")
    assert error["module"] == "no_such_server_module"


def test_verify_recognises_an_api_key_and_points_to_the_gateway(
    issuer: Issuer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", "wk_live_abcdef0123456789", "--json"])  # no deployment needed
    captured = capsys.readouterr()
    assert code == 2 and captured.err == ""
    assert json.loads(captured.out)["error"]["code"] == "api_key_not_verifiable"


# -- verdicts, claims as JSON, expiry, the settings' source ----------------------------------


def test_json_puts_a_refusal_on_stdout_and_nothing_on_stderr(env: Issuer) -> None:
    for argv in (("verify", env.expired_token()), ("verify", "x"), ("no-such-command",)):
        code, out, err = run(*argv, "--json")
        assert code != 0 and err == ""
        assert json.loads(out)["error"]["code"]


def test_python_m_runs_the_command_and_its_verdict_reaches_a_pipe(env: Issuer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wacht_auth.cli", "verify", "--json", env.expired_token()],
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert done.returncode == 1 and done.stderr == ""
    assert json.loads(done.stdout)["error"]["code"] == "token_expired"


def test_verify_prints_the_permissions_claim_as_json(env: Issuer) -> None:
    token = env.token(permissions={"workspace": ["docs:edit"]}, metadata={"tags": ["a"]})
    expected = {"organization": [], "workspace": ["docs:edit"]}
    code, report = run_json("verify", token)
    assert code == 0 and report["claims"]["permissions"] == expected
    assert report["claims"]["metadata"] == {"tags": ["a"]}
    code, out, _ = run("verify", token)
    claims = json.loads(out.split("claims:\n", 1)[1])
    assert code == 0 and claims["permissions"] == expected


def test_an_expired_token_says_when_it_expired(env: Issuer) -> None:
    token = env.token(iat=1_700_000_000, exp=1_700_000_060)
    code, error = run_json("verify", token)
    assert (code, error["code"]) == (1, "token_expired")
    assert error["expired_at"] == "2023-11-14T22:14:20Z"
    assert error["seconds_from_now"] < 0
    code, _, err = run("verify", token)
    assert code == 1 and "2023-11-14T22:14:20Z" in err


def test_messages_name_the_settings_actually_used(env: Issuer) -> None:
    code, report = run_json("verify", env.token())
    assert report["settings"]["frontend_api_url"] == "WACHT_FRONTEND_API_URL"
    code, report = run_json("verify", env.token(), "--frontend-api-url", env.url)
    assert report["settings"]["frontend_api_url"] == "--frontend-api-url"
    code, error = run_json("verify", "x.y.z", "--frontend-api-url", "http://example.com")
    assert (code, error["code"]) == (2, "configuration_error")
    assert error["settings"]["frontend_api_url"] == "--frontend-api-url"
    assert "--frontend-api-url" in error["message"] and "the environment" not in error["message"]


def test_jwks_without_a_usable_key_gives_one_verdict(env: Issuer) -> None:
    env.set_response(b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    code, out, _ = run("jwks", "--json")
    (line,) = out.splitlines()
    error = json.loads(line)["error"]
    assert (code, error["code"]) == (3, "jwks_invalid") and len(error["skipped"]) == 1


def test_no_command_module_is_over_600_lines() -> None:
    modules = [ROOT / "wacht_auth" / "cli.py", *(ROOT / "wacht_auth").glob("_cli_*.py")]
    assert len(modules) >= 4
    for module in modules:
        assert len(module.read_text(encoding="utf-8").splitlines()) <= 600, module.name


def test_jwks_with_a_pinned_key_names_the_flag_that_pinned_it(
    wacht_issuer: Issuer, tmp_path: Path
) -> None:
    path = tmp_path / "key.pem"
    path.write_text(wacht_issuer.signing_key.public_pem())
    code, error = run_json("jwks", "--public-key-file", str(path), "--issuer", wacht_issuer.url)
    assert (code, error["code"]) == (2, "configuration_error")
    assert "--public-key-file" in error["message"]


def test_dev_mint_names_the_url_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", "https://example.com")
    code, error = run_json("dev", "mint")
    assert (code, error["code"]) == (2, "configuration_error")
    assert "WACHT_FRONTEND_API_URL" in error["message"]
    code, error = run_json("dev", "mint", "--url", "https://example.org")
    assert "--url" in error["message"] and "WACHT_FRONTEND_API_URL" not in error["message"]


# -- every credential: which kind verify saw -------------------------------------------------


def test_verify_says_which_credential_it_saw(env: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    with OAuthServer() as oauth:
        token = oauth.access_token("42", scopes=["invoices:read"], client_id="oc_9")
        code, out, _ = run("verify", token, "--oauth-issuer", oauth.url, "--json")
        report = json.loads(out)
        assert (code, report["kind"], report["token_format"]) == (0, "oauth_access_token", "jwt")
        assert (report["user_id"], report["client_id"]) == ("42", "oc_9")
        assert report["scopes"] == ["invoices:read"]
        assert report["settings"] == {"oauth_issuers": "--oauth-issuer"}
        monkeypatch.setenv("WACHT_OAUTH_ISSUERS", oauth.url)  # the env setting works too
        code, out, _ = run("verify", token)
        assert code == 0 and out.startswith("valid OAuth access token (JWT")
        code, out, _ = run("verify", oauth.id_token("42"), "--json")
        assert (code, json.loads(out)["error"]["code"]) == (1, "token_use_invalid")
        # A session token beside an OAuth issuer is still checked as one.
        code, out, _ = run("verify", env.token(user_id="7"), "--json")
        assert (code, json.loads(out)["kind"], json.loads(out)["user_id"]) == (
            0,
            "session_token",
            "7",
        )
    code, out, _ = run("verify", "oat_" + "a" * 43, "--json")
    assert (code, json.loads(out)["error"]["code"]) == (2, "oauth_token_not_verifiable")
