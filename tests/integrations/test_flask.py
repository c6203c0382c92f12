"""The Flask extension: the shared contract through Flask's test client, plus Flask specifics."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, g, request
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers
from werkzeug.test import TestResponse

from tests.integrations.contract import (
    APP_ORIGIN,
    CASES,
    KEY_CASES,
    PAGE_CASES,
    PROTECT_ALL_CASES,
    USER,
    Case,
    check,
    credential_options,
    request_for,
    tamper,
)
from wacht_auth import Config, ConfigurationError, PermissionDeniedError, Session
from wacht_auth.auth import AuthState
from wacht_auth.integrations.flask import (
    Wacht,
    public,
    require_auth,
    require_organization,
    require_permission,
    require_scope,
    require_workspace,
)
from wacht_auth.testing import FakeGateway, FrontendAPI, Issuer, OAuthServer
from wacht_auth.verifier import Verifier


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with Issuer() as started:
        yield started


@pytest.fixture(autouse=True)
def _no_wacht_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their configuration; the developer's shell must not leak in."""
    import os

    for name in list(os.environ):
        if name.startswith(("WACHT_", "NEXT_PUBLIC_WACHT_")):
            monkeypatch.delenv(name)


def add_contract_routes(app: Flask) -> None:
    """The routes of tests/integrations/contract.py."""

    @app.get("/public")
    def public_view() -> dict[str, Any]:
        return {"user_id": request.wacht.user_id}  # type: ignore[attr-defined]

    @app.route("/protected", methods=["GET", "POST"])
    @require_auth
    def protected() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id, "session_id": g.wacht.session_id}

    @app.get("/admin")
    @require_permission("invoices:write")
    def admin() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}

    @app.get("/org")
    @require_organization()
    def org() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}

    @app.get("/granted")
    @require_scope("invoices:read")
    def granted() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}

    @app.get("/page")
    @require_auth(redirect=True)
    def page() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}

    @app.get("/tamper")
    @require_auth
    def tamper_view() -> dict[str, Any]:
        return tamper(request.wacht)  # type: ignore[attr-defined]


def contract_app(config: Config, **options: Any) -> Flask:
    app = Flask(__name__)
    Wacht(app, config=config, **options)
    add_contract_routes(app)
    return app


def call(
    client: FlaskClient,
    case: Case,
    issuer: Issuer,
    cookie_name: str,
    keys: dict[str, str] | None = None,
) -> TestResponse:
    req = request_for(case, issuer, cookie_name, keys)
    for name, value in req.cookies.items():
        client.set_cookie(name, value, domain="testserver")
    return client.open(req.path, method=req.method, headers=req.headers, base_url=APP_ORIGIN + "/")


@pytest.fixture(scope="module")
def app(issuer: Issuer) -> Flask:
    return contract_app(issuer.config())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_contract(app: Flask, issuer: Issuer, case: Case) -> None:
    config = app.extensions["wacht"].verifier.config
    response = call(app.test_client(), case, issuer, config.cookie_name)
    check(case, response.status_code, dict(response.headers), response.get_data())


@pytest.mark.parametrize("case", KEY_CASES, ids=[c.name for c in KEY_CASES])
def test_contract_keys(
    case: Case, issuer: Issuer, gateway: FakeGateway, oauth: OAuthServer, keys: dict[str, str]
) -> None:
    config = issuer.config(gateway_url=gateway.url, deployment_id="1")
    app = contract_app(config, **credential_options(case, oauth))
    response = call(app.test_client(), case, issuer, issuer.config().cookie_name or "", keys)
    check(case, response.status_code, dict(response.headers), response.get_data())


@pytest.mark.parametrize("case", PROTECT_ALL_CASES, ids=[c.name for c in PROTECT_ALL_CASES])
def test_contract_protect_all(issuer: Issuer, case: Case) -> None:
    app = contract_app(issuer.config(), protect_all=True)
    response = call(app.test_client(), case, issuer, issuer.config().cookie_name or "")
    check(case, response.status_code, dict(response.headers), response.get_data())


