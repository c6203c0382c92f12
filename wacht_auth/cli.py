"""The ``wacht-auth`` command: verify or decode a token, show keys, run a dev issuer, the demo.

Results go to standard output, diagnostics to standard error. ``--json`` makes every verdict
one JSON object on standard output, a failure included (``{"error": {"code": ...,
"message": ...}}``), so ``wacht-auth verify --json "$T" | jq .error.code`` reads it; without
it a failure is one line on standard error. The exit codes are :data:`EXIT_CODES`;
``docs/cli.md`` is the reference. The parser is in ``_cli_parser``, the commands in
``_cli_commands`` and what they write in ``_cli_output``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from . import __version__, _cli_webhooks
from ._cli_commands import decode, demo, dev, jwks, verify
from ._cli_output import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Failure,
    Output,
)
from ._cli_parser import UsageError, build_parser
from .errors import ConfigurationError

__all__ = [
    "EXIT_CODES",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "main",
]


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the ``wacht-auth`` command line; returns the exit code (:data:`EXIT_CODES`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    io = Output(out or sys.stdout, err or sys.stderr, "--json" in argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        return io.fail(Failure(EXIT_USAGE, "usage_error", str(error)))
    except SystemExit as stop:  # --help
        return stop.code if isinstance(stop.code, int) else EXIT_OK
    if args.version:
        io.result({"version": __version__}, f"wacht-auth {__version__}\n")
        return EXIT_OK
    if args.command is None:
        return io.fail(
            Failure(EXIT_USAGE, "usage_error", "name a command (see: wacht-auth --help)")
        )
    handlers: dict[str, Callable[[argparse.Namespace, Output], int]] = {
        "verify": verify,
        "webhook": _cli_webhooks.run,
        "decode": decode,
        "jwks": jwks,
        "dev": dev,
        "demo": demo,
    }
    try:
        return handlers[args.command](args, io)
    except Failure as failure:
        return io.fail(failure)
    except ConfigurationError as error:
        return io.fail(Failure(EXIT_USAGE, "configuration_error", error.message))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
