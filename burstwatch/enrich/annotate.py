"""Per-flow context for emitted rows: encryption verdict, geography, scope, allow-lists.

Works per flow, never per packet: payload samples (the first few payload packets of each
direction) are kept until a flow's first row is emitted, classified once, and forgotten when
the flow ends; geography is looked up once per distinct endpoint in each batch of rows.
"""

from __future__ import annotations

import argparse
import fnmatch
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from burstwatch.config import Settings, load_settings
from burstwatch.enrich.encryption import EncryptionVerdict
from burstwatch.enrich.encryption.batch import classify_flows
from burstwatch.enrich.geo import GeoDatabase, Scope, classify_scope, internal_nets
from burstwatch.enrich.nets import NetSet
from burstwatch.flows import FlowConfig
from burstwatch.flows import state as fs
from burstwatch.flows.records import FlowOutput, FlowRows

SCOPE_NAMES = {
    Scope.UNKNOWN: "unknown",
    Scope.INTERNAL: "internal",
    Scope.PUBLIC: "public",
    Scope.HOME: "home",
    Scope.FOREIGN: "foreign",
}
Columns = dict[str, npt.NDArray[np.generic]]
# The encryption columns, then the entropy column; one cached value tuple per flow feeds them.
ENCRYPTION_COLUMNS = (
    "burstwatch.encryption",
    "burstwatch.encryption_version",
    "burstwatch.encryption_detail",
    "tls.client.server_name",
    "burstwatch.alpn",
    "tls.client.ja4",
)
EncryptionValues = tuple[str, str, str, str, str, str, float]


def encryption_values(v: EncryptionVerdict) -> EncryptionValues:
    """A verdict as its column values, computed once per flow rather than once per row."""
    return (
        v.kind,
        v.version or "",
        v.detail or "",
        v.sni or "",
        ",".join(v.alpn),
        v.fingerprint or "",
        np.nan if v.entropy is None else v.entropy,
    )


@dataclass
class EnrichStats:
    """Counts for the run summary."""

    encrypted_flows: int = 0
    foreign_flows: int = 0
    allowlisted: int = 0
    by_encryption: dict[str, int] = field(default_factory=dict)


