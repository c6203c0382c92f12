"""The webhook core: secrets, verification rules, replay guards, event names, settings, and
interoperability with the Standard Webhooks reference library (both ways)."""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from wacht_auth.errors import ConfigurationError, WebhookError
from wacht_auth.settings import Settings
from wacht_auth.testing import WebhookSigner
from wacht_auth.webhooks import (
    DEFAULT_TOLERANCE,
    Event,
    EventType,
    MemoryReplayGuard,
    Receiver,
    ReplayGuard,
    WebhookSecret,
    parse_secrets,
    sign,
    verify,
)

NOW = 1_780_000_000
KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"type":"user.created","timestamp":"2026-05-28T20:26:40.000Z","data":{"entity_id":42}}'


def clock() -> float:
    return NOW


def headers(body: bytes = BODY, *, secret: str = SECRET, at: int = NOW, wid: str = "msg_1"):
    return sign(body, secret, webhook_id=wid, timestamp=at)


def refused(body: bytes, given: dict[str, str], **options: object) -> str:
    with pytest.raises(WebhookError) as raised:
        verify(body, given, options.pop("secret", SECRET), clock=clock, **options)  # type: ignore[arg-type]
    return raised.value.code


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        SECRET,
        SECRET.removeprefix("whsec_"),
        SECRET.rstrip("="),
        SECRET.removeprefix("whsec_").rstrip("="),
        "  " + SECRET + "\n",
    ],
)
def test_secret_forms_accepted(text: str) -> None:
    assert WebhookSecret.parse(text).key == KEY


