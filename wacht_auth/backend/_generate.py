"""Generate the Backend API's typed code from the committed operations table (``make generate``).

Two steps, both deterministic:

1. ``--spec PATH`` derives ``_table.json`` from Wacht's OpenAPI description
   (``../shared/wacht/platform-api.json``): each operation's method, path, tag, parameters,
   request body and success schema, and the component schemas, with every piece of prose
   (summaries, descriptions, examples) dropped and OpenAPI's ``nullable`` rewritten as plain
   JSON Schema (``"type": [T, "null"]``), so the tests can validate requests with it.
2. Always: the table becomes ``_types.py`` (a TypedDict or alias per schema), ``_operations.py``
   (``OPERATIONS``), ``_api.py`` (one namespace class per tag for each client: thin methods
   that delegate to the client's one ``_call``) and the reference section of
   ``docs/backend.md``. ``--check`` only compares and exits 1 when a file is out of date.

Naming rule (documented in ``docs/backend.md``): a tag becomes a namespace by lower-casing it
and joining its words with ``_`` (``"API Auth"`` → ``api_auth``); an ``operationId`` becomes a
method in snake_case (``getUserDetails`` → ``get_user_details``); a list operation's walker is
``iter_`` + that name without a leading ``get_`` or ``list_``. Argument names are the wire
names, with ``_`` appended to Python keywords (``from_``), and ``body_`` (``query_``) prefixed
to a body field (query parameter) that repeats a path parameter's name; such a body field
defaults to the path parameter's value.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import keyword
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TABLE = HERE / "_table.json"
DOC = ROOT / "docs" / "backend.md"
DOC_BEGIN = "<!-- BEGIN GENERATED REFERENCE: make generate -->"
DOC_END = "<!-- END GENERATED REFERENCE -->"

_NULL = {"type": "null"}
_METHODS = ("get", "post", "put", "patch", "delete")
_KEEP = frozenset({"type", "required", "enum", "const", "format"})
#: Per-call option names (``RequestOptions``) plus the walkers' own; no argument may shadow one.
_RESERVED = frozenset({"self", "timeout", "retries", "extra_headers", "idempotency_key"})
_WALK_RESERVED = frozenset({"max_pages"})

Json = Any


# -- step 1: the table from the description ------------------------------------------------------


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


# -- step 2: naming ------------------------------------------------------------------------------


def snake(name: str) -> str:
    """``getUserDetails`` → ``get_user_details`` (the documented naming rule)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).replace("-", "_").lower()


def namespace(tag: str) -> str:
    """``"API Auth"`` → ``api_auth``."""
    return "_".join(re.findall(r"[A-Za-z0-9]+", tag)).lower()


