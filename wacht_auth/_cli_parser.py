"""The ``wacht-auth`` argument parser: commands, options, help with examples and exit codes."""

from __future__ import annotations

import argparse
import textwrap
from typing import NoReturn

from . import _cli_webhooks
from ._cli_output import EXIT_CODES


class UsageError(Exception):
    """argparse refused the command line."""


class _Parser(argparse.ArgumentParser):
    """Usage errors become exceptions, so ``main`` reports them like any failure."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


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
        help="machine-readable output: one JSON object on stdout, the result or a failure as "
        '{"error": {"code": ..., "message": ...}} (diagnostics stay on stderr)',
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line."""
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
    verify.add_argument(
        "--oauth-issuer",
        metavar="URL",
        action="append",
        help="a Wacht OAuth server whose JWT access tokens to verify (repeatable; else "
        "WACHT_OAUTH_ISSUERS); a token of another issuer is checked as a session token",
    )
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
