"""The ``wacht-auth`` commands: verify, decode, jwks, dev, dev mint and demo.

Each command reads its parsed arguments, writes its result through an :class:`Output` and
raises :class:`Failure` for anything it cannot do; :func:`wacht_auth.cli.main` reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ._cli_output import (
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Failure,
    Output,
    b64_json,
    dumps,
    read_token,
    times,
    times_text,
    unverified_claims,
)
from .config import Config, is_loopback_host
from .errors import ConfigurationError, WachtAuthError
from .session import Session
from .settings import Settings

#: The deployment flags and the setting (a :class:`~wacht_auth.Config` field) each gives.
DEPLOYMENT_FLAGS: Mapping[str, str] = {
    "frontend_api_url": "--frontend-api-url",
    "issuer": "--issuer",
    "jwks_url": "--jwks-url",
    "public_key": "--public-key-file",
    "audience": "--audience",
    "algorithms": "--algorithm",
}


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    given: dict[str, Any] = {
        "frontend_api_url": args.frontend_api_url,
        "issuer": args.issuer,
        "jwks_url": args.jwks_url,
        "audience": tuple(args.audience) if args.audience else None,
        "algorithms": tuple(args.algorithm) if args.algorithm else None,
    }
    if args.public_key_file:
        try:
            with open(args.public_key_file, encoding="utf-8") as handle:
                given["public_key"] = handle.read()
        except OSError as error:
            raise Failure(
                EXIT_USAGE, "configuration_error", f"--public-key-file: {error.strerror}"
            ) from error
    return {target: value for target, value in given.items() if value is not None}


def config_from_args(args: argparse.Namespace) -> tuple[Config, dict[str, str]]:
    """The :class:`Config` the deployment flags and the environment describe (flags win),
    and where each setting came from (``{"frontend_api_url": "--frontend-api-url"}``), so
    that messages name the source actually used."""
    given = _flag_values(args)
    try:
        loaded = Settings.load()
    except ConfigurationError as error:
        raise Failure(EXIT_USAGE, "configuration_error", error.message) from error
    labels = {**loaded.labels, **{target: DEPLOYMENT_FLAGS[target] for target in given}}
    where = "the command line and the environment" if given else "the environment"
    settings = Settings(
        MappingProxyType({**loaded.values, **given, "token_cache_size": 0}),
        MappingProxyType(labels),
        where,
    )
    try:
        config = settings.build_config()
    except ConfigurationError as error:
        hint = "" if given else " (or pass --frontend-api-url)"
        raise Failure(
            EXIT_USAGE, "configuration_error", error.message + hint, settings=labels
        ) from error
    return config, dict(sorted(labels.items()))


def _session_report(session: Session, now: float, sources: Mapping[str, str]) -> dict[str, Any]:
    return {
        "valid": True,
        "kind": "session_token",
        "user_id": session.user_id,
        "session_id": session.session_id,
        "organization_id": session.organization_id,
        "workspace_id": session.workspace_id,
        "permissions": {
            "organization": list(session.organization_permissions),
            "workspace": list(session.workspace_permissions),
        },
        "times": times(session.claims, now),
        "claims": session.claims,
        "settings": dict(sources),
    }


def _sources_text(sources: Mapping[str, str]) -> str:
    return ", ".join(f"{target} from {source}" for target, source in sources.items()) or "-"


def _rejected(error: WachtAuthError, token: str, now: float) -> Failure:
    """The failure for a token the verifier refused; an expired one says when it expired."""
    exit_code = EXIT_UNAVAILABLE if error.code == "jwks_unavailable" else EXIT_REJECTED
    fields: dict[str, Any] = {"status": error.status}
    message = error.message
    if error.code == "token_expired":
        exp = times(unverified_claims(token) or {}, now).get("exp")
        if exp is not None and exp["utc"] is not None:
            fields["expired_at"] = exp["utc"]
            fields["seconds_from_now"] = exp["seconds_from_now"]
            message = f"{message.rstrip('.')}: it expired at {exp['utc']} ({exp['relative']})."
    return Failure(exit_code, error.code, message, **fields)


def _oauth_issuers(args: argparse.Namespace) -> tuple[list[str], str]:
    """The OAuth issuers of ``--oauth-issuer`` (else ``WACHT_OAUTH_ISSUERS``) and their
    source."""
    if args.oauth_issuer:
        return [url.rstrip("/") for url in args.oauth_issuer], "--oauth-issuer"
    try:
        loaded = Settings.load()
    except ConfigurationError as error:
        raise Failure(EXIT_USAGE, "configuration_error", error.message) from error
    issuers = loaded.values.get("oauth_issuers") or ()
    return [url.rstrip("/") for url in issuers], loaded.labels.get("oauth_issuers", "")


def _verify_oauth(token: str, issuers: list[str], source: str, io: Output) -> int:
    """Verify an OAuth JWT access token locally, as the request layer does."""
    from .oauth import OAuthIssuer, OAuthVerifier

    try:
        verifier = OAuthVerifier([OAuthIssuer(issuer=url, token_cache_size=0) for url in issuers])
    except ConfigurationError as error:
        raise Failure(EXIT_USAGE, "configuration_error", f"{source}: {error.message}") from error
    now = time.time()
    try:
        credential = verifier.verify(token)
    except WachtAuthError as error:
        raise _rejected(error, token, now) from error
    report: dict[str, Any] = {
        "valid": True,
        "kind": "oauth_access_token",
        "token_format": "jwt",
        "user_id": credential.user_id,
        "session_id": credential.session_id,
        "client_id": credential.client_id,
        "scopes": list(credential.scopes),
        "resource": credential.resource,
        "organization_id": credential.organization_id,
        "workspace_id": credential.workspace_id,
        "times": times(credential.claims, now),
        "claims": credential.claims,
        "settings": {"oauth_issuers": source},
    }

    def text() -> str:
        rows = [(name, report[name]) for name in ("user_id", "session_id", "client_id")]
        rows += [("scopes", " ".join(report["scopes"])), ("resource", report["resource"])]
        body = "".join(f"  {name:<18}  {value or '-'}\n" for name, value in rows)
        return (
            f"valid OAuth access token (JWT; signature and claims checked against "
            f"{credential.claims.get('iss')}, from {source})\n{body}"
            f"{times_text(report['times'])}claims:\n{dumps(report['claims'], indent=2)}\n"
        )

    io.result(report, text)
    return EXIT_OK


def verify(args: argparse.Namespace, io: Output) -> int:
    """``wacht-auth verify``: what a token is (a session token, an OAuth JWT access token of
    an ``--oauth-issuer``; an API key or opaque OAuth token only Wacht's gateway can check)
    and its claims, or why it is refused."""
    from .tokens import peek_issuer
    from .verifier import Verifier

    token = read_token(args.token)
    if token and "." not in token:  # a dotted value is reported as the JWT it tries to be
        if token.startswith("oat_"):
            raise Failure(
                EXIT_USAGE,
                "oauth_token_not_verifiable",
                "this is an opaque OAuth access token (oat_...): only Wacht's gateway can "
                "check it, it is not verifiable locally (an app accepts them with "
                'accept=("oauth_token",) and deployment_id; see docs/credentials.md)',
            )
        raise Failure(
            EXIT_USAGE,
            "api_key_not_verifiable",
            "this is not a JWT: it looks like an API key, which only Wacht's gateway can check; "
            'it is not verifiable locally (an app accepts them with accept=("api_key",) and '
            "deployment_id; see docs/credentials.md)",
        )
    issuers, source = _oauth_issuers(args)
    if issuers and peek_issuer(token) in issuers:
        return _verify_oauth(token, issuers, source, io)
    config, sources = config_from_args(args)
    try:
        session = Verifier(config).verify(token)
    except WachtAuthError as error:
        raise _rejected(error, token, config.clock()) from error
    report = _session_report(session, config.clock(), sources)

    def text() -> str:
        perms = report["permissions"]
        rows = [
            ("user_id", report["user_id"]),
            ("session_id", report["session_id"]),
            ("organization_id", report["organization_id"]),
            ("workspace_id", report["workspace_id"]),
            ("organization perms", ", ".join(perms["organization"])),
            ("workspace perms", ", ".join(perms["workspace"])),
        ]
        body = "".join(f"  {name:<18}  {value or '-'}\n" for name, value in rows)
        return (
            f"valid session token (signature and claims checked against {config.issuer}; "
            f"settings: {_sources_text(sources)})\n{body}"
            f"{times_text(report['times'])}claims:\n{dumps(report['claims'], indent=2)}\n"
        )

    io.result(report, text)
    return EXIT_OK


def decode(args: argparse.Namespace, io: Output) -> int:
    """``wacht-auth decode``: a token's header and claims, UNVERIFIED."""
    token = read_token(args.token)
    parts = token.split(".")
    if len(parts) != 3:
        raise Failure(
            EXIT_REJECTED,
            "token_malformed",
            f"a compact JWS has 3 dot-separated parts, this has {len(parts)}",
        )
    header = b64_json(parts[0], "header")
    claims = b64_json(parts[1], "payload")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Failure(EXIT_REJECTED, "token_malformed", "header and payload must be objects")
    found = times(claims, time.time())
    report = {
        "verified": False,
        "warning": "UNVERIFIED: nothing here is checked; use `wacht-auth verify` to check it",
        "header": header,
        "claims": claims,
        "times": found,
    }

    def text() -> str:
        return (
            "UNVERIFIED: the signature and claims were NOT checked; "
            "use `wacht-auth verify` to check them\n"
            f"header:\n{json.dumps(header, indent=2, sort_keys=True)}\n"
            f"claims:\n{json.dumps(claims, indent=2, sort_keys=True)}\n"
            + (f"times (UTC):\n{times_text(found)}" if found else "")
        )

    io.result(report, text)
    return EXIT_OK


def jwks(args: argparse.Namespace, io: Output) -> int:
    """``wacht-auth jwks``: the deployment's signing keys and the entries skipped."""
    from ._http import FetchError
    from .keys import KeyIndex
    from .keyset import fetch_jwks

    config, sources = config_from_args(args)
    if config.jwks_url is None:
        raise Failure(
            EXIT_USAGE,
            "configuration_error",
            f"no JWKS URL: the configuration pins a public key "
            f"({sources.get('public_key', 'WACHT_JWT_KEY')}); set WACHT_JWKS_URL or pass "
            "--jwks-url",
        )
    try:
        body, cache_control = fetch_jwks(
            config.jwks_url, timeout=config.jwks_timeout, max_bytes=config.jwks_max_bytes
        )
    except FetchError as error:
        raise Failure(
            EXIT_UNAVAILABLE,
            "jwks_unavailable",
            f"{config.jwks_url}: {error.detail}",
            outcome=error.outcome,
            jwks_url=config.jwks_url,
        ) from error
    try:
        index, skipped = KeyIndex.from_jwks(json.loads(body))
    except (ValueError, TypeError) as error:
        raise Failure(
            EXIT_UNAVAILABLE,
            "jwks_invalid",
            f"{config.jwks_url} is not a usable JWK Set: {error}",
            jwks_url=config.jwks_url,
        ) from error
    keys = [
        {
            "kid": key.kid,
            "kty": key.kty,
            "crv": key.crv,
            "alg": key.alg,
            "use": key.use,
            "algorithms": sorted(key.algorithms),
        }
        for key in index.keys
    ]
    report = {
        "jwks_url": config.jwks_url,
        "cache_control": cache_control,
        "keys": keys,
        "skipped": list(skipped),
        "settings": sources,
    }

    def text() -> str:
        lines = [f"{config.jwks_url}  Cache-Control: {cache_control or '-'}\n"]
        for key in keys:
            fields = ", ".join(f"{k}={key[k]}" for k in ("kid", "kty", "crv", "alg") if key[k])
            lines.append(f"  key: {fields}\n")
        lines += [f"  skipped: {reason}\n" for reason in skipped]
        return "".join(lines)

    if not keys:  # one verdict: the failure, carrying what was skipped and why
        io.progress(text())
        raise Failure(
            EXIT_UNAVAILABLE,
            "jwks_invalid",
            f"{config.jwks_url} holds no usable signing key",
            jwks_url=config.jwks_url,
            skipped=list(skipped),
        )
    io.result(report, text)
    return EXIT_OK


def token_request(args: argparse.Namespace) -> Any:
    """The token the ``dev`` flags ask for (a ``TokenRequest``)."""
    from ._dev import TokenRequest

    def permissions(values: Sequence[str] | None) -> tuple[str, ...]:
        return tuple(p.strip() for v in values or () for p in v.split(",") if p.strip())

    try:
        return TokenRequest(
            user_id=args.user,
            session_id=args.session,
            organization_id=args.organization,
            workspace_id=args.workspace,
            organization_permissions=permissions(args.organization_permission),
            workspace_permissions=permissions(args.workspace_permission),
            lifetime=args.lifetime,
            alg=getattr(args, "token_algorithm", None),  # dev: its default signer
        )
    except ValueError as error:
        raise Failure(EXIT_USAGE, "usage_error", str(error)) from error


def dev(args: argparse.Namespace, io: Output) -> int:
    """``wacht-auth dev``: a local development issuer until stopped."""
    if args.dev_command == "mint":
        return dev_mint(args, io)
    from ._dev import DevIssuer

    request = token_request(args)
    try:
        dev = DevIssuer(port=args.port, algorithm=args.algorithm)
    except OSError as error:
        raise Failure(
            EXIT_USAGE, "port_unavailable", f"cannot listen on 127.0.0.1:{args.port}: {error}"
        ) from error
    with dev:
        token, claims = dev.mint(request)
        url = dev.url
        report = {
            "issuer": url,
            "jwks_url": dev.issuer.jwks_url,
            "mint_url": dev.mint_url,
            "algorithms": [key.alg for key in dev.issuer.keys],
            "env": {"WACHT_FRONTEND_API_URL": url},
            "token": token,
            "claims": claims,
        }
        text = (
            f"Wacht development issuer on {url} (keys: "
            f"{', '.join(report['algorithms'])}; Ctrl-C stops it)\n"
            f"  JWKS:  {dev.issuer.jwks_url}\n"
            f"  mint:  {dev.mint_url}\n\n"
            "Point your app at it:\n"
            f"  export WACHT_FRONTEND_API_URL={url}\n\n"
            "More tokens while it runs (from a shell with that variable set):\n"
            "  wacht-auth dev mint --user user_2 --organization org_1 "
            "--organization-permission invoices:write\n"
            f"  curl -s '{dev.mint_url}?user_id=user_2&organization_id=org_1'\n\n"
            f"A token for user {request.user_id}, session {request.session_id} "
            f"({request.alg or args.algorithm}, valid {request.lifetime:g} s):\n{token}\n"
        )
        io.result(report, text)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2 if deadline is None else max(0.0, min(0.2, args.seconds)))
        except KeyboardInterrupt:
            io.note("stopped\n")
    return EXIT_OK