def camel(name: str) -> str:
    """``app_slug`` → ``AppSlug`` (names of inline TypedDicts)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def walker_name(method: str) -> str:
    """``get_active_user_list`` → ``iter_active_user_list``."""
    return "iter_" + re.sub(r"^(get|list)_", "", method)


def arg_name(wire: str, taken: Iterable[str] = (), where: str = "body") -> str:
    """The Python name of a parameter or body field: ``from`` → ``from_``; a name in ``taken``
    (the path parameters) gets ``where`` as a prefix (``body_app_slug``)."""
    name = wire + "_" if keyword.iskeyword(wire) else wire
    if not name.isidentifier():
        raise ValueError(f"no Python name for the argument {wire!r}")
    return f"{where}_{name}" if name in taken else name


# -- step 2: types -------------------------------------------------------------------------------


class Types:
    """Python annotations for the table's schemas; collects the TypedDicts and aliases."""

    def __init__(self, schemas: Mapping[str, Json]) -> None:
        self.schemas = schemas
        self.classes: dict[str, tuple[list[str], list[tuple[str, str, bool]]]] = {}
        self.aliases: dict[str, str] = {}  # name -> annotation (unions)
        self.literals: dict[str, str] = {}  # name -> Literal[...]
        self._inline: dict[str, str] = {}  # canonical schema json -> class name
        for name, schema in schemas.items():
            self._component(name, schema)

    def resolve(self, schema: Json) -> Json:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def _component(self, name: str, schema: Json) -> None:
        if "enum" in schema:
            self.literals[name] = self._literal(schema["enum"])
        elif "oneOf" in schema:
            self.aliases[name] = self._union(schema["oneOf"], name)
        elif schema.get("type") == "object" and schema.get("properties"):
            self._class(name, schema)
        else:
            self.aliases[name] = self.annotation(schema, name)

    @staticmethod
    def _literal(values: Iterable[Json]) -> str:
        return "Literal[" + ", ".join(json.dumps(v) for v in values if v is not None) + "]"

    def _union(self, members: list[Json], hint: str, prefix: str = "") -> str:
        out = []
        for i, member in enumerate(members):
            const = self._const_of(member)
            name = hint + (camel(const) if const else f"Variant{i}")
            out.append(self.annotation(member, name, prefix=prefix))
        return " | ".join(dict.fromkeys(out))

    def _const_of(self, schema: Json) -> str | None:
        parts = schema.get("allOf", [schema])
        for part in parts:
            for prop in part.get("properties", {}).values():
                if isinstance(prop.get("const"), str):
                    return str(prop["const"])
        return None

    def _class(self, name: str, schema: Json, bases: list[str] | None = None) -> str:
        required = set(schema.get("required", ()))
        fields = []
        for prop, sub in schema.get("properties", {}).items():
            if not prop.isidentifier() or keyword.iskeyword(prop):
                raise ValueError(f"{name}.{prop} cannot be a TypedDict field")
            fields.append((prop, self.annotation(sub, name + camel(prop)), prop in required))
        self.classes[name] = (bases or [], fields)
        return name

    def _inline_class(self, hint: str, schema: Json, bases: list[str] | None = None) -> str:
        key = json.dumps([bases, schema], sort_keys=True)
        if key in self._inline:
            return self._inline[key]
        name, n = hint, 2
        while name in self.classes or name in self.schemas:
            name, n = f"{hint}{n}", n + 1
        self._inline[key] = name
        return self._class(name, schema, bases)

    def annotation(self, schema: Json, hint: str, *, arg: bool = False, prefix: str = "") -> str:
        """The annotation for ``schema``; inline objects become TypedDicts named from ``hint``.

        ``arg`` selects argument types (``Sequence``/``Mapping``/``FileInput``) over answer
        types (``list``/``dict``/``str``); ``prefix`` qualifies names from ``_types``.
        """
        if not isinstance(schema, dict) or not schema:
            return "Any"
        if "$ref" in schema:
            return prefix + str(schema["$ref"]).rsplit("/", 1)[1]
        if "anyOf" in schema:
            parts = [
                self.annotation(s, hint, arg=arg, prefix=prefix) if s != _NULL else "None"
                for s in schema["anyOf"]
            ]
            return " | ".join(dict.fromkeys(parts))
        if "oneOf" in schema:
            return self._union(schema["oneOf"], hint, prefix)
        if "allOf" in schema:
            bases = [s["$ref"].rsplit("/", 1)[1] for s in schema["allOf"] if "$ref" in s]
            own: dict[str, Json] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                if "$ref" not in part:
                    own["properties"].update(part.get("properties", {}))
                    own["required"] += part.get("required", [])
            return prefix + self._inline_class(hint, own, bases)
        if "const" in schema:
            return self._literal([schema["const"]])
        kind = schema.get("type")
        nullable = isinstance(kind, list) and "null" in kind
        if isinstance(kind, list):
            kind = next(k for k in kind if k != "null")
        if "enum" in schema:
            out = self._literal(schema["enum"])
        elif kind == "string":
            out = ("FileInput" if arg else "str") if schema.get("format") == "binary" else "str"
        elif kind == "integer":
            out = "int"
        elif kind == "number":
            out = "float"
        elif kind == "boolean":
            out = "bool"
        elif kind == "array":
            item = self.annotation(schema.get("items", {}), hint + "Item", prefix=prefix)
            out = f"{'Sequence' if arg else 'list'}[{item}]"
        elif kind == "object" and schema.get("properties"):
            out = prefix + self._inline_class(hint, schema)
        else:
            out = "Mapping[str, Any]" if arg else "dict[str, Any]"
        return f"{out} | None" if nullable else out


# -- step 2: code --------------------------------------------------------------------------------


def _opt(annotation: str) -> str:
    if annotation.endswith("| None") or annotation == "Any":
        return annotation
    return annotation + " | None"


