"""Every operation of the table, on both clients, against one loopback fake Backend API.

For each operation the test calls its generated method with every parameter and body field
(values made from the table's schemas), then checks what went over the wire: the method, the
path from the description's template, a query whose values fit each parameter's schema, and a
body (JSON or ``multipart/form-data``) valid against the request schema. The server answers
with a value made from the response schema (checked against it too), which must come back
unchanged (a ``{"data": …}`` envelope unwrapped). Every list operation's walker is run the same
way over two pages.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import keyword
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jsonschema
import pytest
import pytest_asyncio

from tests.fake_backend import FakeBackend, Recorded, Reply
from wacht_auth.backend import OPERATIONS, AsyncBackendClient, BackendClient, Operation
from wacht_auth.backend._derive import load_table, summary

# One event loop, one fake server and one client of each kind for the whole module.
pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "sk_test_operations"
TABLE = load_table()
DEFS: dict[str, Any] = TABLE["schemas"]
BY_ID: dict[str, dict[str, Any]] = {op["id"]: op for op in TABLE["operations"]}
FILE = ("upload.bin", b"\x89PNG\r\n\x1a\n\x00binary", "application/octet-stream")


def resolve(schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def example(schema: Any, depth: int = 0) -> Any:
    """A value valid against ``schema`` that fills every member (only required ones when
    deep, so recursive schemas end)."""
    if not isinstance(schema, dict) or not schema:
        return {"any": "value"}
    if "$ref" in schema:
        return example(resolve(schema), depth + 1)
    if "anyOf" in schema:
        return example(next(s for s in schema["anyOf"] if s != {"type": "null"}), depth)
    if "oneOf" in schema:
        return example(schema["oneOf"][0], depth)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(example(part, depth))
        return merged
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-01-02T03:04:05Z"
        return "blob" if schema.get("format") == "binary" else "text"
    if kind == "integer":
        return 7
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [example(schema.get("items", {}), depth + 1)] if depth < 6 else []
    properties = schema.get("properties")
    if not properties:
        return {"key": "value"}
    required = set(schema.get("required", ()))
    return {
        name: example(sub, depth + 1)
        for name, sub in properties.items()
        if depth < 6 or name in required
    }


def validate(value: Any, schema: Any) -> None:
    jsonschema.Draft202012Validator({"$defs": DEFS, **schema}).validate(value)


def coerce(text: str, schema: Any) -> Any:
    """A query or form value back to its schema's type (what the server would parse)."""
    schema = resolve(schema)
    if "anyOf" in schema:
        schema = resolve(next(s for s in schema["anyOf"] if s != {"type": "null"}))
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "boolean":
        assert text in ("true", "false"), text
        return text == "true"
    if kind in ("object", "array"):
        return json.loads(text)
    return text


class Case:
    """The arguments for one operation and what the server must see."""

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.entry = BY_ID[op.id]
        self.args = tuple(f"{name}-1" for name in op.path_params)
        self.path = op.path
        for name in op.path_params:
            self.path = self.path.replace("{" + name + "}", f"{name}-1")
        self.kwargs: dict[str, Any] = {}
        self.query: dict[str, Any] = {}
        names = iter(self._names())
        for q in self.entry["query"]:
            value = example(q["schema"])
            self.kwargs[next(names)] = value
            self.query[q["name"]] = value
        self.body: Any = None
        self.files: dict[str, tuple[str, bytes, str]] = {}
        body = self.entry.get("body")
        if body is not None:
            schema = resolve(body["schema"])
            if op.body == "json_value":
                self.body = example(body["schema"])
                self.kwargs["body"] = self.body
            else:
                self.body = {}
                for field, sub in schema.get("properties", {}).items():
                    value = FILE if field in op.files else example(sub)
                    self.kwargs[next(names)] = value
                    if field in op.files:
                        self.files[field] = FILE
                    else:
                        self.body[field] = value
        self.answer = example(self.entry["response"])

    def _names(self) -> list[str]:
        """The method's keyword names in table order (the generator's naming rule)."""
        taken = set(self.op.path_params)
        out = []
        for q in self.entry["query"]:
            name = q["name"] + ("_" if keyword.iskeyword(q["name"]) else "")
            out.append("query_" + name if name in taken else name)
        body = self.entry.get("body")
        if body is not None and self.op.body != "json_value":
            for field in resolve(body["schema"]).get("properties", {}):
                name = field + ("_" if keyword.iskeyword(field) else "")
                out.append("body_" + name if name in taken else name)
        return out

    def check(self, request: Recorded) -> None:
        """The request conforms to the description and carries exactly what was passed."""
        assert request.method == self.op.method
        assert request.path == self.path
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        params = {q["name"]: q for q in self.entry["query"]}
        assert set(request.query) == {k for k, v in self.query.items() if v is not None}
        for name, values in request.query.items():
            (text,) = values
            value = coerce(text, params[name]["schema"])
            validate(value, params[name]["schema"])
            assert value == self.query[name]
        body = self.entry.get("body")
        if body is None:
            assert request.body == b""
            return
        media = request.headers["content-type"]
        if self.op.body == "multipart":
            assert media.startswith("multipart/form-data; boundary=")
            received, files = parse_form(request, resolve(body["schema"]))
            assert files == {k: v[1] for k, v in self.files.items()}
            validate({**received, **{k: "blob" for k in files}}, body["schema"])
            assert received == self.body
        else:
            assert media == "application/json"
            received = request.json()
            validate(received, body["schema"])
            assert received == self.body


