"""The ``wacht-auth`` command: verify a token, show a deployment's keys, run a dev issuer, demo.

Exit codes: 0 success, 1 the token (or the demo) failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .config import Config
from .errors import ConfigurationError, WachtAuthError

__all__ = ["main"]


def _config_from_args(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {
        "frontend_api_url": args.frontend_api_url,
        "issuer": args.issuer,
        "jwks_url": args.jwks_url,
        "audience": tuple(args.audience) if args.audience else None,
        "token_cache_size": 0,
    }
    if args.public_key_file:
        with open(args.public_key_file, encoding="utf-8") as handle:
            overrides["public_key"] = handle.read()
    if getattr(args, "algorithm", None):
        overrides["algorithms"] = tuple(args.algorithm)
    return Config.from_env(**overrides)


def _cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from .verifier import Verifier

    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    verifier = Verifier(_config_from_args(args))
    try:
        session = verifier.verify(token)
    except WachtAuthError as error:
        out.write(f"invalid: {error.code} ({error.status}): {error.message}\n")
        return 1
    report = {
        "user_id": session.user_id,
        "session_id": session.session_id,
        "organization_id": session.organization_id,
        "workspace_id": session.workspace_id,
        "permissions": {
            "organization": list(session.organization_permissions),
            "workspace": list(session.workspace_permissions),
        },
        "expires_at": session.expires_at.isoformat(),
        "claims": dict(session.claims),
    }
    out.write(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    return 0


def _cmd_jwks(args: argparse.Namespace, out: TextIO) -> int:
    from .keys import KeyIndex
    from .keyset import FetchError, fetch_jwks

    config = _config_from_args(args)
    if config.jwks_url is None:
        out.write("no JWKS URL: the configuration pins a public key\n")
        return 2
    try:
        body, cache_control = fetch_jwks(
            config.jwks_url, timeout=config.jwks_timeout, max_bytes=config.jwks_max_bytes
        )
        index, skipped = KeyIndex.from_jwks(json.loads(body))
    except FetchError as error:
        out.write(f"fetch failed: {error.outcome}: {error.detail}\n")
        return 1
    except ValueError as error:
        out.write(f"not a usable JWK Set: {error}\n")
        return 1
    out.write(f"{config.jwks_url}  Cache-Control: {cache_control or '-'}\n")
    for key in index.keys:
        out.write(f"  {key!r}\n")
    for reason in skipped:
        out.write(f"  skipped: {reason}\n")
    if not len(index):
        out.write("  no usable key\n")
        return 1
    return 0


def _cmd_dev(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import Issuer

    issuer = Issuer(algorithms=tuple(args.algorithm or ("ES256",)), port=args.port)
    with issuer:
        token = issuer.token(
            user_id=args.user,
            organization=args.organization,
            permissions=args.permission or None,
            lifetime=args.lifetime,
        )
        out.write(
            f"Wacht development issuer on {issuer.url}\n"
            f"  JWKS: {issuer.jwks_url}\n"
            f"  export WACHT_FRONTEND_API_URL={issuer.url}\n"
            f"  a token for user {args.user} (valid {args.lifetime:g} s):\n{token}\n"
        )
        out.flush()
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2 if deadline is None else min(0.2, args.seconds))
        except KeyboardInterrupt:
            pass
    return 0


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run_demo

    return run_demo(out, args.app)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wacht-auth", description="Verify Wacht session tokens locally."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def deployment(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--frontend-api-url", help="default: from WACHT_* environment")
        sub.add_argument("--issuer")
        sub.add_argument("--jwks-url")
        sub.add_argument("--public-key-file", help="a PEM public key (networkless)")
        sub.add_argument("--audience", action="append")
        sub.add_argument("--algorithm", action="append", help="allow this alg (repeatable)")

    verify = commands.add_parser("verify", help="verify a token and print its claims")
    verify.add_argument("token", help="the token, or - to read it from standard input")
    deployment(verify)
    jwks = commands.add_parser("jwks", help="show the deployment's signing keys")
    deployment(jwks)
    dev = commands.add_parser("dev", help="run a local issuer that serves a JWKS")
    dev.add_argument("--port", type=int, default=0)
    dev.add_argument("--algorithm", action="append", choices=["ES256", "RS256", "EdDSA"])
    dev.add_argument("--user", default="user_1")
    dev.add_argument("--organization")
    dev.add_argument("--permission", action="append")
    dev.add_argument("--lifetime", type=float, default=3600)
    dev.add_argument("--seconds", type=float, help="stop after this many seconds")
    demo = commands.add_parser("demo", help="run the end-to-end demo on a local issuer")
    demo.add_argument(
        "--app",
        default="examples.starlette_app:create_app",
        help="module:factory of the ASGI app to demo (factory takes a Config)",
    )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``wacht-auth`` command line; returns the exit code."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    handlers = {"verify": _cmd_verify, "jwks": _cmd_jwks, "dev": _cmd_dev, "demo": _cmd_demo}
    try:
        return handlers[args.command](args, out)
    except ConfigurationError as error:
        out.write(f"configuration error: {error.message}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
