"""Per-flow context for emitted rows: encryption verdict, geography, scope, allow-lists.

Works per flow, never per packet: payload samples (the first few payload packets of each
direction) are kept until a flow's first row is emitted, classified once, and forgotten when
the flow ends; geography is looked up once per distinct endpoint in each batch of rows.
"""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from burstwatch.config import Settings, load_settings
from burstwatch.enrich.encryption import EncryptionVerdict, classify_flow
from burstwatch.enrich.geo import GeoDatabase, Scope, classify_scope, internal_nets
from burstwatch.enrich.nets import NetSet
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
        self._verdicts: dict[int, EncryptionVerdict] = {}

    def __call__(self, out: FlowOutput) -> Columns:
        s = out.samples
        for fid, d, payload in zip(s.flow_id.tolist(), s.direction.tolist(), s.payloads, strict=True):
            self._samples.setdefault(fid, ([], []))[d].append(payload)
        rows = out.rows
        if not len(rows):
            return {}
        cols = self._encryption(rows)
        cols.update(self._geography(rows))
        cols.update(self._allow(cols, rows))
        return cols

    # ---- encryption ----
    def _verdict(self, rows: FlowRows, i: int) -> EncryptionVerdict:
        fid = int(rows.flow_id[i])
        v = self._verdicts.get(fid)
        if v is None:
            up, down = self._samples.pop(fid, ([], []))
            v = classify_flow(int(rows.proto[i]), int(rows.orig_port[i]), int(rows.resp_port[i]), up, down)
            self._verdicts[fid] = v
        if rows.kind[i] == fs.ROW_FLOW:  # the flow is over: forget it
            self._verdicts.pop(fid, None)
            self._samples.pop(fid, None)
        return v

    def _encryption(self, rows: FlowRows) -> Columns:
        n = len(rows)
        kind = np.empty(n, object)
        version = np.empty(n, object)
        detail = np.empty(n, object)
        sni = np.empty(n, object)
        alpn = np.empty(n, object)
        ja4 = np.empty(n, object)
        entropy = np.full(n, np.nan)
        for i in range(n):
            v = self._verdict(rows, i)
            kind[i] = v.kind
            version[i] = v.version or ""
            detail[i] = v.detail or ""
            sni[i] = v.sni or ""
            alpn[i] = ",".join(v.alpn) if v.alpn else ""
            ja4[i] = v.fingerprint or ""
            if v.entropy is not None:
                entropy[i] = v.entropy
            if rows.kind[i] == fs.ROW_FLOW:
                self.stats.by_encryption[v.kind] = self.stats.by_encryption.get(v.kind, 0) + 1
                if v.kind != "none":
                    self.stats.encrypted_flows += 1
        return {
            "burstwatch.encryption": kind,
            "burstwatch.encryption_version": version,
            "burstwatch.encryption_detail": detail,
            "tls.client.server_name": sni,
            "burstwatch.alpn": alpn,
            "tls.client.ja4": ja4,
            "burstwatch.entropy": entropy,
        }

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
