"""The ``wacht-auth`` command: verify or decode a token, show keys, run a dev issuer, the demo.

Results go to standard output, diagnostics and failures to standard error; ``--json`` makes
both machine-readable (a failure is ``{"error": {"code": ..., "message": ...}}`` on standard
error). The exit codes are :data:`EXIT_CODES`; ``docs/cli.md`` is the reference.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn, TextIO

from . import __version__, _cli_webhooks
from .config import Config, is_loopback_host
from .errors import ConfigurationError, WachtAuthError
from .session import Session

__all__ = [
    "EXIT_CODES",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "main",
]

#: Success.
EXIT_OK = 0
#: The token was rejected or cannot be decoded (or a demo case failed).
EXIT_REJECTED = 1
#: Bad usage or configuration, including a missing optional dependency.
EXIT_USAGE = 2
#: The signing keys (or the development issuer) could not be fetched or reached.
EXIT_UNAVAILABLE = 3
#: Every exit code and what it means.
EXIT_CODES: Mapping[int, str] = {
    EXIT_OK: "success",
    EXIT_REJECTED: "the token was rejected or cannot be decoded; a demo case failed",
    EXIT_USAGE: "bad usage or configuration; a missing optional dependency",
    EXIT_UNAVAILABLE: "the signing keys or the development issuer cannot be reached",
}
_DEPLOYMENT_HINT = "or pass --frontend-api-url"


class _Failure(Exception):
    """A failure to report: exit code, stable ``code``, message and extra JSON fields."""

    def __init__(self, exit_code: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.exit_code, self.code, self.message, self.fields = exit_code, code, message, fields


class _Output:
    """Where a command writes: results to ``out``, diagnostics and failures to ``err``."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool) -> None:
        self.out, self.err, self.as_json = out, err, as_json

    def result(self, data: Mapping[str, Any], text: str | Callable[[], str]) -> None:
        """Write a result: ``data`` as JSON with ``--json``, else ``text``."""
        if self.as_json:
            self.out.write(json.dumps(data, sort_keys=True, default=str) + "\n")
        else:
            self.out.write(text if isinstance(text, str) else text())
        self.out.flush()

    def progress(self, text: str) -> None:
        """Part of a result shown as it happens; with ``--json`` the final result holds it."""
        if not self.as_json:
            self.out.write(text)
            self.out.flush()

    def note(self, text: str) -> None:
        """A diagnostic for people, on ``err``; not written with ``--json``."""
        if not self.as_json:
            self.err.write(text)
            self.err.flush()

    def fail(self, failure: _Failure) -> int:
        """Report ``failure`` on ``err``; returns its exit code."""
        if self.as_json:
            error = {"code": failure.code, "message": failure.message, **failure.fields}
            self.err.write(json.dumps({"error": error}, sort_keys=True, default=str) + "\n")
        else:
            self.err.write(f"wacht-auth: {failure.code}: {failure.message}\n")
        self.err.flush()
        return failure.exit_code


# -- time and token display ----------------------------------------------------------------------


def _relative(seconds: float) -> str:
    """``"in 5 min"`` / ``"3 h ago"`` for a time ``seconds`` from now."""
    size = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            amount = f"{size / length:.0f} {unit}"
            break
    else:
        amount = f"{size:.0f} s"
    return f"in {amount}" if seconds > 0 else f"{amount} ago" if seconds < 0 else "now"


