"""Hand-built TCP/UDP conversations with exactly known timing and sizes, for flow tests."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
SEC = 1_000_000_000


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def frame(src: str, dst: str, sport: int, dport: int, *, proto: int = 6, flags: int = ACK,
          payload: int = 0) -> bytes:
    """An Ethernet/IPv4 (or IPv6) frame with a TCP or UDP header and ``payload`` zero bytes."""
    body = bytes(payload)
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, flags, 65535, 0, 0) + body
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
    s, d = _ip(src), _ip(dst)
    if len(s) == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0, s, d)
        ethertype = 0x0800
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 64, s, d)
        ethertype = 0x86DD
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + ip + l4


@dataclass
class Conversation:
    """Packets of one client/server conversation, appended in time order."""

    client: str
    server: str
    cport: int
    sport: int
    proto: int = 6
    packets: list[tuple[int, bytes]] = field(default_factory=list)

    def up(self, ts: int, payload: int = 0, flags: int = ACK) -> None:
        self.packets.append((ts, frame(self.client, self.server, self.cport, self.sport,
                                       proto=self.proto, flags=flags, payload=payload)))

    def down(self, ts: int, payload: int = 0, flags: int = ACK) -> None:
        self.packets.append((ts, frame(self.server, self.client, self.sport, self.cport,
                                       proto=self.proto, flags=flags, payload=payload)))


def three_uploads(t0: int = 1_000 * SEC) -> Conversation:
    """The reference exfiltration shape, with every number known.

    Handshake at t0; three uploads of 2,000,000 payload bytes (2000 segments of 1000 bytes,
    one every 100 µs: 10 MB/s) starting at t0+10 s, +70 s and +130 s, the server ACKing every
    second segment 50 µs later; 1-byte keepalives every 15 s between the uploads, each ACKed;
    FIN/FIN/ACK at t0+150 s.
    """
    c = Conversation("192.168.1.10", "77.88.8.8", 50000, 443)
    ms = 1_000_000
    c.up(t0, flags=SYN)
    c.down(t0 + ms, flags=SYN | ACK)
    c.up(t0 + 2 * ms)
    keepalives = [25, 40, 55, 85, 100, 115]
    events: list[tuple[int, str]] = [(k * SEC, "ka") for k in keepalives]
    events += [(b * SEC, "burst") for b in (10, 70, 130)]
    for at, what in sorted(events):
        if what == "ka":
            c.up(t0 + at, payload=1)
            c.down(t0 + at + ms)
        else:
            for k in range(2000):
                ts = t0 + at + k * 100_000
                c.up(ts, payload=1000, flags=ACK | PSH)
                if k % 2 == 1:
                    c.down(ts + 50_000)
    c.up(t0 + 150 * SEC, flags=FIN | ACK)
    c.down(t0 + 150 * SEC + ms, flags=FIN | ACK)
    c.up(t0 + 150 * SEC + 2 * ms)
    return c
