"""Two Backend API findings: a path id copied into an integer body field, and redaction of a
key prefix that a server echoes with something around it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from wacht_auth.backend import OPERATIONS, AuthenticationError, BackendClient
from wacht_auth.backend._generate import load_table
from wacht_auth.backend._redact import REDACTED, redact_text

SECRET = "wacht_live_sk_SuperSecret123456"
TABLE = load_table()
BODIES = {op["id"]: op["body"]["schema"] for op in TABLE["operations"] if op.get("body")}


def client(seen: list[httpx.Request], answer: httpx.Response | None = None) -> BackendClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer if answer is not None else httpx.Response(200, json={})

    return BackendClient(
        secret_key=SECRET, base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler)
    )


def validate(value: Any, schema: Any) -> None:
    jsonschema.Draft202012Validator({"$defs": TABLE["schemas"], **schema}).validate(value)


INTEGER_COPIES = sorted(op.id for op in OPERATIONS.values() if op.path_in_body_int)


def test_the_operations_copying_an_id_into_an_integer_field_are_known() -> None:
    assert {"revokeApiKeyForApp", "setAgentRoleAgent"} <= set(INTEGER_COPIES)


@pytest.mark.parametrize(
    ("call", "op_id", "field"),
    [
        (
            lambda c, i: c.api_auth.revoke_api_key_for_app("billing", i),
            "revokeApiKeyForApp",
            "key_id",
        ),
        (lambda c, i: c.ai.set_agent_role_agent(i, role="r"), "setAgentRoleAgent", "agent_id"),
    ],
)
def test_a_path_id_copied_into_an_integer_field_conforms(call: Any, op_id: str, field: str) -> None:
    seen: list[httpx.Request] = []
    with client(seen) as backend:
        call(backend, "2741598367104")
        call(backend, "not-a-number")  # the path names the object; the body leaves it out
    first, second = (json.loads(r.content) for r in seen)
    assert first[field] == 2741598367104
    assert field not in second
    for body in (first, second):
        validate(body, BODIES[op_id])


def test_a_string_copied_into_a_string_field_stays_a_string() -> None:
    seen: list[httpx.Request] = []
    with client(seen) as backend:
        backend.webhooks.trigger_webhook_event("billing", event_name="e", payload={})
    assert json.loads(seen[0].content)["app_slug"] == "billing"


@pytest.mark.parametrize(
    "echo",
    [
        SECRET[:20] + "...",  # a prefix then an ASCII ellipsis (token characters)
        "key=" + SECRET[:12] + "...",
        SECRET[:8] + ".." + SECRET[-8:],
        "x" * 30 + SECRET[5:15] + "y" * 30,  # a middle piece inside a longer run
    ],
)
def test_a_run_holding_a_piece_of_the_key_is_redacted_whatever_surrounds_it(echo: str) -> None:
    text = redact_text(f"bad key {echo} given", [SECRET])
    assert REDACTED in text
    assert not any(SECRET[i : i + 8] in text for i in range(len(SECRET) - 7))


def test_runs_without_a_piece_of_the_key_are_kept() -> None:
    text = "request req_0123456789abcdef failed at /users/123456789"
    assert redact_text(text, [SECRET]) == text
    kept = "prefix wacht_lQQQQQQQQ"  # 7 characters of the key: no piece
    assert redact_text(kept, [SECRET]) == kept


def test_the_client_redacts_an_echoed_prefix_with_an_ellipsis() -> None:
    body = {"error": {"code": "unauthorized", "message": f"key {SECRET[:20]}... is revoked"}}
    with client([], httpx.Response(401, json=body)) as backend:
        with pytest.raises(AuthenticationError) as info:
            backend.users.get_user_details("1")
    text = str(info.value) + repr(info.value) + info.value.message
    assert SECRET[:8] not in text
