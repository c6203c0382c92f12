"""The loopback server every fake of the kit runs on (``wacht_auth.testing._server``).

One table of the fakes: each starts idempotently, answers on loopback, stops within a bounded
time (cutting delayed answers short), releases its port and leaves no unclosed socket behind.
"""

from __future__ import annotations

import gc
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from wacht_auth._dev import DevIssuer
from wacht_auth.testing import FakeBackendAPI, FakeGateway, FrontendAPI, Issuer, OAuthServer
from wacht_auth.testing._server import _Loopback

pytestmark = pytest.mark.filterwarnings("error")  # a ResourceWarning fails the test

FAKES: dict[str, Callable[[], _Loopback]] = {
    "Issuer": Issuer,
    "FrontendAPI": FrontendAPI,
    "FakeGateway": FakeGateway,
    "FakeBackendAPI": FakeBackendAPI,
    "OAuthServer": OAuthServer,
    "DevIssuer": DevIssuer,
}


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


def port_free(port: int) -> bool:
    """Whether a new listener can bind ``port`` (SO_REUSEADDR: a live listener still blocks)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("name", sorted(FAKES))
def test_start_and_stop_are_idempotent_and_release_the_port(name: str) -> None:
    fake = FAKES[name]()
    try:
        assert fake.start() is fake
        assert fake.start() is fake
        port = fake.port
        assert fake.url == f"http://127.0.0.1:{port}"
        assert listening(port)
    finally:
        fake.stop()
        fake.stop()
    assert not listening(port) and port_free(port)
    gc.collect()  # an unclosed socket would warn here


@pytest.mark.parametrize("name", sorted(FAKES))
def test_the_context_manager_serves_then_releases(name: str) -> None:
    with FAKES[name]() as fake:
        port = fake.port
        assert listening(port)
    assert not listening(port) and port_free(port)
    gc.collect()


@pytest.mark.parametrize("name", ["Issuer", "FakeGateway", "FakeBackendAPI", "OAuthServer"])
def test_no_port_before_the_first_start(name: str) -> None:
    fake = FAKES[name]()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with pytest.raises(RuntimeError):
        _ = fake.port


def test_the_dev_issuer_holds_its_port_from_the_start_and_closes_it_unstarted() -> None:
    dev = DevIssuer()
    port = dev.port
    assert dev.url == dev.issuer.url == f"http://127.0.0.1:{port}"
    assert not port_free(port)  # taken before start(): the tokens' iss is known
    dev.stop()
    assert port_free(port)
    gc.collect()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com", ""])
def test_a_fake_listens_on_loopback_only(host: str) -> None:
    for make in (
        lambda: Issuer(host=host),
        lambda: FrontendAPI(host=host),
        lambda: FakeBackendAPI(host=host),
    ):
        with pytest.raises(ValueError):
            make()


def test_ipv6_loopback_for_every_fake_with_a_host() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        backend = FakeBackendAPI(host="::1").start()
    except RuntimeError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert backend.url == f"http://[::1]:{backend.port}"
        with backend.client() as client:
            assert client.users.get_user_details("1")
    finally:
        backend.stop()


def test_a_method_a_fake_does_not_serve_is_501() -> None:
    with Issuer() as issuer, FakeGateway() as gateway:
        for url, method in ((issuer.jwks_url, "POST"), (gateway.url + "/v1/authz/check", "GET")):
            request = urllib.request.Request(url, data=b"{}", method=method)
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(request, timeout=5)
            info.value.close()
            assert info.value.code == 501


def test_stop_cuts_a_gateway_delay_short() -> None:
    gateway = FakeGateway().start()
    key = gateway.add_key()
    gateway.delay(30)
    results: list[object] = []

    def client() -> None:
        body = json.dumps({"principal": {"type": "api_key", "value": key}}).encode()
        request = urllib.request.Request(gateway.url + "/v1/authz/check", data=body)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                results.append(answer.status)
        except OSError as exc:
            results.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    for _ in range(100):  # wait until the request has arrived
        if gateway.connections:
            break
        time.sleep(0.02)
    started = time.monotonic()
    gateway.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert results == [200]  # answered at once, not after 30 s
