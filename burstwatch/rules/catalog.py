"""Which field names a rule may use, and what kind of value each holds.

Features are registered by the modules that compute them; rules are checked against the
catalog so a misspelt field is an error at load time instead of a rule that never fires.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from burstwatch.rules.model import KINDS, Kind

RuleLevel = Literal["flow", "conversation"]
RULE_LEVELS: tuple[RuleLevel, ...] = ("flow", "conversation")


@dataclass(frozen=True)
class FieldSpec:
    """A registered field: its name, its kind, one line for `--list-fields` style help, and
    the rule levels (flow-windows, conversations) whose records have it."""

    name: str
    kind: Kind
    description: str = ""
    levels: frozenset[str] = frozenset({"flow"})


class FieldCatalog:
    """Field name -> kind; callers extend it with `register` as they add features."""

    def __init__(self, fields: Mapping[str, Kind] | None = None) -> None:
        self._specs: dict[str, FieldSpec] = {}
        for name, kind in (fields or {}).items():
            self.register(name, kind)

    def register(
        self, name: str, kind: Kind, description: str = "",
        levels: Iterable[RuleLevel] = ("flow",),
    ) -> FieldCatalog:
        """Add a field (returns self so registrations chain); re-registering a kind is an error,
        re-registering for another level adds that level."""
        if kind not in KINDS:
            raise ValueError(f"field kind must be one of {', '.join(KINDS)}, not {kind!r}")
        old = self._specs.get(name)
        if old is not None and old.kind != kind:
            raise ValueError(f"field {name!r} is already registered as {old.kind}, not {kind}")
        at = frozenset(levels) | (old.levels if old else frozenset())
        text = old.description if old is not None and old.description else description
        self._specs[name] = FieldSpec(name, kind, text, at)
        return self

    def at_level(self, level: str) -> FieldCatalog:
        """The fields records of ``level`` have."""
        clone = FieldCatalog()
        clone._specs = {n: s for n, s in self._specs.items() if level in s.levels}
        return clone

    def kind(self, name: str) -> Kind | None:
        """The kind of a field, or None when no feature provides it."""
        spec = self._specs.get(name)
        return spec.kind if spec else None

    def spec(self, name: str) -> FieldSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        """Registered names that look like a misspelling of ``name``."""
        return difflib.get_close_matches(name, self._specs.keys(), n=n, cutoff=0.6)

    def copy(self) -> FieldCatalog:
        clone = FieldCatalog()
        clone._specs = dict(self._specs)
        return clone

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)


_DEFAULT_FIELDS: tuple[tuple[str, Kind, str], ...] = (
    ("source.ip", "address", "address of the host that sent the bursts"),
    ("destination.ip", "address", "address of the remote endpoint"),
    ("destination.port", "number", "transport port of the remote endpoint"),
    ("network.transport", "string", "tcp, udp, ..."),
    ("destination.scope", "string", "where the endpoint is: local, domestic or foreign"),
    ("destination.geo.country_iso_code", "string", "ISO 3166 alpha-2 country of the endpoint"),
    ("tls.client.server_name", "string", "SNI the client asked for, if any"),
    ("encryption", "string", "tls, quic, wireguard, openvpn, ipsec, dtls, ssh, entropy or none"),
    ("burst_count", "number", "number of bursts seen from this host to this endpoint"),
    ("peak_burst_rate", "number", "highest burst rate, bytes per second"),
    ("upload_share", "number", "share of all bytes that went out from the host (0..1)"),
    ("burst_upload_share", "number", "share of burst bytes that went out from the host (0..1)"),
)


def default_catalog() -> FieldCatalog:
    """The fields every deployment has; feature modules `register` theirs on top."""
    catalog = FieldCatalog()
    for name, kind, description in _DEFAULT_FIELDS:
        catalog.register(name, kind, description)
    return catalog


# Old rule field names -> the record paths rules use now: one dotted name per datum, the
# same in every record, writer, rule and document. `rules lint` reports an old name as
# "renamed: write <new name>".
_FLOW_FEATURE_NAMES = (
    "duration", "orig_packets", "resp_packets", "orig_bytes", "resp_bytes",
    "orig_payload_bytes", "resp_payload_bytes", "burst_count", "up_burst_count",
    "down_burst_count", "burst_bytes_sum", "burst_bytes_max", "burst_bytes_mean",
    "up_burst_bytes_max", "burst_duration_max", "burst_duration_mean", "peak_burst_rate",
    "up_peak_burst_rate", "mean_rate", "peak_to_mean_rate", "burst_duty_cycle",
    "idle_before_first_burst", "inter_burst_mean", "inter_burst_cv", "inter_burst_min",
    "upload_share", "burst_upload_share", "burst_byte_share", "packet_size_mean",
    "packet_size_std",
)
_CONVERSATION_FEATURE_NAMES = (
    "burst_count", "upload_bytes_total", "upload_bytes_median", "upload_bytes_max",
    "download_bytes_total", "connections", "bursts_per_connection", "active_span",
    "quiet_share", "upload_share", "interval_median", "interval_mad_ratio",
    "interval_bowley_skew", "periodicity", "regularity", "upload_peak_rate",
    "rate_vs_host_peak", "party_new", "asn_new", "country_new", "host_history_span",
    "hour_concentration", "largest_burst_share", "repetition",
)
RENAMED_FIELDS: dict[str, str] = {
    "encryption": "burstwatch.encryption.verdict",
    "encryption_version": "burstwatch.encryption.version",
    "payload_entropy": "burstwatch.encryption.entropy",
    "destination.scope": "burstwatch.destination.scope",
    "source.scope": "burstwatch.source.scope",
    "record": "burstwatch.flow.record",
    "tls.client.ja4": "burstwatch.tls.client.ja4",
    "destination.party": "burstwatch.conversation.party",
    "anomaly_score": "burstwatch.anomaly_score",
    **{name: f"burstwatch.flow.{name}" for name in _FLOW_FEATURE_NAMES},
    **{f"conversation.{name}": f"burstwatch.conversation.{name}"
       for name in _CONVERSATION_FEATURE_NAMES},
}


# -- transitional adapter: rule field name <-> frame column -------------------------------
# Rules are written with the record paths above. Until the frames that give rules their
# values use those paths too, a path the catalog does not know is read from the column of
# its old name. Once the catalog holds the new names, both functions are the identity.
_OLD_NAMES = {new: old for old, new in RENAMED_FIELDS.items()}


def column_name(field: str, catalog: FieldCatalog) -> str:
    """The frame column (catalog name) that a rule's field name is read from."""
    if field in catalog:
        return field
    return _OLD_NAMES.get(field, field)


def rule_name(column: str) -> str:
    """The name a rule writes for a catalog name (for suggestions and field lists)."""
    return RENAMED_FIELDS.get(column, column)
