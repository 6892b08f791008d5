"""IPsec: ESP (IP protocol 50), IKE on UDP 500/4500, and ESP-in-UDP on 4500 (RFC 3948).

IKE and NAT-traversal ESP live on fixed ports by standard, so here the ports scope the parse;
the verdict still needs the bytes to hold a well-formed IKE header (length field equal to the
message size) or ESP packets with one SPI and rising sequence numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption._bytes import ParseError, Reader
from burstwatch.enrich.encryption.verdict import (
    PROTO_ESP,
    PROTO_UDP,
    EncryptionVerdict,
    FlowSample,
)

IKE_PORT, NAT_T_PORT = 500, 4500
NON_ESP_MARKER = b"\x00\x00\x00\x00"
IKE_HEADER = 28
IKEV2_EXCHANGES = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"}
IKEV1_EXCHANGES = {2: "Identity Protection", 4: "Aggressive", 5: "Informational", 32: "Quick Mode"}
MIN_ESP = 8 + 16  # SPI, sequence number, then at least an IV/ICV's worth


@dataclass(frozen=True)
class IkeHeader:
    """The fixed IKE header fields the verdict reports."""

    major: int
    exchange: str


def parse_ike(message: bytes) -> IkeHeader | None:
    """An IKEv1/IKEv2 header whose length field matches the message, or None."""
    try:
        r = Reader(message)
        initiator_spi = r.take(8)
        r.skip(8)  # responder SPI (zero in the first request)
        next_payload, version, exchange = r.u8(), r.u8(), r.u8()
        r.skip(1 + 4)  # flags, message id
        length = r.u32()
    except ParseError:
        return None
    if initiator_spi == bytes(8) or length != len(message):
        return None
    if (
        version == 0x20
        and exchange in IKEV2_EXCHANGES
        and (next_payload == 0 or 33 <= next_payload <= 54)
    ):
        return IkeHeader(2, IKEV2_EXCHANGES[exchange])
    if version == 0x10 and exchange in IKEV1_EXCHANGES and next_payload <= 20:
        return IkeHeader(1, IKEV1_EXCHANGES[exchange])
    return None


def _esp_consistent(payloads: tuple[bytes, ...]) -> bool:
    """Two or more ESP packets with one non-reserved SPI and strictly rising sequence numbers."""
    packets = [p for p in payloads if len(p) >= MIN_ESP and p[:4] != NON_ESP_MARKER]
    if len(packets) < 2:
        return False
    spis = {int.from_bytes(p[:4], "big") for p in packets}
    seqs = [int.from_bytes(p[4:8], "big") for p in packets]
    rising = all(a < b for a, b in zip(seqs, seqs[1:], strict=False))
    return len(spis) == 1 and min(spis) > 255 and rising


def _ike_messages(sample: FlowSample) -> list[IkeHeader]:
    out = []
    for payload in sample.client + sample.server:
        if sample.has_port(NAT_T_PORT) and payload.startswith(NON_ESP_MARKER):
            payload = payload[4:]
        header = parse_ike(payload)
        if header is not None:
            out.append(header)
    return out


def detect_ipsec(sample: FlowSample) -> EncryptionVerdict | None:
    """IPsec for any ESP flow, or for IKE / ESP-in-UDP found on the IPsec ports."""
    if sample.proto == PROTO_ESP:
        return EncryptionVerdict(kind="ipsec", version="ESP", detail="IP protocol 50 (ESP)")
    if sample.proto != PROTO_UDP or not sample.has_port(IKE_PORT, NAT_T_PORT):
        return None
    ike = _ike_messages(sample)
    if ike:
        name = f"IKEv{ike[0].major}"
        return EncryptionVerdict(kind="ipsec", version=name, detail=f"{name} {ike[0].exchange}")
    if sample.has_port(NAT_T_PORT) and (
        _esp_consistent(sample.client) or _esp_consistent(sample.server)
    ):
        return EncryptionVerdict(
            kind="ipsec",
            version="ESP-in-UDP",
            detail="UDP-encapsulated ESP: one SPI, rising sequence numbers",
        )
    return None
