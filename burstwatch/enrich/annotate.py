"""Per-flow context for emitted rows: encryption verdict, geography, scope, allow-lists.

Works per flow, never per packet: payload samples (the first few payload packets of each
direction) are kept, packed in one byte arena, until a flow has all of them or its first row is
emitted; the flow is then classified once, its bytes are released, and its verdict is forgotten
when the flow ends. Geography is looked up once per distinct endpoint in each batch of rows.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from burstwatch.config import Settings
from burstwatch.enrich.encryption.batch import classify_packed_columns
from burstwatch.enrich.geo import GeoDatabase, Scope, classify_scope, internal_nets
from burstwatch.enrich.nets import NetSet
from burstwatch.enrich.samplestore import DEFAULT_LIMIT_MB as DEFAULT_SAMPLE_MB
from burstwatch.enrich.samplestore import SampleStore
from burstwatch.enrich.verdicts import STRING_COLUMNS as _STRING_COLUMNS
from burstwatch.enrich.verdicts import VerdictCache
from burstwatch.flows import FlowConfig
from burstwatch.flows import state as fs
from burstwatch.flows.records import BurstRows, FlowOutput, FlowRows, PayloadSamples
from burstwatch.netaddr import unique_pairs
from burstwatch.ordering import stable_argsort

SCOPE_NAMES = {
    Scope.UNKNOWN: "unknown",
    Scope.INTERNAL: "internal",
    Scope.PUBLIC: "public",
    Scope.HOME: "home",
    Scope.FOREIGN: "foreign",
}
Columns = dict[str, npt.NDArray[np.generic]]
_RECENT_MIN = 4096  # ended verdicts kept before expired ones are swept out
_BURST_VERDICT_COLUMNS = ("burstwatch.encryption.verdict", "tls.client.server_name", "burstwatch.tls.client.ja4")
@dataclass
class EnrichStats:
    """Counts for the run summary."""

    encrypted_flows: int = 0
    foreign_flows: int = 0
    allowlisted: int = 0
    samples_dropped: int = 0  # payload samples over the sample store's ceiling
    by_encryption: dict[str, int] = field(default_factory=dict)

    def add(self, other: EnrichStats) -> None:
        """Add another annotator's counts (a worker process's, ``burstwatch.parallel``)."""
        self.encrypted_flows += other.encrypted_flows
        self.foreign_flows += other.foreign_flows
        self.allowlisted += other.allowlisted
        for kind, n in other.by_encryption.items():
            self.by_encryption[kind] = self.by_encryption.get(kind, 0) + n


def _five_tuples(rows: FlowRows, idx: npt.NDArray[np.intp]) -> list[tuple[int, ...]]:
    """The rows' 5-tuples (addresses as their two halves), as Python ints: the keys of the
    recently ended connections a later part of the same connection inherits from."""
    columns = (rows.proto, rows.orig_hi, rows.orig_lo, rows.orig_port, rows.resp_hi,
               rows.resp_lo, rows.resp_port)
    return list(zip(*(column[idx].tolist() for column in columns), strict=True))


class FlowAnnotator:
    """Stateful per capture: call it with each FlowOutput, in order."""

    def __init__(
        self, geo: GeoDatabase, settings: Settings, stats: EnrichStats | None = None,
        conversation_timeout: float = FlowConfig.conversation_timeout,
    ) -> None:
        self.geo = geo
        self.settings = settings
        self.stats = stats if stats is not None else EnrichStats()
        self._internal = internal_nets(settings.internal_nets) if settings.internal_nets else None
        self._allow_nets = NetSet.from_cidrs(settings.allow.cidrs) if settings.allow.cidrs else None
        limit_mb = settings.limits.sample_memory_mb or DEFAULT_SAMPLE_MB
        self._samples = SampleStore(int(limit_mb * 2**20))
        self._verdicts = VerdictCache()
        # Flows that ended in the last step: their verdicts are forgotten at the next one, so
        # the bursts of that step can still be given them (``burst_columns``).
        self._ended = np.zeros(0, np.int64)
        # 5-tuple -> (verdict strings, entropy, end ns) of ended flows with a protocol verdict.
        self._recent: dict[tuple[int, ...], tuple[npt.NDArray[np.object_], float, int]] = {}
        self._recent_limit = _RECENT_MIN
        self._conversation_ns = int(conversation_timeout * 1e9)

    def __call__(self, out: FlowOutput) -> Columns:
        rows = out.rows
        if self._ended.shape[0]:
            self._verdicts.forget(self._ended)
            self._ended = np.zeros(0, np.int64)
        self._classify_due(out.samples, rows)
        self.stats.samples_dropped = self._samples.dropped
        if not len(rows):
            return {}
        cols = self._encryption(rows)
        cols.update(self._geography(rows))
        cols.update(self._allow(cols, rows))
        return cols

    # ---- encryption ----
    def _classify_due(self, s: PayloadSamples, rows: FlowRows) -> None:
        """Classify, in one batch, the flows whose samples are now complete (the flow table
        takes no more, so their bytes need not wait for a first row half an hour away) and the
        flows whose first row is out; keep the samples of every other flow for later."""
        verdicts = self._verdicts
        if len(s) and len(verdicts):  # samples of flows already classified are not needed
            known = verdicts.known(s.flow_id)
            if known.any():
                s = s.subset(np.flatnonzero(~known))
        at = np.flatnonzero(s.completes) if s.completes.shape[0] else np.zeros(0, np.intp)
        # The first row of each flow that has no verdict and is not completed just now.
        idx = np.zeros(0, np.intp)
        if len(rows):
            open_rows = np.flatnonzero(~verdicts.known(rows.flow_id) & ~np.isin(rows.flow_id, s.flow_id[at]))
            _, first = np.unique(rows.flow_id[open_rows], return_index=True)
            idx = open_rows[np.sort(first)]
        if not at.shape[0] and not idx.shape[0]:
            self._samples.add(s)
            return
        fids = np.concatenate([s.flow_id[at], rows.flow_id[idx]])
        proto = np.concatenate([s.proto[at], rows.proto[idx]])
        outbound = rows.local_initiated[idx]
        client_port = np.concatenate(
            [s.client_port[at], np.where(outbound, rows.orig_port[idx], rows.resp_port[idx])])
        server_port = np.concatenate(
            [s.server_port[at], np.where(outbound, rows.resp_port[idx], rows.orig_port[idx])])
        order = np.argsort(fids)
        by_fid = fids[order]
        # Their samples: those kept from earlier batches (first), then this batch's.
        old_fid, old_dir, old_off, old_len, old_whole = self._samples.take(by_fid)
        pos = np.minimum(np.searchsorted(by_fid, s.flow_id), by_fid.shape[0] - 1)
        due = by_fid[pos] == s.flow_id
        new = np.flatnonzero(due)
        rec_fid = np.concatenate([old_fid, s.flow_id[new]])
        rec_flow = order[np.searchsorted(by_fid, rec_fid)]
        # A flow's protocol detectors run when some sample of it was kept whole (it may open
        # a protocol); the others were cut to what the entropy test reads.
        probe = np.zeros(fids.shape[0], np.bool_)
        probe[rec_flow[np.concatenate([old_whole, s.whole[new]])]] = True
        results = classify_packed_columns(
            proto, client_port, server_port, [self._samples.arena, s.data],
            np.concatenate([old_off, s.offset[new]]), np.concatenate([old_len, s.length[new]]),
            rec_flow, np.concatenate([old_dir, s.direction[new].astype(np.int64)]),
            np.repeat(np.array([0, 1], np.int64), [old_fid.shape[0], new.shape[0]]), probe,
        )  # fmt: skip
        verdicts.add(fids, results)
        if not due.all():
            self._samples.add(s.subset(np.flatnonzero(~due)))

    def _carry(self, rows: FlowRows) -> None:
        """A flow that continues a connection split by the idle or active timeout (same
        5-tuple, within the conversation timeout) has no handshake of its own: it keeps the
        protocol verdict, SNI and evidence of the part before it. Rows are taken in start
        order, so a part can inherit from an earlier part that ended in the same batch."""
        verdicts = self._verdicts
        strings, entropy = verdicts.rows(rows.flow_id)
        kind = strings[:, 0]
        # No handshake of its own: an entropy or clear verdict, or a protocol recognised from
        # its record layer alone (no server name, no fingerprint).
        bare = (kind == "entropy") | (kind == "none") | ((strings[:, 3] == "") & (strings[:, 5] == ""))
        ended = rows.kind == fs.ROW_FLOW
        todo = np.flatnonzero(bare | ended)
        if not self._recent:
            todo = todo[ended[todo]]  # nothing to inherit from before this batch
        if not todo.shape[0]:
            return
        recent = self._recent
        changed = []
        order = todo[stable_argsort(rows.start_ns[todo])]
        # The loop's inputs as Python values, converted column by column (not per row); a
        # row's kind is read before the row itself is carried, so reading it ahead is the same.
        keys = _five_tuples(rows, order)
        starts, ends = rows.start_ns[order].tolist(), rows.end_ns[order].tolist()
        bares, endeds, kinds = bare[order].tolist(), ended[order].tolist(), kind[order].tolist()
        for k, i in enumerate(order.tolist()):
            key = keys[k]
            if bares[k]:
                held = recent.get(key)
                if held is not None and held[2] <= starts[k] and (
                    starts[k] - held[2] <= self._conversation_ns
                    and kinds[k] in ("entropy", "none", held[0][0])  # else another protocol
                ):
                    strings[i], entropy[i] = held[0], held[1]
                    changed.append(i)
            if endeds[k] and strings[i, 0] not in ("entropy", "none"):
                recent[key] = (strings[i].copy(), float(entropy[i]), ends[k])
        if changed:
            idx = np.array(changed, np.intp)
            verdicts.overwrite(rows.flow_id[idx], strings[idx], entropy[idx])
        if len(recent) > self._recent_limit:
            newest = int(rows.end_ns.max())
            for key in [k for k, v in recent.items() if newest - v[2] > self._conversation_ns]:
                del recent[key]
            self._recent_limit = max(2 * len(recent), _RECENT_MIN)

    def _encryption(self, rows: FlowRows) -> Columns:
        self._carry(rows)
        cols = self._verdicts.columns(rows.flow_id)
        ended = rows.kind == fs.ROW_FLOW
        if ended.any():
            kinds, counts = np.unique(cols["burstwatch.encryption.verdict"][ended].astype(str), return_counts=True)
            by_kind = self.stats.by_encryption
            for kind, count in zip(kinds.tolist(), counts.tolist(), strict=True):
                by_kind[kind] = by_kind.get(kind, 0) + count
            self.stats.encrypted_flows += int(counts[kinds != "none"].sum())
            self._ended = rows.flow_id[ended]  # the flow is over: forgotten at the next step
        return cols

    # ---- carrying open flows from one run to the next ----
    def export_state(self) -> dict[str, npt.NDArray[np.generic]]:
        """Samples and verdicts of open flows and recently ended ones, as plain arrays."""
        state = {f"samples.{k}": v for k, v in self._samples.export().items()}
        state.update({f"verdicts.{k}": v for k, v in self._verdicts.export().items()})
        keys = list(self._recent)
        held = list(self._recent.values())
        state["recent.key"] = np.array(keys, np.uint64).reshape(len(keys), 7)
        state["recent.strings"] = np.array(
            [h[0] for h in held], dtype=str).reshape(len(held), len(_STRING_COLUMNS))
        state["recent.entropy"] = np.array([h[1] for h in held], np.float64)
        state["recent.end"] = np.array([h[2] for h in held], np.int64)
        state["ended"] = self._ended
        return state

    def load_state(self, state: dict[str, npt.NDArray[np.generic]]) -> None:
        """Continue from ``export_state`` (on a fresh annotator)."""
        self._samples.load({k[8:]: v for k, v in state.items() if k.startswith("samples.")})
        self._verdicts.load({k[9:]: v for k, v in state.items() if k.startswith("verdicts.")})
        strings = state["recent.strings"].astype(object)
        for key, row, ent, end in zip(state["recent.key"].tolist(), strings,
                                      state["recent.entropy"].tolist(),
                                      state["recent.end"].tolist(), strict=True):
            self._recent[tuple(key)] = (row, ent, end)
        self._ended = state["ended"].astype(np.int64)

    def burst_columns(self, bursts: BurstRows) -> Columns:
        """Verdict and geography of each burst's flow, where the flow is classified already
        (a burst often ends before its flow's samples are complete: then "")."""
        if not len(bursts):
            return {}
        known = self._verdicts.known(bursts.flow_id)
        cols: Columns = {name: np.full(len(bursts), "", object) for name in _BURST_VERDICT_COLUMNS}
        if known.any():
            have = self._verdicts.columns(bursts.flow_id[known])
            for name in _BURST_VERDICT_COLUMNS:
                cols[name][known] = have[name]
        dst, dst_scope = self._lookup(bursts.resp_hi, bursts.resp_lo)
        _, src_scope = self._lookup(bursts.orig_hi, bursts.orig_lo)
        asn = dst["as.number"].astype(float)
        asn[asn == 0] = np.nan
        cols["burstwatch.destination.scope"] = _SCOPE_TEXT[dst_scope]
        cols["burstwatch.source.scope"] = _SCOPE_TEXT[src_scope]
        cols["destination.geo.country_iso_code"] = dst["geo.country_iso_code"]
        cols["destination.as.number"] = asn
        cols["destination.as.organization.name"] = dst["as.organization.name"]
        return cols

    # ---- geography ----
    def _lookup(self, hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> tuple[Columns, npt.NDArray[np.uint8]]:
        uhi, ulo, inverse = unique_pairs(hi, lo)
        res = self.geo.lookup(uhi, ulo, self._internal)
        scope = classify_scope(res, self.settings.home_countries)
        cols: Columns = {
            "geo.country_iso_code": res.country[inverse].astype(object),
            "as.number": res.asn[inverse].astype(np.int64),
            "as.organization.name": res.org_strings()[inverse],
        }
        return cols, scope[inverse]

    def _geography(self, rows: FlowRows) -> Columns:
        dst, dst_scope = self._lookup(rows.resp_hi, rows.resp_lo)
        src, src_scope = self._lookup(rows.orig_hi, rows.orig_lo)
        names = _SCOPE_TEXT
        asn = dst["as.number"].astype(float)
        asn[asn == 0] = np.nan
        src_asn = src["as.number"].astype(float)
        src_asn[src_asn == 0] = np.nan
        is_flow = rows.kind == fs.ROW_FLOW
        self.stats.foreign_flows += int(((dst_scope == Scope.FOREIGN) & is_flow).sum())
        return {
            "destination.geo.country_iso_code": dst["geo.country_iso_code"],
            "destination.as.number": asn,
            "destination.as.organization.name": dst["as.organization.name"],
            "burstwatch.destination.scope": names[dst_scope],
            "source.geo.country_iso_code": src["geo.country_iso_code"],
            "source.as.number": src_asn,
            "burstwatch.source.scope": names[src_scope],
        }

    # ---- allow-lists ----
    def _allow(self, cols: Columns, rows: FlowRows) -> Columns:
        allow = self.settings.allow
        n = len(rows)
        reason = np.full(n, "", object)
        if not allow:
            return {"burstwatch.allowlisted": reason}
        if self._allow_nets is not None:
            hit = self._allow_nets.contains(rows.resp_hi, rows.resp_lo)
            reason[hit & (reason == "")] = "cidr"
        if allow.asns:
            hit = np.isin(np.nan_to_num(cols["destination.as.number"].astype(float)), allow.asns)
            reason[hit & (reason == "")] = "asn"
        if allow.countries:
            hit = np.isin(cols["destination.geo.country_iso_code"].astype(str), allow.countries)
            reason[hit & (reason == "")] = "country"
        if allow.sni:
            sni = cols["tls.client.server_name"].astype(str)
            uniq, inverse = np.unique(sni, return_inverse=True)
            ok = np.array([bool(u) and any(fnmatch.fnmatchcase(u.lower(), p) for p in allow.sni) for u in uniq])
            hit = ok[inverse.ravel()] if uniq.size else np.zeros(n, bool)
            reason[hit & (reason == "")] = "sni"
        self.stats.allowlisted += int(((reason != "") & (rows.kind == fs.ROW_FLOW)).sum())
        return {"burstwatch.allowlisted": reason}


_SCOPE_TEXT = np.array([SCOPE_NAMES[Scope(k)] for k in range(5)], object)


class AnnotatorFactory:
    """Makes the annotator of each pipeline, all counting into ``stats``. It can be pickled
    to a worker process, which starts counting from zero and hands its counts back
    (``absorb``) when it is done."""

    def __init__(self, geo: GeoDatabase, settings: Settings,
                 stats: EnrichStats | None = None) -> None:
        self.geo, self.settings = geo, settings
        self.stats = stats if stats is not None else EnrichStats()

    def __call__(self) -> FlowAnnotator:
        return FlowAnnotator(self.geo, self.settings, self.stats)

    def __reduce__(self) -> tuple[type[AnnotatorFactory], tuple[GeoDatabase, Settings]]:
        return AnnotatorFactory, (self.geo, self.settings)

    def absorb(self, worker: EnrichStats) -> None:
        self.stats.add(worker)
