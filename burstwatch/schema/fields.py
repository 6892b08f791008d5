"""Every field of every record, once: its dotted name, type, unit, meaning, whether ECS
defines it, and which records carry it.

Four kinds of record share these names: ``flow`` (one flow, or one window of a long flow),
``burst`` (one burst of one direction), ``conversation`` (a local host and a remote party
over the horizon) and ``alert`` (a case: a conversation judged worth a look). A datum has
one name in all of them, in every writer (JSON lines, CSV header, Parquet column), in the
rule field catalogue and in ``docs/fields.md``. Where the Elastic Common Schema has a home
for a datum its field is used (``ecs=True``, checked against the ECS reference by a test);
everything else lives under ``burstwatch.``, grouped by what it describes.

Types follow ECS's mapping types: ``date`` (RFC 3339 text in JSON, TIMESTAMP in Parquet),
``keyword``, ``ip``, ``long``, ``double``, ``float``, ``boolean``, ``nested`` (a list of
objects whose fields are ``items``) and ``value`` (a rule's threshold or value: a number, a
string or a list of them). ``array`` marks a list of values of the type.

Feature fields take their unit and meaning from the feature registries
(``features/registry.py``, ``conversations/registry.py``), which stay the place those are
written; this table gives them their record names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from burstwatch.conversations.registry import CONVERSATION_FEATURES
from burstwatch.features.registry import FEATURES

ECS_VERSION = "8.17.0"  # written as ecs.version; the field names are checked by a test

FLOW, BURST, CONVERSATION, ALERT = "flow", "burst", "conversation", "alert"
RECORD_KINDS: tuple[str, ...] = (FLOW, BURST, CONVERSATION, ALERT)

Type = Literal["date", "keyword", "ip", "long", "double", "float", "boolean", "nested", "value"]

SCOPES = ("internal", "home", "foreign", "public", "unknown")
VERDICTS = ("tls", "quic", "dtls", "ssh", "wireguard", "openvpn", "ipsec", "entropy", "none")
DIRECTIONS = ("outbound", "inbound", "internal", "external", "unknown")
LEVELS = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Field:
    """One field. ``records``: the record kinds that carry it; ``required``: those where it
    is always present (elsewhere it is left out when unknown); ``nullable``: present but may
    be null (a feature that is undefined for this row)."""

    name: str
    type: Type
    description: str
    records: frozenset[str]
    required: frozenset[str] = frozenset()
    unit: str = ""
    ecs: bool = False
    array: bool = False
    nullable: bool = False
    values: tuple[str, ...] = ()  # the only values it takes, when it is an enumeration
    items: tuple[Field, ...] = ()  # for ``nested``: the fields of each object, names relative

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))


def _kinds(text: str) -> frozenset[str]:
    """'FBCA' -> the record kinds (flow, burst, conversation, alert)."""
    names = {"F": FLOW, "B": BURST, "C": CONVERSATION, "A": ALERT}
    return frozenset(names[c] for c in text)


def ecs(name: str, type_: Type, description: str, records: str, required: str = "",
        **kw: object) -> Field:
    """A field the Elastic Common Schema defines."""
    return Field(name, type_, description, _kinds(records), _kinds(required), ecs=True, **kw)  # type: ignore[arg-type]


def ours(name: str, type_: Type, description: str, records: str, required: str = "",
         **kw: object) -> Field:
    """A field of burstwatch's own, under ``burstwatch.``."""
    return Field(name, type_, description, _kinds(records), _kinds(required), **kw)  # type: ignore[arg-type]


def _item(name: str, type_: Type, description: str, required: bool = True, **kw: object) -> Field:
    """A field of the objects of a nested list (its name relative to the list)."""
    every = frozenset(RECORD_KINDS) if required else frozenset()
    return Field(name, type_, description, frozenset(RECORD_KINDS), every, **kw)  # type: ignore[arg-type]


