"""Orientation by role: the local side is the originator whoever speaks first, and a flow
split by a timeout keeps its orientation and its verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from burstwatch.features import compute_features
from burstwatch.flows import FlowConfig, FlowTable, roles
from burstwatch.flows import state as fs
from burstwatch.netaddr import format_addresses, parse_addresses
from tests.flowcraft import ACK, PSH, SEC, SYN, Conversation
from tests.test_flows import packets_of, run_flows, write

T0 = 1_000 * SEC
MS = 1_000_000


def _upload(c: Conversation, at: int, segments: int, size: int = 1000) -> None:
    """``segments`` payload segments from the client every 100 µs, ACKed every second."""
    for k in range(segments):
        ts = at + k * 100_000
        c.up(ts, payload=size, flags=ACK | PSH)
        if k % 2 == 1:
            c.down(ts + 50_000)


def pull_after_idle() -> Conversation:
    """One TCP connection (SYN only at the start) to a foreign server that speaks first after
    every quiet spell: a 300-byte command, then the client uploads 1,000,000 bytes. The gaps
    (10 min) are longer than the idle timeout (120 s), so each pull is a flow of its own."""
    c = Conversation("192.168.1.60", "77.88.8.8", 51000, 443)
    c.up(T0, flags=SYN)
    c.down(T0 + MS, flags=SYN | ACK)
    c.up(T0 + 2 * MS)
    for k in range(3):
        at = T0 + SEC + k * 600 * SEC
        c.down(at, payload=300, flags=ACK | PSH)
        c.up(at + MS)
        _upload(c, at + 2 * MS, 1000)
    return c


def test_pull_after_idle_keeps_the_internal_host_as_source(tmp_path: Path) -> None:
    rows, bursts = run_flows(packets_of(write(tmp_path, [pull_after_idle()])))
    flows = rows.take(np.flatnonzero(rows.kind == fs.ROW_FLOW))
    assert len(flows) == 3  # split by the idle timeout
    assert format_addresses(flows.orig_hi, flows.orig_lo) == ["192.168.1.60"] * 3
    assert flows.orig_port.tolist() == [51000] * 3
    assert format_addresses(flows.resp_hi, flows.resp_lo) == ["77.88.8.8"] * 3
    feats = compute_features(flows)
    # Every part uploads its 1,000,000 bytes; the server sends its 300-byte command.
    assert feats.column("orig_payload_bytes").tolist() == [1_000_000.0] * 3
    assert feats.column("resp_payload_bytes").tolist() == [300.0] * 3
    assert feats.column("up_burst_count").tolist() == [1.0] * 3
    assert feats.column("up_burst_bytes_max").tolist() == [1_000_000.0] * 3
    up = bursts.take(np.flatnonzero(bursts.direction == 0))
    assert up.bytes.tolist() == [1_000_000] * 3
    assert format_addresses(up.orig_hi, up.orig_lo) == ["192.168.1.60"] * 3


def test_internal_server_answering_a_foreign_client_is_the_local_side(tmp_path: Path) -> None:
    """A foreign client connects in (SYN from abroad): the internal server is still local, and
    what it sends is an upload."""
    c = Conversation("5.255.255.5", "10.1.2.3", 40000, 8443)
    c.up(T0, flags=SYN)
    c.down(T0 + MS, flags=SYN | ACK)
    c.up(T0 + 2 * MS, payload=200, flags=ACK | PSH)
    for k in range(100):
        c.down(T0 + 3 * MS + k * 100_000, payload=1000, flags=ACK | PSH)
    rows, bursts = run_flows(packets_of(write(tmp_path, [c])))
    assert format_addresses(rows.orig_hi, rows.orig_lo) == ["10.1.2.3"]
    assert rows.orig_port.tolist() == [8443]
    feats = compute_features(rows)
    assert feats.column("orig_payload_bytes").tolist() == [100_000.0]
    assert feats.column("resp_payload_bytes").tolist() == [200.0]
    assert bursts.direction.tolist() == [0]


def test_site_prefixes_count_as_local(tmp_path: Path) -> None:
    """A host in the site's own public prefix is local; without the prefix the SYN decides."""
    c = Conversation("77.88.8.8", "198.18.7.7", 443, 50123)
    c.up(T0, flags=SYN)  # the foreign side sends the SYN (an inbound connection)
    c.down(T0 + MS, flags=SYN | ACK)
    c.down(T0 + 2 * MS, payload=50_000, flags=ACK | PSH)
    batches = packets_of(write(tmp_path, [c]))
    rows, _ = run_flows(batches)
    assert format_addresses(rows.orig_hi, rows.orig_lo) == ["77.88.8.8"]  # neither local: SYN


    table = FlowTable(local=roles.local_nets(["198.18.0.0/15"]))
    outs = [table.update(b) for b in batches] + [table.flush()]
    local_rows = [o.rows for o in outs if len(o.rows)]
    assert format_addresses(local_rows[0].orig_hi, local_rows[0].orig_lo) == ["198.18.7.7"]


