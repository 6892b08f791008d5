"""Large benchmark captures written at disk speed: whole chunks of records built in numpy.

Per-packet Python (as in :mod:`burstwatch.synth.flows`) manages about 100k packets/s; a
benchmark needs millions. Here every header field of a chunk is a numpy column, records are
laid into one byte buffer and written with a single call.

Payload bytes are a window of a fixed random pool copied as-is, and each record's headers are
written over it. Because payload bytes then come straight from the pool, their share of the
TCP/UDP checksum is read from prefix sums of the pool, so every checksum is correct without
touching payload bytes again.

The traffic: thousands of concurrent TCP and UDP flows between internal hosts (10.0.0.0/8)
and public servers, popular flows (heavy-tailed) sending more; about 40% pure ACKs (66-byte
frames), 20% small/medium and 40% near-MTU packets (1514-byte frames); per-direction
sequence numbers, ACK numbers and IP IDs consistent within each flow. Flows end and are
replaced between chunks. Handshakes and teardowns are left out.
"""

from __future__ import annotations

import gzip
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from burstwatch.synth.addresses import GATEWAY_MAC
from burstwatch.synth.writer import DEFAULT_SNAPLEN, MAGIC_MICRO, MAGIC_NANO

I64 = npt.NDArray[np.int64]

CHUNK = 16384
POOL_BYTES = 48 << 20
MOD = 0xFFFF
TCP_MSS = 1448

REC = 16
ETH = 14
IP4 = 20
TCP_HDR = 32
UDP_HDR = 8

_TCP_REC = np.dtype(
    [
        ("sec", "<u4"), ("frac", "<u4"), ("incl", "<u4"), ("orig", "<u4"),
        ("dmac", "u1", 6), ("smac", "u1", 6), ("etype", ">u2"),
        ("vihl", "u1"), ("tos", "u1"), ("tlen", ">u2"), ("ipid", ">u2"), ("frag", ">u2"),
        ("ttl", "u1"), ("proto", "u1"), ("ipsum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
        ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"),
        ("doff", "u1"), ("flags", "u1"), ("win", ">u2"), ("l4sum", ">u2"), ("urg", ">u2"),
        ("nop", "u1", 2), ("tskind", "u1"), ("tslen", "u1"), ("tsval", ">u4"), ("tsecr", ">u4"),
    ]
)  # fmt: skip
_UDP_REC = np.dtype(
    [
        ("sec", "<u4"), ("frac", "<u4"), ("incl", "<u4"), ("orig", "<u4"),
        ("dmac", "u1", 6), ("smac", "u1", 6), ("etype", ">u2"),
        ("vihl", "u1"), ("tos", "u1"), ("tlen", ">u2"), ("ipid", ">u2"), ("frag", ">u2"),
        ("ttl", "u1"), ("proto", "u1"), ("ipsum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
        ("sport", ">u2"), ("dport", ">u2"), ("ulen", ">u2"), ("l4sum", ">u2"),
    ]
)  # fmt: skip
assert _TCP_REC.itemsize == REC + ETH + IP4 + TCP_HDR
assert _UDP_REC.itemsize == REC + ETH + IP4 + UDP_HDR

# First octets of well-used public IPv4 space, so servers get plausible addresses.
_PUBLIC_FIRST_OCTETS = np.array(
    [8, 13, 18, 20, 23, 31, 34, 35, 37, 40, 45, 46, 50, 52, 54, 62, 64, 66, 69, 72, 74, 77, 80,
     81, 85, 88, 91, 93, 94, 95, 104, 107, 108, 114, 118, 121, 142, 143, 151, 157, 162, 173,
     176, 178, 185, 188, 193, 194, 195, 199, 203, 208, 209, 212, 213, 216, 217],
    np.int64,
)  # fmt: skip


@dataclass
class BulkStats:
    """What :func:`write_bulk` wrote and how long it took."""

    packets: int
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10**6 bytes) of file written."""
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    @property
    def packets_per_s(self) -> float:
        """Packets written per second."""
        return self.packets / self.seconds if self.seconds else 0.0


def parse_size(text: str) -> int:
    """'5G', '500M', '64k' or a plain number of bytes (binary multiples: 1G = 2**30)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)i?[bB]?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


