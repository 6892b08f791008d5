"""The conversation scenarios: schedules over hours, bursts across connections, look-alikes.

Every scenario is checked against its own packets, decoded independently with dpkt: the
ground truth of each burst, the schedule's jitter bounds, which side speaks first after an
idle gap, one connection per burst, and where the peers are. Captures are kept small (tests
pass small sizes; the defaults are checked for size without writing them).
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows.config import FlowConfig
from burstwatch.synth import addresses as ad
from burstwatch.synth import payloads as pl
from burstwatch.synth.cli import main
from burstwatch.synth.model import Session
from burstwatch.synth.scenarios import (
    ALL_SCENARIOS,
    BENIGN,
    CONVERSATION_BENIGN,
    CONVERSATION_EXFIL,
    CONVERSATION_SCENARIOS,
    EXFIL,
    SCENARIOS,
    run_scenario,
    write_scenario,
)
from burstwatch.synth.writer import split_capture, write_capture

S = 1_000_000_000
IDLE_NS = int(FlowConfig().idle_timeout * S)

# Small parameters per scenario, so each capture is made in well under a second.
SMALL: dict[str, dict] = {
    "exfil_pull_after_idle": {"bursts": 3, "burst_bytes": (100_000, 300_000), "gap_s": 300.0},
    "exfil_conn_per_burst": {"slots": 6, "gap_s": 600.0, "burst_bytes": (100_000, 300_000)},
    "exfil_slow_uplink": {
        "slots": 4, "gap_s": 600.0, "burst_bytes": (150_000, 400_000), "chunk_bytes": 100_000,
    },
    "exfil_jittered_session": {"bursts": 5, "gap_s": 300.0, "burst_bytes": (100_000, 300_000)},
    "exfil_many_small": {"slots": 12},
    "continuous_upload_abroad": {"total_bytes": 3_000_000, "piece_bytes": 1_000_000},
    "photo_backup_home": {"photos": 5, "photo_bytes": (200_000, 500_000)},
    "ssh_interactive_abroad": {"duration_s": 600.0},
    "browsing_abroad": {"duration_s": 60.0},
    "os_update_abroad": {"total_bytes": 1_000_000, "packages": 4},
}


@dataclass
class Pkt:
    ts: int
    up: bool  # from the internal host
    ip: dpkt.Packet

    @property
    def l4(self) -> dpkt.Packet:
        return self.ip.data

    @property
    def payload(self) -> bytes:
        return bytes(self.ip.data.data)

    @property
    def flow(self) -> tuple:
        a, b = (self.ip.src, self.l4.sport), (self.ip.dst, self.l4.dport)
        return (a, b) if self.up else (b, a)


def decode(session: Session) -> list[Pkt]:
    """The session's packets in capture order, decoded by dpkt."""
    out = []
    for p in session.packets():
        ip = dpkt.ip.IP(p.data) if p.data[0] >> 4 == 4 else dpkt.ip6.IP6(p.data)
        src = str(ipaddress.ip_address(bytes(ip.src)))
        out.append(Pkt(p.ts_ns, ad.is_internal(src), ip))
    return out


def ip_len(ip: dpkt.Packet) -> int:
    return len(bytes(ip))


def small(name: str, seed: int = 11, **extra: object) -> Session:
    return run_scenario(name, seed, **(SMALL[name] | extra))


def flows_of(pkts: list[Pkt]) -> dict[tuple, list[Pkt]]:
    flows: dict[tuple, list[Pkt]] = {}
    for p in pkts:
        flows.setdefault(p.flow, []).append(p)
    return flows


def syn_times(pkts: list[Pkt]) -> list[int]:
    return [p.ts for p in pkts if p.up and p.l4.flags & dpkt.tcp.TH_SYN]