def test_split_public_flow_keeps_its_orientation_within_the_conversation_timeout(tmp_path: Path) -> None:
    """Both sides public, no SYN after the gap, ports say nothing (both below 32768 and above
    1023): the part after an idle split keeps the first part's orientation while the gap is
    within the conversation timeout, and the first sender decides after it."""
    c = Conversation("5.255.255.5", "77.88.8.8", 20000, 20001, proto=17)
    c.up(T0, payload=100)
    c.down(T0 + MS, payload=100)
    c.down(T0 + 300 * SEC, payload=100)  # 5 min later (idle split), the other side first
    c.up(T0 + 300 * SEC + MS, payload=100)
    c.down(T0 + 9000 * SEC, payload=100)  # 2.4 h later: beyond the conversation timeout
    rows, _ = run_flows(packets_of(write(tmp_path, [c])))
    flows = rows.take(np.flatnonzero(rows.kind == fs.ROW_FLOW))
    assert format_addresses(flows.orig_hi, flows.orig_lo) == ["5.255.255.5", "5.255.255.5", "77.88.8.8"]
    # The same with a short conversation timeout: the middle part is oriented anew.
    rows, _ = run_flows(packets_of(write(tmp_path, [c])), FlowConfig(conversation_timeout=60))
    flows = rows.take(np.flatnonzero(rows.kind == fs.ROW_FLOW))
    assert format_addresses(flows.orig_hi, flows.orig_lo) == ["5.255.255.5", "77.88.8.8", "77.88.8.8"]


def test_the_ephemeral_port_side_originates_when_nothing_else_decides(tmp_path: Path) -> None:
    c = Conversation("5.255.255.5", "77.88.8.8", 5353, 50000, proto=17)
    c.up(T0, payload=100)  # the first sender has the service-like port
    c.down(T0 + MS, payload=100)
    rows, _ = run_flows(packets_of(write(tmp_path, [c])))
    assert format_addresses(rows.orig_hi, rows.orig_lo) == ["77.88.8.8"]
    assert rows.orig_port.tolist() == [50000]


def test_address_and_port_roles_by_hand() -> None:
    hi, lo = parse_addresses(["192.168.1.1", "8.8.8.8", "fd00::1", "10.0.0.1", "8.8.4.4"])
    a = np.array([0, 1, 2, 3, 4])
    b = np.array([1, 0, 1, 0, 1])
    role = roles.address_roles(roles.local_nets(), hi[a], lo[a], hi[b], lo[b])
    # local/public, public/local, local/public, local/local, public/public
    assert role.tolist() == [roles.ROLE_A, roles.ROLE_B, roles.ROLE_A, roles.ROLE_UNKNOWN, roles.ROLE_UNKNOWN]

    def key(a_port: int, b_port: int) -> int:
        return (6 << 32) | (a_port << 16) | b_port

    ports = np.array([key(50000, 443), key(443, 50000), key(40000, 5000), key(5000, 5001),
                      key(60000, 60001), key(53, 123)], np.uint64)
    assert roles.port_roles(ports).tolist() == [
        roles.ROLE_A, roles.ROLE_B, roles.ROLE_A, roles.ROLE_UNKNOWN, roles.ROLE_UNKNOWN,
        roles.ROLE_UNKNOWN,
    ]


def test_every_part_of_a_pulled_connection_keeps_the_handshake_verdict(tmp_path: Path) -> None:
    """exfil_pull_after_idle: one TLS connection split by idle gaps into one flow per pull;
    only the first part saw the ClientHello, yet every part is TLS to api.example.net, and
    every part's upload counts as upload from the internal host."""
    from burstwatch.config import load_settings
    from burstwatch.enrich.annotate import FlowAnnotator
    from burstwatch.enrich.geo import GeoDatabase
    from burstwatch.pipeline import run_flows as pipeline_flows
    from burstwatch.synth.scenarios import write_scenario

    path = tmp_path / "pull.pcap"
    session = write_scenario(str(path), "exfil_pull_after_idle", 5, bursts=3,
                             burst_bytes=300_000, rate=2e6)
    annotator = FlowAnnotator(GeoDatabase.bundled(), load_settings(None, None, None))
    rows = []
    for b in pipeline_flows([str(path)], enricher_factory=lambda: annotator):
        for i in np.flatnonzero(b.rows.kind == fs.ROW_FLOW).tolist():
            rows.append((format_addresses(b.rows.orig_hi[i:i + 1], b.rows.orig_lo[i:i + 1])[0],
                         b.extra["burstwatch.encryption.verdict"][i], b.extra["tls.client.server_name"][i],
                         float(b.features.column("orig_payload_bytes")[i])))
    assert len(rows) == 4  # the handshake, then one flow per pull
    assert {r[:3] for r in rows} == {("192.168.1.50", "tls", "api.example.net")}
    uploaded = sum(r[3] for r in rows)
    assert uploaded >= sum(b.payload_bytes for b in session.bursts)
