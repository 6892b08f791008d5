"""The capture generator: formats parse, headers are right, scenarios do what they claim."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.synth import (
    EXFIL,
    Endpoint,
    Session,
    backup_upload,
    browsing,
    dns_lookups,
    encrypted_call,
    exfil_quic,
    exfil_tls,
    exfil_udp_unknown,
    exfil_wireguard,
    merge,
    run_scenario,
    video_stream,
    write_bulk,
    write_capture,
)
from burstwatch.synth import addresses as ad
from burstwatch.synth import payloads as pl
from burstwatch.synth.bulk import parse_size
from burstwatch.synth.cli import main
from burstwatch.synth.flows import split_sizes
from burstwatch.synth.office import FORMAT_VARIANTS, format_sample, write_demo
from burstwatch.synth.packets import checksum
from burstwatch.synth.writer import PcapWriter

REPO = Path(__file__).resolve().parent.parent
START = 1_710_252_000.0
CLIENT = Endpoint("192.168.1.50")

# --- helpers: an independent decoder built on dpkt -------------------------------------------


def read_records(path: Path) -> tuple[int, list[tuple[float, bytes]]]:
    """Link type and (timestamp, frame) records of a pcap, gzip or not."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        return reader.datalink(), [(float(ts), bytes(buf)) for ts, buf in reader]


def ip_of(linktype: int, frame: bytes) -> dpkt.Packet:
    """The IP layer of a frame, decoded by dpkt for each link type."""
    if linktype == dpkt.pcap.DLT_EN10MB:
        return dpkt.ethernet.Ethernet(frame).data
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL(frame).data
    if linktype == 276:
        return dpkt.sll2.SLL2(frame).data
    if linktype in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
        return dpkt.loopback.Loopback(frame).data
    return dpkt.ip.IP(frame) if frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)


def packets_of(session: Session) -> list[tuple[int, dpkt.Packet]]:
    """A session's packets as (ts_ns, dpkt IP) in capture order."""
    out = []
    for p in session.packets():
        ip = dpkt.ip.IP(p.data) if p.data[0] >> 4 == 4 else dpkt.ip6.IP6(p.data)
        out.append((p.ts_ns, ip))
    return out


def addr(ip: dpkt.Packet) -> tuple[bytes, bytes]:
    return bytes(ip.src), bytes(ip.dst)