_EVIDENCE = (
    _item("field", "keyword", "the field the test read"),
    _item("op", "keyword", "the comparison: eq, ne, gt, gte, lt, lte, in, not_in, cidr, wildcard, regex"),
    _item("threshold", "value", "the value the rule compares with"),
    _item("value", "value", "the record's value (null when missing)", nullable=True),
    _item("held", "boolean", "whether the test held"),
    _item("text", "keyword", "the test and the value as a person reads them"),
)

_FINDING = (
    _item("kind", "keyword", "what raised it",
          values=("conversation rule", "flow rule", "anomaly score")),
    _item("id", "keyword", "the rule's short name (burstwatch.anomaly for the score)"),
    _item("name", "keyword", "the rule's title, or the score in words"),
    _item("level", "keyword", "the level it sets", values=LEVELS),
    _item("tags", "keyword", "the rule's tags (ATT&CK in Sigma style)", array=True),
    _item("evidence", "nested", "each test that made the rule fire, with the value",
          items=_EVIDENCE),
    _item("flow_id", "keyword", "for a flow rule: the flow it fired on", required=False),
    _item("tunnel.type", "keyword", "for a flow rule on a tunnelled flow: the tunnel's kinds",
          required=False, array=True),
    _item("tunnel.source.ip", "ip", "outer source address of that tunnel", required=False),
    _item("tunnel.destination.ip", "ip", "outer destination address of that tunnel",
          required=False),
)

_REASON = (
    _item("feature", "keyword", "the conversation feature that departs from the baseline",
          required=False),
    _item("unit", "keyword", "its unit", required=False),
    _item("value", "double", "its value in this conversation", required=False, nullable=True),
    _item("direction", "keyword", "above or below the baseline", required=False,
          values=("above", "below")),
    _item("baseline_quantile", "double", "the baseline quantile the value reaches",
          required=False, nullable=True),
    _item("baseline_value", "double", "the baseline's value at that quantile", required=False,
          nullable=True),
    _item("baseline_tail_share", "double", "share of baseline rows at least as far out",
          required=False, nullable=True),
    _item("text", "keyword", "the departure in words"),
)

_CASE_BURST = (
    _item("start", "date", "first packet of the burst"),
    _item("end", "date", "last packet of the burst"),
    _item("bytes", "long", "payload bytes of the burst", unit="bytes"),
    _item("rate", "double", "bytes / duration (durations under 1 ms count as 1 ms)",
          unit="bytes/s"),
    _item("flow_id", "keyword", "the flow that carried it"),
)

