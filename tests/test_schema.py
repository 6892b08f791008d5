"""The one declared record schema (burstwatch/schema/fields.py) and everything made from it:
strict JSON Schemas, docs/fields.md, the writers' columns and types, the rule field
catalogue, and the ECS names it claims (checked against the ECS field reference)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import numpy as np
import pyarrow.parquet as pq
import pytest

from burstwatch.schema import ALERT, BURST, CONVERSATION, FIELDS, FLOW, RECORD_KINDS, fields_of
from burstwatch.schema.docs import render_markdown
from burstwatch.schema.jsonschema import record_schema, render
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden"
STEMS = {FLOW: "flows", BURST: "bursts", CONVERSATION: "conversations", ALERT: "alerts"}


def validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(record_schema(kind),
                                           format_checker=jsonschema.FormatChecker())


def golden_records(kind: str) -> list[dict[str, Any]]:
    text = (GOLDEN / f"{STEMS[kind]}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def leaves(rec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every leaf of a record (a list is a leaf)."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, dict):
            out.update(leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---- generated files are current ----

@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_json_schemas_on_disk_are_current(kind: str) -> None:
    on_disk = (REPO / "docs" / f"{kind}.schema.json").read_text()
    assert on_disk == render(kind), (
        f"docs/{kind}.schema.json is stale: run `python -m burstwatch.schema.jsonschema docs`")


def test_fields_doc_is_current() -> None:
    assert (REPO / "docs" / "fields.md").read_text() == render_markdown(), (
        "docs/fields.md is stale: run `python -m burstwatch.schema.docs > docs/fields.md`")


# ---- the table itself ----

def test_each_field_is_declared_once_and_ours_live_under_burstwatch() -> None:
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names))
    for f in FIELDS:
        assert f.records and f.required <= f.records, f.name
        assert f.ecs or f.name.startswith("burstwatch."), f"{f.name}: not ECS, so under burstwatch."
        assert f.description and (f.type != "nested") == (not f.items), f.name
    # no dotted name is both a value and an object holding others
    for a in names:
        assert not any(b.startswith(a + ".") for b in names), a


def test_the_same_datum_has_one_name() -> None:
    """The names that once differed between records: one field now, in every record that
    carries it."""
    assert {f.name for f in FIELDS if "encryption" in f.name} == {
        "burstwatch.encryption.verdict", "burstwatch.encryption.version",
        "burstwatch.encryption.detail", "burstwatch.encryption.entropy"}
    verdict = next(f for f in FIELDS if f.name == "burstwatch.encryption.verdict")
    assert verdict.records == {FLOW, BURST, CONVERSATION, ALERT} and verdict.type == "keyword"
    assert not [f.name for f in FIELDS if "features" in f.name or f.name.endswith("_scope")]


ECS_TYPES = {"date": "date", "keyword": "keyword", "ip": "ip", "long": "long", "float": "float",
             "double": "double", "boolean": "boolean"}


def ecs_reference() -> dict[str, tuple[str, str]]:
    """Field -> (type, normalization) from the fixture cut from the ECS field reference."""
    path = Path(__file__).parent / "data" / "ecs_fields_subset.csv"
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return {r["Field"]: (r["Type"], r["Normalization"]) for r in csv.DictReader(lines)}


def test_every_ecs_field_has_the_name_and_type_the_ecs_reference_gives() -> None:
    ref = ecs_reference()
    claimed = [f for f in FIELDS if f.ecs]
    assert len(claimed) == len(ref), sorted({f.name for f in claimed} ^ set(ref))
    for f in claimed:
        assert f.name in ref, f"{f.name} is not an ECS field"
        typ, normalization = ref[f.name]
        assert ECS_TYPES[f.type] == typ, (f.name, f.type, typ)
        # an ECS array field may hold one value; a field we write as a list must be one
        assert not f.array or normalization == "array", f.name


# ---- records validate against strict schemas ----

@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_the_demos_records_validate_against_their_strict_schema(kind: str) -> None:
    records = golden_records(kind)
    assert records
    v = validator(kind)
    for rec in records:
        errors = [f"{e.json_path}: {e.message}" for e in v.iter_errors(rec)]
        assert not errors, errors[:5]


def test_a_strict_schema_refuses_an_extra_a_missing_and_a_mistyped_field() -> None:
    v = validator(ALERT)
    rec = golden_records(ALERT)[0]
    assert v.is_valid(rec)
    extra = json.loads(json.dumps(rec))
    extra["burstwatch"]["encryption"]["kind"] = "tls"  # the old name of the verdict
    assert not v.is_valid(extra)
    deeper = json.loads(json.dumps(rec))
    deeper["burstwatch"]["case"]["findings"][0]["evidence"][0]["colour"] = "red"
    assert not v.is_valid(deeper)
    missing = json.loads(json.dumps(rec))
    del missing["burstwatch"]["case"]["level"]
    assert not v.is_valid(missing)
    mistyped = json.loads(json.dumps(rec))
    mistyped["event"]["severity"] = "high"
    assert not v.is_valid(mistyped)
    unknown_value = json.loads(json.dumps(rec))
    unknown_value["network"]["direction"] = "upload"  # not an ECS direction
    assert not v.is_valid(unknown_value)


# ---- JSON lines, CSV and Parquet carry the same fields and values ----

NOT_IN_THE_DEMO = {
    # no allow-list, no tunnel, no SSH/QUIC/VPN version, only private local addresses
    FLOW: {"burstwatch.allowlisted", "burstwatch.encryption.version",
           "burstwatch.tunnel.type", "burstwatch.tunnel.source.ip",
           "burstwatch.tunnel.destination.ip", "source.as.number", "source.geo.country_iso_code"},
    BURST: set(),
    CONVERSATION: set(),
    # not live (observer), no sub-technique tag
    ALERT: {"observer.hostname", "observer.ingress.interface.name", "observer.type",
            "threat.technique.subtechnique.id",
            "threat.technique.subtechnique.name", "threat.technique.subtechnique.reference"},
}


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return str(value)
    return str(value)


@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_csv_and_parquet_carry_every_field_json_lines_carries(kind: str) -> None:
    declared = [f.name for f in fields_of(kind)]
    records = [leaves(r) for r in golden_records(kind)]
    with (GOLDEN / f"{STEMS[kind]}.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = pq.read_table(GOLDEN / f"{STEMS[kind]}.parquet")
    assert list(rows[0]) == declared == table.column_names
    seen = set().union(*records)
    assert seen <= set(declared), seen - set(declared)
    # and the demo's records have every field but those it has no value for
    assert set(declared) - seen == NOT_IN_THE_DEMO[kind]
    parquet = table.to_pylist()
    assert len(rows) == len(records) == len(parquet)
    dates = {f.name for f in fields_of(kind) if f.type == "date"}
    nested = {f.name for f in fields_of(kind) if f.type in ("nested", "value")}
    for rec, row, pq_row in zip(records, rows, parquet, strict=True):
        for name in declared:
            value = rec.get(name)
            cell = row[name]
            if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
                cell = cell.removeprefix("'")
            assert cell == _csv_text(value), (name, cell, value)
            got = pq_row[name]
            if name in dates:
                got = None if got is None else np.datetime64(got.replace(tzinfo=None), "ns")
                want = None if value is None else np.datetime64(value.rstrip("Z"), "ns")
                assert got == want, name
            elif name in nested:
                assert (None if got is None else json.loads(got)) == value, name
            elif isinstance(got, float) and isinstance(value, (int, float)):
                # JSON lines and CSV round to six decimals; Parquet keeps the double
                assert abs(got - value) <= 5e-7 * max(1.0, abs(value)), (name, got, value)
            else:
                assert got == value, (name, got, value)


def test_parquet_loads_in_duckdb_with_timestamp_columns() -> None:
    for kind in RECORD_KINDS:
        path = str(GOLDEN / f"{STEMS[kind]}.parquet")
        types = dict((r[0], r[1]) for r in duckdb.sql(
            f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall())
        for f in fields_of(kind):
            if f.type == "date":
                assert types[f.name].startswith("TIMESTAMP"), (kind, f.name, types[f.name])
            elif f.type == "long" and not f.array:
                assert types[f.name] == "BIGINT", (kind, f.name)
            elif f.type in ("double", "float") and not f.array:
                assert types[f.name] == "DOUBLE", (kind, f.name)
    path = str(GOLDEN / "alerts.parquet")
    [(first,)] = duckdb.sql(
        f"SELECT epoch_ns(\"event.start\") FROM read_parquet('{path}')").fetchall()
    # the demo's first upload burst starts at 14:01:00.000054 (pcaps/README.md)
    assert first == np.datetime64("2024-03-12T14:01:00.000054", "ns").astype(np.int64)


# ---- the rule field catalogue ----

def test_the_rule_catalogue_is_the_records_single_values() -> None:
    from burstwatch.rules.catalog import RENAMED_FIELDS, record_catalog

    catalog = record_catalog()
    flow = {s.name for s in catalog.at_level("flow")}
    conversation = {s.name for s in catalog.at_level("conversation")}
    assert {"burstwatch.encryption.verdict", "burstwatch.destination.scope",
            "burstwatch.flow.up_burst_count", "destination.geo.country_iso_code",
            "network.community_id", "tls.version"} <= flow
    assert {"burstwatch.conversation.burst_count", "burstwatch.conversation.party",
            "burstwatch.conversation.anomaly_score", "burstwatch.encryption.verdict"} <= conversation
    assert flow | conversation <= {f.name for f in FIELDS}
    assert catalog.kind("source.ip") == "address" and catalog.kind("source.port") == "number"
    # every old name maps to a field rules can use, and is not one itself
    for old, new in RENAMED_FIELDS.items():
        assert new in catalog and old not in catalog, old
    assert RENAMED_FIELDS["encryption"] == "burstwatch.encryption.verdict"
    assert RENAMED_FIELDS["conversation.burst_count"] == "burstwatch.conversation.burst_count"
    assert RENAMED_FIELDS["up_burst_count"] == "burstwatch.flow.up_burst_count"
    assert catalog.close_matches("destination.scope")[0] == "burstwatch.destination.scope"
    # what lint needs to say a value can never match
    spec = catalog.spec("burstwatch.encryption.verdict")
    assert spec is not None and "wireguard" in spec.values and "entropy" in spec.values
    spec = catalog.spec("burstwatch.destination.scope")
    assert spec is not None and set(spec.values) == {"internal", "home", "foreign", "public",
                                                     "unknown"}


def test_the_flow_frame_gives_rules_every_flow_field(demo_batches: list[Any]) -> None:
    from burstwatch.alerts.frame import build_frame

    batch = next(b for b in demo_batches if len(b))
    frame = build_frame(batch)
    for name in frame:
        col = frame[name]
        assert col.shape == (len(batch),), name
    assert frame["burstwatch.flow.up_burst_count"].dtype == np.float64
    assert set(frame["network.direction"].tolist()) <= {"outbound", "internal", "inbound",
                                                         "external"}


@pytest.fixture(scope="module")
def demo_batches() -> list[Any]:
    from burstwatch.config import load_settings
    from burstwatch.enrich.annotate import FlowAnnotator
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.pipeline import RunStats, run_flows

    settings, geo = load_settings(), GeoDatabase.bundled()
    return list(run_flows([str(REPO / "pcaps" / "demo.pcap")], None, RunStats(),
                          lambda: FlowAnnotator(geo, settings)))


def test_the_fields_of_one_object_are_declared_together() -> None:
    """So a record's keys come in declaration order whichever fields it has: JSON lines
    written column by column equal the records dumped one by one."""
    names = [f.name for f in FIELDS]
    for depth in range(1, 5):
        groups = [".".join(n.split(".")[:depth]) for n in names if n.count(".") >= depth]
        runs = [g for k, g in enumerate(groups) if k == 0 or groups[k - 1] != g]
        assert len(runs) == len(set(runs)), [g for g in set(runs) if runs.count(g) > 1]


def test_json_lines_written_by_columns_are_the_records_dumped(demo_batches: list[Any]) -> None:
    from burstwatch.outputs.ecs import burst_columns, flow_columns
    from burstwatch.outputs.jsonline import json_line

    for batch in demo_batches:
        for cols in (flow_columns(batch), burst_columns(batch)):
            assert cols.json_text() == "".join(json_line(r) + "\n" for r in cols.records())


def test_json_lines_of_text_with_any_characters_and_missing_values_are_the_records_dumped(
    demo_batches: list[Any],
) -> None:
    """Server names that are not ASCII, hold quotes, backslashes or control characters, or
    are missing or empty in some rows: the compiled assembly writes what ``json_line``
    writes for each record."""
    from burstwatch.outputs.columns import Columns
    from burstwatch.outputs.ecs import flow_columns
    from burstwatch.outputs.jsonline import json_line

    batch = demo_batches[0]
    cols = flow_columns(batch)
    names = ["bücher.example", 'a"b\\c', "tab\there", None, "", "日本.example", "x\u2028y"]
    sni = np.array([names[i % len(names)] for i in range(cols.n)], object)
    odd = Columns(cols.kind, cols.n,
                  lambda n: sni if n == "tls.client.server_name" else cols.get(n))
    text = odd.json_text()
    assert text == "".join(json_line(r) + "\n" for r in odd.records())
    assert len(text.splitlines()) == cols.n
    assert {json.loads(line).get("tls", {}).get("client", {}).get("server_name")
            for line in text.splitlines()} == {n or None for n in names}


def test_non_finite_numbers_are_null_in_json_lines_and_empty_in_csv() -> None:
    from burstwatch.outputs.columns import Columns
    from burstwatch.outputs.writers import cell_values
    from burstwatch.schema import field

    name = "burstwatch.burst.rate"
    rate = np.array([np.nan, np.inf, -np.inf, 1.5, 2.0])
    cols = Columns(BURST, 5, lambda n: rate if n == name else None)
    lines = [json.loads(line) for line in cols.json_text().splitlines()]
    assert [ln["burstwatch"]["burst"]["rate"] for ln in lines] == [None, None, None, 1.5, 2]
    assert cell_values(field(name), rate, 5) == [None, None, None, 1.5, 2]


def test_a_conversation_reads_the_same_in_its_record_and_in_its_case() -> None:
    """The demo's one case and the conversation record of the same host and party carry
    the same conversation fields with the same values."""
    (case,) = golden_records(ALERT)
    conv = next(r for r in golden_records(CONVERSATION)
                if r["source"]["ip"] == case["source"]["ip"]
                and r["burstwatch"]["conversation"]["party"]
                == case["burstwatch"]["conversation"]["party"])
    assert conv["burstwatch"]["conversation"] == case["burstwatch"]["conversation"]
    for path in ("destination", "tls", "network", "related"):
        assert conv[path] == case[path], path
    assert conv["burstwatch"]["encryption"] == case["burstwatch"]["encryption"]
    assert conv["burstwatch"]["destination"] == case["burstwatch"]["destination"]