class FlowAnnotator:
    """Stateful per capture: call it with each FlowOutput, in order."""

    def __init__(self, geo: GeoDatabase, settings: Settings, stats: EnrichStats | None = None) -> None:
        self.geo = geo
        self.settings = settings
        self.stats = stats if stats is not None else EnrichStats()
        self._internal = internal_nets(settings.internal_nets) if settings.internal_nets else None
        self._allow_nets = NetSet.from_cidrs(settings.allow.cidrs) if settings.allow.cidrs else None
        self._samples: dict[int, tuple[list[bytes], list[bytes]]] = {}
        self.samples_per_direction = FlowConfig().payload_samples
        self._verdicts: dict[int, EncryptionValues] = {}

    def __call__(self, out: FlowOutput) -> Columns:
        self._keep_samples(out)
        rows = out.rows
        if not len(rows):
            return {}
        cols = self._encryption(rows)
        cols.update(self._geography(rows))
        cols.update(self._allow(cols, rows))
        return cols

    # ---- encryption ----
    def _keep_samples(self, out: FlowOutput) -> None:
        """Append each payload sample to its flow direction's list (one dict probe per sample;
        ``setdefault`` would build and drop a fresh pair of lists every time)."""
        s = out.samples
        samples = self._samples
        get = samples.get
        verdicts = self._verdicts
        full = self.samples_per_direction
        complete: dict[int, int] = {}  # flow id -> one of its samples (for proto and ports)
        for k, (fid, d, payload) in enumerate(
            zip(s.flow_id.tolist(), s.direction.tolist(), s.payloads, strict=True)
        ):
            if fid in verdicts:  # already classified: later samples are not needed
                continue
            entry = get(fid)
            if entry is None:
                entry = samples[fid] = ([], [])
            entry[d].append(payload)
            if len(entry[0]) >= full and len(entry[1]) >= full:
                complete[fid] = k
        if complete and s.proto.shape[0]:
            # A flow with all its samples (the flow table takes no more) is classified now, so
            # its bytes are not held until its first row, which may be half an hour away.
            at = np.fromiter(complete.values(), np.int64, len(complete))
            found = [samples.pop(fid) for fid in complete]
            results = classify_flows(
                s.proto[at], s.orig_port[at], s.resp_port[at],
                [f[0] for f in found], [f[1] for f in found],
            )  # fmt: skip
            verdicts.update(zip(complete, map(encryption_values, results), strict=True))

    def _encryption(self, rows: FlowRows) -> Columns:
        fids = rows.flow_id.tolist()
        cache = self._verdicts
        todo: dict[int, int] = {}  # flow id -> its first row, for flows not classified yet
        for i, fid in enumerate(fids):
            if fid not in cache and fid not in todo:
                todo[fid] = i
        if todo:
            idx = np.fromiter(todo.values(), np.int64, len(todo))
            none: tuple[list[bytes], list[bytes]] = ([], [])
            found = [self._samples.pop(fid, none) for fid in todo]
            verdicts = classify_flows(
                rows.proto[idx], rows.orig_port[idx], rows.resp_port[idx],
                [f[0] for f in found], [f[1] for f in found],
            )  # fmt: skip
            cache.update(zip(todo, map(encryption_values, verdicts), strict=True))
        table = np.empty((len(fids), len(ENCRYPTION_COLUMNS) + 1), object)
        table[:] = [cache[fid] for fid in fids]
        cols: Columns = {name: table[:, k].copy() for k, name in enumerate(ENCRYPTION_COLUMNS)}
        cols["burstwatch.entropy"] = table[:, -1].astype(np.float64)
        ended = rows.kind == fs.ROW_FLOW
        if ended.any():
            kinds = Counter(cols["burstwatch.encryption"][ended].tolist())
            for kind, count in kinds.items():
                self.stats.by_encryption[kind] = self.stats.by_encryption.get(kind, 0) + count
            self.stats.encrypted_flows += int(ended.sum()) - kinds.get("none", 0)
            for fid in rows.flow_id[ended].tolist():  # the flow is over: forget it
                cache.pop(fid, None)
                self._samples.pop(fid, None)
        return cols

    # ---- geography ----
    def _lookup(self, hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> tuple[Columns, npt.NDArray[np.uint8]]:
        pairs = np.stack([hi, lo], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        res = self.geo.lookup(uniq[:, 0], uniq[:, 1], self._internal)
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
        names = np.array([SCOPE_NAMES[Scope(k)] for k in range(5)], object)
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
            "burstwatch.destination_scope": names[dst_scope],
            "source.geo.country_iso_code": src["geo.country_iso_code"],
            "source.as.number": src_asn,
            "burstwatch.source_scope": names[src_scope],
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


# ---- command-line wiring ----
def add_enrich_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("enrichment")
    g.add_argument("--config", metavar="PATH", help="YAML configuration (default: the shipped one)")
    g.add_argument("--home", metavar="CC[,CC...]", help="home countries (default from config: US)")
    g.add_argument("--internal-nets", nargs="+", metavar="CIDR", default=None,
                   help="the site's own public ranges: internal, never foreign")
    g.add_argument("--geoip", metavar="PATH", help="a MaxMind/DB-IP/IPinfo .mmdb to use instead of the bundled data")


def settings_from_args(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, args.home, args.internal_nets)


def geo_from_args(args: argparse.Namespace) -> GeoDatabase:
    return GeoDatabase.from_mmdb(args.geoip) if args.geoip else GeoDatabase.bundled()


def enricher_factory_from_args(
    args: argparse.Namespace, stats: EnrichStats | None = None
) -> Callable[[], FlowAnnotator]:
    settings = settings_from_args(args)
    geo = geo_from_args(args)
    shared = stats if stats is not None else EnrichStats()
    return lambda: FlowAnnotator(geo, settings, shared)