def dev_mint(args: argparse.Namespace, io: Output) -> int:
    """``wacht-auth dev mint``: a token from a running development issuer."""
    from urllib.parse import urlsplit

    from ._dev import MintError, mint_remote

    url = args.url or os.environ.get("WACHT_FRONTEND_API_URL", "").strip()
    source = "--url" if args.url else "WACHT_FRONTEND_API_URL"
    if not url:
        raise Failure(
            EXIT_USAGE,
            "configuration_error",
            "which development issuer? set WACHT_FRONTEND_API_URL (as `wacht-auth dev` "
            "prints it) or pass --url",
        )
    parts = urlsplit(url)
    if parts.scheme != "http" or not is_loopback_host(parts.hostname):
        raise Failure(
            EXIT_USAGE,
            "configuration_error",
            f"dev mint asks only a local development issuer (http://127.0.0.1:<port>), "
            f"not {url} (from {source})",
        )
    request = token_request(args)
    try:
        answer = mint_remote(url, request)
    except MintError as error:
        exit_code = EXIT_UNAVAILABLE if error.code == "issuer_unreachable" else EXIT_USAGE
        hint = "; start one with `wacht-auth dev`" if exit_code == EXIT_UNAVAILABLE else ""
        message = f"{error.message} (the issuer URL is from {source}){hint}"
        raise Failure(exit_code, error.code, message, url=url) from error
    io.result(dict(answer), f"{answer['token']}\n")
    return EXIT_OK