def words_sum_ok(data: bytes) -> bool:
    """Independent RFC 1071 check: the ones'-complement sum including the checksum is 0xFFFF."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def l4_checksum_ok(raw_ip: bytes) -> bool:
    version = raw_ip[0] >> 4
    if version == 4:
        ihl = (raw_ip[0] & 15) * 4
        total = struct.unpack("!H", raw_ip[2:4])[0]
        proto, src, dst, l4 = raw_ip[9], raw_ip[12:16], raw_ip[16:20], raw_ip[ihl:total]
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
    else:
        plen = struct.unpack("!H", raw_ip[4:6])[0]
        proto, src, dst, l4 = raw_ip[6], raw_ip[8:24], raw_ip[24:40], raw_ip[40 : 40 + plen]
        pseudo = src + dst + struct.pack("!I3xB", len(l4), proto)
    return words_sum_ok(pseudo + l4)


def expected_rows(flows: list) -> list[tuple]:
    """(ts_ns, src, dst, sport, dport, proto, flags) per packet, from the flow columns alone."""
    rows = []
    for k, f in enumerate(flows):
        for i in range(len(f)):
            fc = bool(f.from_client[i])
            a, b = (f.client, f.server) if fc else (f.server, f.client)
            flags = int(f.flags[i]) if f.proto == 6 else None
            rows.append((int(f.ts_ns[i]), k, i, a.packed, b.packed, a.port, b.port, f.proto, flags))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return [(r[0], *r[3:]) for r in rows]


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    write_demo(a, seed=3)
    write_demo(b, seed=3)
    write_demo(c, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    for name in ("x.pcap.gz", "y.pcap.gz"):
        write_capture(tmp_path / name, merge(format_sample(np.random.default_rng(1))))
    assert (tmp_path / "x.pcap.gz").read_bytes() == (tmp_path / "y.pcap.gz").read_bytes()
    plain = tmp_path / "x.pcap"
    write_capture(plain, merge(format_sample(np.random.default_rng(1))))
    assert gzip.decompress((tmp_path / "x.pcap.gz").read_bytes()) == plain.read_bytes()


def test_committed_pcaps_match_regeneration(tmp_path: Path) -> None:
    committed = REPO / "pcaps" / "demo.pcap"
    if not committed.is_file():
        pytest.skip("pcaps/ not generated yet")
    assert main(["--out", str(tmp_path)]) == 0
    for path in sorted((REPO / "pcaps").rglob("*")):
        if path.is_file() and path.name != "README.md":
            fresh = tmp_path / path.relative_to(REPO / "pcaps")
            assert fresh.read_bytes() == path.read_bytes(), (
                f"{path.name}: run python -m burstwatch.synth"
            )


# --- file formats and link types ------------------------------------------------------------


@pytest.mark.parametrize("variant", FORMAT_VARIANTS, ids=lambda v: v.file)
def test_every_link_type_and_format_parses_to_the_right_packets(tmp_path: Path, variant) -> None:
    flows = format_sample(np.random.default_rng(5))
    if variant.ipv4_only or variant.ipv6_only:
        want = 4 if variant.ipv4_only else 6
        flows = [f for f in flows if f.client.version == want]
    path = tmp_path / variant.file
    with PcapWriter(
        path,
        link=variant.link,
        nanosecond=variant.nanosecond,
        big_endian=variant.big_endian,
        snaplen=variant.snaplen,
    ) as w:
        w.write_all(merge(flows))

    raw = gzip.decompress(path.read_bytes()) if variant.file.endswith(".gz") else path.read_bytes()
    endian = ">" if variant.big_endian else "<"
    expected_magic = 0xA1B23C4D if variant.nanosecond else 0xA1B2C3D4
    assert struct.unpack(endian + "I", raw[:4])[0] == expected_magic

    linktype, records = read_records(path)
    assert linktype == {"vlan": 1, "qinq": 1}.get(variant.link, w.link.linktype)
    rows = expected_rows(flows)
    assert len(records) == len(rows)
    for (ts, frame), (ts_ns, src, dst, sport, dport, proto, flags) in zip(
        records, rows, strict=True
    ):
        assert ts == pytest.approx(ts_ns / 1e9, abs=1e-6)
        assert len(frame) <= variant.snaplen
        ip = ip_of(linktype, frame)
        assert addr(ip) == (src, dst)
        l4 = ip.data
        assert (l4.sport, l4.dport) == (sport, dport)
        if proto == 6:
            assert l4.flags == flags
        else:
            assert isinstance(l4, dpkt.udp.UDP)


def test_vlan_and_qinq_tags_and_sll_direction(tmp_path: Path) -> None:
    flows = format_sample(np.random.default_rng(5))
    for link, tags in (("vlan", [(0x8100, 100)]), ("qinq", [(0x88A8, 200), (0x8100, 100)])):
        write_capture(tmp_path / f"{link}.pcap", merge(flows), link=link)
        _, records = read_records(tmp_path / f"{link}.pcap")
        frame = records[0][1]
        for k, (tpid, vid) in enumerate(tags):
            assert struct.unpack("!HH", frame[12 + 4 * k : 16 + 4 * k]) == (tpid, vid)
    write_capture(tmp_path / "sll.pcap", merge(flows), link="sll")
    _, records = read_records(tmp_path / "sll.pcap")
    for _, frame in records:
        sll = dpkt.sll.SLL(frame)
        outgoing = bytes(sll.data.src) in (
            Endpoint(ad.internal_v4(20)).packed,
            Endpoint(ad.internal_v6(0x20)).packed,
        )
        assert sll.type == (4 if outgoing else 0)


def test_scapy_reads_the_same_packets(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap

    flows = format_sample(np.random.default_rng(5))
    rows = expected_rows(flows)
    # not loop: scapy binds IPv6 on DLT_LOOP to the host's AF_INET6 (10 on Linux), not OpenBSD's 24
    for link in ("ethernet", "qinq", "sll", "sll2", "raw"):
        path = tmp_path / f"{link}.pcap"
        write_capture(path, merge(flows), link=link, nanosecond=True)
        pkts = rdpcap(str(path))
        assert len(pkts) == len(rows)
        for pkt, (ts_ns, src, dst, sport, dport, _proto, flags) in zip(pkts, rows, strict=True):
            ip = pkt[IP] if IP in pkt else pkt[IPv6]
            assert (ip.src, ip.dst) == (str(_ip(src)), str(_ip(dst)))
            assert int(pkt.time * 10**9) == pytest.approx(ts_ns, abs=1000)
            if TCP in pkt:
                assert (pkt[TCP].sport, pkt[TCP].dport, int(pkt[TCP].flags)) == (
                    sport,
                    dport,
                    flags,
                )


def _ip(packed: bytes) -> object:
    import ipaddress

    return ipaddress.ip_address(packed)


def test_snaplen_truncates_but_keeps_wire_length(tmp_path: Path) -> None:
    path = tmp_path / "snap.pcap"
    write_capture(path, merge(format_sample(np.random.default_rng(5))), snaplen=80, nanosecond=True)
    raw = path.read_bytes()
    assert struct.unpack("<I", raw[16:20])[0] == 80
    pos, seen_truncated = 24, False
    while pos < len(raw):
        _, _, incl, orig = struct.unpack("<IIII", raw[pos : pos + 16])
        assert incl == min(orig, 80)
        seen_truncated |= orig > 80
        pos += 16 + incl
    assert seen_truncated


def test_writer_rejects_out_of_order_and_mismatched_link(tmp_path: Path) -> None:
    flows = format_sample(np.random.default_rng(5))
    packets = list(merge(flows))
    with PcapWriter(tmp_path / "x.pcap") as w:
        w.write(packets[1])
        with pytest.raises(ValueError, match="time order"):
            w.write(packets[0])
    v6 = next(p for p in packets if p.data[0] >> 4 == 6)
    with PcapWriter(tmp_path / "y.pcap", link="ipv4") as w, pytest.raises(ValueError):
        w.write(v6)


def test_null_link_family_follows_file_byte_order(tmp_path: Path) -> None:
    flows = format_sample(np.random.default_rng(5))
    for big in (False, True):
        path = tmp_path / f"null_{big}.pcap"
        write_capture(path, merge(flows), link="null", big_endian=big)
        _, records = read_records(path)
        families = {struct.unpack(">I" if big else "<I", f[:4])[0] for _, f in records}
        assert families == {2, 30}
    write_capture(tmp_path / "loop.pcap", merge(flows), link="loop")
    _, records = read_records(tmp_path / "loop.pcap")
    assert {struct.unpack("!I", f[:4])[0] for _, f in records} == {2, 24}


# --- headers --------------------------------------------------------------------------------


def test_checksum_matches_rfc1071_example() -> None:
    # RFC 1071 section 3 example words sum to 0xDDF2; the checksum is its complement
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert checksum(data) == (~0xDDF2) & 0xFFFF
    assert words_sum_ok(data + struct.pack("!H", checksum(data)))


def test_ip_and_transport_checksums_are_valid() -> None:
    rng = np.random.default_rng(2)
    sessions = [
        browsing(rng, START, Endpoint("192.168.1.10"), duration_s=30),
        exfil_tls(rng, START, CLIENT, burst_bytes=50_000, quiet_s=5, gap_s=5, tail_s=2),
        exfil_tls(
            rng,
            START,
            Endpoint("fd00::50"),
            Endpoint(ad.FOREIGN_V6_RU, 443),
            burst_bytes=50_000,
            quiet_s=5,
            gap_s=5,
            tail_s=2,
        ),
        encrypted_call(rng, START, Endpoint("192.168.1.12"), duration_s=2),
    ]
    count = 0
    for s in sessions:
        for p in s.packets():
            if p.data[0] >> 4 == 4:
                ihl = (p.data[0] & 15) * 4
                assert words_sum_ok(p.data[:ihl])
            assert l4_checksum_ok(p.data)
            count += 1
    assert count > 1000


def test_tcp_sequence_and_ack_numbers_are_consistent() -> None:
    rng = np.random.default_rng(3)
    session = exfil_tls(rng, START, CLIENT, burst_bytes=300_000, quiet_s=100, gap_s=50, tail_s=60)
    pkts = packets_of(session)
    client = CLIENT.packed
    first = [p for _, p in pkts[:3]]
    assert [p.data.flags for p in first] == [
        dpkt.tcp.TH_SYN,
        dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK,
        dpkt.tcp.TH_ACK,
    ]
    nxt: dict[bool, int] = {}
    last_ack: dict[bool, int] = {}
    keepalives = 0
    for _, ip in pkts:
        tcp = ip.data
        up = bytes(ip.src) == client
        if tcp.flags & dpkt.tcp.TH_SYN:
            assert tcp.flags & dpkt.tcp.TH_ACK or up
            if not up:
                assert tcp.ack == nxt[True]
            nxt[up] = (tcp.seq + 1) & 0xFFFFFFFF
            continue
        probe = tcp.seq == (nxt[up] - 1) & 0xFFFFFFFF and not tcp.data
        if probe:
            keepalives += 1  # keepalive probe: one below the next sequence number
        else:
            assert tcp.seq == nxt[up], "sequence numbers must be contiguous"
        # never acknowledge more than the peer sent; acks never go backwards
        assert (nxt[not up] - tcp.ack) & 0xFFFFFFFF < 2**31
        if up in last_ack:
            assert (tcp.ack - last_ack[up]) & 0xFFFFFFFF < 2**31
        last_ack[up] = tcp.ack
        if not probe:
            adv = len(tcp.data) + (1 if tcp.flags & dpkt.tcp.TH_FIN else 0)
            nxt[up] = (tcp.seq + adv) & 0xFFFFFFFF
        assert len(tcp.data) <= 1448
    assert keepalives >= 2
    assert pkts[-1][1].data.flags == dpkt.tcp.TH_ACK and pkts[-1][1].data.ack == nxt[False]
    fins = [ip.data for _, ip in pkts if ip.data.flags & dpkt.tcp.TH_FIN]
    assert len(fins) == 2
    # the upload's ACKs come back one for every two segments
    burst = session.bursts[0]
    acks = [
        ip
        for ts, ip in pkts
        if bytes(ip.dst) == client
        and not ip.data.data
        and burst.start_ns <= ts <= burst.end_ns + 10**9
    ]
    assert len(acks) == pytest.approx(burst.packets / 2, abs=2)


def test_tls_client_hello_parses_with_sni_and_alpn() -> None:
    session = exfil_tls(
        np.random.default_rng(4),
        START,
        CLIENT,
        sni="upload.example.org",
        bursts=1,
        burst_bytes=30_000,
        quiet_s=2,
        tail_s=1,
    )
    payloads = [ip.data.data for _, ip in packets_of(session) if ip.data.data]
    records, used = dpkt.ssl.tls_multi_factory(payloads[0])
    assert used == len(payloads[0]) and records[0].type == 22
    hello = dpkt.ssl.TLSHandshake(records[0].data).data
    assert isinstance(hello, dpkt.ssl.TLSClientHello)
    ext = dict(hello.extensions)
    assert ext[0][5:].decode() == "upload.example.org"  # server_name list: len, type, len, name
    assert b"http/1.1" in ext[16]
    assert ext[43] == b"\x04\x03\x04\x03\x03"  # supported_versions: TLS 1.3, TLS 1.2
    assert 51 in ext and 13 in ext and 10 in ext
    server_flight = payloads[1] + b"".join(payloads[2:4])
    records, _ = dpkt.ssl.tls_multi_factory(server_flight)
    assert isinstance(dpkt.ssl.TLSHandshake(records[0].data).data, dpkt.ssl.TLSServerHello)
    assert [r.type for r in records[:3]] == [22, 20, 23]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_checksum_agrees_with_word_by_word_sum(data: bytes) -> None:
    assert words_sum_ok(data + b"\0" * (len(data) % 2) + struct.pack("!H", checksum(data)))


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=200_000), st.integers(min_value=64, max_value=1500))
def test_split_sizes_sum_and_bounds(total: int, largest: int) -> None:
    sizes = split_sizes(total, largest, 40)
    assert int(sizes.sum()) == total and sizes.max() <= largest
    assert len(sizes) == 1 or sizes.min() >= min(40, largest // 2)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=pl.TLS_RECORD_MIN, max_value=100_000))
def test_app_data_any_total(total: int) -> None:
    records, used = dpkt.ssl.tls_multi_factory(pl.tls_app_data(np.random.default_rng(0), total))
    assert used == total and all(17 <= len(r.data) <= pl.TLS_RECORD_MAX for r in records)


def test_app_data_records_add_up_exactly() -> None:
    rng = np.random.default_rng(0)
    for total in (22, 23, 16410, 16427, 16428, 16449, 2_000_000):
        data = pl.tls_app_data(rng, total)
        records, used = dpkt.ssl.tls_multi_factory(data)
        assert used == total == len(data)
        assert {r.type for r in records} == {23} and all(len(r.data) >= 17 for r in records)


def test_quic_wireguard_dns_and_srtp_wire_formats() -> None:
    rng = np.random.default_rng(6)
    quic = [
        ip.data.data
        for _, ip in packets_of(
            exfil_quic(rng, START, CLIENT, bursts=1, burst_bytes=20_000, quiet_s=1, tail_s=1)
        )
    ]
    assert (
        len(quic[0]) == 1200 and quic[0][0] & 0xF0 == 0xC0 and quic[0][1:5] == b"\x00\x00\x00\x01"
    )
    assert quic[0][5] == 8  # DCID length
    assert all(q[0] & 0xC0 == 0x40 for q in quic[5:])  # short header, fixed bit

    wg = [
        ip.data.data
        for _, ip in packets_of(
            exfil_wireguard(rng, START, CLIENT, bursts=1, burst_bytes=20_000, quiet_s=30, tail_s=1)
        )
    ]
    assert (len(wg[0]), wg[0][:4]) == (148, b"\x01\x00\x00\x00")
    assert (len(wg[1]), wg[1][:4]) == (92, b"\x02\x00\x00\x00")
    transport = [w for w in wg if w[0] == 4]
    ups = [w for w in transport if len(w) != 96]
    counters = [struct.unpack("<Q", w[8:16])[0] for w in ups]
    assert counters == list(range(len(ups)))
    assert all((len(w) - 32) % 16 == 0 for w in transport)

    dns = dns_lookups(rng, START, Endpoint("192.168.1.13"), duration_s=60, per_minute=6)
    msgs = [dpkt.dns.DNS(ip.data.data) for _, ip in packets_of(dns)]
    queries = [m for m in msgs if m.qr == 0]
    answers = [m for m in msgs if m.qr == 1]
    assert queries and len(queries) == len(answers)
    assert {q.id for q in queries} == {a.id for a in answers}
    assert all(a.an for a in answers if a.qd[0].type == 1)

    call = encrypted_call(rng, START, Endpoint("192.168.1.12"), duration_s=10)
    srtp = [ip.data.data for _, ip in packets_of(call)][2:]
    assert all(s[0] == 0x80 for s in srtp)


def test_http_request_is_plain_text() -> None:
    text = pl.http_request("example.com", "/a").decode("ascii")
    req = dpkt.http.Request(text.encode())
    assert req.method == "GET" and req.headers["host"] == "example.com"


# --- scenarios ------------------------------------------------------------------------------


def _upload_bursts(
    session: Session, gap_s: float = 1.0, floor: int = 10_000
) -> list[tuple[float, float, int, int]]:
    """(start, end, payload bytes, packets) of upstream payload groups separated by > gap_s.

    WireGuard handshake messages (types 1 and 2) are control traffic, not burst data.
    """
    client = session.client.packed
    groups: list[list[tuple[int, int]]] = []
    for ts, ip in packets_of(session):
        size = len(ip.data.data)
        if bytes(ip.src) != client or size == 0:
            continue
        if session.name == "exfil_wireguard" and ip.data.data[0] in (1, 2):
            continue
        if groups and ts - groups[-1][-1][0] <= gap_s * 1e9:
            groups[-1].append((ts, size))
        else:
            groups.append([(ts, size)])
    out = [(g[0][0] / 1e9, g[-1][0] / 1e9, sum(s for _, s in g), len(g)) for g in groups]
    return [b for b in out if b[2] >= floor]


def test_exfil_tls_bursts_have_the_intended_sizes_and_timing() -> None:
    session = exfil_tls(np.random.default_rng(8), START, CLIENT)
    assert session.server == Endpoint("77.88.8.8", 443)
    bursts = _upload_bursts(session)
    assert len(bursts) == 3
    for k, (start, end, size, count) in enumerate(bursts):
        assert start == pytest.approx(START + 90 + 60 * k, abs=0.01)  # quiet 90 s, then every 60 s
        assert end - start == pytest.approx(0.2, abs=0.01)  # 2 MB at 10 MB/s
        assert size == 2_000_000
        assert count == 1382  # ceil(2e6 / 1448)
    for truth, (start, end, size, count) in zip(session.bursts, bursts, strict=True):
        assert (truth.start_ns / 1e9, truth.end_ns / 1e9) == pytest.approx((start, end), abs=1e-6)
        assert (truth.payload_bytes, truth.packets) == (size, count)
        assert truth.ip_bytes == size + count * 52
    # quiet before the first burst: nothing upstream except the TLS handshake's few hundred bytes
    quiet = [
        len(ip.data.data)
        for ts, ip in packets_of(session)
        if bytes(ip.src) == CLIENT.packed and ts < session.bursts[0].start_ns
    ]
    assert sum(quiet) < 1000


@pytest.mark.parametrize("name", sorted(EXFIL))
def test_every_exfil_variant_matches_its_ground_truth(name: str) -> None:
    session = run_scenario(
        name, seed=9, start_ts=START, burst_bytes=300_000, rate=5e6, quiet_s=60, gap_s=40
    )
    assert session.kind == "exfil"
    assert not ad.is_internal(session.server.ip)
    bursts = _upload_bursts(session, gap_s=2.0)
    assert len(bursts) == len(session.bursts) == 3
    for k, (truth, (start, end, size, count)) in enumerate(
        zip(session.bursts, bursts, strict=True)
    ):
        assert start == pytest.approx(START + 60 + 40 * k, abs=0.01)
        assert truth.start_ns / 1e9 == pytest.approx(start, abs=1e-6)
        assert truth.end_ns / 1e9 == pytest.approx(end, abs=1e-6)
        assert (truth.payload_bytes, truth.packets) == (size, count)
        assert 300_000 <= size < 320_000  # WireGuard adds its 32-byte header and padding
        assert end - start == pytest.approx(size / 5e6, rel=0.1)


def test_exfil_variant_addresses_and_ports() -> None:
    assert run_scenario(
        "exfil_tls_port", bursts=1, burst_bytes=30_000, quiet_s=1
    ).server == Endpoint(ad.FOREIGN_NL, 8443)
    v6 = run_scenario("exfil_tls_v6", bursts=1, burst_bytes=30_000, quiet_s=1)
    assert v6.server.ip == ad.FOREIGN_V6_RU and v6.client.version == 6
    assert (
        exfil_udp_unknown(
            np.random.default_rng(1), START, CLIENT, bursts=1, burst_bytes=30_000, quiet_s=1
        ).server.ip
        == ad.FOREIGN_CN
    )
    custom = exfil_tls(
        np.random.default_rng(1),
        START,
        CLIENT,
        Endpoint(ad.FOREIGN_CN, 47000),
        bursts=1,
        burst_bytes=30_000,
        quiet_s=1,
    )
    assert custom.flows[0].server.port == 47000


def test_benign_scenarios_have_their_shapes() -> None:
    rng = np.random.default_rng(10)
    host = Endpoint("192.168.1.30")

    def up_down(s: Session) -> tuple[int, int]:
        up = down = 0
        for _, ip in packets_of(s):
            n = len(ip.data.data)
            if ad.is_internal(str(_ip(bytes(ip.src)))):
                up += n
            else:
                down += n
        return up, down

    web = browsing(rng, START, host, duration_s=60)
    assert len(web.flows) > 5
    assert all(not ad.is_internal(f.server.ip) for f in web.flows)
    assert {f.server.ip for f in web.flows if f.proto == 6} <= set(ad.US_WEB)
    up, down = up_down(web)
    assert down > 3 * up

    video = video_stream(rng, START, host, duration_s=30)
    up, down = up_down(video)
    assert down > 20 * up

    backup = backup_upload(rng, START, host, total_bytes=5_000_000)
    assert backup.server.ip == ad.US_BACKUP
    up, down = up_down(backup)
    assert up > 5_000_000 and up > 50 * down

    call = encrypted_call(rng, START, host, duration_s=20)
    pkts = packets_of(call)
    sizes = [len(ip.data.data) for _, ip in pkts[2:]]
    assert min(sizes) >= 100 and max(sizes) <= 200
    ups = sum(1 for _, ip in pkts if bytes(ip.src) == host.packed)
    assert ups == pytest.approx(20 * 50, abs=5) and len(pkts) - ups == pytest.approx(20 * 50, abs=5)


# --- bulk -----------------------------------------------------------------------------------


@pytest.mark.slow  # a bulk capture of several MB
def test_bulk_writes_the_requested_packets_with_valid_headers(tmp_path: Path) -> None:
    path = tmp_path / "bulk.pcap"
    stats = write_bulk(path, 40_000, seed=2, flows=3000, chunk=8192)
    linktype, records = read_records(path)
    assert linktype == 1 and len(records) == stats.packets == 40_000
    assert path.stat().st_size == stats.bytes
    sizes = np.array([len(f) for _, f in records])
    assert 0.3 < np.mean(sizes <= 70) < 0.5  # pure ACKs
    assert 0.3 < np.mean(sizes >= 1400) < 0.5  # near-MTU
    assert sizes.max() == 1514
    ts = np.array([t for t, _ in records])
    assert np.all(np.diff(ts) >= 0)
    seq_next: dict[tuple, int] = {}
    for _, frame in records[::7]:
        ip = dpkt.ethernet.Ethernet(frame).data
        raw = bytes(ip)
        assert words_sum_ok(raw[:20]) and l4_checksum_ok(raw)
        assert ad.is_internal(str(_ip(bytes(ip.src)))) != ad.is_internal(str(_ip(bytes(ip.dst))))
    for _, frame in records:  # sequence numbers contiguous per direction (until a flow is replaced)
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip.data, dpkt.tcp.TCP):
            key = (bytes(ip.src), bytes(ip.dst), ip.data.sport, ip.data.dport)
            if key in seq_next:
                assert ip.data.seq == seq_next[key]
            seq_next[key] = (ip.data.seq + len(ip.data.data)) & 0xFFFFFFFF


@pytest.mark.slow  # a bulk capture of several MB, written twice
def test_bulk_is_deterministic_and_honours_target_size(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    write_bulk(a, 20_000, seed=5, flows=500)
    write_bulk(b, 20_000, seed=5, flows=500)
    assert a.read_bytes() == b.read_bytes()
    stats = write_bulk(
        tmp_path / "c.pcap", None, target_bytes=parse_size("3M"), seed=5, flows=500, chunk=2048
    )
    assert 3 << 20 <= stats.bytes < (3 << 20) + 2048 * 1600
    assert parse_size("5G") == 5 << 30 and parse_size("500") == 500


# --- command line ---------------------------------------------------------------------------


def test_main_writes_demo_and_formats(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--seed", "7"]) == 0
    assert (tmp_path / "demo.pcap").stat().st_size < 3_000_000
    assert len(list((tmp_path / "formats").iterdir())) == len(FORMAT_VARIANTS)
    import json

    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    exfil = manifest["files"]["demo.pcap"]["exfil"][0]
    assert exfil["server"] == "77.88.8.8:443" and len(exfil["bursts"]) == 3


def test_main_scenario_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.pcap"
    assert main(["scenario", "exfil_quic", str(path), "--link", "sll2", "--seed", "1"]) == 0
    linktype, records = read_records(path)
    assert linktype == 276 and len(records) > 1000
    assert '"bursts"' in capsys.readouterr().out