def _times(claims: Mapping[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """``iat``, ``nbf`` and ``exp`` in UTC and relative to ``now`` (what is present)."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out[name] = {"value": value, "utc": None, "relative": "not a number"}
            continue
        try:
            utc = datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            out[name] = {"value": value, "utc": None, "relative": "out of range"}
            continue
        out[name] = {
            "value": value,
            "utc": utc.isoformat().replace("+00:00", "Z"),
            "seconds_from_now": round(value - now, 3),
            "relative": _relative(value - now),
        }
    return out


def _times_text(times: Mapping[str, Mapping[str, Any]]) -> str:
    labels = {"iat": "issued (iat)", "nbf": "not before (nbf)", "exp": "expires (exp)"}
    lines = []
    for name, info in times.items():
        when = info["utc"] or repr(info["value"])
        lines.append(f"  {labels[name]:<18}  {when}  ({info['relative']})\n")
    return "".join(lines)


def _b64_json(segment: str, what: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise _Failure(
            EXIT_REJECTED, "token_malformed", f"the {what} is not base64url JSON"
        ) from error


def _read_token(value: str) -> str:
    """The token argument; ``-`` reads standard input; a ``Bearer`` prefix is dropped."""
    token = sys.stdin.read() if value == "-" else value
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


# -- commands --------------------------------------------------------------------------------


def _config_from_args(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {
        "frontend_api_url": args.frontend_api_url,
        "issuer": args.issuer,
        "jwks_url": args.jwks_url,
        "audience": tuple(args.audience) if args.audience else None,
        "token_cache_size": 0,
    }
    if args.public_key_file:
        try:
            with open(args.public_key_file, encoding="utf-8") as handle:
                overrides["public_key"] = handle.read()
        except OSError as error:
            raise _Failure(
                EXIT_USAGE, "configuration_error", f"--public-key-file: {error.strerror}"
            ) from error
    if args.algorithm:
        overrides["algorithms"] = tuple(args.algorithm)
    try:
        return Config.from_env(**overrides)
    except ConfigurationError as error:
        raise _Failure(
            EXIT_USAGE, "configuration_error", f"{error.message} ({_DEPLOYMENT_HINT})"
        ) from error


def _session_report(session: Session, now: float) -> dict[str, Any]:
    return {
        "valid": True,
        "user_id": session.user_id,
        "session_id": session.session_id,
        "organization_id": session.organization_id,
        "workspace_id": session.workspace_id,
        "permissions": {
            "organization": list(session.organization_permissions),
            "workspace": list(session.workspace_permissions),
        },
        "times": _times(session.claims, now),
        "claims": dict(session.claims),
    }


def _cmd_verify(args: argparse.Namespace, io: _Output) -> int:
    from .verifier import Verifier

    token = _read_token(args.token)
    if token and "." not in token:  # a dotted value is reported as the JWT it tries to be
        raise _Failure(
            EXIT_USAGE,
            "api_key_not_verifiable",
            "this is not a JWT: it looks like an API key, which only Wacht's gateway can check "
            '(an app accepts them with accept=("session_token", "api_key"); see '
            "docs/api-keys.md)",
        )
    config = _config_from_args(args)
    try:
        session = Verifier(config).verify(token)
    except WachtAuthError as error:
        exit_code = EXIT_UNAVAILABLE if error.code == "jwks_unavailable" else EXIT_REJECTED
        raise _Failure(exit_code, error.code, error.message, status=error.status) from error
    report = _session_report(session, config.clock())

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
        claims = json.dumps(report["claims"], indent=2, sort_keys=True, default=str)
        return (
            f"valid token (signature and claims checked against {config.issuer})\n{body}"
            f"{_times_text(report['times'])}claims:\n{claims}\n"
        )

    io.result(report, text)
    return EXIT_OK


def _cmd_decode(args: argparse.Namespace, io: _Output) -> int:
    token = _read_token(args.token)
    parts = token.split(".")
    if len(parts) != 3:
        raise _Failure(
            EXIT_REJECTED,
            "token_malformed",
            f"a compact JWS has 3 dot-separated parts, this has {len(parts)}",
        )
    header = _b64_json(parts[0], "header")
    claims = _b64_json(parts[1], "payload")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _Failure(EXIT_REJECTED, "token_malformed", "header and payload must be objects")
    times = _times(claims, time.time())
    report = {
        "verified": False,
        "warning": "UNVERIFIED: nothing here is checked; use `wacht-auth verify` to check it",
        "header": header,
        "claims": claims,
        "times": times,
    }

    def text() -> str:
        return (
            "UNVERIFIED: the signature and claims were NOT checked; "
            "use `wacht-auth verify` to check them\n"
            f"header:\n{json.dumps(header, indent=2, sort_keys=True)}\n"
            f"claims:\n{json.dumps(claims, indent=2, sort_keys=True)}\n"
            + (f"times (UTC):\n{_times_text(times)}" if times else "")
        )

    io.result(report, text)
    return EXIT_OK


def _cmd_jwks(args: argparse.Namespace, io: _Output) -> int:
    from .keys import KeyIndex
    from .keyset import FetchError, fetch_jwks

    config = _config_from_args(args)
    if config.jwks_url is None:
        raise _Failure(
            EXIT_USAGE,
            "configuration_error",
            "no JWKS URL: the configuration pins a public key (WACHT_JWT_KEY); "
            "set WACHT_JWKS_URL or pass --jwks-url",
        )
    try:
        body, cache_control = fetch_jwks(
            config.jwks_url, timeout=config.jwks_timeout, max_bytes=config.jwks_max_bytes
        )
    except FetchError as error:
        raise _Failure(
            EXIT_UNAVAILABLE,
            "jwks_unavailable",
            f"{config.jwks_url}: {error.detail}",
            outcome=error.outcome,
            jwks_url=config.jwks_url,
        ) from error
    try:
        index, skipped = KeyIndex.from_jwks(json.loads(body))
    except (ValueError, TypeError) as error:
        raise _Failure(
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
    }

    def text() -> str:
        lines = [f"{config.jwks_url}  Cache-Control: {cache_control or '-'}\n"]
        for key in keys:
            fields = ", ".join(f"{k}={key[k]}" for k in ("kid", "kty", "crv", "alg") if key[k])
            lines.append(f"  key: {fields}\n")
        lines += [f"  skipped: {reason}\n" for reason in skipped]
        return "".join(lines)

    io.result(report, text)
    if not keys:
        raise _Failure(
            EXIT_UNAVAILABLE,
            "jwks_invalid",
            f"{config.jwks_url} holds no usable signing key",
            jwks_url=config.jwks_url,
        )
    return EXIT_OK


def _token_request(args: argparse.Namespace) -> Any:
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
        raise _Failure(EXIT_USAGE, "usage_error", str(error)) from error


def _cmd_dev(args: argparse.Namespace, io: _Output) -> int:
    if args.dev_command == "mint":
        return _cmd_dev_mint(args, io)
    from ._dev import DevIssuer

    request = _token_request(args)
    try:
        dev = DevIssuer(port=args.port, algorithm=args.algorithm)
    except OSError as error:
        raise _Failure(
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


def _cmd_dev_mint(args: argparse.Namespace, io: _Output) -> int:
    from urllib.parse import urlsplit

    from ._dev import MintError, mint_remote

    url = args.url or os.environ.get("WACHT_FRONTEND_API_URL", "").strip()
    if not url:
        raise _Failure(
            EXIT_USAGE,
            "configuration_error",
            "which development issuer? set WACHT_FRONTEND_API_URL (as `wacht-auth dev` "
            "prints it) or pass --url",
        )
    parts = urlsplit(url)
    if parts.scheme != "http" or not is_loopback_host(parts.hostname):
        raise _Failure(
            EXIT_USAGE,
            "configuration_error",
            f"dev mint asks only a local development issuer (http://127.0.0.1:<port>), "
            f"not {url}: fix WACHT_FRONTEND_API_URL or pass --url",
        )
    request = _token_request(args)
    try:
        answer = mint_remote(url, request)
    except MintError as error:
        exit_code = EXIT_UNAVAILABLE if error.code == "issuer_unreachable" else EXIT_USAGE
        hint = "; start one with `wacht-auth dev`" if exit_code == EXIT_UNAVAILABLE else ""
        raise _Failure(exit_code, error.code, error.message + hint, url=url) from error
    io.result(dict(answer), f"{answer['token']}\n")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, io: _Output) -> int:
    from ._demo import AppNotFoundError, CaseResult, DemoStartError, missing_dependency, run_cases

    missing = missing_dependency(args.app)
    if missing is not None:
        raise _Failure(
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
        raise _Failure(EXIT_USAGE, "app_not_found", str(error), app=args.app) from error
    except DemoStartError as error:
        raise _Failure(EXIT_REJECTED, "demo_failed", str(error), app=args.app) from error
    failed = sum(not r.ok for r in results)
    report = {
        "passed": len(results) - failed,
        "failed": failed,
        "cases": [r.to_dict() for r in results],
    }
    io.result(report, f"\n{len(results) - failed} passed, {failed} failed\n")
    if failed:
        raise _Failure(EXIT_REJECTED, "demo_failed", f"{failed} of {len(results)} cases failed")
    return EXIT_OK


# -- the parser ------------------------------------------------------------------------------


class _UsageError(Exception):
    """argparse refused the command line."""


class _Parser(argparse.ArgumentParser):
    """Usage errors become exceptions, so ``main`` reports them like any failure."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see: {self.prog} --help)")


_FORMAT = argparse.RawDescriptionHelpFormatter
_EXIT_EPILOG = "exit codes:\n" + "".join(f"  {k}  {v}\n" for k, v in EXIT_CODES.items())


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0 to 65535): {value!r}")
    return port


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