def check_tcp(packets: list[Pkt]) -> None:
    """Per connection: one SYN first, contiguous sequence numbers each way (keepalive probes
    aside), acknowledgements that never pass what the peer sent nor go backwards."""
    for flow in flows_of(packets).values():
        first = flow[0].l4
        assert first.flags == dpkt.tcp.TH_SYN and flow[0].up
        assert sum(1 for p in flow if p.l4.flags & dpkt.tcp.TH_SYN) == 2  # SYN, SYN/ACK
        nxt: dict[bool, int] = {}
        last_ack: dict[bool, int] = {}
        for p in flow:
            tcp, up = p.l4, p.up
            if tcp.flags & dpkt.tcp.TH_SYN:
                nxt[up] = (tcp.seq + 1) & 0xFFFFFFFF
                continue
            probe = tcp.seq == (nxt[up] - 1) & 0xFFFFFFFF and not tcp.data
            assert probe or tcp.seq == nxt[up]
            assert (nxt[not up] - tcp.ack) & 0xFFFFFFFF < 2**31
            if up in last_ack:
                assert (tcp.ack - last_ack[up]) & 0xFFFFFFFF < 2**31
            last_ack[up] = tcp.ack
            if not probe:
                adv = len(tcp.data) + (1 if tcp.flags & dpkt.tcp.TH_FIN else 0)
                nxt[up] = (tcp.seq + adv) & 0xFFFFFFFF


def country(ip: str) -> str:
    addr = int(ipaddress.ip_address(ip))
    if ":" in ip:
        hi, lo = addr >> 64, addr & (2**64 - 1)
    else:
        hi, lo = 0, (0xFFFF << 32) | addr
    result = GeoDatabase.bundled().lookup(np.array([hi], np.uint64), np.array([lo], np.uint64))
    return str(result.country[0])


def client_hello_sni(payload: bytes) -> str:
    records, _ = dpkt.ssl.tls_multi_factory(payload)
    hello = dpkt.ssl.TLSHandshake(records[0].data).data
    assert isinstance(hello, dpkt.ssl.TLSClientHello)
    ext = dict(hello.extensions)
    return ext[0][5:].decode()


def session_bytes(session: Session) -> int:
    """Pcap bytes the session would take (Ethernet), from the flow columns alone."""
    total = 0
    for f in session.flows:
        header = (20 if f.client.version == 4 else 40) + (32 if f.proto == 6 else 8)
        total += sum(len(p) for p in f.payloads) + len(f) * (header + 16 + 14 + 8)
    return total


# --- the registry ---------------------------------------------------------------------------