FIELDS: tuple[Field, ...] = (
    # ---- base and event ----
    ecs("@timestamp", "date", "when the activity of the record was last seen (its end)",
        "FBCA", "FBCA"),
    ecs("ecs.version", "keyword", "the ECS version the record follows", "FBCA", "FBCA"),
    ecs("event.kind", "keyword", "event for flows, bursts and conversations; alert for cases",
        "FBCA", "FBCA", values=("event", "alert")),
    ecs("event.category", "keyword", "always network", "FBCA", "FBCA", array=True),
    ecs("event.type", "keyword", "always connection", "FBCA", "FBCA", array=True),
    ecs("event.start", "date", "first packet of the flow-window or burst; of a conversation "
        "its first burst or flow within the horizon; of a case its first upload burst",
        "FBCA", "FBCA"),
    ecs("event.end", "date", "last packet (as event.start)", "FBCA", "FBCA"),
    ecs("event.duration", "long", "event.end - event.start", "FBCA", "FBCA", unit="ns"),
    ecs("event.severity", "long", "the case level as Elastic's detection rules number it: "
        "low 21, medium 47, high 73, critical 99", "A", "A"),
    ecs("event.risk_score", "float", "0-100: the severity of the level, raised within the "
        "level's band by the anomaly score (docs/fields.md)", "A", "A"),
    # ---- source: the local side ----
    ecs("source.ip", "ip", "the local host (the internal side, whoever opened the flow)",
        "FBCA", "FBCA"),
    ecs("source.port", "long", "the local host's transport port", "FB", "FB"),
    ecs("source.packets", "long", "packets sent by the local side", "F", "F", unit="packets"),
    ecs("source.bytes", "long", "bytes on the wire sent by the local side", "F", "F",
        unit="bytes"),
    ecs("source.geo.country_iso_code", "keyword", "country of the local address, when public",
        "F"),
    ecs("source.as.number", "long", "autonomous system of the local address, when public", "F"),
    # ---- destination: the remote party ----
    ecs("destination.ip", "ip", "the remote address (of a conversation or case: the one "
        "carrying the most upload bytes; without upload bursts, the first burst's, else the "
        "one carrying the most bytes of its flows)", "FBCA", "FB"),
    ecs("destination.port", "long", "the remote transport port", "FBCA", "FB"),
    ecs("destination.packets", "long", "packets sent by the remote side", "F", "F",
        unit="packets"),
    ecs("destination.bytes", "long", "bytes on the wire sent by the remote side", "F", "F",
        unit="bytes"),
    ecs("destination.domain", "keyword", "the party's registrable domain, when the party is "
        "named by its server name", "CA"),
    ecs("destination.geo.country_iso_code", "keyword", "ISO 3166-1 alpha-2 country of the "
        "remote address", "FBCA"),
    ecs("destination.as.number", "long", "autonomous system of the remote address", "FBCA"),
    ecs("destination.as.organization.name", "keyword", "organisation of that autonomous system",
        "FBCA"),
    # ---- network ----
    ecs("network.transport", "keyword", "tcp, udp, icmp, esp, ...", "FBCA", "FB"),
    ecs("network.type", "keyword", "ipv4 or ipv6", "FBCA", "FBCA", values=("ipv4", "ipv6")),
    ecs("network.iana_number", "keyword", "IP protocol number", "FB", "FB"),
    ecs("network.direction", "keyword", "from the scopes of the two sides: outbound (local to "
        "public), inbound, internal (both local) or external (neither)", "FBCA", "FB",
        values=DIRECTIONS),
    ecs("network.community_id", "keyword", "Community ID v1 of the connection (seed 0), as "
        "Zeek and Suricata print it", "FB", "FB"),
    ecs("network.packets", "long", "packets in both directions", "F", "F", unit="packets"),
    ecs("network.bytes", "long", "bytes on the wire in both directions", "F", "F",
        unit="bytes"),
    # ---- tls ----
    ecs("tls.version", "keyword", "TLS version the server chose (else the client's highest), "
        "numeric part: 1.3", "F"),
    ecs("tls.version_protocol", "keyword", "tls or ssl", "F", values=("tls", "ssl")),
    ecs("tls.next_protocol", "keyword", "the application protocol (ALPN) when the client "
        "offered exactly one, so that it is the one negotiated; lower case", "F"),
    ecs("tls.client.server_name", "keyword", "server name (SNI) the client asked for (TLS, "
        "QUIC, DTLS)", "FBCA"),
    # ---- related, observer ----
    ecs("related.ip", "ip", "every address of the record, for pivoting", "FBCA", "FBCA",
        array=True),
    ecs("observer.hostname", "keyword", "the host that captured (live)", "A"),
    ecs("observer.ingress.interface.name", "keyword", "the interface it captured on (live)",
        "A"),
    ecs("observer.type", "keyword", "sensor (live)", "A"),
    # ---- rule and threat (cases) ----
    ecs("rule.id", "keyword", "short name of the rule that set the level (bw-001; "
        "burstwatch.anomaly for the score)", "A", "A"),
    ecs("rule.uuid", "keyword", "the Sigma id (a UUID) of that rule", "A"),
    ecs("rule.name", "keyword", "the rule's title", "A", "A"),
    ecs("rule.version", "keyword", "the rule's Sigma modified date, else its date", "A"),
    ecs("rule.reference", "keyword", "the rule's first reference URL", "A"),
    ecs("rule.ruleset", "keyword", "burstwatch", "A", "A"),
    ecs("threat.framework", "keyword", "MITRE ATT&CK, when the rule has ATT&CK tags", "A"),
    ecs("threat.tactic.id", "keyword", "ATT&CK tactic ids of the rule's tags", "A", array=True),
    ecs("threat.tactic.name", "keyword", "their names", "A", array=True),
    ecs("threat.tactic.reference", "keyword", "their ATT&CK pages", "A", array=True),
    ecs("threat.technique.id", "keyword", "ATT&CK technique ids of the rule's tags", "A",
        array=True),
    ecs("threat.technique.name", "keyword", "their names (the id where burstwatch has no name)",
        "A", array=True),
    ecs("threat.technique.reference", "keyword", "their ATT&CK pages", "A", array=True),
    ecs("threat.technique.subtechnique.id", "keyword", "ATT&CK sub-technique ids", "A",
        array=True),
    ecs("threat.technique.subtechnique.name", "keyword", "their names", "A", array=True),
    ecs("threat.technique.subtechnique.reference", "keyword", "their ATT&CK pages", "A",
        array=True),
    # ---- burstwatch: where, what, which capture ----
    ours("burstwatch.capture", "keyword", "the capture(s) the record came from, as given",
         "FBCA", "FBCA"),
    ours("burstwatch.source.scope", "keyword", "where the local address is", "FB", "FB",
         values=SCOPES),
    ours("burstwatch.destination.scope", "keyword", "where the remote address (or party) is: "
         "internal, home (a home country), foreign, public (no country data) or unknown",
         "FBCA", "FBCA", values=SCOPES),
    ours("burstwatch.encryption.verdict", "keyword", "tls, quic, dtls, ssh, wireguard, "
         "openvpn, ipsec, entropy (random-looking, no protocol recognised) or none; of a "
         "conversation, the verdict carrying the most bytes", "FBCA", "FCA", values=VERDICTS),
    ours("burstwatch.encryption.version", "keyword", "protocol version other than TLS's "
         "(QUIC v1, an SSH banner, ESP, ...; TLS goes to tls.version)", "F"),
    ours("burstwatch.encryption.detail", "keyword", "how the verdict was reached", "F", "F"),
    ours("burstwatch.encryption.entropy", "double", "bits per byte in the first payload bytes",
         "F", "F", unit="bits/byte", nullable=True),
    ours("burstwatch.tls.client.ja4", "keyword", "JA4 fingerprint of the ClientHello", "FB"),
    ours("burstwatch.tls.client.alpn_offered", "keyword", "application protocols (ALPN) the "
         "client offered, in its order", "F", array=True),
    ours("burstwatch.allowlisted", "keyword", "the allow-list that covers the flow: cidr, asn, "
         "country or sni", "F", values=("cidr", "asn", "country", "sni")),
    ours("burstwatch.tunnel.type", "keyword", "the tunnels the flow came through, outermost "
         "first (gre, vxlan, ...)", "F", array=True),
    ours("burstwatch.tunnel.source.ip", "ip", "outer source address of the tunnel", "F"),
    ours("burstwatch.tunnel.destination.ip", "ip", "outer destination address of the tunnel",
         "F"),
    # ---- burstwatch.flow: flow-window identity and features ----
    ours("burstwatch.flow.id", "keyword", "the flow (16 hex digits; the same for its windows "
         "and its bursts)", "FB", "FB"),
    ours("burstwatch.flow.record", "keyword", "flow (its whole life) or window (one window of "
         "a long flow)", "F", "F", values=("flow", "window")),
    ours("burstwatch.flow.window_index", "long", "the window's number within its flow (null "
         "for a whole flow)", "F", "F", nullable=True),
    ours("burstwatch.flow.end_reason", "keyword", "why the row ended", "F", "F",
         values=("interim", "idle", "active_timeout", "fin", "rst", "end_of_input", "evicted")),
    ours("burstwatch.flow.initiator", "keyword", "who opened the connection", "F", "F",
         values=("local", "remote")),
    *(ours(f"burstwatch.flow.{f.name}", "double", f.description, "F", "F", unit=f.unit,
           nullable=True) for f in FEATURES),
    # ---- burstwatch.burst ----
    ours("burstwatch.burst.direction", "keyword", "upload (local to remote) or download",
         "B", "B", values=("upload", "download")),
    ours("burstwatch.burst.packets", "long", "packets in the burst", "B", "B", unit="packets"),
    ours("burstwatch.burst.bytes", "long", "payload bytes in the burst", "B", "B",
         unit="bytes"),
    ours("burstwatch.burst.rate", "double", "bytes / duration (durations under 1 ms count as "
         "1 ms)", "B", "B", unit="bytes/s"),
    # ---- burstwatch.conversation ----
    ours("burstwatch.conversation.party", "keyword", "the remote party: the server name's "
         "registrable domain, else the remote /24 or /48", "CA", "CA"),
    ours("burstwatch.conversation.party_kind", "keyword", "domain or net", "CA", "CA",
         values=("domain", "net")),
    ours("burstwatch.conversation.remote_ips", "long", "distinct remote addresses of the party",
         "CA", "CA"),
    *(ours(f"burstwatch.conversation.{f.name}", "double", f.description, "CA", "CA",
           unit=f.unit, nullable=True) for f in CONVERSATION_FEATURES),
    ours("burstwatch.conversation.anomaly_score", "double", "isolation-forest score of the "
         "conversation in [0, 1]; higher is more anomalous (null without a model)", "CA", "CA",
         unit="score 0-1", nullable=True),
    ours("burstwatch.conversation.anomaly_reasons", "nested", "the baseline departures behind "
         "the score, furthest first", "CA", "CA", items=_REASON),
    # ---- burstwatch.case ----
    ours("burstwatch.case.id", "keyword", "the case: a hash of host and party, stable across "
         "runs", "A", "A"),
    ours("burstwatch.case.revision", "long", "rises when the case gains bursts or a level",
         "A", "A"),
    ours("burstwatch.case.level", "keyword", "the case's level", "A", "A", values=LEVELS),
    ours("burstwatch.case.upload_bursts", "long", "upload bursts of the conversation", "A",
         "A", unit="bursts"),
    ours("burstwatch.case.upload_bytes", "long", "payload bytes of those bursts", "A", "A",
         unit="bytes"),
    ours("burstwatch.case.connections", "long", "connections that carried them", "A", "A"),
    ours("burstwatch.case.bursts", "nested", "the newest upload bursts (at most 200)", "A",
         "A", items=_CASE_BURST),
    ours("burstwatch.case.flows", "keyword", "every flow of the conversation", "A", "A",
         array=True),
    ours("burstwatch.case.findings", "nested", "each rule (and the score) that flagged the "
         "conversation or one of its flows", "A", "A", items=_FINDING),
    ours("burstwatch.case.decided_by", "keyword", "what set the level, as a sentence fragment",
         "A", "A"),
    ours("burstwatch.case.reason", "keyword", "the case in one sentence", "A", "A"),
)

_BY_NAME = {f.name: f for f in FIELDS}


def field(name: str) -> Field:
    """The declared field ``name`` (KeyError when there is none)."""
    return _BY_NAME[name]


def field_tree(fields: tuple[Field, ...] | list[Field]) -> dict[str, Any]:
    """The object the dotted ``fields`` make: key -> its Field, or the dict of an object,
    keys in declaration order."""
    tree: dict[str, Any] = {}
    for f in fields:
        node = tree
        *parents, leaf = f.name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = f
    return tree


def fields_of(kind: str) -> tuple[Field, ...]:
    """The fields records of ``kind`` carry, in declaration order (the column order)."""
    return tuple(f for f in FIELDS if kind in f.records)