class Method:
    """Everything the templates need about one operation."""

    def __init__(self, op: Json, types: Types) -> None:
        self.op = op
        self.id: str = op["id"]
        self.method: str = op["method"]
        self.path: str = op["path"]
        self.namespace = namespace(op["tag"])
        self.name = snake(self.id)
        hint = camel(self.id)
        self.positional = [(arg_name(p), p) for p in op["path_params"]]
        required: list[str] = []
        optional: list[str] = []
        self.query: list[tuple[str, str]] = []
        self.body: list[tuple[str, str]] = []
        self.files: list[tuple[str, str]] = []
        self.body_kind: str | None = None
        self.required_body: list[str] = []
        self.path_in_body: list[str] = []
        self.path_in_body_int: list[str] = []
        taken = set(op["path_params"])
        self.page: dict[str, Json] | None = self._page(types)
        for q in op["query"]:
            name = arg_name(q["name"], taken, "query")
            ann = types.annotation(q["schema"], hint + camel(q["name"]), arg=True, prefix="t.")
            if self.page and q["name"] == "offset":
                ann = "int | str | None"  # the prose docs page with a string cursor here
            self.query.append((name, q["name"]))
            (required if q["required"] else optional).append(
                f"{name}: {ann}" if q["required"] else f"{name}: {_opt(ann)} = None"
            )
        body = op.get("body")
        if body is not None:
            schema = types.resolve(body["schema"])
            if schema.get("type") != "object":
                self.body_kind = "json_value"
                ann = types.annotation(body["schema"], hint + "Body", arg=True, prefix="t.")
                required.append(f"body: {ann}")
                self.body.append(("body", ""))
            else:
                self.body_kind = body["media"]
                must = set(schema.get("required", ())) if body["required"] else set()
                self.required_body = [f for f in schema.get("properties", {}) if f in must]
                for field, sub in schema.get("properties", {}).items():
                    name = arg_name(field, taken)
                    ann = types.annotation(sub, hint + camel(field), arg=True, prefix="t.")
                    is_file = sub.get("format") == "binary"
                    (self.files if is_file else self.body).append((name, field))
                    if field in taken:  # repeats a path parameter: defaults to its value
                        self.path_in_body.append(field)
                        if "integer" in str(types.resolve(sub).get("type")):
                            self.path_in_body_int.append(field)
                        optional.append(f"{name}: {_opt(ann)} = None")
                        continue
                    (required if field in must else optional).append(
                        f"{name}: {ann}" if field in must else f"{name}: {_opt(ann)} = None"
                    )
        names = [p for p, _ in self.positional] + [
            n for n, _ in self.query + self.body + self.files
        ]
        clash = (set(names) & _RESERVED) or {n for n in names if names.count(n) > 1}
        if self.page:
            clash |= set(names) & _WALK_RESERVED
        if clash:
            raise ValueError(f"{self.id}: argument names {sorted(clash)} clash")
        self.keyword = required + optional
        self.returns = types.annotation(op["response"], hint + "Response", prefix="t.")
        self.unwrap = "data" not in types.resolve(op["response"]).get("properties", {})
        self.walker = walker_name(self.name) if self.page else None
        self.item = "Any"
        if self.page:
            answer = types.resolve(op["response"])
            items = answer["properties"][self.page["items"]].get("items", {})
            self.item = types.annotation(items, hint + "Item", prefix="t.")

    def _page(self, types: Types) -> dict[str, Json] | None:
        """List operations: a GET answered with an array member, paged by offset or cursor."""
        if self.method != "GET":
            return None
        names = {q["name"] for q in self.op["query"]}
        if not names & {"offset", "cursor"}:
            return None
        answer = types.resolve(self.op["response"])
        arrays = [k for k, v in answer.get("properties", {}).items() if v.get("type") == "array"]
        if not arrays:
            return None
        return {
            "items": "data" if "data" in arrays else arrays[0],
            "offset": "offset" in names,
            "cursor": "cursor" in names,
        }

    def signature(self, extra: str = "") -> str:
        args = ["self"] + [f"{p}: str" for p, _ in self.positional]
        kw = self.keyword + ([extra] if extra else [])
        if kw:
            args += ["*", *kw]
        args.append("**options: Unpack[RequestOptions]")
        return ", ".join(args)

    def call_args(self) -> str:
        def values(pairs: list[tuple[str, str]]) -> str:
            return "(" + "".join(f"{name}, " for name, _ in pairs) + ")" if pairs else "None"

        body = "body" if self.body_kind == "json_value" else values(self.body)
        return (
            f"_OPS[{json.dumps(self.id)}], {values(self.positional) if self.positional else '()'}, "
            f"{values(self.query)}, {body}, {values(self.files)}, options"
        )

    def walk_args(self) -> str:
        path = "(" + "".join(f"{p}, " for p, _ in self.positional) + ")"
        query = "(" + "".join(f"{n}, " for n, _ in self.query) + ")"
        return f"_OPS[{json.dumps(self.id)}], {path}, {query}, max_pages, options"


