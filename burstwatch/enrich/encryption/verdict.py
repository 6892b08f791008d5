"""The verdict one flow gets, and the sample of first payloads it is judged on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["tls", "quic", "dtls", "ssh", "wireguard", "openvpn", "ipsec", "entropy", "none"]

KINDS: tuple[Kind, ...] = (
    "tls",
    "quic",
    "dtls",
    "ssh",
    "wireguard",
    "openvpn",
    "ipsec",
    "entropy",
    "none",
)

PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ESP = 50


@dataclass(frozen=True)
class EncryptionVerdict:
    """Why a flow is (or is not) taken as encrypted, with the evidence an analyst can check."""

    kind: Kind
    version: str | None = None
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    fingerprint: str | None = None
    entropy: float | None = None
    detail: str = ""

    @property
    def encrypted(self) -> bool:
        """True for every kind but "none": alerts only care whether content was hidden."""
        return self.kind != "none"


@dataclass(frozen=True)
class FlowSample:
    """The first payloads of one flow: what every detector looks at, and nothing more."""

    proto: int
    client_port: int
    server_port: int
    client: tuple[bytes, ...]
    server: tuple[bytes, ...]

    @classmethod
    def of(
        cls,
        proto: int,
        client_port: int,
        server_port: int,
        client_payloads: Sequence[bytes],
        server_payloads: Sequence[bytes],
    ) -> FlowSample:
        """Copy the payloads into immutable bytes, dropping empty ones (pure ACKs carry nothing)."""
        return cls(
            proto=proto,
            client_port=client_port,
            server_port=server_port,
            client=tuple(bytes(p) for p in client_payloads if p),
            server=tuple(bytes(p) for p in server_payloads if p),
        )

    def has_port(self, *ports: int) -> bool:
        """Whether either end uses one of ``ports`` (only ever a tie-breaker or a scope)."""
        return self.client_port in ports or self.server_port in ports