def parse_form(request: Recorded, schema: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The text fields (back to their schema types) and files of a multipart body."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_filename() is not None:
            files[name] = payload
        else:
            fields[name] = coerce(payload.decode(), schema["properties"][name])
    return fields, files


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBackend]:
    with FakeBackend() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: FakeBackend) -> Iterator[BackendClient]:
    with BackendClient(secret_key=SECRET, base_url=server.url) as sync_client:
        yield sync_client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def aclient(server: FakeBackend) -> AsyncIterator[AsyncBackendClient]:
    async with AsyncBackendClient(secret_key=SECRET, base_url=server.url) as async_client:
        yield async_client


async def test_every_operation_of_the_description_is_in_the_table(
    client: BackendClient, aclient: AsyncBackendClient
) -> None:
    assert len(OPERATIONS) == len(TABLE["operations"]) == 265
    assert len({op.namespace for op in OPERATIONS.values()}) == 16
    methods = [op.method for op in OPERATIONS.values()]
    assert {m: methods.count(m) for m in set(methods)} == {
        "GET": 103,
        "POST": 91,
        "DELETE": 35,
        "PATCH": 32,
        "PUT": 4,
    }
    assert sum(op.body == "multipart" for op in OPERATIONS.values()) == 10
    summaries = {entry["id"]: summary(entry) for entry in TABLE["operations"]}
    for op in OPERATIONS.values():
        for either in (client, aclient):
            method = getattr(getattr(either, op.namespace), op.name)
            assert method.__doc__ == f"{summaries[op.id]}: ``{op.method} {op.path}``."
            if op.walker:
                assert callable(getattr(getattr(either, op.namespace), op.walker))
    user = OPERATIONS["getUserDetails"]
    assert (user.method, user.path, user.namespace, user.name) == (
        "GET",
        "/users/{user_id}/details",
        "users",
        "get_user_details",
    )


@pytest.mark.parametrize("op_id", sorted(OPERATIONS))
async def test_operation(
    op_id: str, server: FakeBackend, client: BackendClient, aclient: AsyncBackendClient
) -> None:
    op = OPERATIONS[op_id]
    case = Case(op)
    validate(case.answer, case.entry["response"])  # the fake's answer fits the description
    for wrapped in (False, True):
        if wrapped and not op.unwrap:
            continue
        server.reset()
        body = {"data": case.answer} if wrapped else case.answer
        server.fallback(lambda request, body=body: Reply(200, body))
        sync_result = getattr(getattr(client, op.namespace), op.name)(*case.args, **case.kwargs)
        method = getattr(getattr(aclient, op.namespace), op.name)
        async_result = await method(*case.args, **case.kwargs)
        assert sync_result == async_result == case.answer
        assert len(server.requests) == 2
        for request in server.requests:
            case.check(request)


LISTS = sorted(op.id for op in OPERATIONS.values() if op.walker)


def two_pages(op: Operation, items: list[Any]) -> Any:
    """A handler paging ``items`` two at a time the way ``op`` pages."""
    page = op.page
    assert page is not None

    def handler(request: Recorded) -> Reply:
        start = int(request.param("cursor") or request.param("offset") or 0)
        chunk = items[start : start + 2]
        answer: dict[str, Any] = {page.items: chunk, "has_more": start + 2 < len(items)}
        if page.cursor and start + 2 < len(items):
            answer["next_cursor"] = f"{start + 2}"
        else:
            answer.update(offset=start, limit=2, total=len(items))
        return Reply(200, answer)

    return handler


@pytest.mark.parametrize("op_id", LISTS)
async def test_walker(
    op_id: str, server: FakeBackend, client: BackendClient, aclient: AsyncBackendClient
) -> None:
    op = OPERATIONS[op_id]
    assert op.page is not None and op.walker is not None
    case = Case(op)
    kwargs = {k: v for k, v in case.kwargs.items() if k not in ("offset", "cursor", "limit")}
    items = [{"id": str(i), "n": i} for i in range(3)]
    server.reset()
    server.fallback(two_pages(op, items))
    walked = list(getattr(getattr(client, op.namespace), op.walker)(*case.args, **kwargs))
    awalker = getattr(getattr(aclient, op.namespace), op.walker)(*case.args, **kwargs)
    awalked = [item async for item in awalker]
    assert walked == awalked == items
    assert len(server.requests) == 4
    for request in server.requests:
        assert request.method == "GET" and request.path == case.path
