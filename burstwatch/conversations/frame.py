"""Columns that conversation rules read: the conversation features plus who and where.

Conversation features are read as ``conversation.<name>`` so they never shadow a flow feature
of the same name (``burst_count`` of one flow-window is not that of a conversation); the
context fields keep the names flow rules use for the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt

from burstwatch.conversations.features import ConversationFeatures
from burstwatch.conversations.model import Conversations
from burstwatch.conversations.registry import CONVERSATION_FEATURES
from burstwatch.rules import FieldCatalog

PREFIX = "conversation."

# (field, kind, description): read by conversation rules.
CONTEXT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("source.ip", "address", "the local host's address"),
    ("destination.party", "string",
     "the remote party: the server name's registrable domain, else the remote /24 or /48"),
    ("destination.scope", "string", "home, foreign or unknown: where the party's country is"),
    ("destination.geo.country_iso_code", "string", "country of the party (most bytes)"),
    ("destination.as.number", "number", "autonomous system of the party (most bytes)"),
    ("destination.as.organization.name", "string", "organisation of that autonomous system"),
    ("tls.client.server_name", "string", "a TLS/QUIC server name seen in the conversation"),
    ("encryption", "string", "the verdict carrying the most bytes: tls, quic, ..., entropy or none"),
    ("anomaly_score", "number",
     "isolation-forest score of the conversation in [0, 1]; higher is more anomalous"),
)


def register_conversation_fields(catalog: FieldCatalog) -> FieldCatalog:
    """Add what conversation rules may read to ``catalog`` (returns it)."""
    for f in CONVERSATION_FEATURES:
        catalog.register(PREFIX + f.name, "number", f"{f.description} [{f.unit}]",
                         levels=("conversation",))
    for name, kind, description in CONTEXT_FIELDS:
        catalog.register(name, kind, description, levels=("conversation",))  # type: ignore[arg-type]
    return catalog


def _strings(col: npt.NDArray[np.generic]) -> npt.NDArray[np.object_]:
    out = np.array(col, dtype=object, copy=True)
    out[out == ""] = None  # a rule's "field is absent"
    return out


class ConversationFrame(Mapping[str, npt.NDArray[np.generic]]):
    """One row per conversation, as rule columns."""

    def __init__(self, conv: Conversations, features: ConversationFeatures,
                 scope: npt.NDArray[np.object_], score: npt.NDArray[np.float64]) -> None:
        asn = conv.remote_asn.astype(np.float64)
        asn[asn == 0] = np.nan
        self._cols: dict[str, npt.NDArray[np.generic]] = {
            "source.ip": np.asarray(conv.local_ip, object),
            "destination.party": _strings(conv.party),
            "destination.scope": _strings(scope),
            "destination.geo.country_iso_code": _strings(conv.remote_country),
            "destination.as.number": asn,
            "destination.as.organization.name": _strings(conv.remote_org),
            "tls.client.server_name": _strings(conv.server_name),
            "encryption": _strings(conv.encryption),
            "anomaly_score": score,
        }
        for i, name in enumerate(features.names):
            self._cols[PREFIX + name] = features.values[:, i]

    def __getitem__(self, name: str) -> npt.NDArray[np.generic]:
        return self._cols[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __len__(self) -> int:
        return len(self._cols)
