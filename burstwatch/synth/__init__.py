"""Deterministic synthetic traffic: realistic captures for the demo, the tests and benchmarks.

Everything is driven by a seeded ``numpy.random.Generator``: the same seed gives
byte-identical files.

Public API:

- :class:`Endpoint` ``(ip, port=0)``: one side of a flow (port 0: pick an ephemeral port).
- Scenarios, each ``fn(rng, start_ts, client, server=None, **params) -> Session``:
  exfil (:data:`EXFIL`): ``exfil_tls``, ``exfil_tls_port``, ``exfil_tls_v6``, ``exfil_quic``,
  ``exfil_wireguard``, ``exfil_udp_unknown``; benign (:data:`BENIGN`): ``browsing``,
  ``video_stream``, ``video_stream_abroad``, ``backup_upload``, ``large_download``,
  ``os_update``, ``encrypted_call``, ``dns_lookups``. Conversation scenarios, over hours and
  across connections: exfil (:data:`CONVERSATION_EXFIL`) ``exfil_pull_after_idle``,
  ``exfil_conn_per_burst``, ``exfil_slow_uplink``, ``exfil_jittered_session``,
  ``exfil_many_small``; benign (:data:`CONVERSATION_BENIGN`) ``continuous_upload_abroad``,
  ``photo_backup_home``, ``ssh_interactive_abroad``, ``browsing_abroad``, ``os_update_abroad``.
  :func:`run_scenario` runs any of them (:data:`ALL_SCENARIOS`) by name.
- :class:`Session`: ``flows`` (per-flow packet schedules), ``packets()`` (time-ordered
  :class:`Packet` ``(ts_ns, ip_bytes)``), and for exfil ``bursts``: a :class:`BurstTruth`
  per burst (first/last upstream data packet time, payload bytes, IP bytes, packets).
- :func:`merge` ``(flows)``: packets of many flows in time order.
- :func:`write_capture` ``(path, packets, link="ethernet", nanosecond=False,
  big_endian=False, snaplen=262144)``: classic pcap, gzip when the path ends in ``.gz``;
  ``link`` is a name in :data:`LINK_NAMES` (ethernet, vlan, qinq, sll, sll2, raw, ipv4, ipv6,
  null, loop), a LINKTYPE_ number, or a :class:`Link`. :class:`PcapWriter` streams.
- :func:`split_capture` ``(path, out_dir, cuts)``: a pcap split at packet indices into
  complete pcap files, as capture rotation makes them.
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
    ALL_SCENARIOS,
    BENIGN,
    CONVERSATION_BENIGN,
    CONVERSATION_EXFIL,
    CONVERSATION_SCENARIOS,
    EXFIL,
    SCENARIOS,
    Scenario,
    backup_upload,
    browsing,
    browsing_abroad,
    continuous_upload_abroad,
    dns_lookups,
    encrypted_call,
    exfil_conn_per_burst,
    exfil_jittered_session,
    exfil_many_small,
    exfil_pull_after_idle,
    exfil_quic,
    exfil_slow_uplink,
    exfil_tls,
    exfil_tls_port,
    exfil_tls_v6,
    exfil_udp_unknown,
    exfil_wireguard,
    large_download,
    os_update,
    os_update_abroad,
    photo_backup_home,
    run_scenario,
    ssh_interactive_abroad,
    video_stream,
    video_stream_abroad,
)
from burstwatch.synth.writer import PcapWriter, split_capture, write_capture

__all__ = [
    "ALL_SCENARIOS",
    "BENIGN",
    "CONVERSATION_BENIGN",
    "CONVERSATION_EXFIL",
    "CONVERSATION_SCENARIOS",
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
    "browsing_abroad",
    "continuous_upload_abroad",
    "dns_lookups",
    "encrypted_call",
    "exfil_conn_per_burst",
    "exfil_jittered_session",
    "exfil_many_small",
    "exfil_pull_after_idle",
    "exfil_quic",
    "exfil_slow_uplink",
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
    "os_update_abroad",
    "photo_backup_home",
    "run_scenario",
    "split_capture",
    "ssh_interactive_abroad",
    "video_stream",
    "video_stream_abroad",
    "write_bulk",
    "write_capture",
    "write_project_pcaps",
]