class _Pool:
    """Random payload bytes, plus mod-0xFFFF prefix sums of its even- and odd-indexed bytes."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        size += size % 2
        self.data = np.frombuffer(rng.bytes(size), np.uint8)
        pairs = self.data.reshape(-1, 2)
        # even[j] = sum of data[0:2j:2], odd[j] = sum of data[1:2j:2], both mod 0xFFFF
        self.even = np.concatenate([[0], np.cumsum(pairs[:, 0], dtype=np.int64) % MOD]).astype(
            np.uint16
        )
        self.odd = np.concatenate([[0], np.cumsum(pairs[:, 1], dtype=np.int64) % MOD]).astype(
            np.uint16
        )

    def word_sum(self, start: I64, length: I64) -> I64:
        """Internet-checksum sum (mod 0xFFFF) of ``data[start:start+length]`` as 16-bit words."""
        end = start + length
        e = (self.even[(end + 1) // 2].astype(np.int64) - self.even[(start + 1) // 2]) % MOD
        o = (self.odd[end // 2].astype(np.int64) - self.odd[start // 2]) % MOD
        starts_even = (start & 1) == 0
        return np.where(starts_even, 256 * e + o, 256 * o + e) % MOD


def _fold(total: I64) -> I64:
    """Checksum field from a word sum known modulo 0xFFFF (the sum itself is never zero here)."""
    folded = np.where(total % MOD == 0, MOD, total % MOD)
    return (~folded) & 0xFFFF


def _words(rows: npt.NDArray[np.uint8], lo: int, hi: int) -> I64:
    """Sum of big-endian 16-bit words of ``rows[:, lo:hi]``."""
    block = np.ascontiguousarray(rows[:, lo:hi]).view(">u2")
    return block.sum(axis=1, dtype=np.int64)


def _rank_and_prior(key: I64, values: I64, nkeys: int) -> tuple[I64, I64, I64, I64]:
    """For each packet: its rank among packets of its key, and the key's bytes sent before it.

    Also returns, for each packet, the bytes its peer key (``key ^ 1``) sent before it, and
    per-key totals; packets are in time order, so "before" means earlier in the chunk.
    """
    n = key.shape[0]
    order = np.argsort(key, kind="stable")
    ks = key[order]
    vs = values[order]
    cs = np.concatenate([[0], np.cumsum(vs)])
    starts = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=nkeys))])
    group_base = cs[starts[ks]]
    rank_sorted = np.arange(n) - starts[ks]
    prior_sorted = cs[:-1] - group_base
    rank = np.empty(n, np.int64)
    prior = np.empty(n, np.int64)
    rank[order] = rank_sorted
    prior[order] = prior_sorted
    # peer bytes before packet i: position of i among the peer key's packets
    comp = ks * n + order
    peer = key ^ 1
    pos = np.searchsorted(comp, peer * n + np.arange(n))
    peer_prior = cs[pos] - cs[starts[peer]]
    totals = cs[starts[1:]] - cs[starts[:-1]]
    return rank, prior, peer_prior, totals


class _Flows:
    """Per-flow state: endpoints, protocol, direction bias, and per-direction counters."""

    def __init__(self, rng: np.random.Generator, count: int) -> None:
        self.rng = rng
        self.n = count
        hosts = max(16, count // 10)
        self.host_ips = (10 << 24) + rng.choice(1 << 24, size=hosts, replace=False).astype(np.int64)
        servers = max(16, count // 6)
        self.server_ips = (rng.choice(_PUBLIC_FIRST_OCTETS, size=servers) << 24) + rng.integers(
            1 << 8, (1 << 24) - 1, size=servers
        )
        weight = rng.pareto(1.2, size=count) + 0.05
        self.cum_weight = np.cumsum(weight) / weight.sum()
        self.client = np.zeros(count, np.int64)
        self.server = np.zeros(count, np.int64)
        self.cport = np.zeros(count, np.int64)
        self.sport = np.zeros(count, np.int64)
        self.udp = np.zeros(count, bool)
        self.download = np.zeros(count, bool)
        self.seq = np.zeros(2 * count, np.int64)
        self.ipid = np.zeros(2 * count, np.int64)
        self.win = np.zeros(2 * count, np.int64)
        self.ts_off = np.zeros(2 * count, np.int64)
        self.ttl = np.zeros(count, np.int64)
        self.left = np.zeros(count, np.int64)
        self.rtt_ms = np.zeros(count, np.int64)
        self.renew(np.arange(count))

    def renew(self, idx: I64) -> None:
        """Start new flows in slots ``idx`` (new ports, sequence numbers, maybe new peers)."""
        rng, m = self.rng, idx.shape[0]
        if m == 0:
            return
        both = np.concatenate([2 * idx, 2 * idx + 1])
        self.client[idx] = rng.choice(self.host_ips, size=m)
        self.server[idx] = rng.choice(self.server_ips, size=m)
        self.cport[idx] = rng.integers(32768, 61000, size=m)
        self.udp[idx] = rng.random(m) < 0.15
        tcp_ports = rng.choice([443, 443, 443, 443, 443, 443, 80, 8080, 993, 22], size=m)
        udp_ports = rng.choice([443, 443, 443, 3478, 51820, 4500], size=m)
        self.sport[idx] = np.where(self.udp[idx], udp_ports, tcp_ports)
        self.download[idx] = rng.random(m) < 0.8
        self.seq[both] = rng.integers(0, 1 << 32, size=2 * m)
        self.ipid[both] = rng.integers(0, 1 << 16, size=2 * m)
        self.win[both] = rng.integers(200, 2048, size=2 * m)
        self.ts_off[both] = rng.integers(0, 1 << 31, size=2 * m)
        self.ttl[idx] = rng.choice([64, 128, 255], size=m) - rng.integers(8, 24, size=m)
        self.left[idx] = (np.asarray(rng.pareto(1.1, size=m)) * 200 + 20).astype(np.int64)
        self.rtt_ms[idx] = rng.integers(5, 200, size=m)

    def pick(self, n: int) -> I64:
        """Flow slot of each packet, popular flows more often."""
        return np.minimum(np.searchsorted(self.cum_weight, self.rng.random(n)), self.n - 1)


def _client_macs(ips: I64) -> npt.NDArray[np.uint8]:
    """02:00:a:b:c:d for internal host a.b.c.d: unique, locally administered."""
    mac = np.zeros((ips.shape[0], 6), np.uint8)
    mac[:, 0] = 2
    for k in range(4):
        mac[:, 2 + k] = (ips >> (24 - 8 * k)) & 0xFF
    return mac


class BulkWriter:
    """Generates and writes chunk after chunk; see :func:`write_bulk`."""

    def __init__(
        self,
        out: BinaryIO,
        *,
        seed: int,
        flows: int,
        pps: float,
        start_ts: float,
        nanosecond: bool,
        chunk: int = CHUNK,
    ) -> None:
        self.out = out
        self.rng = np.random.default_rng(seed)
        self.pool_bytes = max(POOL_BYTES, 2 * chunk * (_TCP_REC.itemsize + TCP_MSS))
        self.pool = _Pool(self.rng, self.pool_bytes)
        self.t_ns = int(start_ts * 1e9)
        self.flows = _Flows(self.rng, flows)
        self.pps = pps
        self.nanosecond = nanosecond
        magic = MAGIC_NANO if nanosecond else MAGIC_MICRO
        header = np.array(
            [(magic, 2, 4, 0, 0, DEFAULT_SNAPLEN, 1)],
            dtype=[
                ("m", "<u4"),
                ("a", "<u2"),
                ("b", "<u2"),
                ("z", "<i4"),
                ("s", "<u4"),
                ("snap", "<u4"),
                ("lt", "<u4"),
            ],
        )
        out.write(header.tobytes())
        self.bytes = header.nbytes
        self.packets = 0
        # one background thread writes chunk k while chunk k+1 is built (file writes drop the GIL)
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[int] | None = None

    def _write(self, buf: npt.NDArray[np.uint8]) -> None:
        if self._pending is not None:
            self._pending.result()
        self._pending = self._pool.submit(self.out.write, buf.data)

    def finish(self) -> None:
        """Wait for the last chunk to reach the file."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        self._pool.shutdown()

    def chunk(self, n: int) -> None:
        """Generate ``n`` packets and write them as one buffer."""
        rng, fl = self.rng, self.flows
        f = fl.pick(n)
        udp = fl.udp[f]
        kind = rng.choice(3, size=n, p=[0.4, 0.2, 0.4])  # 0 ACK, 1 small/medium, 2 near-MTU
        downstream = np.where(kind == 0, ~fl.download[f], fl.download[f])
        flip = rng.random(n) < 0.1
        d = (downstream ^ flip).astype(np.int64)  # 0 client->server, 1 server->client
        small = np.minimum(rng.lognormal(5.3, 0.9, size=n).astype(np.int64) + 1, 1200)
        payload = np.select(
            [kind == 0, kind == 1],
            [np.where(udp, rng.integers(20, 48, size=n), 0), small],
            np.where(udp, rng.choice([1200, 1252, 1350, 1420], size=n), TCP_MSS),
        )
        payload = np.where(udp, np.maximum(payload, 18), payload)  # keep frames >= 60 bytes
        gaps = rng.exponential(1e9 / self.pps, size=n)
        ts = self.t_ns + np.cumsum(gaps).astype(np.int64)
        self.t_ns = int(ts[-1])

        key = 2 * f + d
        rank, prior, peer_prior, totals = _rank_and_prior(key, payload, 2 * fl.n)
        seq = (fl.seq[key] + prior) & 0xFFFFFFFF
        ack = (fl.seq[key ^ 1] + peer_prior) & 0xFFFFFFFF
        ipid = (fl.ipid[key] + rank) & 0xFFFF
        fl.seq = (fl.seq + totals) & 0xFFFFFFFF
        fl.ipid = (fl.ipid + np.bincount(key, minlength=2 * fl.n)) & 0xFFFF

        l4 = np.where(udp, UDP_HDR, TCP_HDR)
        tlen = IP4 + l4 + payload
        rec_len = REC + ETH + tlen
        offsets = np.concatenate([[0], np.cumsum(rec_len)])
        total = int(offsets[-1])
        base = int(rng.integers(0, self.pool_bytes - total))
        buf = self.pool.data[base : base + total].copy()
        hdr_len = np.where(udp, _UDP_REC.itemsize, _TCP_REC.itemsize)
        psum = self.pool.word_sum(base + offsets[:-1] + hdr_len, payload)

        src = np.where(d == 0, fl.client[f], fl.server[f])
        dst = np.where(d == 0, fl.server[f], fl.client[f])
        sport = np.where(d == 0, fl.cport[f], fl.sport[f])
        dport = np.where(d == 0, fl.sport[f], fl.cport[f])
        client_mac = _client_macs(fl.client[f])
        gw = np.frombuffer(GATEWAY_MAC, np.uint8)
        sec, frac = np.divmod(ts, 1_000_000_000)
        if not self.nanosecond:
            frac //= 1000
        ms = ts // 1_000_000
        for is_udp, dtype in ((False, _TCP_REC), (True, _UDP_REC)):
            sel = np.flatnonzero(udp == is_udp)
            if sel.size == 0:
                continue
            r = np.zeros(sel.size, dtype)
            r["sec"], r["frac"] = sec[sel], frac[sel]
            r["incl"] = r["orig"] = ETH + tlen[sel]
            up = (d[sel] == 0)[:, None]
            r["smac"] = np.where(up, client_mac[sel], gw)
            r["dmac"] = np.where(up, gw, client_mac[sel])
            r["etype"] = 0x0800
            r["vihl"], r["tlen"], r["ipid"], r["frag"] = 0x45, tlen[sel], ipid[sel], 0x4000
            r["ttl"] = np.where(d[sel] == 0, 64, fl.ttl[f[sel]])
            r["proto"] = 17 if is_udp else 6
            r["src"], r["dst"], r["sport"], r["dport"] = src[sel], dst[sel], sport[sel], dport[sel]
            rows = r.view(np.uint8).reshape(sel.size, dtype.itemsize)
            r["ipsum"] = _fold(_words(rows, 30, 50))
            l4len = tlen[sel] - IP4
            pseudo = (src[sel] >> 16) + (src[sel] & 0xFFFF) + (dst[sel] >> 16) + (dst[sel] & 0xFFFF)
            pseudo = pseudo + (17 if is_udp else 6) + l4len
            if is_udp:
                r["ulen"] = l4len
            else:
                r["seq"], r["ack"], r["doff"] = seq[sel], ack[sel], 0x80
                r["flags"] = np.where(kind[sel] == 1, 0x18, 0x10)
                r["win"] = fl.win[key[sel]]
                r["nop"], r["tskind"], r["tslen"] = 1, 8, 10
                r["tsval"] = (ms[sel] + fl.ts_off[key[sel]]) & 0xFFFFFFFF
                r["tsecr"] = (ms[sel] - fl.rtt_ms[f[sel]] + fl.ts_off[key[sel] ^ 1]) & 0xFFFFFFFF
            csum = _fold(pseudo + _words(rows, 50, dtype.itemsize) + psum[sel])
            if is_udp:
                csum = np.where(csum == 0, 0xFFFF, csum)
            r["l4sum"] = csum
            idx = offsets[sel][:, None] + np.arange(dtype.itemsize)
            buf[idx] = rows
        self._write(buf)
        self.bytes += total
        self.packets += n
        fl.left -= np.bincount(f, minlength=fl.n)
        fl.renew(np.flatnonzero(fl.left <= 0))