@pytest.mark.parametrize(
    "text",
    [
        "whsec_",
        "whsec_" + base64.b64encode(b"x" * 15).decode(),  # under 16 bytes
        "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),  # not standard base64
        "whsec_not base64!",
        "whsec_a",  # not a length base64 can have
    ],
)
def test_malformed_secrets_are_configuration_errors_that_never_quote_them(text: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_secrets(text, "WACHT_WEBHOOK_SECRET")
    message = str(raised.value)
    assert "WACHT_WEBHOOK_SECRET" in message
    body = text.removeprefix("whsec_")
    assert len(body) < 4 or body not in message


def test_several_secrets_and_none_shown() -> None:
    other = WebhookSecret.generate()
    parsed = parse_secrets(f"{SECRET}, {other.text}\n")
    assert parsed == (WebhookSecret(KEY), other)
    assert parse_secrets([SECRET, other]) == parsed
    receiver = Receiver(parsed, clock=clock)
    for shown in (repr(parsed), repr(receiver), str(receiver), repr(WebhookSigner(SECRET))):
        assert SECRET.removeprefix("whsec_")[:10] not in shown
    with pytest.raises(ConfigurationError):
        Receiver([])
    with pytest.raises(ConfigurationError):
        parse_secrets(42)  # type: ignore[arg-type]


def test_the_setting_is_read_and_refused_alike_in_every_spelling() -> None:
    other = WebhookSecret.generate().text
    loaded = [
        Settings.load(env={"WACHT_WEBHOOK_SECRET": f"{SECRET} {other}"}),
        Settings.load({"webhook_secret": [SECRET, other]}, where="settings.WACHT_AUTH", env={}),
        Settings.load(
            {"WACHT_WEBHOOK_SECRET": f"{SECRET},{other}"}, prefixed=True, where="app.config", env={}
        ),
    ]
    for settings in loaded:
        assert len(settings.values["webhook_secret"]) == 2
        assert Receiver.from_settings(settings, clock=clock).verify(BODY, headers()).id == "msg_1"
        assert SECRET[10:30] not in repr(settings)
    labels = []
    for attempt in (
        lambda: Settings.load(env={"WACHT_WEBHOOK_SECRET": "whsec_short"}),
        lambda: Settings.load({"webhook_secret": "whsec_short"}, where="settings.WACHT_AUTH"),
        lambda: Settings.load(
            {"WACHT_WEBHOOK_SECRET": "whsec_short"}, prefixed=True, where="app.config"
        ),
    ):
        with pytest.raises(ConfigurationError) as raised:
            attempt()
        labels.append(str(raised.value))
    assert "WACHT_WEBHOOK_SECRET" in labels[0]
    assert "settings.WACHT_AUTH['webhook_secret']" in labels[1]
    assert "app.config['WACHT_WEBHOOK_SECRET']" in labels[2]


def test_tolerance_and_cap_settings() -> None:
    settings = Settings.load(
        env={
            "WACHT_WEBHOOK_SECRET": SECRET,
            "WACHT_WEBHOOK_TOLERANCE": "3600",
            "WACHT_WEBHOOK_MAX_BYTES": "2048",
        }
    )
    receiver = Receiver.from_settings(settings, clock=clock)
    assert (receiver.tolerance, receiver.max_bytes) == (3600, 2048)
    with pytest.raises(WebhookError) as raised:
        receiver.verify(BODY, headers(at=NOW - 3601))
    assert raised.value.code == "webhook_timestamp_too_old"
    bad = Settings.load(env={"WACHT_WEBHOOK_SECRET": SECRET, "WACHT_WEBHOOK_TOLERANCE": "-1"})
    with pytest.raises(ConfigurationError, match="WACHT_WEBHOOK_TOLERANCE"):
        Receiver.from_settings(bad)
    with pytest.raises(ConfigurationError, match="WACHT_WEBHOOK_SECRET"):
        Receiver.from_settings(Settings.load(env={}))


# -- verification -------------------------------------------------------------------------------


def test_a_delivery_verifies_into_a_read_only_event() -> None:
    event = verify(BODY, headers(), SECRET, clock=clock)
    assert (event.id, event.type, event.data) == ("msg_1", "user.created", {"entity_id": 42})
    assert event.timestamp == datetime.fromtimestamp(NOW, timezone.utc)
    assert event.timestamp.tzinfo is not None
    assert event.body == BODY and event.payload["timestamp"] == "2026-05-28T20:26:40.000Z"
    assert event.known_type is EventType.USER_CREATED
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.type = "user.deleted"  # type: ignore[misc]


def test_header_names_are_case_insensitive_in_a_plain_dict() -> None:
    given = {name.title(): value for name, value in headers().items()}
    assert verify(BODY, given, SECRET, clock=clock).id == "msg_1"


def test_signature_list_other_versions_and_any_configured_secret() -> None:
    other = WebhookSecret.generate()
    theirs = headers(secret=other.text)["webhook-signature"]
    ours = headers()["webhook-signature"]
    given = {**headers(), "webhook-signature": f"v2,abc v1,!!! {theirs} {ours}"}
    assert verify(BODY, given, SECRET, clock=clock).id == "msg_1"
    # The same signature under another version is ignored.
    v2 = {**headers(), "webhook-signature": ours.replace("v1,", "v2,")}
    assert refused(BODY, v2) == "webhook_signature_invalid"
    # Rotation on the app's side: both secrets configured, either signs.
    assert verify(BODY, headers(secret=other.text), [SECRET, other], clock=clock).id == "msg_1"


def test_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    verify(BODY, headers(), SECRET, clock=clock)
    assert calls and all(len(a) == 32 for a, _ in calls)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"webhook-id": ""}, "webhook_headers_missing"),
        ({"webhook-timestamp": ""}, "webhook_headers_missing"),
        ({"webhook-signature": ""}, "webhook_headers_missing"),
        ({"webhook-id": "msg 1"}, "webhook_headers_malformed"),
        ({"webhook-id": "m" * 257}, "webhook_headers_malformed"),
        ({"webhook-timestamp": f"{NOW}.0"}, "webhook_headers_malformed"),
        ({"webhook-timestamp": "-5"}, "webhook_headers_malformed"),
        ({"webhook-timestamp": "1e9"}, "webhook_headers_malformed"),
        ({"webhook-signature": "v1," + "A" * 9000}, "webhook_headers_malformed"),
        ({"webhook-signature": "v1,AAAA"}, "webhook_signature_invalid"),
        ({"webhook-timestamp": str(NOW + 1)}, "webhook_signature_invalid"),
    ],
)
def test_broken_headers(change: dict[str, str], code: str) -> None:
    assert refused(BODY, {**headers(), **change}) == code


def test_the_body_is_verified_as_received() -> None:
    respaced = json.dumps(json.loads(BODY), indent=2).encode()
    assert refused(respaced, headers()) == "webhook_signature_invalid"
    assert refused(BODY + b"\n", headers()) == "webhook_signature_invalid"
    with pytest.raises(TypeError):
        verify(BODY.decode(), headers(), SECRET)  # type: ignore[arg-type]


def test_tolerances_default_to_wachts_retry_window() -> None:
    assert DEFAULT_TOLERANCE == 7 * 86400
    for late in (30, 90, 6 * 60, 21.5 * 60, 6 * 3600, 7 * 86400):  # Wacht's retries
        at = int(NOW - late)
        assert verify(BODY, headers(at=at), SECRET, clock=clock).id == "msg_1"
    assert refused(BODY, headers(at=NOW - 7 * 86400 - 1)) == "webhook_timestamp_too_old"
    assert verify(BODY, headers(at=NOW + 300), SECRET, clock=clock).id == "msg_1"
    assert refused(BODY, headers(at=NOW + 301)) == "webhook_timestamp_in_future"
    assert refused(BODY, headers(at=NOW - 61), tolerance=60) == "webhook_timestamp_too_old"


