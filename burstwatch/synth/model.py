"""Plain data types shared by the generator: endpoints, packets and ground truth."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from burstwatch.synth.flows import FlowPackets

NS = 1_000_000_000


def to_ns(seconds: float) -> int:
    """Seconds (float, epoch or relative) to integer nanoseconds; all schedules use ns."""
    return round(seconds * NS)


@dataclass(frozen=True)
class Endpoint:
    """One side of a flow. ``port=0`` lets a scenario pick an ephemeral port."""

    ip: str
    port: int = 0

    @property
    def version(self) -> int:
        """4 or 6."""
        return ipaddress.ip_address(self.ip).version

    @property
    def packed(self) -> bytes:
        """Address bytes as they appear in the IP header."""
        return ipaddress.ip_address(self.ip).packed

    def with_port(self, port: int) -> Endpoint:
        """The same host on another port."""
        return Endpoint(self.ip, port)


class Packet(NamedTuple):
    """One packet to write: capture time and the IP datagram (v4 or v6) from its first byte."""

    ts_ns: int
    data: bytes


@dataclass(frozen=True)
class BurstTruth:
    """A burst as the generator made it, so detectors can be checked against known answers.

    ``start_ns``/``end_ns`` are the capture times of the first and last upstream data packet;
    ``payload_bytes`` counts transport payload sent upstream in the burst, ``ip_bytes`` the IP
    total length of those packets, ``packets`` their number.
    """

    start_ns: int
    end_ns: int
    payload_bytes: int
    ip_bytes: int
    packets: int

    @property
    def duration_s(self) -> float:
        """Seconds from first to last packet."""
        return (self.end_ns - self.start_ns) / NS


class OneFlow(Protocol):
    """A scenario's flow under construction (``TcpFlow`` or ``UdpFlow``)."""

    client: Endpoint

    def build(self) -> FlowPackets: ...


@dataclass
class Session:
    """What a scenario returns: its flows (packet schedules) and, for exfil, the bursts it made."""

    name: str
    kind: str  # "exfil" or "benign"
    client: Endpoint
    server: Endpoint
    flows: list[FlowPackets] = field(default_factory=list)
    bursts: list[BurstTruth] = field(default_factory=list)
    description: str = ""

    @classmethod
    def of_flow(
        cls, name: str, kind: str, flow: OneFlow, server: Endpoint, description: str,
        bursts: list[BurstTruth] | None = None,
    ) -> Session:
        """The session of a scenario made of one flow (most of them)."""
        return cls(name, kind, flow.client, server, [flow.build()], bursts or [], description)

    @property
    def start_ns(self) -> int:
        """Capture time of the session's first packet."""
        return min(int(f.ts_ns[0]) for f in self.flows if len(f))

    @property
    def end_ns(self) -> int:
        """Capture time of the session's last packet."""
        return max(int(f.ts_ns[-1]) for f in self.flows if len(f))

    def __len__(self) -> int:
        return sum(len(f) for f in self.flows)

    def packets(self) -> Iterator[Packet]:
        """The session's packets in time order."""
        from burstwatch.synth.flows import merge

        return merge(self.flows)
