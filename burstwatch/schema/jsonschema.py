"""Strict JSON Schemas of the four records, generated from the field table.

Every object says which keys it must have and allows no other (``additionalProperties:
false`` at every level), so a record with a renamed, misspelt or undeclared field fails.
``python -m burstwatch.schema.jsonschema docs`` writes ``docs/<kind>.schema.json`` (flow, burst,
conversation, alert); a test fails when those copies differ from this generator.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from burstwatch.schema.fields import RECORD_KINDS, Field, field_tree, fields_of

_SCALAR: dict[str, dict[str, Any]] = {
    "date": {"type": "string", "format": "date-time"},
    "keyword": {"type": "string"},
    "ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "long": {"type": "integer"},
    "double": {"type": "number"},
    "float": {"type": "number"},
    "boolean": {"type": "boolean"},
    "value": {"type": ["number", "string", "array"],
              "items": {"type": ["number", "string"]}},
}


def _leaf(f: Field) -> dict[str, Any]:
    if f.type == "nested":
        one = _object(f.items, kind=None)
    else:
        one = dict(_SCALAR[f.type])
        if f.values:
            one["enum"] = list(f.values)
    out: dict[str, Any] = {"type": "array", "items": one} if f.array or f.type == "nested" else one
    if f.nullable:
        out = {"anyOf": [out, {"type": "null"}]}
    out["description"] = f.description + (f" [{f.unit}]" if f.unit else "")
    return out


def _object(fields: tuple[Field, ...], kind: str | None) -> dict[str, Any]:
    """The schema of the object the dotted ``fields`` make (names relative to it)."""
    return _node(field_tree(fields), kind)


def _node(tree: dict[str, Any], kind: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required: list[str] = []
    for key, sub in tree.items():
        if isinstance(sub, Field):
            props[key] = _leaf(sub)
            if (kind in sub.required) if kind is not None else bool(sub.required):
                required.append(key)
        else:
            props[key] = _node(sub, kind)
            if _any_required(sub, kind):
                required.append(key)
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


def _any_required(tree: dict[str, Any], kind: str | None) -> bool:
    for sub in tree.values():
        if isinstance(sub, Field):
            if (kind in sub.required) if kind is not None else bool(sub.required):
                return True
        elif _any_required(sub, kind):
            return True
    return False


def record_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``kind`` record."""
    schema = _object(fields_of(kind), kind)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://github.com/burstwatch/burstwatch/docs/{kind}.schema.json",
            "title": f"burstwatch {kind} record", **schema}


def render(kind: str) -> str:
    return json.dumps(record_schema(kind), indent=2, ensure_ascii=False) + "\n"


def write_all(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind in RECORD_KINDS:
        (folder / f"{kind}.schema.json").write_text(render(kind), encoding="utf-8")


if __name__ == "__main__":
    write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