def demo(args: argparse.Namespace, io: Output) -> int:
    """``wacht-auth demo``: the end-to-end demo against a local issuer."""
    from ._demo import AppNotFoundError, CaseResult, DemoStartError, missing_dependency, run_cases

    missing = missing_dependency(args.app)
    if missing is not None:
        raise Failure(
            EXIT_USAGE,
            "missing_dependency",
            f"the demo needs {missing}: pip install 'wacht-auth[demo]'",
            module=missing,
            extra="demo",
        )

    def started(issuer_url: str, app_url: str) -> None:
        io.progress(f"issuer {issuer_url}, demo app {app_url} ({args.app})\n\n")

    def case(result: CaseResult) -> None:
        mark = "ok  " if result.ok else "FAIL"
        io.progress(f"{mark} {result.name:<30} GET {result.path:<11} -> {result.status}\n")
        io.progress(f"     {result.body}\n")

    try:
        results = run_cases(args.app, started, case)
    except AppNotFoundError as error:
        raise Failure(EXIT_USAGE, "app_not_found", str(error), app=args.app) from error
    except DemoStartError as error:
        raise Failure(EXIT_REJECTED, "demo_failed", str(error), app=args.app) from error
    failed = sum(not r.ok for r in results)
    report = {
        "passed": len(results) - failed,
        "failed": failed,
        "cases": [r.to_dict() for r in results],
    }
    summary = f"\n{len(results) - failed} passed, {failed} failed\n"
    if failed:  # one verdict: the failure, carrying the cases
        io.progress(summary)
        raise Failure(
            EXIT_REJECTED, "demo_failed", f"{failed} of {len(results)} cases failed", **report
        )
    io.result(report, summary)
    return EXIT_OK