HEADER = '''"""GENERATED by ``make generate`` from ``_table.json``: do not edit by hand."""

from __future__ import annotations
'''
#: Only the generated namespaces have lines (a path in a docstring) that cannot be wrapped.
NOQA = "# ruff: noqa: E501\n"


def _imports(body: str, module: str, names: Iterable[str]) -> str:
    used = [n for n in names if re.search(rf"\b{n}\b", body)]
    return f"from {module} import {', '.join(used)}" if used else ""


def render_types(types: Types) -> str:
    out = [""]
    for name, value in types.literals.items():
        out.append(f"{name}: TypeAlias = {value}")
    out.append("")
    emitted: set[str] = set()

    def emit(name: str) -> None:
        if name in emitted:
            return
        bases, fields = types.classes[name]
        for base in bases:
            emit(base)
        emitted.add(name)
        doc = f'    """The ``{name}`` object of the Backend API."""'
        req = [f for f in fields if f[2]]
        opt = [f for f in fields if not f[2]]
        parents = ", ".join(bases) or "TypedDict"
        if req and opt:
            base = f"_{name}Required"
            out.extend(["", f"class {base}({parents}):"])
            out.extend(f"    {n}: {a}" for n, a, _ in req)
            out.extend(["", "", f"class {name}({base}, total=False):", doc])
            out.extend(f"    {n}: {a}" for n, a, _ in opt)
        else:
            total = "" if req or not fields else ", total=False"
            out.extend(["", f"class {name}({parents}{total}):", doc])
            out.extend(f"    {n}: {a}" for n, a, _ in fields)
        out.append("")

    for name in list(types.classes):
        emit(name)
    out.append("")
    pending = dict(types.aliases)  # after the classes, each after the aliases it names
    while pending:
        for name, value in list(pending.items()):
            if not any(re.search(rf"\b{other}\b", value) for other in pending if other != name):
                out.append(f"{name}: TypeAlias = {value}")
                del pending[name]
    names = sorted([*types.literals, *types.classes, *types.aliases])
    exported = ["", "__all__ = [", *(f'    "{n}",' for n in names), "]"]
    body = "\n".join(exported + out) + "\n"
    typing = _imports(body, "typing", ("Any", "Literal", "TypeAlias", "TypedDict"))
    return f"{HEADER}\n{typing}\n{body}"


def render_operations(methods: list[Method]) -> str:
    out = [
        HEADER,
        "from collections.abc import Mapping",
        "from types import MappingProxyType",
        "",
        "from ._operation import Operation, PageInfo",
        "",
        "_all = (",
    ]
    for m in methods:
        fields = [
            json.dumps(m.id),
            json.dumps(m.method),
            json.dumps(m.path),
            json.dumps(m.namespace),
            json.dumps(m.name),
        ]
        extra = []
        if m.positional:
            extra.append(f"path_params=({''.join(json.dumps(w) + ', ' for _, w in m.positional)})")
        if m.query:
            extra.append(f"query=({''.join(json.dumps(w) + ', ' for _, w in m.query)})")
        if m.body_kind:
            extra.append(f"body={json.dumps(m.body_kind)}")
            wire = [w for _, w in m.body if w]
            if wire:
                extra.append(f"body_fields=({''.join(json.dumps(w) + ', ' for w in wire)})")
        if m.required_body:
            extra.append(f"required_body=frozenset({json.dumps(m.required_body)})")
        if m.path_in_body:
            extra.append(f"path_in_body=({''.join(json.dumps(w) + ', ' for w in m.path_in_body)})")
        if m.path_in_body_int:
            ints = "".join(json.dumps(w) + ", " for w in m.path_in_body_int)
            extra.append(f"path_in_body_int=({ints})")
        if m.files:
            extra.append(f"files=({''.join(json.dumps(w) + ', ' for _, w in m.files)})")
        if m.page:
            page = m.page
            extra.append(
                f"page=PageInfo({json.dumps(page['items'])}, {page['offset']}, {page['cursor']})"
            )
            extra.append(f"walker={json.dumps(m.walker)}")
        if not m.unwrap:
            extra.append("unwrap=False")
        out.append(f"    Operation({', '.join(fields + extra)}),")
    out += [
        ")",
        "",
        "#: Every operation of the API description, by ``operationId``.",
        "OPERATIONS: Mapping[str, Operation] = MappingProxyType({op.id: op for op in _all})",
    ]
    return "\n".join(out) + "\n"