def test_registries_add_the_conversation_scenarios_and_leave_the_others_alone() -> None:
    assert set(CONVERSATION_SCENARIOS) == set(SMALL)
    assert set(CONVERSATION_EXFIL) == {n for n in SMALL if n.startswith("exfil_")}
    assert not set(CONVERSATION_SCENARIOS) & set(SCENARIOS)
    # the scorer's corpus draws its classes (and seeds) from these: unchanged
    assert list(EXFIL) == [
        "exfil_tls", "exfil_tls_port", "exfil_tls_v6", "exfil_quic", "exfil_wireguard",
        "exfil_udp_unknown",
    ]
    assert list(BENIGN) == [
        "browsing", "video_stream", "video_stream_abroad", "backup_upload", "large_download",
        "os_update", "encrypted_call", "dns_lookups",
    ]
    assert ALL_SCENARIOS == SCENARIOS | CONVERSATION_SCENARIOS
    for name, fn in CONVERSATION_SCENARIOS.items():
        doc = inspect.getdoc(fn) or ""
        assert "Models" in doc and "Why it matters" in doc, name


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_bytes(name: str, tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{k}.pcap" for k in "abc")
    first = write_scenario(str(a), name, 3, **SMALL[name])
    write_scenario(str(b), name, 3, **SMALL[name])
    write_scenario(str(c), name, 4, **SMALL[name])
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert first.name == name
    assert first.kind == ("exfil" if name in CONVERSATION_EXFIL else "benign")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_tcp_is_consistent(name: str) -> None:
    pkts = [p for p in decode(small(name)) if isinstance(p.l4, dpkt.tcp.TCP)]
    assert pkts
    check_tcp(pkts)


# --- ground truth ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONVERSATION_EXFIL))
def test_exfil_ground_truth_matches_the_packets(name: str) -> None:
    session = small(name)
    pkts = decode(session)
    up = [p for p in pkts if p.up and p.payload]
    lo = SMALL[name].get("burst_bytes", (50_000, 200_000))[0]
    assert session.bursts
    ends = [b.end_ns for b in session.bursts]
    starts = [b.start_ns for b in session.bursts]
    assert all(e < s for e, s in zip(ends, starts[1:], strict=False))  # in order, disjoint
    for truth in session.bursts:
        inside = [p for p in up if truth.start_ns <= p.ts <= truth.end_ns]
        assert (inside[0].ts, inside[-1].ts) == (truth.start_ns, truth.end_ns)
        assert sum(len(p.payload) for p in inside) == truth.payload_bytes
        assert sum(ip_len(p.ip) for p in inside) == truth.ip_bytes
        assert len(inside) == truth.packets
        assert truth.payload_bytes >= lo
    # outside the bursts the host sends only small things: handshakes, ACKs, heartbeats
    outside = [
        p for p in up if not any(b.start_ns <= p.ts <= b.end_ns for b in session.bursts)
    ]
    assert all(len(p.payload) <= 600 for p in outside)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_peers_are_where_the_scenario_says(name: str) -> None:
    session = small(name)
    assert session.client.ip.startswith("192.168.1.")
    servers = {f.server.ip for f in session.flows if f.proto == 6}
    home = {"photo_backup_home"}
    for ip in servers:
        assert not ad.is_internal(ip)
        assert (country(ip) == ad.HOME_COUNTRY) == (name in home), (ip, country(ip))
    if name in CONVERSATION_EXFIL:
        assert servers <= set(ad.FOREIGN_EXFIL)


def test_encrypted_call_peer_is_abroad() -> None:
    session = run_scenario("encrypted_call", 1, duration_s=1.0)
    assert country(session.server.ip) not in ("", ad.HOME_COUNTRY)


# --- schedules ------------------------------------------------------------------------------


def test_pull_after_idle_server_speaks_first_after_every_gap() -> None:
    params = SMALL["exfil_pull_after_idle"] | {"gap_s": 400.0, "jitter": 0.5, "bursts": 4}
    session = run_scenario("exfil_pull_after_idle", 5, **params)
    pkts = decode(session)
    assert len(session.flows) == 1
    assert [p.ts for p in pkts if p.l4.flags & dpkt.tcp.TH_SYN and p.up] == [pkts[0].ts]
    gaps = [k for k in range(1, len(pkts)) if pkts[k].ts - pkts[k - 1].ts > IDLE_NS]
    assert len(gaps) == len(session.bursts) == 4
    for k, truth in zip(gaps, session.bursts, strict=True):
        idle = pkts[k].ts - pkts[k - 1].ts
        assert 200 * S <= idle <= 600 * S + S  # gap_s * (1 +- jitter)
        command = pkts[k]
        assert not command.up and 200 <= len(command.payload) <= 600
        assert command.payload[:3] == b"\x17\x03\x03"
        after = [p for p in pkts[k + 1 :] if p.up and p.payload]
        assert after[0].ts == truth.start_ns  # the client answers with the burst
        assert truth.start_ns - command.ts < 1 * S


def test_pull_after_idle_rejects_a_schedule_that_runs_backwards() -> None:
    with pytest.raises(ValueError, match="jitter"):
        run_scenario("exfil_pull_after_idle", 1, jitter=1.2)


def test_conn_per_burst_one_new_connection_per_burst() -> None:
    sni = "assets.example.com"
    session = small("exfil_conn_per_burst", miss_prob=0.0, sni=sni)
    pkts = decode(session)
    flows = flows_of(pkts)
    assert len(flows) == len(session.flows) == len(session.bursts) == 6
    ports = [key[0][1] for key in flows]
    assert len(set(ports)) == len(ports)
    for truth, flow in zip(session.bursts, flows.values(), strict=True):
        assert sum(1 for p in flow if p.up and p.l4.flags & dpkt.tcp.TH_SYN) == 1
        assert flow[0].ts < truth.start_ns and truth.end_ns < flow[-1].ts
        hello = next(p for p in flow if p.up and p.payload)
        assert client_hello_sni(hello.payload) == sni
        assert flow[-1].l4.flags & dpkt.tcp.TH_ACK and any(
            p.l4.flags & dpkt.tcp.TH_FIN and p.up for p in flow
        )
    steps = np.diff(syn_times(pkts)) / (600.0 * S)
    assert np.all((steps >= 0.6) & (steps <= 1.4))  # jitter 0.4


def test_conn_per_burst_missed_slots_keep_the_schedule() -> None:
    session = small("exfil_conn_per_burst", seed=2, slots=30, miss_prob=0.4, jitter=0.2)
    syns = syn_times(decode(session))
    assert len(syns) == len(session.bursts)
    assert 5 < len(syns) < 30
    steps = np.diff(syns) / (600.0 * S)
    assert np.any(steps > 1.2)  # some slots were skipped
    for step in steps:  # each step spans a whole number of slots, each 0.8-1.2 periods
        assert any(m * 0.8 <= step <= m * 1.2 for m in range(1, 30)), step


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.4])
def test_jittered_session_bursts_stay_within_the_jitter(jitter: float) -> None:
    session = small("exfil_jittered_session", jitter=jitter, bursts=6)
    pkts = decode(session)
    assert len(session.flows) == 1 and len(session.bursts) == 6
    assert sum(1 for p in pkts if p.l4.flags & dpkt.tcp.TH_SYN) == 2
    steps = np.diff([b.start_ns for b in session.bursts]) / (300.0 * S)
    tol = 0.01  # a burst's first packet is within a millisecond of its slot
    assert np.all((steps >= 1 - jitter - tol) & (steps <= 1 + jitter + tol))
    if jitter:
        assert steps.std() > 0.02
    # heartbeats both ways while quiet: never a silence longer than about two beats
    assert np.diff([p.ts for p in pkts]).max() < 70 * S


