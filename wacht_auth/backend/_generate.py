"""Generate the Backend API's typed code from the committed operations table (``make generate``).

Two steps, both deterministic:

1. ``--spec PATH`` derives ``_table.json`` from Wacht's OpenAPI description
   (``../shared/wacht/platform-api.json``) without its prose (``_derive``).
2. Always: the table becomes ``_types.py`` (a TypedDict or alias per schema, ``_gentypes``),
   ``_operations.py`` (``OPERATIONS``), ``_api.py`` (one namespace class per tag for each
   client: thin methods, each with its operation's one-line summary as its docstring, that
   pass their arguments by wire name to the client's one ``_call``) and the reference section
   of ``docs/backend.md``. ``--check`` only compares and exits 1 when a file is out of date.

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
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from ._derive import HERE, TABLE, Json, derive_table, dump_table, load_table, summary
from ._gentypes import Types, arg_name, camel, namespace, snake, walker_name

ROOT = HERE.parent.parent
DOC = ROOT / "docs" / "backend.md"
DOC_BEGIN = "<!-- BEGIN GENERATED REFERENCE: make generate -->"
DOC_END = "<!-- END GENERATED REFERENCE -->"

#: Per-call option names (``RequestOptions``) plus the walkers' own; no argument may shadow one.
_RESERVED = frozenset({"self", "timeout", "retries", "extra_headers", "idempotency_key"})
_WALK_RESERVED = frozenset({"max_pages"})


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
        self.summary = summary(op).replace("\\", "\\\\").replace('"', '\\"')
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

    def _where(self) -> list[str]:
        """The operation and its path and query values, by wire name (methods and walkers)."""
        args = [f"_OPS[{json.dumps(self.id)}]"]
        if self.positional:
            args.append(f"path={_by_name(self.positional)}")
        if self.query:
            args.append(f"query={_by_name(self.query)}")
        return args

    def call_args(self) -> str:
        """The arguments of the method's ``_call``: every value by its wire name."""
        args = self._where()
        if self.body_kind == "json_value":
            args.append("body=body")
        elif self.body:
            args.append(f"body={_by_name(self.body)}")
        if self.files:
            args.append(f"files={_by_name(self.files)}")
        return ", ".join([*args, "options=options"])

    def walk_args(self) -> str:
        """The arguments of the walker's ``_walk``, by name like :meth:`call_args`."""
        return ", ".join([*self._where(), "max_pages=max_pages", "options=options"])


def _by_name(pairs: list[tuple[str, str]]) -> str:
    """``{"wire": python_name, ...}`` for ``(python_name, wire)`` pairs."""
    return "{" + ", ".join(f"{json.dumps(wire)}: {name}" for name, wire in pairs) + "}"


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
                doc = f'        """{m.summary}: ``{m.method} {m.path}``."""'
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
                        f'        """{m.summary}: every item of ``{m.method} {m.path}``, page '
                        f'by page."""',
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