def write_bulk(
    path: str | Path,
    packets: int | None = 5_000_000,
    *,
    target_bytes: int | None = None,
    seed: int = 1,
    flows: int = 20_000,
    pps: float = 250_000.0,
    start_ts: float = 1_710_252_000.0,
    nanosecond: bool = False,
    chunk: int = CHUNK,
) -> BulkStats:
    """Write a benchmark capture of ``packets`` packets, or until the file reaches ``target_bytes``.

    ``pps`` sets the mean packet rate of the capture's clock (Poisson arrivals). The same
    arguments always produce the same file.
    """
    import time

    if packets is None and target_bytes is None:
        raise ValueError("give packets or target_bytes")
    began = time.perf_counter()
    with open(path, "wb") as raw:
        out: BinaryIO = raw
        if str(path).endswith(".gz"):
            out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1)  # type: ignore[assignment]
        w = BulkWriter(
            out,
            seed=seed,
            flows=flows,
            pps=pps,
            start_ts=start_ts,
            nanosecond=nanosecond,
            chunk=chunk,
        )
        while True:
            n = chunk
            if packets is not None:
                n = min(n, packets - w.packets)
            if target_bytes is not None and w.bytes >= target_bytes:
                break
            if n <= 0:
                break
            w.chunk(n)
        w.finish()
        if out is not raw:
            out.close()
    return BulkStats(w.packets, w.bytes, time.perf_counter() - began)
