"""Training rows: conversation features over consecutive horizons of a ledger, or of captures.

A ledger holding days of traffic is cut into horizons that end at its newest record and step
back by the horizon (each record in one of them, as the judge sees it; horizons without a
record are skipped); a capture shorter than the horizon gives one. Every horizon's conversations come from the ledger's own
query (:func:`burstwatch.ledger.conversations`), so novelty and the host's peak rate are
worked out over everything before the horizon's end, as at judging time. Captures are first
read into a ledger in memory, with the same flow settings, enrichment and local networks as
``scan``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from burstwatch.conversations.features import conversation_features
from burstwatch.conversations.model import ConversationBursts
from burstwatch.conversations.registry import CONVERSATION_FEATURE_NAMES
from burstwatch.ledger import DAY_NS, Ledger, conversations
from burstwatch.ledger.schema import BURSTS, FLOWS
from burstwatch.score.conversation.transform import scored

if TYPE_CHECKING:
    from burstwatch.config import Settings
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.flows import FlowConfig
    from burstwatch.records import Progress, RunStats

F64 = npt.NDArray[np.float64]
TRAINING_RETENTION_DAYS = 36_500.0  # an in-memory ledger for training keeps everything it is given


@dataclass
class ConversationRows:
    """Feature rows of many horizons: each row's host, party, the remote address of its largest
    upload burst ("" without one), horizon end, and labels for measuring (class, site)."""

    values: F64
    local_ip: npt.NDArray[np.object_]
    party: npt.NDArray[np.object_]
    remote_ip: npt.NDArray[np.object_]
    horizon_end_ns: npt.NDArray[np.int64]
    label: npt.NDArray[np.object_]
    site: npt.NDArray[np.object_]
    horizons: int = 0
    names: tuple[str, ...] = field(default=CONVERSATION_FEATURE_NAMES)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def scored(self) -> npt.NDArray[np.bool_]:
        """Rows a model learns from and scores: those with an upload burst."""
        return scored(self.values)

    def hosts(self, only_scored: bool = True) -> int:
        ips = self.local_ip[self.scored] if only_scored else self.local_ip
        return len(set(ips.tolist()))

    def take(self, mask: npt.NDArray[np.bool_]) -> ConversationRows:
        return ConversationRows(self.values[mask], self.local_ip[mask], self.party[mask], self.remote_ip[mask],
                                self.horizon_end_ns[mask], self.label[mask], self.site[mask], self.horizons)

    @classmethod
    def empty(cls) -> ConversationRows:
        none = np.zeros(0, object)
        return cls(np.zeros((0, len(CONVERSATION_FEATURE_NAMES))), none, none, none, np.zeros(0, np.int64),
                   none, none)

    @classmethod
    def concat(cls, parts: Sequence[ConversationRows]) -> ConversationRows:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.local_ip for p in parts]),
            np.concatenate([p.party for p in parts]),
            np.concatenate([p.remote_ip for p in parts]),
            np.concatenate([p.horizon_end_ns for p in parts]),
            np.concatenate([p.label for p in parts]),
            np.concatenate([p.site for p in parts]),
            sum(p.horizons for p in parts),
        )


def horizon_ends(last_ns: int, ages_ns: npt.ArrayLike, horizon_ns: int) -> list[int]:
    """Ends of the horizons holding records ``ages_ns`` before ``last_ns`` (oldest first).

    Horizons end at ``last_ns`` and step back by ``horizon_ns``; only those with a record are
    returned, so a capture whose clock jumps by years costs two horizons, not thousands.
    """
    if horizon_ns <= 0:
        raise ValueError("the horizon must be positive")
    steps = np.unique(np.asarray(ages_ns, np.int64) // horizon_ns)
    return sorted(int(last_ns - k * horizon_ns) for k in steps.tolist())


def ledger_horizons(ledger: Ledger, horizon_ns: int) -> list[int]:
    """Ends of the ledger's horizons that hold a record (see :func:`horizon_ends`)."""
    records = f"(SELECT end_ns FROM {BURSTS.name} UNION ALL SELECT end_ns FROM {FLOWS.name})"
    row = ledger.connection.execute(f"SELECT max(end_ns) FROM {records}").fetchone()
    if row is None or row[0] is None:
        return []
    last = int(row[0])
    steps = ledger.connection.execute(
        f"SELECT DISTINCT ($last - end_ns) // $h FROM {records}", {"last": last, "h": horizon_ns}
    ).fetchnumpy()
    ages = next(iter(steps.values())).astype(np.int64) * horizon_ns if steps else np.zeros(0, np.int64)
    return horizon_ends(last, ages, horizon_ns)


def rows_from_ledger(ledger: Ledger, horizon_ns: int = DAY_NS, label: str = "") -> ConversationRows:
    """Conversation feature rows of every horizon of the ledger (oldest first)."""
    ends = ledger_horizons(ledger, horizon_ns)
    parts = []
    for end in ends:
        conv, bursts = conversations(ledger, horizon_ns, end)
        n = len(conv)
        if not n:
            continue
        feats = conversation_features(conv, bursts)
        parts.append(ConversationRows(
            feats.values, conv.local_ip.astype(object), conv.party.astype(object), _upload_ip(bursts, n),
            np.full(n, end, np.int64), np.full(n, label, object), np.full(n, "", object), 1))
    rows = ConversationRows.concat(parts)
    rows.horizons = len(ends)
    return rows


def _upload_ip(bursts: ConversationBursts, n: int) -> npt.NDArray[np.object_]:
    """Per conversation, the remote address of its largest upload burst ("" without one)."""
    out = np.full(n, "", object)
    up = np.flatnonzero(bursts.direction == 0)
    if up.size:
        order = up[np.lexsort((bursts.bytes[up], bursts.conversation[up]))]
        conv = bursts.conversation[order]
        last = np.ones(order.size, bool)
        last[:-1] = conv[1:] != conv[:-1]
        out[conv[last]] = bursts.remote_ip[order[last]]
    return out


def rows_from_captures(
    paths: Sequence[str],
    horizon_ns: int = DAY_NS,
    *,
    config: FlowConfig | None = None,
    settings: Settings | None = None,
    geo: GeoDatabase | None = None,
    stats: RunStats | None = None,
    progress: Progress | None = None,
    separate: bool = False,
    label: str = "",
) -> ConversationRows:
    """Read captures as ``scan`` does into a ledger in memory; then :func:`rows_from_ledger`.

    ``settings`` and ``geo`` default to the shipped configuration and geolocation data.
    """
    from burstwatch.config import load_settings
    from burstwatch.enrich.annotate import FlowAnnotator
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.flows.roles import local_nets
    from burstwatch.pipeline import run_flows

    site = settings if settings is not None else load_settings(None, None, None)
    where = geo if geo is not None else GeoDatabase.bundled()
    with Ledger.open(None, TRAINING_RETENTION_DAYS) as ledger:
        for _ in run_flows(list(paths), config, stats, lambda: FlowAnnotator(where, site), progress,
                           local=local_nets(site.internal_nets), ledger=ledger, separate=separate):
            pass
        return rows_from_ledger(ledger, horizon_ns, label)
