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
    values: tuple[str, ...] = ()  # every value the field can hold, when it is an enumeration


class FieldCatalog:
    """Field name -> kind; callers extend it with `register` as they add features."""

    def __init__(self, fields: Mapping[str, Kind] | None = None) -> None:
        self._specs: dict[str, FieldSpec] = {}
        for name, kind in (fields or {}).items():
            self.register(name, kind)

    def register(
        self, name: str, kind: Kind, description: str = "",
        levels: Iterable[RuleLevel] = ("flow",), values: tuple[str, ...] = (),
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
        self._specs[name] = FieldSpec(name, kind, text, at, values or (old.values if old else ()))
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
        """Registered names that look like a misspelling of ``name`` (an old name's new one
        first)."""
        renamed = RENAMED_FIELDS.get(name)
        close = difflib.get_close_matches(name, self._specs.keys(), n=n, cutoff=0.6)
        if renamed is not None and renamed in self._specs:
            return [renamed, *(c for c in close if c != renamed)][:n]
        return close

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
    """A small catalogue of generic field names for exercising the rule engine on its own;
    burstwatch's rules are checked against ``record_catalog()`` (the record paths)."""
    catalog = FieldCatalog()
    for name, kind, description in _DEFAULT_FIELDS:
        catalog.register(name, kind, description)
    return catalog


# ---- the record fields rules read, from the record schema ----

_KIND_OF_TYPE: dict[str, Kind] = {"keyword": "string", "ip": "address", "long": "number",
                                  "double": "number", "float": "number"}
_NOT_RULE_FIELDS = frozenset({"ecs.version", "event.kind"})  # the same in every record


def record_catalog() -> FieldCatalog:
    """Every field a rule may use: the single values of flow records (flow rules) and of
    conversation records (conversation rules), named as the records name them
    (``burstwatch/schema/fields.py``), each with its kind, meaning and unit."""
    from burstwatch.schema import CONVERSATION, FLOW, fields_of

    catalog = FieldCatalog()
    levels: tuple[tuple[RuleLevel, str], ...] = (("flow", FLOW), ("conversation", CONVERSATION))
    for level, kind in levels:
        for f in fields_of(kind):
            if f.array or f.type not in _KIND_OF_TYPE or f.name in _NOT_RULE_FIELDS:
                continue
            text = f.description + (f" [{f.unit}]" if f.unit else "")
            catalog.register(f.name, _KIND_OF_TYPE[f.type], text, levels=(level,),
                             values=f.values)
    return catalog


def _renamed() -> dict[str, str]:
    from burstwatch.conversations.registry import CONVERSATION_FEATURES
    from burstwatch.features.registry import FEATURES

    out = {f.name: f"burstwatch.flow.{f.name}" for f in FEATURES}
    out |= {f"conversation.{f.name}": f"burstwatch.conversation.{f.name}"
            for f in CONVERSATION_FEATURES}
    out |= {
        "encryption": "burstwatch.encryption.verdict",
        "encryption_version": "burstwatch.encryption.version",
        "payload_entropy": "burstwatch.encryption.entropy",
        "destination.scope": "burstwatch.destination.scope",
        "source.scope": "burstwatch.source.scope",
        "record": "burstwatch.flow.record",
        "tls.client.ja4": "burstwatch.tls.client.ja4",
        "destination.party": "burstwatch.conversation.party",
        "anomaly_score": "burstwatch.conversation.anomaly_score",
    }
    return out


# Old rule field name -> the record path that replaced it (lint says "renamed: write ...").
RENAMED_FIELDS: dict[str, str] = _renamed()


# -- rule field name <-> catalog name ------------------------------------------------------
# The record catalog holds the record paths rules are written with, so for it both functions
# are the identity; a catalog built from older names (the engine's own tests) still reads a
# record path from the column of its old name.
_OLD_NAMES = {new: old for old, new in RENAMED_FIELDS.items()}


def column_name(field: str, catalog: FieldCatalog) -> str:
    """The frame column (catalog name) that a rule's field name is read from."""
    if field in catalog:
        return field
    return _OLD_NAMES.get(field, field)


def rule_name(column: str) -> str:
    """The name a rule writes for a catalog name (for suggestions and field lists)."""
    return RENAMED_FIELDS.get(column, column)