@dataclass(frozen=True)
class Answer:
    """What a test request got back (``json`` typed as ``Any`` for the assertions)."""

    status_code: int
    headers: Headers
    mimetype: str
    text: str
    json: Any


def get(app: Flask, path: str, token: str | None = None, **kwargs: Any) -> Answer:
    """Send a request as http://testserver, with ``token`` as a bearer header."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    method = kwargs.pop("method", "GET")
    response = app.test_client().open(
        path, method=method, headers=headers, base_url=APP_ORIGIN + "/", **kwargs
    )
    text = response.get_data(as_text=True)
    data = response.get_json(silent=True) if response.is_json else None
    response.close()  # static files are streamed from an open file
    return Answer(response.status_code, response.headers, response.mimetype or "", text, data)


# -- set-up: init_app, app.config, environment -------------------------------------------------


def test_init_app_factory_keeps_one_state_per_app(issuer: Issuer) -> None:
    wacht = Wacht()
    with Issuer() as other:
        first, second = Flask("first"), Flask("second")
        first.config["WACHT_FRONTEND_API_URL"] = issuer.url
        second.config["WACHT_FRONTEND_API_URL"] = other.url
        for app in (first, second):
            wacht.init_app(app)
            add_contract_routes(app)
        assert first.extensions["wacht"].verifier is not second.extensions["wacht"].verifier
        assert get(first, "/protected", issuer.token(user_id=USER)).json == {
            "user_id": USER,
            "session_id": "sess_1",
        }
        assert get(second, "/protected", other.token(user_id="9")).status_code == 200
        wrong = get(second, "/protected", issuer.token(user_id=USER))
        assert wrong.status_code == 401  # the other app trusts other keys and issuer


def test_app_config_settings(issuer: Issuer) -> None:
    app = Flask(__name__)
    app.config.update(
        WACHT_FRONTEND_API_URL=issuer.url,
        WACHT_ALGORITHMS="ES256, RS256",
        WACHT_AUDIENCE=["api.example"],
        WACHT_LEEWAY=0,
        WACHT_COOKIE_NAME="my_session",
        WACHT_SECRET_KEY="sk_test_123",
    )
    Wacht(app)
    add_contract_routes(app)
    config = app.extensions["wacht"].verifier.config
    assert config.algorithms == ("ES256", "RS256")
    assert config.audience == ("api.example",)
    assert config.leeway == 0
    assert config.cookie_name == "my_session"
    assert config.secret_key == "sk_test_123"
    good = issuer.token(user_id=USER, claims={"aud": "api.example"})
    assert get(app, "/protected", good).status_code == 200
    no_aud = get(app, "/protected", issuer.token(user_id=USER))
    assert no_aud.json["error"]["code"] == "audience_invalid"
    client = app.test_client()
    client.set_cookie("my_session", good, domain="testserver")
    assert client.get("/protected", base_url=APP_ORIGIN + "/").status_code == 200


def test_pinned_key_and_issuer_from_app_config(issuer: Issuer) -> None:
    app = Flask(__name__)
    pem = issuer.signing_key.public_pem().replace("\n", "\\n")  # one line, as in .env files
    app.config.update(WACHT_ISSUER=issuer.url, WACHT_JWT_KEY=pem)
    Wacht(app)
    add_contract_routes(app)
    issuer.reset_count()
    assert get(app, "/protected", issuer.token(user_id=USER)).status_code == 200
    assert issuer.fetch_count == 0  # networkless


def test_publishable_key_in_app_config(issuer: Issuer) -> None:
    import base64

    app = Flask(__name__)
    app.config["WACHT_PUBLISHABLE_KEY"] = "pk_test_" + base64.b64encode(
        issuer.url.encode()
    ).decode().rstrip("=")
    Wacht(app)
    assert app.extensions["wacht"].verifier.config.issuer == issuer.url


def test_environment_is_the_fallback(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", issuer.url)
    monkeypatch.setenv("WACHT_AUDIENCE", "from-env")
    app = Flask(__name__)
    app.config["WACHT_AUDIENCE"] = "from-app-config"  # app.config wins over the environment
    Wacht(app)
    add_contract_routes(app)
    config = app.extensions["wacht"].verifier.config
    assert config.issuer == issuer.url
    assert config.audience == ("from-app-config",)
    token = issuer.token(user_id=USER, claims={"aud": "from-app-config"})
    assert get(app, "/protected", token).status_code == 200


def test_missing_configuration_fails_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="WACHT_FRONTEND_API_URL") as caught:
        Wacht(Flask("shop"))
    assert "'shop'" in str(caught.value)


def test_bad_value_fails_at_start_up(issuer: Issuer) -> None:
    app = Flask(__name__)
    app.config.update(WACHT_FRONTEND_API_URL=issuer.url, WACHT_ALGORITHMS="HS256")
    with pytest.raises(ConfigurationError, match="HS256"):
        Wacht(app)
    app.config.update(WACHT_ALGORITHMS=None, WACHT_PROTECT_ALL="maybe")
    with pytest.raises(ConfigurationError, match="WACHT_PROTECT_ALL"):
        Wacht(app)


def test_accepting_oauth_tokens_without_the_deployment_fails_at_start_up(
    issuer: Issuer,
) -> None:
    app = Flask(__name__)
    app.config.update(WACHT_FRONTEND_API_URL=issuer.url, WACHT_ACCEPT="oauth_token")
    with pytest.raises(ConfigurationError) as caught:
        Wacht(app)
    assert "app.config['WACHT_DEPLOYMENT_ID']" in caught.value.message
    app.config.update(WACHT_OAUTH_ISSUERS="https://oauth.example.com")  # JWTs need none
    Wacht(app)
    layer = app.extensions["wacht"]
    assert layer.oauth is not None and layer.gateway is None  # opaque ones are refused


def test_an_explicit_verifier_is_shared(issuer: Issuer) -> None:
    verifier = Verifier(issuer.config())
    wacht = Wacht(verifier=verifier)
    apps = [Flask("a"), Flask("b")]
    for app in apps:
        wacht.init_app(app)
        assert app.extensions["wacht"].verifier is verifier


# -- the request state -------------------------------------------------------------------------


def state_app(config: Config, seen: list[Any]) -> Flask:
    app = Flask(__name__)
    Wacht(app, config=config)

    @app.get("/state")
    def state() -> dict[str, Any]:
        seen.append((request.wacht, g.wacht))  # type: ignore[attr-defined]
        return {"user_id": g.wacht.user_id}

    return app


def test_request_wacht_and_g_wacht_are_one_auth_state(issuer: Issuer) -> None:
    seen: list[Any] = []
    app = state_app(issuer.config(), seen)
    token = issuer.token(
        user_id=USER, organization_id="77", permissions={"organization": ["invoices:read"]}
    )
    assert get(app, "/state", token).json == {"user_id": USER}
    state, same = seen[-1]
    assert state is same and isinstance(state, AuthState)
    assert state.is_authenticated and state.token_presented
    assert isinstance(state.session, Session) and state.token == token
    assert state.organization_id == "77" and state.has_permission("invoices:read")
    assert state.forward_headers() == {"Authorization": f"Bearer {token}"}

    assert get(app, "/state").json == {"user_id": None}
    anonymous = seen[-1][0]
    assert not anonymous.is_authenticated and anonymous.error is None
    assert not anonymous.token_presented

    assert get(app, "/state", issuer.expired_token(user_id=USER)).json == {"user_id": None}
    failed = seen[-1][0]
    assert failed.error is not None and failed.error.code == "token_expired"
    assert failed.token_presented and "token_expired" in repr(failed)


class CountingVerifier(Verifier):
    """A real verifier that counts its calls."""

    calls = 0

    def verify(self, token: str) -> Session:
        self.calls += 1
        return super().verify(token)


def test_verification_happens_at_most_once_per_request(issuer: Issuer) -> None:
    verifier = CountingVerifier(issuer.config(token_cache_size=0))
    app = Flask(__name__)
    Wacht(app, verifier=verifier)

    @app.get("/many")
    @require_auth
    @require_permission("invoices:read")
    @require_organization()
    def many() -> dict[str, Any]:
        ids = {request.wacht.user_id, g.wacht.user_id, request.wacht.session_id}  # type: ignore[attr-defined]
        return {"ids": sorted(i for i in ids if i)}

    @app.get("/never-looks")
    def never_looks() -> str:
        return "ok"

    token = issuer.token(
        user_id=USER, organization_id="1", permissions={"organization": ["invoices:read"]}
    )
    assert get(app, "/many", token).status_code == 200
    assert verifier.calls == 1
    assert get(app, "/never-looks", token).status_code == 200
    assert verifier.calls == 1  # lazy: a view that never looks pays nothing
    assert get(app, "/many", issuer.expired_token(user_id=USER)).status_code == 401
    assert verifier.calls == 2

    guarded = Flask(__name__)
    Wacht(guarded, verifier=verifier, protect_all=True)
    guarded.add_url_rule("/many", view_func=many)
    assert get(guarded, "/many", token).status_code == 200
    assert verifier.calls == 3


def test_a_repeated_token_is_answered_from_the_cache(issuer: Issuer) -> None:
    verifier = CountingVerifier(issuer.config())  # with its cache
    app = Flask(__name__)
    Wacht(app, verifier=verifier)

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"user_id": request.wacht.user_id, "same": g.wacht is request.wacht}  # type: ignore[attr-defined]

    token = issuer.token(user_id=USER)
    for _ in range(3):
        assert get(app, "/me", token).json == {"user_id": USER, "same": True}
    assert verifier.calls == 1  # the first request verified; the others were cache hits


def test_state_outside_a_request_and_with_a_request_class_set_later(issuer: Issuer) -> None:
    app = Flask(__name__)
    Wacht(app, config=issuer.config())

    class OwnRequest(Flask.request_class):  # type: ignore[name-defined,misc]
        pass

    app.request_class = OwnRequest  # after init_app: request.wacht is no longer defined

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"user_id": request.wacht.user_id}  # type: ignore[attr-defined]

    @app.get("/who")
    def who() -> dict[str, Any]:
        assert "wacht" in g and g.get("wacht") is g.wacht and g.get("other", 1) == 1
        return {"user_id": g.wacht.user_id}

    assert get(app, "/me", issuer.token(user_id=USER)).json == {"user_id": USER}
    assert get(app, "/me").status_code == 401
    with app.app_context():  # g lives on across the requests of an outer app context
        assert getattr(g, "wacht", None) is None and g.get("wacht") is None and "wacht" not in g
        assert get(app, "/who", issuer.token(user_id=USER)).json == {"user_id": USER}
        assert get(app, "/who").json == {"user_id": None}  # this request's state, not the last
        assert getattr(g, "wacht", None) is None


def test_workspace_and_specific_ids(issuer: Issuer) -> None:
    app = Flask(__name__)
    Wacht(app, config=issuer.config())

    @app.get("/ws")
    @require_workspace()
    def ws() -> str:
        return "ok"

    @app.get("/ws/5")
    @require_workspace("5")
    def ws5() -> str:
        return "ok"

    @app.get("/org/77")
    @require_organization("77")
    def org77() -> str:
        return "ok"

    @app.get("/both")
    @require_permission("a", "b", require_all=True, scope="workspace")
    def both() -> str:
        return "ok"

    in_ws = issuer.token(
        workspace_id="5", organization_id="77", permissions={"workspace": ["a", "b"]}
    )
    assert get(app, "/ws", in_ws).status_code == 200
    assert get(app, "/ws/5", in_ws).status_code == 200
    assert get(app, "/org/77", in_ws).status_code == 200
    assert get(app, "/both", in_ws).status_code == 200
    other = issuer.token(
        workspace_id="6", organization_id="78", permissions={"organization": ["a"]}
    )
    assert get(app, "/ws", issuer.token()).json["error"]["code"] == "workspace_required"
    assert get(app, "/ws/5", other).json["error"]["code"] == "workspace_required"
    assert get(app, "/org/77", other).json["error"]["code"] == "organization_required"
    assert get(app, "/both", other).json["error"]["code"] == "permission_denied"


def test_decorator_misuse_is_caught_at_import_time() -> None:
    with pytest.raises(TypeError, match="parentheses"):
        require_organization(lambda: "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parentheses"):
        require_workspace(lambda: "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        require_permission("a", scope="team")  # type: ignore[arg-type]


def test_decorators_need_the_extension() -> None:
    app = Flask(__name__)
    app.testing = True  # let the exception through the test client

    @app.get("/p")
    @require_auth
    def p() -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="init_app"):
        app.test_client().get("/p")


def test_async_views(issuer: Issuer) -> None:
    pytest.importorskip("asgiref")
    app = Flask(__name__)
    Wacht(app, config=issuer.config())

    @app.get("/async")
    @require_permission("invoices:read")
    async def view() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}

    token = issuer.token(user_id=USER, permissions=["invoices:read"])
    assert get(app, "/async", token).json == {"user_id": USER}
    assert get(app, "/async", issuer.token()).status_code == 403


def test_own_origin_is_the_request_scheme_and_host(issuer: Issuer) -> None:
    app = contract_app(issuer.config())
    cookie_name = app.extensions["wacht"].verifier.config.cookie_name
    token = issuer.token(user_id=USER)

    def post(**headers: str) -> int:
        client = app.test_client()
        client.set_cookie(cookie_name, token, domain="api.example")
        answer = client.post("/protected", headers=headers, base_url="https://api.example:8443/")
        answer.close()
        return answer.status_code

    assert post(Origin="https://api.example:8443") == 200
    assert post(Referer="https://api.example:8443/page?x=1") == 200
    assert post(Origin="http://api.example:8443") == 403  # another scheme is another origin
    assert post(Origin="https://api.example") == 403


def test_class_based_views(issuer: Issuer) -> None:
    from flask.views import MethodView

    class Invoices(MethodView):
        decorators = [require_permission("invoices:read")]

        def get(self) -> dict[str, Any]:
            return {"user_id": g.wacht.user_id}

    class Status(MethodView):
        decorators = [public]

        def get(self) -> str:
            return "up"

    app = Flask(__name__)
    Wacht(app, config=issuer.config(), protect_all=True)
    app.add_url_rule("/invoices", view_func=Invoices.as_view("invoices"))
    app.add_url_rule("/status", view_func=Status.as_view("status"))
    reader = issuer.token(user_id=USER, permissions=["invoices:read"])
    assert get(app, "/invoices", reader).json == {"user_id": USER}
    assert get(app, "/invoices", issuer.token()).json["error"]["code"] == "permission_denied"
    assert get(app, "/invoices").json["error"]["code"] == "token_missing"
    assert get(app, "/status").text == "up"


# -- protect-all -------------------------------------------------------------------------------


def protect_all_app(config: Config, tmp_path: Path, **kwargs: Any) -> Flask:
    (tmp_path / "logo.txt").write_text("logo")
    app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
    app.config.update(kwargs.pop("app_config", {}))
    Wacht(app, config=config, **kwargs)
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.get("/open")
    @public
    def bp_open() -> str:
        return "bp-open"

    @bp.get("/closed")
    def bp_closed() -> str:
        return "bp-closed"

    @app.get("/health")
    def health() -> str:
        return "healthy"

    @app.get("/docs/<page>")
    def docs(page: str) -> str:
        return page

    @public  # above the route decorator works too: it marks the function itself
    @app.get("/home")
    def home() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}

    @app.route("/me", methods=["GET", "POST"])
    def me() -> dict[str, Any]:
        return {"user_id": g.wacht.user_id}

    @app.get("/admin")
    @require_permission("invoices:write")
    def admin() -> str:
        return "admin"

    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize(
    "how",
    [
        {"protect_all": True, "public_paths": ["/health", "/docs/*"]},
        {"app_config": {"WACHT_PROTECT_ALL": True, "WACHT_PUBLIC_PATHS": "/health, /docs/*"}},
    ],
    ids=["arguments", "app.config"],
)
def test_protect_all(issuer: Issuer, tmp_path: Path, how: dict[str, Any]) -> None:
    app = protect_all_app(issuer.config(), tmp_path, **how)
    token = issuer.token(user_id=USER)
    for path in ("/me", "/bp/closed", "/admin"):
        answer = get(app, path)
        assert answer.status_code == 401, path
        assert answer.json["error"]["code"] == "token_missing"
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="wacht"'
    expired = get(app, "/me", issuer.expired_token())
    assert expired.json["error"]["code"] == "token_expired"
    assert get(app, "/me", token).json == {"user_id": USER}
    assert get(app, "/me", token, method="POST").json == {"user_id": USER}
    assert get(app, "/admin", token).json["error"]["code"] == "permission_denied"
    assert get(app, "/home").json == {"user_id": None}
    assert get(app, "/home", token).json == {"user_id": USER}
    assert get(app, "/health").text == "healthy"
    assert get(app, "/docs/intro").text == "intro"
    assert get(app, "/bp/open").text == "bp-open"
    assert get(app, "/static/logo.txt").text == "logo"
    assert get(app, "/no-such-page").status_code == 404
    plain = get(app, "/me", method="OPTIONS", headers={"Origin": "https://app.example"})
    assert plain.status_code == 401  # only a real preflight is open (one rule, every adapter)
    cors = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert get(app, "/me", method="OPTIONS", headers=cors).status_code == 200


def test_protect_all_off_leaves_undecorated_views_open(issuer: Issuer, tmp_path: Path) -> None:
    app = protect_all_app(issuer.config(), tmp_path)
    assert get(app, "/me").json == {"user_id": None}
    assert get(app, "/admin").status_code == 401


# -- errors are JSON ---------------------------------------------------------------------------


def test_errors_are_json_never_html(issuer: Issuer) -> None:
    app = contract_app(issuer.config())

    @app.get("/raises")
    def raises() -> str:
        raise PermissionDeniedError("only the billing team")

    for path, token, status in [
        ("/protected", None, 401),
        ("/admin", issuer.token(), 403),
        ("/raises", None, 403),
    ]:
        answer = get(app, path, token)
        assert answer.status_code == status
        assert answer.mimetype == "application/json"
        assert answer.json["error"]["status"] == status
        assert "WWW-Authenticate" in answer.headers
    assert get(app, "/raises").json["error"]["message"] == "only the billing team"


def test_unreachable_key_server_answers_503_with_retry_after() -> None:
    with Issuer() as down:
        app = contract_app(down.config(jwks_timeout=0.5))
        token = down.token(user_id=USER)
        down.down()
        answer = get(app, "/protected", token)
        assert answer.status_code == 503
        assert answer.mimetype == "application/json"
        assert answer.json["error"]["code"] == "jwks_unavailable"
        assert int(answer.headers["Retry-After"]) >= 1
        assert "WWW-Authenticate" not in answer.headers
        assert get(app, "/public", token).json == {"user_id": None}  # open routes stay open


def test_an_app_handler_registered_later_wins(issuer: Issuer) -> None:
    app = contract_app(issuer.config())

    @app.errorhandler(PermissionDeniedError)
    def custom(error: PermissionDeniedError) -> tuple[str, int]:
        return f"custom {error.code}", 403

    assert get(app, "/admin", issuer.token()).text == "custom permission_denied"


# -- the example app ---------------------------------------------------------------------------


def test_example_app(issuer: Issuer) -> None:
    example = importlib.import_module("examples.flask_app")
    app: Flask = example.create_app(issuer.config())
    admin = issuer.token(
        user_id=USER,
        organization_id="77",
        permissions={"organization": ["organization:admin", "invoices:read"]},
    )
    plain = issuer.token(user_id=USER)
    assert get(app, "/health").json == {"ok": True}
    assert get(app, "/").json == {"user_id": None}
    assert get(app, "/", plain).json == {"user_id": USER}
    assert get(app, "/me").json["error"]["code"] == "token_missing"
    assert get(app, "/me", issuer.expired_token()).json["error"]["code"] == "token_expired"
    assert get(app, "/me", issuer.forged_token()).json["error"]["code"] == "signature_invalid"
    me = get(app, "/me", admin).json
    assert me["user_id"] == USER and me["organization_id"] == "77"
    assert get(app, "/invoices", admin).json == {"user_id": USER, "invoices": []}
    assert get(app, "/invoices", plain).json["error"]["code"] == "permission_denied"
    saved = get(app, "/org/settings", admin, method="POST")
    assert saved.json == {"organization_id": "77", "saved": True}
    no_org = get(app, "/org/settings", plain, method="POST")
    assert no_org.json["error"]["code"] == "organization_required"


def test_example_app_reads_the_environment(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WACHT_FRONTEND_API_URL", issuer.url)
    example = importlib.import_module("examples.flask_app")
    app: Flask = example.create_app()
    assert get(app, "/me", issuer.token(user_id=USER)).json["user_id"] == USER


def test_a_guard_sends_its_permissions_to_the_gateway(
    issuer: Issuer, gateway: FakeGateway, keys: dict[str, str]
) -> None:
    app = contract_app(
        issuer.config(gateway_url=gateway.url, deployment_id="1"), accept=("api_key",)
    )
    response = get(app, "/admin", keys["key"])
    assert response.status_code == 200 and response.headers["X-RateLimit-Remaining"]
    assert gateway.checks[-1]["required_permissions"] == ["invoices:write"]
    denied = get(app, "/protected", issuer.token(user_id=USER))  # sessions not accepted here
    assert (denied.status_code, denied.json["error"]["code"]) == (401, "credential_invalid")


@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.name for c in PAGE_CASES])
def test_contract_pages(case: Case, frontend: FrontendAPI) -> None:
    config = frontend.config()
    if case.frontend_fails:
        frontend.fail_exchange(case.frontend_fails)
    try:
        response = call(contract_app(config).test_client(), case, frontend, config.cookie_name)
    finally:
        frontend.restore_exchange()
    cookies = response.headers.getlist("Set-Cookie")
    check(
        case,
        response.status_code,
        dict(response.headers),
        response.get_data(),
        cookies,
        frontend.url,
    )


def test_protect_all_page_paths_redirect_and_apis_keep_the_401(frontend: FrontendAPI) -> None:
    app = contract_app(frontend.config(), protect_all=True, page_paths=["/public"])
    page = get(app, "/public")
    assert page.status_code == 302
    assert page.headers["Location"].startswith(f"{frontend.url}/sign-in?redirect_uri=")
    api = get(app, "/protected")
    assert (api.status_code, api.json["error"]["code"]) == (401, "token_missing")
    client = app.test_client()
    client.set_cookie("__session", frontend.sign_in(), domain="testserver")
    signed_in = client.get("/public", base_url=APP_ORIGIN + "/")
    assert signed_in.json == {"user_id": "user_1"}
    assert any(c.startswith("__auth_") for c in signed_in.headers.getlist("Set-Cookie"))
