"""docs/fields.md, generated from the field table (``python -m burstwatch.schema.docs >
docs/fields.md``); a test fails when the page on disk differs."""

from __future__ import annotations

import sys

from burstwatch.schema.fields import ECS_VERSION, FIELDS, RECORD_KINDS, Field

HEADER = f"""# Record fields

Generated from `burstwatch/schema/fields.py` by `python -m burstwatch.schema.docs`; do not
edit by hand.

burstwatch writes four kinds of record: **flow** (one flow, or one window of a long flow;
`burstwatch flows`), **burst** (`flows --bursts`), **conversation** (a local host and a remote
party over the horizon; `flows --conversations`) and **alert** (a case; `scan --alerts`,
`live --alerts`). A datum has one name in all of them, in JSON lines (nested objects), in
the CSV header and the Parquet columns (the dotted name), and in rules: a rule's field is
the record path. Fields marked ECS are Elastic Common Schema fields, written as ECS
{ECS_VERSION} defines them (`ecs.version`); the others are burstwatch's own, under
`burstwatch.`.

In the record columns, **R** means always present (null where the value is undefined, for
the fields marked *null*), **o** present when known (left out of JSON lines, empty in CSV,
null in Parquet otherwise). CSV and Parquet carry every field of the kind as a column:
lists and nested objects are JSON text in CSV; in Parquet lists of text are lists and
nested objects JSON text; dates are RFC 3339 text in JSON lines and CSV and TIMESTAMP (ns,
UTC) in Parquet; numbers are rounded to six decimals in JSON lines and CSV, whole doubles in
Parquet. Strict JSON
Schemas of each kind (`docs/<kind>.schema.json`, no field outside this table) are generated
from the same table by `python -m burstwatch.schema.jsonschema docs`.

`event.risk_score` is the case level's severity (low 21, medium 47, high 73, critical 99)
plus the conversation's anomaly score (0-1) times 25 (times 1 at critical), so levels never
overlap and, within a level, the more anomalous case ranks higher. `threat.*` comes from
the ATT&CK tags of the rule that set the level.
"""


def _type(f: Field) -> str:
    text = f"{f.type}[]" if f.array else f.type
    return text + (" *null*" if f.nullable else "")


def _mark(f: Field, kind: str) -> str:
    if kind not in f.records:
        return ""
    return "R" if kind in f.required else "o"


def _meaning(f: Field) -> str:
    text = f.description
    if f.values:
        text += " (" + ", ".join(f.values) + ")"
    return text.replace("|", "\\|")


def render_markdown() -> str:
    lines = [HEADER, "| field | type | unit | ECS | " + " | ".join(RECORD_KINDS)
             + " | meaning |", "|---|---|---|---|" + "---|" * len(RECORD_KINDS) + "---|"]
    for f in FIELDS:
        lines.append(f"| `{f.name}` | {_type(f)} | {f.unit} | {'ECS' if f.ecs else ''} | "
                     + " | ".join(_mark(f, k) for k in RECORD_KINDS) + f" | {_meaning(f)} |")
    for f in FIELDS:
        if f.type == "nested":
            lines += ["", f"## `{f.name}[]`", "", f.description + ".", "",
                      "| field | type | unit | meaning |", "|---|---|---|---|"]
            lines += _items(f.items, "")
    return "\n".join(lines) + "\n"


def _items(items: tuple[Field, ...], prefix: str) -> list[str]:
    out = []
    for f in items:
        need = "" if f.required else " (when known)"
        out.append(f"| `{prefix}{f.name}` | {_type(f)} | {f.unit} | {_meaning(f)}{need} |")
        if f.type == "nested":
            out += _items(f.items, f"{prefix}{f.name}[].")
    return out


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
