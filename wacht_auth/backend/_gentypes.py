"""Step 2 of ``make generate``, names and types: the documented naming rule, and a Python
annotation (a TypedDict, an alias or a ``Literal``) for each schema of the table."""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterable, Mapping
from typing import Any

_NULL = {"type": "null"}

Json = Any


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