def test_jittered_session_without_heartbeats_is_silent_between_bursts() -> None:
    session = small("exfil_jittered_session", heartbeat_s=None, bursts=3)
    pkts = decode(session)
    quiet = [
        p for p in pkts
        if session.bursts[0].end_ns + 2 * S < p.ts < session.bursts[1].start_ns
    ]
    assert quiet == []


def test_many_small_bursts_are_small_and_each_on_a_new_connection() -> None:
    session = small("exfil_many_small", slots=20)
    pkts = decode(session)
    assert len(session.bursts) == len(flows_of(pkts)) == 20
    assert all(50_000 <= b.payload_bytes <= 200_000 for b in session.bursts)
    steps = np.diff(syn_times(pkts)) / (180.0 * S)
    assert np.all((steps >= 0.6) & (steps <= 1.4))
    assert steps.min() < 0.9 and steps.max() > 1.1  # really jittered


@pytest.mark.parametrize("conn_per_chunk", [True, False])
def test_slow_uplink_runs_at_a_slow_rate_in_chunks(conn_per_chunk: bool) -> None:
    session = small("exfil_slow_uplink", miss_prob=0.0, conn_per_chunk=conn_per_chunk)
    pkts = decode(session)
    flows = list(flows_of(pkts).values())
    chunks = sum(-(-b.payload_bytes // 100_000) for b in session.bursts)
    assert len(flows) == (chunks if conn_per_chunk else len(session.bursts))
    for flow in flows:  # one chunk at a time: about 0.4 MB/s while sending
        data = [p for p in flow if p.up and len(p.payload) == 1448]
        for group in np.split(data, np.flatnonzero(np.diff([p.ts for p in data]) > 0.1 * S) + 1):
            if len(group) > 20:
                span = (group[-1].ts - group[0].ts) / S
                rate = sum(len(p.payload) for p in group[:-1]) / span
                assert 3.0e5 < rate < 4.6e5
    for truth in session.bursts:
        assert truth.payload_bytes / truth.duration_s < 4.6e5


# --- the benign look-alikes -----------------------------------------------------------------


def test_continuous_upload_has_no_quiet_period() -> None:
    session = small("continuous_upload_abroad")
    pkts = decode(session)
    assert len(session.flows) == 1
    data = [p.ts for p in pkts if p.up and len(p.payload) == 1448]
    assert np.diff(data).max() < 0.3 * S
    up = sum(len(p.payload) for p in pkts if p.up)
    down = sum(len(p.payload) for p in pkts if not p.up)
    assert up > 3_000_000 and up > 100 * down
    # 2.5 MB/s, but for about a round trip (105 ms) between the application's 1 MB writes
    assert 1.2 < (data[-1] - data[0]) / S < 1.2 + 2 * 0.2
    assert inspect.signature(CONVERSATION_BENIGN["continuous_upload_abroad"]).parameters[
        "total_bytes"
    ].default == 200_000_000


def test_photo_backup_uploads_in_a_row_on_a_few_connections() -> None:
    session = small("photo_backup_home", photos=7, connections=3)
    pkts = decode(session)
    flows = flows_of(pkts)
    assert len(flows) == 3
    big = 0
    for flow in flows.values():
        hello = next(p for p in flow if p.up and p.payload)
        assert client_hello_sni(hello.payload).endswith("icloud.com")
        data = [p for p in flow if p.up and len(p.payload) == 1448]
        big += 1 + int(np.sum(np.diff([p.ts for p in data]) > 0.02 * S))
    assert big == 7  # each photo is one run of full segments


def test_ssh_session_has_banners_key_exchange_keystrokes_and_pauses() -> None:
    session = run_scenario("ssh_interactive_abroad", 4)  # defaults: 40 minutes
    pkts = decode(session)
    assert session.server.port == 22
    assert (session.end_ns - session.start_ns) / S > 30 * 60
    ups = [p.payload for p in pkts if p.up and p.payload]
    downs = [p.payload for p in pkts if not p.up and p.payload]
    assert ups[0].startswith(b"SSH-2.0-OpenSSH_") and ups[0].endswith(b"\r\n")
    assert downs[0].startswith(b"SSH-2.0-OpenSSH_")
    assert ups[1][5] == pl.SSH_MSG_KEXINIT and downs[1][5] == pl.SSH_MSG_KEXINIT
    assert b"curve25519-sha256" in ups[1] and b"chacha20-poly1305@openssh.com" in downs[1]
    assert ups[2][5] == pl.SSH_MSG_KEX_ECDH_INIT and downs[2][5] == pl.SSH_MSG_KEX_ECDH_REPLY
    sizes = np.array([len(u) for u in ups])
    assert np.mean(sizes == 36) > 0.9  # keystrokes
    assert sum(sizes) < 200_000
    gaps = np.diff([p.ts for p in pkts])
    assert gaps.max() > 60 * S  # the user walked away
    assert np.sum(gaps > 2 * S) > 20  # and paused between commands


def test_browsing_abroad_is_foreign_and_mostly_download() -> None:
    session = small("browsing_abroad")
    pkts = decode(session)
    tcp_servers = {f.server.ip for f in session.flows if f.proto == 6}
    assert len(tcp_servers) >= 2 and tcp_servers <= set(ad.FOREIGN_WEB)
    assert {f.server.ip for f in session.flows if f.proto == 17} == {ad.US_DNS}
    up = sum(len(p.payload) for p in pkts if p.up)
    down = sum(len(p.payload) for p in pkts if not p.up)
    assert down > 5 * up


def test_os_update_abroad_is_a_plain_http_download() -> None:
    session = small("os_update_abroad")
    pkts = decode(session)
    assert session.server == session.flows[0].server and session.server.port == 80
    requests = [dpkt.http.Request(p.payload) for p in pkts if p.up and p.payload]
    assert len(requests) == 2 + 4
    assert all(r.method == "GET" and r.headers["host"] == "archive.ubuntu.com" for r in requests)
    assert requests[-1].uri.endswith("_amd64.deb")
    up = sum(len(p.payload) for p in pkts if p.up)
    down = sum(len(p.payload) for p in pkts if not p.up)
    assert down > 1_000_000 and down > 100 * up


# --- defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(SMALL) - {"continuous_upload_abroad"}))
def test_default_captures_stay_small(name: str) -> None:
    session = run_scenario(name, 7)
    assert session_bytes(session) < 50_000_000
    if name in ("exfil_conn_per_burst", "exfil_slow_uplink"):
        assert (session.end_ns - session.start_ns) / 3600 / S > 7
        assert 10 <= len(session.bursts) <= 16


# --- split captures -------------------------------------------------------------------------


def _records(path: Path) -> tuple[bytes, list[bytes]]:
    raw = path.read_bytes()
    order = "<" if struct.unpack("<I", raw[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    out, pos = [], 24
    while pos < len(raw):
        incl = struct.unpack(order + "I", raw[pos + 8 : pos + 12])[0]
        out.append(raw[pos : pos + 16 + incl])
        pos += 16 + incl
    return raw[:24], out


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("split") / "many.pcap"
    write_capture(path, small("exfil_many_small", slots=2, burst_bytes=20_000).packets())
    return path


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_split_capture_round_trips(capture: Path, tmp_path_factory, data) -> None:
    header, records = _records(capture)
    n = len(records)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
    out = tmp_path_factory.mktemp("parts")
    parts = split_capture(capture, out, cuts)
    assert len(parts) == len(cuts) + 1
    joined: list[bytes] = []
    for k, part in enumerate(parts):
        head, recs = _records(part)
        assert head == header
        bounds = [0, *cuts, n]
        assert len(recs) == bounds[k + 1] - bounds[k]
        joined.extend(recs)
        with part.open("rb") as fh:  # each part is a pcap another reader accepts
            assert len(list(dpkt.pcap.Reader(fh))) == len(recs)
    assert joined == records


@pytest.mark.parametrize("variant", ["ns_be", "gz"])
def test_split_capture_keeps_the_format(tmp_path: Path, variant: str) -> None:
    session = small("exfil_many_small", slots=2, burst_bytes=20_000)
    if variant == "gz":
        source = tmp_path / "x.pcap.gz"
        write_capture(source, session.packets())
        plain = tmp_path / "x.pcap"
        write_capture(plain, session.packets())
    else:
        source = plain = tmp_path / "x.pcap"
        write_capture(source, session.packets(), nanosecond=True, big_endian=True)
    header, records = _records(plain)
    parts = split_capture(source, tmp_path / "parts", [10, 10, len(records) - 1])
    assert [p.name for p in parts] == [f"x.{k:02d}.pcap" for k in range(4)]
    got = [_records(p) for p in parts]
    assert all(h == header for h, _ in got)
    assert [len(r) for _, r in got] == [10, 0, len(records) - 11, 1]
    assert [r for _, rs in got for r in rs] == records


def test_split_capture_rejects_bad_cuts(capture: Path, tmp_path: Path) -> None:
    _, records = _records(capture)
    for cuts in ([5, 3], [-1], [len(records) + 1]):
        with pytest.raises(ValueError):
            split_capture(capture, tmp_path / "bad", cuts)
    (tmp_path / "not.pcap").write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(ValueError, match="classic pcap"):
        split_capture(tmp_path / "not.pcap", tmp_path / "bad", [1])


# --- command line ---------------------------------------------------------------------------


def test_generate_scenario_with_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from burstwatch.cli.main import main as burstwatch_main

    path = tmp_path / "s.pcap"
    args = ["scenario", "exfil_many_small", str(path), "--seed", "2", "--param", "slots=3",
            "--param", "burst_bytes=[30000,40000]", "--param", "sni=x.example.org"]
    assert burstwatch_main(["generate", *args]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["bursts"]) == 3
    assert all(30_000 <= b["payload_bytes"] <= 40_000 for b in out["bursts"])
    again = tmp_path / "t.pcap"
    assert main([a if a != str(path) else str(again) for a in args]) == 0
    assert again.read_bytes() == path.read_bytes()