def render_api(methods: list[Method]) -> str:
    spaces: dict[str, list[Method]] = {}
    tags: dict[str, str] = {}
    for m in methods:
        spaces.setdefault(m.namespace, []).append(m)
        tags[m.namespace] = m.op["tag"]
    out = [
        "",
        "if TYPE_CHECKING:  # annotations only: importing the clients does not build the types",
        "    from typing_extensions import Unpack",
        "",
        "    from . import _types as t",
        "",
        "__all__ = [",
        *sorted(
            [f'    "{camel(ns)}",' for ns in spaces]
            + [f'    "Async{camel(ns)}",' for ns in spaces]
            + ['    "AsyncNamespaces",', '    "SyncNamespaces",']
        ),
        "]",
        "",
    ]
    for asynchronous in (False, True):
        for ns, ms in spaces.items():
            cls = ("Async" if asynchronous else "") + camel(ns)
            base = "AsyncNamespace" if asynchronous else "SyncNamespace"
            out += [
                "",
                f"class {cls}({base}):",
                f'    """The ``{tags[ns]}`` operations: ``client.{ns}``."""',
                "",
                "    __slots__ = ()",
            ]
            for m in ms:
                doc = f'        """``{m.method} {m.path}``."""'
                call = f"self._call({m.call_args()})"
                if asynchronous:
                    call = "await " + call
                ret = call if m.returns == "Any" else f"cast({json.dumps(m.returns)}, {call})"
                out += [
                    "",
                    f"    {'async ' if asynchronous else ''}def {m.name}({m.signature()}) -> "
                    f"{m.returns}:",
                    doc,
                    f"        return {ret}",
                ]
                if m.walker:
                    it = "AsyncIterator" if asynchronous else "Iterator"
                    out += [
                        "",
                        f"    def {m.walker}({m.signature('max_pages: int = 1000')}) -> "
                        f"{it}[{m.item}]:",
                        f'        """Every item of ``{m.method} {m.path}``, page by page."""',
                        f"        return self._walk({m.walk_args()})",
                    ]
            out.append("")
    for asynchronous in (False, True):
        prefix = "Async" if asynchronous else ""
        transport = "AsyncTransport" if asynchronous else "SyncTransport"
        client = "AsyncBackendClient" if asynchronous else "BackendClient"
        out += [
            "",
            f"class {'AsyncNamespaces' if asynchronous else 'SyncNamespaces'}:",
            f'    """The namespaces of :class:`~wacht_auth.backend.{client}`, one per tag."""',
            "",
            "    __slots__ = ()",
        ]
        for ns in spaces:
            out += [
                "",
                "    @property",
                f"    def {ns}(self) -> {prefix}{camel(ns)}:",
                f'        """The ``{tags[ns]}`` operations."""',
                f"        return {prefix}{camel(ns)}(cast({json.dumps(transport)}, self))",
            ]
        out.append("")
    body = "\n".join(out) + "\n"
    imports = [
        _imports(body, "collections.abc", ("AsyncIterator", "Iterator", "Mapping", "Sequence")),
        _imports(body, "typing", ("TYPE_CHECKING", "Any", "Literal", "cast")),
        "",
        "from ._client import AsyncNamespace, AsyncTransport, SyncNamespace, SyncTransport",
        _imports(body, "._operation", ("FileInput", "RequestOptions")),
        "from ._operations import OPERATIONS as _OPS",
    ]
    return NOQA + HEADER + "\n" + "\n".join(line for line in imports if line is not None) + body


