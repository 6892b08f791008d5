"""Deterministic synthetic traffic: realistic captures for the demo, the tests and benchmarks.

Everything is driven by a seeded ``numpy.random.Generator``: the same seed gives
byte-identical files.

Public API:

- :class:`Endpoint` ``(ip, port=0)``: one side of a flow (port 0: pick an ephemeral port).
- Scenarios, each ``fn(rng, start_ts, client, server=None, **params) -> Session``:
  exfil (:data:`EXFIL`): ``exfil_tls``, ``exfil_tls_port``, ``exfil_tls_v6``, ``exfil_quic``,
  ``exfil_wireguard``, ``exfil_udp_unknown``; benign (:data:`BENIGN`): ``browsing``,
  ``video_stream``, ``video_stream_abroad``, ``backup_upload``, ``large_download``,
  ``os_update``, ``encrypted_call``, ``dns_lookups``. :func:`run_scenario` runs one by name.
- :class:`Session`: ``flows`` (per-flow packet schedules), ``packets()`` (time-ordered
  :class:`Packet` ``(ts_ns, ip_bytes)``), and for exfil ``bursts``: a :class:`BurstTruth`
  per burst (first/last upstream data packet time, payload bytes, IP bytes, packets).
- :func:`merge` ``(flows)``: packets of many flows in time order.
- :func:`write_capture` ``(path, packets, link="ethernet", nanosecond=False,
  big_endian=False, snaplen=262144)``: classic pcap, gzip when the path ends in ``.gz``;
  ``link`` is a name in :data:`LINK_NAMES` (ethernet, vlan, qinq, sll, sll2, raw, ipv4, ipv6,
  null, loop), a LINKTYPE_ number, or a :class:`Link`. :class:`PcapWriter` streams.
- :func:`write_bulk` ``(path, packets=5_000_000, target_bytes=None, seed=1, flows=20000)``:
  a large benchmark capture built in numpy chunks.
- :func:`write_project_pcaps` ``(out_dir, seed)``: the captures in ``pcaps/``.
- :func:`main` ``(argv)``: the command line (``python -m burstwatch.synth``).
"""

from burstwatch.synth.bulk import BulkStats, write_bulk
from burstwatch.synth.cli import main
from burstwatch.synth.flows import FlowPackets, TcpFlow, UdpFlow, merge
from burstwatch.synth.linklayer import LINK_NAMES, Link
from burstwatch.synth.model import BurstTruth, Endpoint, Packet, Session
from burstwatch.synth.office import office_sessions, write_project_pcaps
from burstwatch.synth.scenarios import (
    BENIGN,
    EXFIL,
    SCENARIOS,
    Scenario,
    backup_upload,
    browsing,
    dns_lookups,
    encrypted_call,
    exfil_quic,
    exfil_tls,
    exfil_tls_port,
    exfil_tls_v6,
    exfil_udp_unknown,
    exfil_wireguard,
    large_download,
    os_update,
    run_scenario,
    video_stream,
    video_stream_abroad,
)
from burstwatch.synth.writer import PcapWriter, write_capture

__all__ = [
    "BENIGN",
    "EXFIL",
    "LINK_NAMES",
    "SCENARIOS",
    "BulkStats",
    "BurstTruth",
    "Endpoint",
    "FlowPackets",
    "Link",
    "Packet",
    "PcapWriter",
    "Scenario",
    "Session",
    "TcpFlow",
    "UdpFlow",
    "backup_upload",
    "browsing",
    "dns_lookups",
    "encrypted_call",
    "exfil_quic",
    "exfil_tls",
    "exfil_tls_port",
    "exfil_tls_v6",
    "exfil_udp_unknown",
    "exfil_wireguard",
    "large_download",
    "main",
    "merge",
    "office_sessions",
    "os_update",
    "run_scenario",
    "video_stream",
    "video_stream_abroad",
    "write_bulk",
    "write_capture",
    "write_project_pcaps",
]
