"""``wacht-auth webhook``: sign a test delivery (and send it to a local endpoint), or verify
a saved one, for debugging a webhook endpoint. ``docs/webhooks.md`` is the reference.

:func:`add_command` registers the subcommand on the ``wacht-auth`` parser and :func:`run`
runs it; the rest of the command line (output, exit codes) is ``wacht_auth.cli``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._cli_output import EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE, EXIT_USAGE, Failure, Output
from .errors import ConfigurationError, WebhookError
from .webhooks import DEFAULT_TOLERANCE, Receiver

__all__ = ["add_command", "run"]

_ENV = "WACHT_WEBHOOK_SECRET"


def add_command(
    commands: Any, common: Callable[[argparse.ArgumentParser], None], epilog: Callable[[str], str]
) -> None:
    """Register ``webhook sign`` and ``webhook verify`` on ``commands`` (the subparsers of
    ``wacht-auth``); ``common`` adds the options every command takes, ``epilog`` formats the
    examples and exit codes."""
    wrap = textwrap.fill
    form = argparse.RawDescriptionHelpFormatter
    webhook = commands.add_parser(
        "webhook",
        help="sign a test webhook delivery (and send it), or verify a saved one",
        description=wrap("Debug a webhook endpoint: sign deliveries as Wacht does, verify them."),
        formatter_class=form,
    )
    common(webhook)
    actions = webhook.add_subparsers(dest="webhook_command", metavar="{sign,verify}")
    sign = actions.add_parser(
        "sign",
        help="sign a test delivery; print it, or POST it to a local URL",
        description=wrap(
            "Sign a delivery as Wacht does (headers webhook-id, webhook-timestamp, "
            "webhook-signature) with the secret in WACHT_WEBHOOK_SECRET (or --secret), then "
            "print its headers and body, or POST it to an endpoint on this machine (--send)."
        ),
        formatter_class=form,
        epilog=epilog(
            "  export WACHT_WEBHOOK_SECRET=whsec_...\n"
            "  wacht-auth webhook sign --type user.created --data '{\"entity_id\": 42}'\n"
            "  wacht-auth webhook sign --send http://127.0.0.1:8000/webhooks\n"
            "  wacht-auth webhook sign --send http://127.0.0.1:8000/webhooks --ago 1290\n"
        ),
    )
    sign.add_argument("--type", default="test.webhook", help="the event name (test.webhook)")
    sign.add_argument("--data", default="{}", help='the event\'s data as JSON ({"entity_id": 1})')
    sign.add_argument("--id", dest="webhook_id", help="the webhook-id (default: a new msg_...)")
    sign.add_argument("--timestamp", type=int, help="the webhook-timestamp (default: now)")
    sign.add_argument("--ago", type=float, metavar="SECONDS", help="timestamp SECONDS ago")
    sign.add_argument("--send", metavar="URL", help="POST it to URL (a loopback host)")
    _secret(sign)
    common(sign)
    verify = actions.add_parser(
        "verify",
        help="verify a saved delivery: its body file and headers",
        description=wrap(
            "Verify a saved delivery as your endpoint would: the raw body exactly as "
            "received (a file, - for standard input) and its webhook-* headers (--header, "
            "or a --headers file of 'name: value' lines, as curl -D writes them)."
        ),
        formatter_class=form,
        epilog=epilog(
            "  wacht-auth webhook verify --body body.json --headers headers.txt\n"
            "  wacht-auth webhook verify --body - -H 'webhook-id: msg_1' "
            "-H 'webhook-timestamp: 1780000000' -H 'webhook-signature: v1,...' < body.json\n"
            "  wacht-auth webhook verify --body body.json --headers h.txt --at 1780000000\n"
        ),
    )
    verify.add_argument("--body", required=True, help="the raw body file; - reads stdin")
    verify.add_argument(
        "-H", "--header", action="append", default=[], help="a 'name: value' header"
    )
    verify.add_argument("--headers", metavar="FILE", help="a file of 'name: value' lines")
    verify.add_argument("--at", type=float, help="verify as of this Unix time (default: now)")
    verify.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"seconds a timestamp may lie in the past ({DEFAULT_TOLERANCE})",
    )
    _secret(verify)
    common(verify)


def _secret(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret",
        help=f"the whsec_ secret(s), space-separated (default: {_ENV}; prefer the variable: "
        "an argument shows in the process list)",
    )


def run(args: argparse.Namespace, io: Output) -> int:
    """Run ``wacht-auth webhook ...``; returns the exit code."""
    try:
        if args.webhook_command not in ("sign", "verify"):
            raise Failure(EXIT_USAGE, "usage_error", "name one: webhook sign | webhook verify")
        secret = args.secret or os.environ.get(_ENV, "")
        if not secret.strip():
            raise Failure(EXIT_USAGE, "usage_error", f"set {_ENV} or pass --secret")
        command = _sign if args.webhook_command == "sign" else _verify
        return command(args, io, secret)
    except ConfigurationError as error:
        return io.fail(Failure(EXIT_USAGE, "configuration_error", error.message))
    except Failure as failure:
        return io.fail(failure)


def _sign(args: argparse.Namespace, io: Output, secret: str) -> int:
    from .testing import WebhookSigner  # the test kit: loaded only for this command

    try:
        data = json.loads(args.data)
    except ValueError as exc:
        raise Failure(EXIT_USAGE, "usage_error", f"--data is not JSON: {exc}") from None
    stamp = args.timestamp
    if stamp is None and args.ago is not None:
        stamp = time.time() - args.ago
    delivery = WebhookSigner(secret).delivery(
        args.type, data, webhook_id=args.webhook_id, timestamp=stamp
    )
    shown = {"headers": dict(delivery.headers), "body": delivery.body.decode()}
    if not args.send:
        lines = "".join(f"{k}: {v}\n" for k, v in delivery.headers.items())
        io.result(shown, f"{lines}\n{delivery.body.decode()}\n")
        return EXIT_OK
    try:
        status, answer = delivery.send(args.send)
    except ValueError as exc:
        raise Failure(EXIT_USAGE, "usage_error", str(exc)) from None
    except OSError as exc:
        raise Failure(EXIT_UNAVAILABLE, "endpoint_unreachable", f"{args.send}: {exc}") from None
    text = answer.decode("utf-8", "replace")
    io.result(
        {**shown, "url": args.send, "status": status, "answer": text},
        f"POST {args.send}\nwebhook-id: {delivery.id}\n{status}\n{text}\n".replace("\n\n", "\n"),
    )
    return EXIT_OK if 200 <= status < 300 else EXIT_REJECTED


def _verify(args: argparse.Namespace, io: Output, secret: str) -> int:
    try:
        body = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
        lines = list(args.header)
        if args.headers:
            lines += Path(args.headers).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise Failure(EXIT_USAGE, "usage_error", str(exc)) from None
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and name.strip():  # a status line or a blank one is skipped
            headers[name.strip().lower()] = value.strip()
    now = time.time() if args.at is None else args.at
    receiver = Receiver(secret, tolerance=args.tolerance, replay_guard=False, clock=lambda: now)
    try:
        event = receiver.verify(body, headers)
    except WebhookError as error:
        raise Failure(EXIT_REJECTED, error.code, error.message) from None
    age = now - event.timestamp.timestamp()
    data = {
        "id": event.id,
        "type": event.type,
        "known_type": event.known_type is not None,
        "timestamp": event.timestamp.isoformat().replace("+00:00", "Z"),
        "age_seconds": round(age, 3),
        "data": event.data,
    }
    at = datetime.fromtimestamp(now, timezone.utc).isoformat().replace("+00:00", "Z")
    io.result(
        data,
        f"verified: {event.type} ({event.id})\n"
        f"timestamp: {data['timestamp']} ({age:.0f} s before {at})\n"
        f"data: {json.dumps(event.data, sort_keys=True)}\n",
    )
    return EXIT_OK
