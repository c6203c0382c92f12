"""The wacht-auth command line against a local issuer."""

from __future__ import annotations

import io
import json

import pytest

from wacht_auth.cli import main
from wacht_auth.testing import Issuer


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, wacht_issuer: Issuer) -> Issuer:
    for name in ("WACHT_FRONTEND_HOST", "WACHT_PUBLISHABLE_KEY", "WACHT_JWT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", wacht_issuer.url)
    return wacht_issuer


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def test_verify_prints_the_claims(env: Issuer) -> None:
    code, text = run("verify", env.token(user_id="42", organization="7"))
    assert code == 0
    report = json.loads(text)
    assert report["user_id"] == "42" and report["organization_id"] == "7"
    assert report["claims"]["iss"] == env.url


def test_verify_prints_the_exact_reason(env: Issuer) -> None:
    code, text = run("verify", env.expired_token())
    assert code == 1 and text.startswith("invalid: token_expired (401)")
    code, text = run("verify", env.transport_token())
    assert code == 1 and text.startswith("invalid: claims_invalid (401)")


def test_verify_with_a_pinned_key_file(env: Issuer, tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "key.pem"  # type: ignore[operator]
    path.write_text(env.signing_key.public_pem())
    env.down()
    code, _ = run("verify", env.token(), "--public-key-file", str(path), "--issuer", env.url)
    assert code == 0


def test_jwks_lists_the_keys(env: Issuer) -> None:
    code, text = run("jwks")
    assert code == 0
    assert env.jwks_url in text and env.signing_key.kid in text
    env.fail(500)
    code, text = run("jwks")
    assert code == 1 and "http_500" in text


def test_configuration_errors_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "WACHT_FRONTEND_API_URL",
        "WACHT_FRONTEND_HOST",
        "WACHT_PUBLISHABLE_KEY",
        "NEXT_PUBLIC_WACHT_PUBLISHABLE_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    code, text = run("verify", "x.y.z")
    assert code == 2 and "WACHT_FRONTEND_API_URL" in text


def test_dev_issuer_serves_and_stops() -> None:
    code, text = run("dev", "--seconds", "0.3", "--user", "9", "--permission", "a:b")
    assert code == 0
    assert "export WACHT_FRONTEND_API_URL=http://127.0.0.1:" in text
    token = text.strip().splitlines()[-1]
    assert token.count(".") == 2


def test_demo_runs_end_to_end() -> None:
    code, text = run("demo")
    assert code == 0, text
    assert "7 passed, 0 failed" in text
    assert "-> 401" in text and "-> 403" in text


def test_demo_with_an_unknown_app_says_so() -> None:
    code, text = run("demo", "--app", "no_such_module:create_app")
    assert code == 2 and "no_such_module" in text
