"""Step 1 of ``make generate``: the operations table (``_table.json``) from Wacht's description.

Each operation's method, path, tag, parameters, request body and success schema, and the
component schemas, with every piece of prose (descriptions, examples) dropped and OpenAPI's
``nullable`` rewritten as plain JSON Schema (``"type": [T, "null"]``), so the tests can validate
requests with it. An operation's ``summary`` is kept only where it is not the words of its
``operationId`` (``getUserDetails`` → "Get User Details", true of every operation today), so
the table holds no prose while the generated docstrings still carry every summary.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TABLE = HERE / "_table.json"

_METHODS = ("get", "post", "put", "patch", "delete")
_KEEP = frozenset({"type", "required", "enum", "const", "format"})

Json = Any


def id_words(operation_id: str) -> str:
    """``getUserDetails`` → ``Get User Details``: the summary Wacht gives its operations."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", operation_id)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("-", " ").replace("_", " ")
    return " ".join(word[:1].upper() + word[1:] for word in name.split())


def summary(op: Mapping[str, Json]) -> str:
    """An operation's one-line summary: the table's, else the words of its ``operationId``."""
    return str(op.get("summary") or id_words(op["id"]))


def _clean(schema: Json) -> Json:
    """A schema without prose, with ``$ref`` into ``$defs`` and ``nullable`` as JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Json] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _clean(value)
        elif key in ("oneOf", "allOf", "anyOf"):
            out[key] = [_clean(sub) for sub in value]
        elif key == "$ref":
            out[key] = "#/$defs/" + value.rsplit("/", 1)[1]
        elif key in _KEEP:
            out[key] = value
    if schema.get("nullable") and out:
        if isinstance(out.get("type"), str) and not {"$ref", "oneOf", "allOf", "anyOf"} & set(out):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def derive_table(spec: Mapping[str, Json], source: bytes) -> dict[str, Json]:
    """The operations table for ``spec`` (the parsed description whose bytes are ``source``)."""
    operations = []
    for path, item in spec["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = op.get("parameters", [])
            entry: dict[str, Json] = {
                "id": op["operationId"],
                "tag": op["tags"][0],
                "method": method.upper(),
                "path": path,
                "path_params": [p["name"] for p in params if p["in"] == "path"],
                "query": [
                    {
                        "name": p["name"],
                        "required": bool(p.get("required")),
                        "schema": _clean(p["schema"]),
                    }
                    for p in params
                    if p["in"] == "query"
                ],
            }
            body = op.get("requestBody")
            if body is not None:
                media, content = next(iter(body["content"].items()))
                entry["body"] = {
                    "media": "multipart" if media.startswith("multipart/") else "json",
                    "required": bool(body.get("required")),
                    "schema": _clean(content["schema"]),
                }
            said = " ".join(str(op.get("summary") or "").split())
            if said and said != id_words(op["operationId"]):
                entry["summary"] = said
            ok = op["responses"]["200"].get("content", {}).get("application/json", {})
            entry["response"] = _clean(ok.get("schema", {}))
            operations.append(entry)
    return {
        "source": {
            "openapi": spec["openapi"],
            "version": spec["info"]["version"],
            "sha256": hashlib.sha256(source).hexdigest(),
        },
        "operations": operations,
        "schemas": {name: _clean(s) for name, s in spec["components"]["schemas"].items()},
    }


def dump_table(table: Mapping[str, Json]) -> str:
    """The table as committed: one operation and one schema per line, for readable diffs."""

    def one(value: Json) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    ops = ",\n".join("  " + one(op) for op in table["operations"])
    schemas = ",\n".join(f"  {one(k)}: {one(v)}" for k, v in table["schemas"].items())
    return (
        f'{{\n "source": {one(table["source"])},\n "operations": [\n{ops}\n ],\n'
        f' "schemas": {{\n{schemas}\n }}\n}}\n'
    )


def load_table(path: Path = TABLE) -> dict[str, Json]:
    """The committed table."""
    table: dict[str, Json] = json.loads(path.read_text(encoding="utf-8"))
    return table
