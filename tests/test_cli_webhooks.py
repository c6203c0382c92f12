"""``wacht-auth webhook sign`` and ``wacht-auth webhook verify``."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from wacht_auth.cli import main
from wacht_auth.errors import WebhookError
from wacht_auth.testing import WebhookSigner
from wacht_auth.webhooks import Receiver

SIGNER = WebhookSigner()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WACHT_WEBHOOK_SECRET", SIGNER.secret)


def test_sign_prints_a_delivery_that_verifies(tmp_path: Path) -> None:
    code, out, _ = run(
        "webhook", "sign", "--type", "user.created", "--data", '{"entity_id": 42}', "--json"
    )
    assert code == 0
    printed = json.loads(out)
    event = Receiver(SIGNER.secret).verify(printed["body"].encode(), printed["headers"])
    assert (event.type, event.data) == ("user.created", {"entity_id": 42})
    assert SIGNER.secret not in out

    code, text, _ = run("webhook", "sign", "--id", "msg_fixed", "--timestamp", "1780000000")
    head, _, body = text.partition("\n\n")
    (tmp_path / "body.json").write_text(body.rstrip("\n"))
    (tmp_path / "headers.txt").write_text("HTTP/1.1 200 OK\n" + head + "\n")
    code, out, _ = run(
        "webhook", "verify", "--body", str(tmp_path / "body.json"),
        "--headers", str(tmp_path / "headers.txt"), "--at", "1780000100", "--json",
    )  # fmt: skip
    assert code == 0, out
    shown = json.loads(out)
    assert (shown["id"], shown["type"], shown["age_seconds"]) == ("msg_fixed", "test.webhook", 100)


def test_verify_reports_the_code_that_refuses(tmp_path: Path) -> None:
    delivery = SIGNER.delivery(timestamp=1780000000)
    (tmp_path / "body.json").write_bytes(delivery.body + b" ")  # not the bytes signed
    flags = [f"-H{name}: {value}" for name, value in delivery.headers.items()]
    code, out, _ = run("webhook", "verify", "--body", str(tmp_path / "body.json"), *flags, "--json")
    assert code == 1  # with --json every verdict is on stdout (docs/cli.md)
    assert json.loads(out)["error"]["code"] == "webhook_signature_invalid"
    (tmp_path / "body.json").write_bytes(delivery.body)
    body = str(tmp_path / "body.json")
    code, _, err = run("webhook", "verify", "--body", body, *flags)  # 8 months later
    assert code == 1 and "webhook_timestamp_too_old" in err
    code, _, _ = run("webhook", "verify", "--body", body, *flags, "--at", "1780000000")
    assert code == 0


def test_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("webhook", "sign", "--data", "{nope")[0] == 2
    assert run("webhook", "sign", "--send", "http://example.com/hooks")[0] == 2
    assert run("webhook", "sign", "--secret", "whsec_short")[0] == 2
    assert run("webhook")[0] == 2
    monkeypatch.delenv("WACHT_WEBHOOK_SECRET")
    code, out, _ = run("webhook", "sign", "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "usage_error"


class _Endpoint(BaseHTTPRequestHandler):
    receiver = Receiver(SIGNER.secret)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            self.receiver.verify(body, dict(self.headers.items()))
            status, answer = 204, b""
        except WebhookError as error:
            status, answer = error.status, error.to_json()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks"
    finally:
        server.shutdown()
        server.server_close()


def test_send_posts_to_a_local_endpoint(endpoint: str) -> None:
    code, out, _ = run("webhook", "sign", "--send", endpoint, "--ago", "1290", "--json")
    assert code == 0 and json.loads(out)["status"] == 204
    other = WebhookSigner().secret
    code, out, _ = run("webhook", "sign", "--send", endpoint, "--secret", other, "--json")
    answer = json.loads(out)
    assert code == 1 and answer["status"] == 503
    assert json.loads(answer["answer"])["error"]["code"] == "webhook_signature_invalid"


def test_send_to_nothing_listening() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, _ = run("webhook", "sign", "--send", f"http://127.0.0.1:{port}/", "--json")
    assert code == 3 and json.loads(out)["error"]["code"] == "endpoint_unreachable"