def _doc_types(methods: list[Method], types: Types) -> list[str]:
    """The fields of every typed answer (and the types its fields name), for the reference."""
    names = re.compile(r"\b[A-Z]\w*\b")
    todo = [n for m in methods for n in names.findall(f"{m.returns} {m.item or ''}")]
    seen: set[str] = set()
    while todo:
        name = todo.pop().removeprefix("t.")
        if name in seen or name in ("Any", "None"):
            continue
        seen.add(name)
        bases, fields = types.classes.get(name, ([], []))
        todo += bases + [n for _, a, _ in fields for n in names.findall(a)]
        todo += names.findall(types.aliases.get(name, ""))
    out = [
        "",
        "### Answer types",
        "",
        "The typed answers above are `TypedDict`s in `wacht_auth.backend.types` (plain dicts at "
        "run time); `name?` marks a field an answer may leave out.",
        "",
    ]
    for name in sorted(n for n in seen if n in types.classes):
        bases, fields = types.classes[name]
        listed = ", ".join(f"`{f}{'' if req else '?'}: {a}`" for f, a, req in fields)
        extends = f" (and the fields of {', '.join(f'`{b}`' for b in bases)})" if bases else ""
        out.append(f"- **`{name}`**{extends}: {listed or 'no fields of its own'}")
    return out


def render_doc(methods: list[Method], types: Types) -> str:
    out = [DOC_BEGIN, ""]
    current = None
    for m in sorted(methods, key=lambda m: (m.namespace, m.name)):
        if m.namespace != current:
            current = m.namespace
            out += [
                "",
                f"### `client.{m.namespace}` ({m.op['tag']})",
                "",
                "| method | HTTP | returns |",
                "|---|---|---|",
            ]
        args = [p for p, _ in m.positional]
        args += [a.split(":")[0] + "=" for a in m.keyword if "=" not in a]
        if any("=" in a for a in m.keyword):
            args.append("…")
        returns = m.returns.replace("t.", "")
        out.append(
            f"| `{m.name}({', '.join(args)})` | `{m.method} {m.path}` | `{returns}` |".replace(
                "|`", "| `"
            )
        )
        if m.walker:
            out.append(
                f"| `{m.walker}({', '.join(args)})` | every page of `{m.path}` | "
                f"iterator of `{m.item.replace('t.', '')}` |"
            )
    out += _doc_types(methods, types)
    out = [line for i, line in enumerate(out) if line or (i and out[i - 1])]
    out += ["", DOC_END]
    return "\n".join(out)


def _ruff_format(text: str, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", name, "-"],
        input=text.encode(),
        capture_output=True,
        cwd=ROOT,
        check=True,
    )
    return result.stdout.decode()


def render(table: Mapping[str, Json]) -> dict[Path, str]:
    """Every generated file's path and text (the docs page with its section replaced)."""
    types = Types(table["schemas"])
    methods = [Method(op, types) for op in table["operations"]]
    names = [(m.namespace, m.name) for m in methods]
    if len(set(names)) != len(names):
        raise ValueError("two operations share a namespace and a method name")
    files = {
        HERE / "_api.py": render_api(methods),
        HERE / "_operations.py": render_operations(methods),
        HERE / "_types.py": render_types(types),  # after the API: it registers inline types
    }
    out = {path: _ruff_format(text, str(path.relative_to(ROOT))) for path, text in files.items()}
    if DOC.exists():
        doc = DOC.read_text(encoding="utf-8")
        start, end = doc.find(DOC_BEGIN), doc.find(DOC_END)
        section = render_doc(methods, types)
        if start < 0 or end < 0:
            doc = doc.rstrip("\n") + "\n\n## Reference\n\n" + section + "\n"
        else:
            doc = doc[:start] + section + doc[end + len(DOC_END) :]
        out[DOC] = doc
    return out


def load_table(path: Path = TABLE) -> dict[str, Json]:
    """The committed table."""
    table: dict[str, Json] = json.loads(path.read_text(encoding="utf-8"))
    return table


def main(argv: list[str] | None = None) -> int:
    """``python -m wacht_auth.backend._generate [--spec PATH] [--check]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", type=Path, help="derive _table.json from this description")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    outputs: dict[Path, str] = {}
    if args.spec is not None:
        source = args.spec.read_bytes()
        table = derive_table(json.loads(source), source)
        outputs[TABLE] = dump_table(table)
    else:
        table = load_table()
    outputs.update(render(table))
    stale = [
        path
        for path, text in outputs.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    for path in stale:
        if args.check:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        else:
            path.write_text(outputs[path], encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
