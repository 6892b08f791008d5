"""LiveSource on a real interface: a veth pair whose far end lives in a namespace we create.

Frames are built here and sent from inside the namespace with a packet socket, so the test
knows every byte, count and 5-tuple the capture must report. Their destination MAC belongs to
no interface, so the host stack drops them (as on a span port) and only a promiscuous
capture sees them. Addresses are the namespaced end's own and its /30 neighbour's, from
198.18.0.0/15 (the range set aside for network tests); frames never leave the veth pair.
Everything created is removed again, also when a test fails.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from burstwatch.decode import decode
from burstwatch.ingest.bpf import FilterError, compile_filter
from burstwatch.ingest.live import LiveCaptureError, LiveSource
from burstwatch.ingest.records import RecordBatch

SENDER = r"""
import socket, struct, sys
iface, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
pos = 0
while pos < len(data):
    (n,) = struct.unpack_from("!H", data, pos)
    s.send(data[pos + 2 : pos + 2 + n])
    pos += 2 + n
"""

DST_MAC = bytes.fromhex("02b5770000fe")  # locally administered, owned by no interface
SRC_MAC = bytes.fromhex("02b577000001")

Key = tuple[str, str, int, int, int]  # src, dst, proto, sport, dport


def _why_no_netns() -> str | None:
    if sys.platform != "linux":
        return "live capture is Linux-only"
    if os.geteuid() != 0:
        return "needs root (creates network namespaces and veth pairs)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "ip netns is not available here"
    return None


needs_netns = pytest.mark.skipif(_why_no_netns() is not None, reason=str(_why_no_netns()))
needs_root = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="live capture needs root on Linux"
)


@dataclass(frozen=True)
class Veth:
    """A veth pair: ``host`` in our namespace, ``peer`` inside namespace ``ns``."""

    ns: str
    host: str
    peer: str
    host_ip: str
    peer_ip: str

    def send(self, frames: list[bytes], tmp: Path) -> None:
        """Send frames out of the namespaced end, in order, and wait until all are sent."""
        path = tmp / f"frames-{time.monotonic_ns()}.bin"
        path.write_bytes(b"".join(struct.pack("!H", len(f)) + f for f in frames))
        subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-c", SENDER, self.peer, str(path)],
            check=True, timeout=60,
        )


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _quiet(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, timeout=30)


def _no_ipv6(path: str, ns: str | None = None) -> None:
    """Turn IPv6 off on a test link, so no router/neighbour chatter lands in captures."""
    cmd = ["sh", "-c", f"[ -w {path} ] && echo 1 > {path} || true"]
    subprocess.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd, timeout=30)


@pytest.fixture(scope="module")
def veth() -> Iterator[Veth]:
    pid = os.getpid()
    names = Veth(
        ns=f"bwtest-{pid}", host=f"bwh{pid}", peer=f"bwn{pid}",
        host_ip=f"198.18.{(pid >> 6) & 0xFF}.{(pid & 0x3F) * 4 + 2}",
        peer_ip=f"198.18.{(pid >> 6) & 0xFF}.{(pid & 0x3F) * 4 + 1}",
    )
    _quiet("netns", "del", names.ns)  # leftovers of an earlier run with the same pid
    _quiet("link", "del", names.host)
    try:
        _ip("netns", "add", names.ns)
        _ip("link", "add", names.host, "type", "veth", "peer", "name", names.peer)
        _ip("link", "set", names.peer, "netns", names.ns)
        _no_ipv6(f"/proc/sys/net/ipv6/conf/{names.host}/disable_ipv6")
        _no_ipv6(f"/proc/sys/net/ipv6/conf/{names.peer}/disable_ipv6", names.ns)
        _ip("-n", names.ns, "addr", "add", f"{names.peer_ip}/30", "dev", names.peer)
        _ip("-n", names.ns, "link", "set", names.peer, "up")
        _ip("link", "set", names.host, "up")
        yield names
    finally:
        _quiet("netns", "del", names.ns)  # deletes the peer, and with it the host end
        _quiet("link", "del", names.host)


# ---- frames ----
def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src: str, dst: str, proto: int, sport: int, dport: int, payload: int) -> bytes:
    """An Ethernet/IPv4/UDP-or-TCP frame with ``payload`` bytes of data."""
    if proto == socket.IPPROTO_UDP:
        l4 = struct.pack("!HHHH", sport, dport, 8 + payload, 0)
    else:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    total = 20 + len(l4) + payload
    head = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    head = head[:10] + struct.pack("!H", _checksum(head)) + head[12:]
    return DST_MAC + SRC_MAC + b"\x08\x00" + head + l4 + bytes(payload)


def key_of(f: bytes) -> Key:
    ip = f[14:]
    sport, dport = struct.unpack_from("!HH", ip, 20)
    return socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), ip[9], sport, dport


# ---- capture helpers ----
def decoded(batch: RecordBatch) -> list[tuple[Key, int]]:
    """(5-tuple, wire length) of every decoded TCP/UDP-over-IPv4 packet of a batch.

    (Other protocols are left out: the kernel may send e.g. IGMP from a test address.)
    """
    pb = decode(batch)
    out = []
    for i in np.flatnonzero((pb.status == 0) & ((pb.proto == 6) | (pb.proto == 17))):
        src = str(ipaddress.IPv4Address(int(pb.src_lo[i]) & 0xFFFFFFFF))
        dst = str(ipaddress.IPv4Address(int(pb.dst_lo[i]) & 0xFFFFFFFF))
        k = (src, dst, int(pb.proto[i]), int(pb.sport[i]), int(pb.dport[i]))
        out.append((k, int(pb.wire_len[i])))
    return out


def collect(
    sources: list[LiveSource], want: int, keep: set[str], seconds: float = 10.0
) -> list[list[tuple[Key, int]]]:
    """Read every source until ``want`` packets from ``keep`` addresses arrived (or time out)."""
    got: list[list[tuple[Key, int]]] = [[] for _ in sources]
    iters = [s.batches(timeout_ms=50) for s in sources]
    deadline = time.monotonic() + seconds
    while sum(len(g) for g in got) < want and time.monotonic() < deadline:
        for i, it in enumerate(iters):
            batch = next(it)
            assert np.all(batch.linktype == 1)
            got[i].extend(p for p in decoded(batch) if p[0][0] in keep)
    # anything beyond ``want`` would be a duplicate: give it a moment to show up
    for i, it in enumerate(iters):
        got[i].extend(p for p in decoded(next(it)) if p[0][0] in keep)
    return got


def _traffic(v: Veth, flows: int, per_flow: int, both_ways: bool = False) -> list[bytes]:
    frames = []
    for n in range(per_flow):
        for f in range(flows):
            proto = socket.IPPROTO_UDP if f % 3 else socket.IPPROTO_TCP
            size = (f * 97 + n * 31) % 1400
            sport, dport = 20000 + f, 443 if f % 2 else 4433
            if both_ways and n % 2:
                frames.append(frame(v.host_ip, v.peer_ip, proto, dport, sport, size // 4))
            else:
                frames.append(frame(v.peer_ip, v.host_ip, proto, sport, dport, size))
    return frames


def _expected(frames: list[bytes]) -> collections.Counter[tuple[Key, int]]:
    return collections.Counter((key_of(f), len(f)) for f in frames)


# ---- tests ----
@needs_netns
def test_captures_what_was_sent(veth: Veth, tmp_path: Path) -> None:
    frames = _traffic(veth, flows=6, per_flow=50)
    with LiveSource(veth.host) as src:
        assert src.mode == "tpacket_v3" and src.notice is None
        assert src.linktype == 1
        t0 = time.time_ns()
        veth.send(frames, tmp_path)
        t1 = time.time_ns()
        batches: list[RecordBatch] = []
        it = src.batches(timeout_ms=50)
        seen = 0
        deadline = time.monotonic() + 10
        while seen < len(frames) and time.monotonic() < deadline:
            b = next(it)
            mine = [p for p in decoded(b) if p[0][0] == veth.peer_ip]
            seen += len(mine)
            batches.append(b)
        packets, drops = src.stats()
    got = collections.Counter(p for b in batches for p in decoded(b) if p[0][0] == veth.peer_ip)
    assert got == _expected(frames)
    assert packets >= len(frames) and drops == 0
    sent = set(frames)
    for b in batches:
        assert np.array_equal(b.caplen, b.wirelen)  # nothing was cut at the default snaplen
        assert np.all((b.ts_ns >= t0 - 1_000_000_000) & (b.ts_ns <= t1 + 1_000_000_000))
        assert np.all(np.diff(b.file_offset) > 0)
        for i in range(len(b)):  # the record bytes are the frame bytes, byte for byte
            raw = bytes(b.data[b.offset[i] : b.offset[i] + b.caplen[i]])
            if raw[26:30] == socket.inet_aton(veth.peer_ip):
                assert raw in sent


@needs_netns
def test_snaplen_cuts_packets(veth: Veth, tmp_path: Path) -> None:
    frames = [frame(veth.peer_ip, veth.host_ip, socket.IPPROTO_UDP, 999, 53, 1000)] * 5
    with LiveSource(veth.host, snaplen=96, bpf="udp port 999") as src:
        veth.send(frames, tmp_path)
        seen: list[RecordBatch] = []
        deadline = time.monotonic() + 10
        for b in src.batches(timeout_ms=50):
            seen.append(b)
            if sum(len(x) for x in seen) >= 5 or time.monotonic() > deadline:
                break
    caplen = np.concatenate([b.caplen for b in seen])
    wirelen = np.concatenate([b.wirelen for b in seen])
    assert caplen.tolist() == [96] * 5 and wirelen.tolist() == [len(frames[0])] * 5


@needs_netns
def test_bpf_filter_keeps_only_the_filtered_port(veth: Veth, tmp_path: Path) -> None:
    frames = _traffic(veth, flows=6, per_flow=20)
    kept = [f for f in frames if 443 in key_of(f)[3:]]
    assert 0 < len(kept) < len(frames)
    with LiveSource(veth.host, bpf="port 443") as src:
        veth.send(frames, tmp_path)
        (got,) = collect([src], len(kept), {veth.peer_ip})
        # the filter runs in the kernel: no other packet (ARP, chatter) reached us at all
        packets, drops = src.stats()
    assert collections.Counter(got) == _expected(kept)
    assert packets == len(kept) and drops == 0


@needs_netns
def test_fanout_puts_each_flow_whole_on_one_socket(veth: Veth, tmp_path: Path) -> None:
    frames = _traffic(veth, flows=32, per_flow=12, both_ways=True)
    group = 0x4000 + os.getpid() % 0x3FFF
    a = LiveSource(veth.host, fanout_group=group)
    b = LiveSource(veth.host, fanout_group=group)
    try:
        veth.send(frames, tmp_path)
        got = collect([a, b], len(frames), {veth.peer_ip, veth.host_ip})
        (pa, da), (pb, db) = a.stats(), b.stats()
    finally:
        a.close()
        b.close()

    def flow(k: Key) -> frozenset[tuple[str, int]]:
        return frozenset({(k[0], k[3]), (k[1], k[4])})

    flows_a = {flow(k) for k, _ in got[0]}
    flows_b = {flow(k) for k, _ in got[1]}
    assert not flows_a & flows_b  # no flow (either direction) is split between workers
    assert flows_a and flows_b  # 32 flows hashed over 2 sockets: both get some
    assert collections.Counter(got[0] + got[1]) == _expected(frames)  # none lost, none twice
    assert da == db == 0 and pa + pb >= len(frames)


@needs_netns
def test_recvmsg_fallback_captures_the_same(veth: Veth, tmp_path: Path) -> None:
    frames = _traffic(veth, flows=4, per_flow=25)
    with LiveSource(veth.host, ring=False) as src:
        assert src.mode == "recvmsg"
        t0 = time.time_ns()
        veth.send(frames, tmp_path)
        t1 = time.time_ns()
        batch = next(src.batches(timeout_ms=1000))
        assert len(batch)
        assert np.all((batch.ts_ns >= t0 - 10**9) & (batch.ts_ns <= t1 + 10**9))
        assert np.all(np.diff(batch.file_offset) > 0)
        got = [p for p in decoded(batch) if p[0][0] == veth.peer_ip]
        got += collect([src], len(frames) - len(got), {veth.peer_ip})[0]
        assert src.stats()[0] >= len(frames)
    assert collections.Counter(got) == _expected(frames)


@needs_netns
def test_ring_failure_falls_back_and_says_so(
    veth: Veth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: LiveSource, block_size: int, block_count: int) -> None:
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    monkeypatch.setattr(LiveSource, "_setup_ring", refuse)
    frames = _traffic(veth, flows=2, per_flow=10)
    with LiveSource(veth.host) as src:
        assert src.mode == "recvmsg"
        assert src.notice is not None and "TPACKET_V3 ring unavailable" in src.notice
        assert "\n" not in src.notice
        veth.send(frames, tmp_path)
        (got,) = collect([src], len(frames), {veth.peer_ip})
    assert collections.Counter(got) == _expected(frames)


@needs_root
def test_loopback_packets_are_not_doubled() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        with LiveSource("lo", bpf=f"udp dst port {port}") as src, socket.socket(
            socket.AF_INET, socket.SOCK_DGRAM
        ) as tx:
            for i in range(5):
                tx.sendto(bytes(10 + i), ("127.0.0.1", port))
            (got,) = collect([src], 5, {"127.0.0.1"}, seconds=5)
    assert sorted(size for _, size in got) == [52, 53, 54, 55, 56]  # 14 + 20 + 8 + payload


@needs_root
@pytest.mark.skipif(not os.path.exists("/dev/net/tun"), reason="no /dev/net/tun here")
def test_tunnel_without_link_header_is_raw_ip() -> None:
    """A tun device (no Ethernet header) is read as raw IP, LINKTYPE_RAW.

    The device lives as long as its file descriptor. Injected packets go from and to
    loopback addresses, which the stack drops as martians on any other device.
    """
    name = f"bwtun{os.getpid()}"
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        tunsetiff, iff_tun, iff_no_pi = 0x400454CA, 0x0001, 0x1000
        fcntl.ioctl(fd, tunsetiff, struct.pack("16sH", name.encode(), iff_tun | iff_no_pi))
        _no_ipv6(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
        _ip("link", "set", name, "up")
        udp = socket.IPPROTO_UDP
        frames = [frame("127.0.0.2", "127.0.0.1", udp, 7, 9, n) for n in (0, 100, 1000)]
        with LiveSource(name) as src:
            assert src.linktype == 101
            for f in frames:
                os.write(fd, f[14:])
            got: list[tuple[Key, int]] = []
            deadline = time.monotonic() + 5
            for b in src.batches(timeout_ms=50):
                assert np.all(b.linktype == 101)
                got += decoded(b)
                if len(got) >= 3 or time.monotonic() > deadline:
                    break
    finally:
        os.close(fd)
    assert got == [(key_of(f), len(f) - 14) for f in frames]


@needs_netns
def test_interface_that_is_down(veth: Veth) -> None:
    _ip("link", "set", veth.host, "down")
    try:
        with pytest.raises(LiveCaptureError, match=f"^interface {veth.host} is down"):
            LiveSource(veth.host)
    finally:
        _ip("link", "set", veth.host, "up")


@needs_netns
def test_interface_going_down_stops_the_capture(veth: Veth) -> None:
    with LiveSource(veth.host) as src:
        it = src.batches(timeout_ms=50)
        next(it)
        _ip("link", "set", veth.host, "down")
        try:
            with pytest.raises(LiveCaptureError, match="went down"):
                for _ in range(100):
                    next(it)
        finally:
            _ip("link", "set", veth.host, "up")


def test_missing_interface_is_one_line() -> None:
    name = f"bwnone{os.getpid()}"
    with pytest.raises(LiveCaptureError) as err:
        LiveSource(name)
    assert str(err.value) == f"interface {name} does not exist"


def test_bad_settings_are_rejected_before_any_socket() -> None:
    with pytest.raises(LiveCaptureError, match="power of two"):
        LiveSource("lo", block_size=300000)
    with pytest.raises(LiveCaptureError, match="fan-out group"):
        LiveSource("lo", fanout_group=70000)


def test_bad_filter_is_one_line() -> None:
    with pytest.raises(FilterError) as err:
        compile_filter("udp prot 53")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("bad capture filter 'udp prot 53'")
    assert "syntax error" in msg
    with pytest.raises(FilterError, match="bad capture filter"):
        LiveSource("lo", bpf="tcp and and")


def test_filter_compiles_to_classic_bpf() -> None:
    prog = compile_filter("udp port 53", snaplen=1234)
    assert len(prog) > 4
    assert (0x06, 0, 0, 1234) in prog  # accept, cut to snaplen
    assert (0x06, 0, 0, 0) in prog  # reject


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to take CAP_NET_RAW away")
def test_missing_privilege_says_how_to_fix() -> None:
    code = (
        "from burstwatch.ingest.live import LiveSource\n"
        "try:\n    LiveSource('lo')\nexcept Exception as e:\n    print(e)\n"
    )
    out = subprocess.run(
        ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120,
    )
    line = out.stdout.strip()
    assert line.startswith("live capture needs root or CAP_NET_RAW (try: sudo setcap ")
    assert "cap_net_raw,cap_net_admin=eip" in line and "\n" not in line