def test_the_signature_is_checked_before_the_time() -> None:
    forged = {**headers(at=NOW - 10 * 86400), "webhook-signature": "v1,AAAA"}
    assert refused(BODY, forged) == "webhook_signature_invalid"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[]", b'"user.created"', b'{"type": 1}', b'{"data": {}}'],
)
def test_the_body_must_be_an_envelope(body: bytes) -> None:
    assert refused(body, headers(body)) == "webhook_payload_invalid"


def test_the_body_cap() -> None:
    big = b'{"type":"x","p":"' + b"a" * 100 + b'"}'
    assert refused(big, headers(big), max_bytes=100) == "webhook_payload_too_large"
    receiver = Receiver(SECRET, max_bytes=100, clock=clock)
    with pytest.raises(WebhookError) as raised:  # told by Content-Length: the body is not read
        receiver.receive("POST", {**headers(), "Content-Length": "101"}, lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    assert raised.value.code == "webhook_payload_too_large"


@pytest.mark.parametrize("length", ["\u00b2", "\u0661\u0660\u0661", "abc"])
def test_a_content_length_that_is_no_ascii_number_is_not_read_as_one(length: str) -> None:
    # "²".isdigit() is true yet int("²") raises: a header a WSGI server passes on as
    # latin-1 must not turn a delivery into a 500; the body cap still applies.
    receiver = Receiver(SECRET, clock=clock)
    event = receiver.receive("POST", {**headers(), "Content-Length": length}, BODY)
    assert event.id == "msg_1"
    small = Receiver(SECRET, max_bytes=10, clock=clock)
    with pytest.raises(WebhookError) as raised:
        small.receive("POST", {**headers(), "Content-Length": length}, BODY)
    assert raised.value.code == "webhook_payload_too_large"


async def test_areceive_stops_reading_at_the_cap() -> None:
    receiver = Receiver(SECRET, max_bytes=100, clock=clock)
    read: list[bytes] = []

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(1000):
            read.append(b"a" * 60)
            yield b"a" * 60

    with pytest.raises(WebhookError) as raised:
        await receiver.areceive("POST", headers(), chunks())
    assert raised.value.code == "webhook_payload_too_large" and len(read) == 2

    async def body():  # type: ignore[no-untyped-def]
        yield BODY[:10]
        yield BODY[10:]

    event = await Receiver(SECRET, clock=clock).areceive("POST", headers(), body())
    assert event.body == BODY


def test_only_post() -> None:
    receiver = Receiver(SECRET, clock=clock)
    with pytest.raises(WebhookError) as raised:
        receiver.receive("GET", headers(), BODY)
    assert (raised.value.code, raised.value.status) == ("webhook_method_not_allowed", 405)
    assert raised.value.response_headers() == {"Allow": "POST"}


def test_statuses_tell_wacht_whether_to_retry() -> None:
    statuses = {}
    for cls in WebhookError.__subclasses__():
        statuses[cls.code] = cls.status
    assert statuses == {
        "webhook_method_not_allowed": 405,
        "webhook_payload_too_large": 413,
        "webhook_headers_missing": 400,
        "webhook_headers_malformed": 400,
        "webhook_signature_invalid": 503,  # a rotated secret: Wacht retries for days
        "webhook_timestamp_too_old": 400,
        "webhook_timestamp_in_future": 503,  # a clock off: a retry with the same timestamp
        "webhook_payload_invalid": 400,
        "webhook_replayed": 409,
    }


# -- replays ------------------------------------------------------------------------------------


def test_an_id_is_refused_only_after_accepted() -> None:
    receiver = Receiver(SECRET, clock=clock)
    event = receiver.verify(BODY, headers())
    assert receiver.verify(BODY, headers()).id == event.id  # not accepted yet: a retry passes
    receiver.accepted(event)
    with pytest.raises(WebhookError) as raised:
        receiver.verify(BODY, headers())
    assert (raised.value.code, raised.value.status) == ("webhook_replayed", 409)
    assert Receiver(SECRET, clock=clock, replay_guard=False).verify(BODY, headers()).id


def test_a_custom_guard_gets_the_expiry_of_the_tolerance() -> None:
    class Guard:
        def __init__(self) -> None:
            self.held: dict[str, float] = {}

        def seen(self, webhook_id: str) -> bool:
            return webhook_id in self.held

        def remember(self, webhook_id: str, expires_at: float) -> None:
            self.held[webhook_id] = expires_at

    guard = Guard()
    assert isinstance(guard, ReplayGuard)
    receiver = Receiver(SECRET, clock=clock, replay_guard=guard, tolerance=600)
    receiver.accepted(receiver.verify(BODY, headers(at=NOW - 100)))
    assert guard.held == {"msg_1": NOW - 100 + 600}
    with pytest.raises(ConfigurationError):
        Receiver(SECRET, replay_guard=object())  # type: ignore[arg-type]


def test_the_memory_guard_is_bounded_and_forgets_expired_ids() -> None:
    now = [1000.0]
    guard = MemoryReplayGuard(3, clock=lambda: now[0])
    for index in range(5):
        guard.remember(f"msg_{index}", 2000)
    assert len(guard) == 3
    assert [guard.seen(f"msg_{i}") for i in range(5)] == [False, False, True, True, True]
    guard.remember("msg_short", 1001)
    now[0] = 1001
    assert not guard.seen("msg_short") and guard.seen("msg_4")
    with pytest.raises(ValueError):
        MemoryReplayGuard(0)


# -- event names --------------------------------------------------------------------------------


def test_event_names() -> None:
    names = [member.value for member in EventType]
    assert len(names) == 48 and len(set(names)) == 48  # 47 documented + test.webhook
    assert EventType.ORGANIZATION_MEMBER_ROLE_UPDATED == "organization.member.role.updated"
    assert str(EventType.AGENT_THREAD_PLATFORM_EVENT) == "agent.thread.platform_event"
    assert sum(n.startswith("workspace.") for n in names) == 9
    body = b'{"type":"agent.hook.custom","data":null}'
    event = verify(body, headers(body), SECRET, clock=clock)
    assert (event.type, event.known_type, event.data) == ("agent.hook.custom", None, None)


# -- interoperability with the Standard Webhooks reference library ------------------------------


def test_the_reference_library_signs_what_we_verify() -> None:
    reference = Webhook(SECRET)
    signature = reference.sign("msg_2", datetime.fromtimestamp(NOW, timezone.utc), BODY)
    given = {"webhook-id": "msg_2", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    assert verify(BODY, given, SECRET, clock=clock).id == "msg_2"
    assert verify(BODY, given, SECRET.removeprefix("whsec_"), clock=clock).id == "msg_2"


def test_we_sign_what_the_reference_library_verifies() -> None:
    import time

    signer = WebhookSigner()
    delivery = signer.delivery("organization.created", {"entity_id": "org_1"})
    assert Webhook(signer.secret).verify(delivery.body, dict(delivery.headers)) == {
        "type": "organization.created",
        "timestamp": json.loads(delivery.body)["timestamp"],
        "data": {"entity_id": "org_1"},
    }
    assert abs(delivery.timestamp - time.time()) < 5


def test_wachts_fifth_retry_passes_here_and_not_with_the_reference_default() -> None:
    import time

    signer = WebhookSigner()
    retry = signer.delivery("user.updated", timestamp=time.time() - 21.5 * 60)
    assert verify(retry.body, retry.headers, signer.secret).type == "user.updated"
    with pytest.raises(WebhookVerificationError):
        Webhook(signer.secret).verify(retry.body, dict(retry.headers))


def test_an_event_is_what_the_kit_signed() -> None:
    signer = WebhookSigner(SECRET, clock=clock)
    delivery = signer.delivery("session.expired", {"entity_id": 3}, webhook_id="msg_9")
    event = Receiver(SECRET, clock=clock).verify(delivery.body, delivery.headers)
    assert isinstance(event, Event)
    assert (event.id, event.type, event.data) == ("msg_9", "session.expired", {"entity_id": 3})
    assert delivery.headers["User-Agent"] == "Wacht-Webhook/1.0"
    assert json.loads(delivery.body)["timestamp"] == "2026-05-28T20:26:40.000Z"


def test_the_pytest_fixture_signs_with_a_new_secret(wacht_webhooks: WebhookSigner) -> None:
    assert isinstance(wacht_webhooks, WebhookSigner)
    assert wacht_webhooks.secret.startswith("whsec_")
    delivery = wacht_webhooks.delivery("test.webhook")
    event = verify(delivery.body, delivery.headers, wacht_webhooks.secret)
    assert event.known_type is EventType.TEST_WEBHOOK
    assert refused(delivery.body, dict(delivery.headers)) == "webhook_signature_invalid"