def _epilog(examples: str) -> str:
    return f"examples:\n{examples}\n{_EXIT_EPILOG}"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: a JSON object on stdout; a failure as "
        '{"error": {"code": ..., "message": ...}} on stderr',
    )


def _deployment(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "deployment (default: the WACHT_* environment, as Config.from_env reads it)"
    )
    group.add_argument(
        "--frontend-api-url",
        metavar="URL",
        help="the frontend API origin (else WACHT_FRONTEND_API_URL, WACHT_FRONTEND_HOST "
        "or WACHT_PUBLISHABLE_KEY)",
    )
    group.add_argument("--issuer", metavar="ISS", help="the exact iss (else WACHT_ISSUER)")
    group.add_argument("--jwks-url", metavar="URL", help="the JWK Set URL (else WACHT_JWKS_URL)")
    group.add_argument(
        "--public-key-file", metavar="PEM", help="pin this PEM public key: no key fetch"
    )
    group.add_argument(
        "--audience", metavar="AUD", action="append", help="require this aud (repeatable)"
    )
    group.add_argument(
        "--algorithm",
        metavar="ALG",
        action="append",
        help="allow this alg (repeatable; default RS256 and ES256)",
    )


def _token_options(parser: argparse.ArgumentParser, *, algorithm: bool) -> None:
    group = parser.add_argument_group("token")
    group.add_argument("--user", metavar="USER_ID", default="user_1", help="sub (user_1)")
    group.add_argument("--session", metavar="SESSION_ID", default="sess_1", help="sid (sess_1)")
    group.add_argument(
        "--organization", metavar="ORG_ID", help="the active organization (organization_id)"
    )
    group.add_argument("--workspace", metavar="WS_ID", help="the active workspace (workspace_id)")
    group.add_argument(
        "--organization-permission",
        "--permission",
        metavar="PERM",
        action="append",
        help="a permission in the organization (repeatable or comma-separated)",
    )
    group.add_argument(
        "--workspace-permission",
        metavar="PERM",
        action="append",
        help="a permission in the workspace (repeatable or comma-separated)",
    )
    group.add_argument(
        "--lifetime", metavar="SECONDS", type=float, default=3600, help="exp - iat (3600)"
    )
    if algorithm:
        group.add_argument(
            "--algorithm",
            dest="token_algorithm",
            choices=["ES256", "RS256"],
            help="sign with this key (default: the issuer's default signer)",
        )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wacht-auth",
        description=_wrap(
            "Verify Wacht session tokens locally; inspect tokens and keys; run a local "
            "development issuer."
        ),
        formatter_class=_FORMAT,
        epilog=_epilog(
            "  wacht-auth verify eyJhbGciOi...        check a token against WACHT_* settings\n"
            "  wacht-auth decode eyJhbGciOi...        show a token's claims, UNVERIFIED\n"
            "  wacht-auth dev                         a local issuer for development\n"
            "  wacht-auth <command> --help            each command's options\n"
        ),
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    _common(parser)
    commands = parser.add_subparsers(dest="command", metavar="<command>")

    verify = commands.add_parser(
        "verify",
        help="verify a token: its session and claims, or the exact reason it fails",
        description=_wrap(
            "Verify a token as your backend would (signature, issuer, times, claims) "
            "and print the session and claims, or the error code that rejects it."
        ),
        formatter_class=_FORMAT,
        epilog=_epilog(
            "  export WACHT_FRONTEND_API_URL=https://your-app.wacht.services\n"
            "  wacht-auth verify eyJhbGciOi...\n"
            "  pbpaste | wacht-auth verify - --json | jq .user_id\n"
        ),
    )
    verify.add_argument("token", help="the token; - reads it from standard input")
    _deployment(verify)
    _common(verify)

    decode = commands.add_parser(
        "decode",
        help="show a token's header and claims WITHOUT verifying it",
        description=_wrap(
            "Decode a token's header and claims, with iat/nbf/exp in UTC and "
            "relative to now. Nothing is checked: the output is labelled UNVERIFIED."
        ),
        formatter_class=_FORMAT,
        epilog=_epilog(
            "  wacht-auth decode eyJhbGciOi...\n  wacht-auth decode - --json < token.txt\n"
        ),
    )
    decode.add_argument("token", help="the token; - reads it from standard input")
    _common(decode)

    jwks = commands.add_parser(
        "jwks",
        help="show the deployment's signing keys",
        description=_wrap(
            "Fetch the deployment's JWK Set and list its usable keys and the entries "
            "skipped, with the reason."
        ),
        formatter_class=_FORMAT,
        epilog=_epilog(
            "  wacht-auth jwks --frontend-api-url https://your-app.wacht.services\n"
            "  wacht-auth jwks --json | jq '.keys[].kid'\n"
        ),
    )
    _deployment(jwks)
    _common(jwks)

    dev = commands.add_parser(
        "dev",
        help="run a local issuer that serves a JWKS and mints tokens",
        description=_wrap(
            "Run a development issuer on 127.0.0.1: it serves a JWK Set (ES256 and "
            "RS256 keys), prints the WACHT_FRONTEND_API_URL to export and a first token, and "
            "mints more on request at /dev/token (`wacht-auth dev mint`, curl) until stopped."
        ),
        formatter_class=_FORMAT,
        epilog=_epilog(
            "  wacht-auth dev --port 8765 --user 42 --organization 7 --permission invoices:read\n"
            "  export WACHT_FRONTEND_API_URL=http://127.0.0.1:8765   # in another shell\n"
            "  wacht-auth dev mint --user 43 --workspace 9 --workspace-permission docs:edit\n"
            "  curl -s 'http://127.0.0.1:8765/dev/token?user_id=43&lifetime=60'\n"
        ),
    )
    serve = dev.add_argument_group("issuer")
    serve.add_argument(
        "--port", type=_port, default=0, help="the port on 127.0.0.1 (default: a free one)"
    )
    serve.add_argument(
        "--algorithm",
        choices=["ES256", "RS256"],
        default="ES256",
        help="the default signer, for the first token and for mint requests that name none "
        "(ES256); the issuer has both keys",
    )
    serve.add_argument(
        "--seconds", type=float, metavar="N", help="stop after N seconds (default: Ctrl-C)"
    )
    _token_options(dev, algorithm=False)
    _common(dev)
    dev_commands = dev.add_subparsers(dest="dev_command", metavar="[mint]")
    mint = dev_commands.add_parser(
        "mint",
        help="ask a running `wacht-auth dev` for a token",
        description=_wrap(
            "Ask the development issuer at WACHT_FRONTEND_API_URL (or --url) for a "
            "token; prints the token alone (--json: the token and its claims)."
        ),
        formatter_class=_FORMAT,
        epilog=_epilog(
            "  wacht-auth dev mint --user 42 --organization 7 --permission invoices:write\n"
            '  curl -H "Authorization: Bearer $(wacht-auth dev mint)" localhost:8000/me\n'
            "  wacht-auth dev mint --url http://127.0.0.1:8765 --algorithm RS256 --json\n"
        ),
    )
    mint.add_argument("--url", help="the development issuer (default: WACHT_FRONTEND_API_URL)")
    _token_options(mint, algorithm=True)
    _common(mint)

    demo = commands.add_parser(
        "demo",
        help="the end-to-end demo: a local issuer, a demo app, real requests",
        description=_wrap(
            "Serve a demo app on uvicorn against a local issuer (a fake frontend API) and "
            "send it valid, missing, expired, forged and under-privileged tokens, then load "
            "a page anonymously (a redirect to sign in) and with a __session cookie (signed "
            "in by the exchange, __auth_<scope> set). Needs the demo extra: "
            "pip install 'wacht-auth[demo]'."
        ),
        formatter_class=_FORMAT,
        epilog=_epilog(
            "  wacht-auth demo\n"
            "  wacht-auth demo --app examples.starlette_app:create_app   # from a checkout\n"
        ),
    )
    demo.add_argument(
        "--app",
        default="wacht_auth._demo:create_app",
        metavar="MODULE:FACTORY",
        help="the ASGI app to demo: a factory taking a Config (default: the built-in app)",
    )
    _common(demo)
    _cli_webhooks.add_command(commands, _common, _epilog)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the ``wacht-auth`` command line; returns the exit code (:data:`EXIT_CODES`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    io = _Output(out or sys.stdout, err or sys.stderr, "--json" in argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        return io.fail(_Failure(EXIT_USAGE, "usage_error", str(error)))
    except SystemExit as stop:  # --help
        return stop.code if isinstance(stop.code, int) else EXIT_OK
    if args.version:
        io.result({"version": __version__}, f"wacht-auth {__version__}\n")
        return EXIT_OK
    if args.command is None:
        return io.fail(
            _Failure(EXIT_USAGE, "usage_error", "name a command (see: wacht-auth --help)")
        )
    handlers: dict[str, Callable[[argparse.Namespace, _Output], int]] = {
        "verify": _cmd_verify,
        "decode": _cmd_decode,
        "jwks": _cmd_jwks,
        "dev": _cmd_dev,
        "demo": _cmd_demo,
        "webhook": _cli_webhooks.run,
    }
    try:
        return handlers[args.command](args, io)
    except _Failure as failure:
        return io.fail(failure)
    except ConfigurationError as error:
        return io.fail(_Failure(EXIT_USAGE, "configuration_error", error.message))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
