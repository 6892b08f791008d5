"""Verdicts for protocol variants and look-alikes: a datagram sent twice is not OpenVPN,
pre-standard DTLS (AnyConnect) is DTLS, WARP's WireGuard framing is WireGuard, QUIC of any
version is QUIC, and plaintext protocols on their ports are not "entropy". Crafted bytes with
hand-worked expectations; the two real VPN captures end to end through ``burstwatch flows``."""

from __future__ import annotations

import json
import random
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from burstwatch.cli.main import main
from burstwatch.enrich.encryption import classify_flow
from tests.test_encryption import (
    TCP,
    UDP,
    client_hello_body,
    dtls_handshake,
    dtls_record,
    ext_sni,
    ovpn,
    u16,
)

Flow = tuple[int, int, int, Sequence[bytes], Sequence[bytes]]
PLAIN = "no encrypted protocol recognised; originator's bytes: "

# --------------------------------------------------------------------------- OpenVPN look-alikes

# DNS query for example.com A: id 0x0812 (0x08 >> 3 = opcode 1, key id 0: a client hard reset
# v1 to the OpenVPN parser), 29 bytes.
DNS_QUERY = bytes.fromhex("0812 0100 0001 0000 0000 0000") + b"\x07example\x03com\x00" + bytes.fromhex(
    "0001 0001"
)
# LLMNR query for wpad: id 0x3801 (opcode 7, a client hard reset v2), 22 bytes.
LLMNR_QUERY = bytes.fromhex("3801 0000 0001 0000 0000 0000") + b"\x04wpad\x00" + bytes.fromhex(
    "0001 0001"
)


def vxlan_frame(text: bytes) -> bytes:
    """VXLAN (flags 0x08: opcode 1, key 0) for VNI 42 around Ethernet / IPv4 / UDP / ``text``."""
    udp = struct.pack(">HHHH", 40000, 9999, 8 + len(text), 0) + text
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))  # fmt: skip
    eth = bytes.fromhex("001122334455 66778899aabb 0800")
    return bytes.fromhex("08000000 00002a00") + eth + ip + udp


# IKEv2 IKE_SA_INIT whose initiator SPI starts with 0x50 (opcode 10, key 0: a hard reset v3).
IKE_INIT = (
    bytes.fromhex("5011223344556677") + bytes(8) + bytes([33, 0x20, 34, 0x08]) + bytes(4)
    + struct.pack(">I", 28 + 40) + bytes(40)
)


def test_a_dns_or_llmnr_query_sent_twice_is_not_openvpn() -> None:
    dns = classify_flow(UDP, 53000, 53, [DNS_QUERY, DNS_QUERY], [])
    assert (dns.kind, dns.detail) == ("none", PLAIN + "only 58 bytes (need 128)")
    llmnr = classify_flow(UDP, 53001, 5355, [LLMNR_QUERY, LLMNR_QUERY], [])
    assert (llmnr.kind, llmnr.detail) == ("none", PLAIN + "only 44 bytes (need 128)")


def test_vxlan_frames_are_not_openvpn() -> None:
    frame = vxlan_frame(b"hello through vxlan")
    assert classify_flow(UDP, 50000, 4789, [frame, frame], []).kind == "none"
    other = vxlan_frame(b"a second, different frame")  # same VNI: the same "session id"
    assert classify_flow(UDP, 50000, 4789, [frame, other], []).kind == "none"


def test_an_ike_packet_sent_twice_is_ike() -> None:
    v = classify_flow(UDP, 500, 500, [IKE_INIT, IKE_INIT], [])
    assert (v.kind, v.version, v.detail) == ("ipsec", "IKEv2", "IKEv2 IKE_SA_INIT")


SESSION = bytes.fromhex("334857703d96db39")


def test_openvpn_needs_a_control_or_ack_packet_after_the_reset() -> None:
    reset = ovpn(7, SESSION)
    assert classify_flow(UDP, 50000, 1194, [reset, reset], []).kind == "none"
    again = ovpn(7, SESSION, b"\x00" + bytes(8))  # a second, longer reset: still no handshake
    assert classify_flow(UDP, 50000, 1194, [reset, again], []).kind == "none"
    ack = ovpn(5, SESSION, b"\x01" + bytes(4) + bytes(8))
    v = classify_flow(UDP, 50000, 1194, [reset, reset, ack], [])  # a retransmission, then an ack
    assert (v.kind, v.detail) == (
        "openvpn", "OpenVPN over UDP: client hard reset then control packets of session "
        "334857703d96db39",
    )


# --------------------------------------------------------------------------- DTLS 0x0100


def anyconnect_hello() -> bytes:
    """A DTLS ClientHello as AnyConnect sends it: record and hello version 0x0100, a cookie."""
    body = client_hello_body([0x002F, 0x0035], [], version=0x0100, cookie=b"")
    return dtls_record(22, dtls_handshake(1, body), version=0x0100)


def test_pre_standard_dtls_is_dtls() -> None:
    v = classify_flow(UDP, 54107, 443, [anyconnect_hello()], [])
    assert (v.kind, v.version, v.detail) == (
        "dtls", "DTLS 1.0 (pre-standard 0x0100)", "DTLS ClientHello without SNI",
    )
    assert v.fingerprint is not None and v.fingerprint.startswith("d00i0200")
    data = dtls_record(23, random.Random(1).randbytes(96), version=0x0100, epoch=1)
    v = classify_flow(UDP, 54107, 443, [data], [])
    assert (v.kind, v.version, v.detail) == ("dtls", "DTLS 1.0 (pre-standard 0x0100)", "DTLS records")
    assert classify_flow(UDP, 54107, 443, [data[:-1]], []).kind != "dtls"  # lengths must fill it


def test_other_record_versions_are_not_dtls() -> None:
    hello = client_hello_body([0x002F], [ext_sni("a.example")], version=0x0100)
    for version in (0x0101, 0x0200, 0x0001):
        record = dtls_record(22, dtls_handshake(1, hello), version=version)
        assert classify_flow(UDP, 54107, 443, [record], []).kind != "dtls"


# --------------------------------------------------------------------------- WireGuard, WARP


def warp(counter: int, size: int, receiver: int = 0x00EE8468, first: int = 0xC4,
         reserved: bytes = b"\x02\x78\x00") -> bytes:
    """A WARP transport message: type, non-zero reserved bytes, receiver, counter (no padding)."""
    head = bytes([first]) + reserved + struct.pack("<IQ", receiver, counter)
    return head + random.Random(counter * 7919 + size).randbytes(size - len(head))


def test_warp_framing_is_wireguard_and_named() -> None:
    client = [warp(1, 84), warp(2, 92), warp(3, 104)]  # (84 - 16) % 16 != 0: no padding
    v = classify_flow(UDP, 60555, 2408, client, [])
    assert (v.kind, v.version) == ("wireguard", "WireGuard (WARP variant)")
    assert v.detail == (
        "WireGuard variant framing (header c4027800: type 0xc4, reserved bytes 027800, as "
        "Cloudflare WARP sends): transport data with one receiver index and rising counters"
    )
    typed4 = [warp(5, 84, first=4), warp(6, 72, first=4)]  # type 4, reserved bytes set
    assert classify_flow(UDP, 60555, 2408, typed4, []).version == "WireGuard (WARP variant)"


def test_warp_framing_needs_corroboration() -> None:
    for client in (
        [warp(1, 84)],  # one message
        [warp(2, 84), warp(1, 92)],  # falling counters
        [warp(1, 84), warp(1, 84)],  # the same message twice
        [warp(1, 84), warp(2, 84, receiver=9)],  # two receivers
        [warp(1, 84), warp(2, 84, reserved=b"\x02\x78\x01")],  # two headers
    ):
        assert classify_flow(UDP, 60555, 2408, client, []).kind != "wireguard", client
    # one variant message each way is not the "both directions" rule of plain WireGuard
    assert classify_flow(UDP, 60555, 2408, [warp(1, 84)], [warp(1, 84, 5)]).kind != "wireguard"


# --------------------------------------------------------------------------- QUIC versions


def long_header(version: int, dcid: bytes, scid: bytes, seed: int, size: int = 1200,
                first: int = 0xC3) -> bytes:
    head = bytes([first]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid
    head += bytes([len(scid)]) + scid
    return head + random.Random(seed).randbytes(size - len(head))


DCID, SCID, SERVER_CID = bytes(range(8)), bytes(range(20, 28)), bytes(range(40, 48))


@pytest.mark.parametrize("version", [0x1A2A3A4A, 0x0A0A0A0A, 0xFAFAFAFA, 0x5A6A7A8A])
def test_quic_greased_versions_are_quic(version: int) -> None:
    v = classify_flow(UDP, 50000, 443, [long_header(version, DCID, b"", 1)], [])
    name = f"QUIC greased version 0x{version:08x}"
    assert (v.kind, v.version, v.detail) == ("quic", name, f"{name} long header")


def test_quic_greased_version_needs_the_invariants() -> None:
    too_long = long_header(0x1A2A3A4A, bytes(21), b"", 1)  # a 21-byte connection id
    assert classify_flow(UDP, 50000, 443, [too_long], []).kind != "quic"


def test_quic_unknown_version_confirmed_by_a_second_packet() -> None:
    version = 0x12345678
    one = long_header(version, DCID, SCID, 1)
    assert classify_flow(UDP, 50000, 443, [one], []).kind != "quic"
    assert classify_flow(UDP, 50000, 443, [one, one], []).kind != "quic"  # a retransmission
    two = long_header(version, DCID, SCID, 2, size=400)
    v = classify_flow(UDP, 50000, 443, [one, two], [])
    assert (v.kind, v.version, v.detail) == (
        "quic", "QUIC version 0x12345678",
        "QUIC version 0x12345678 long header, another packet with that version shares its "
        "connection id",
    )
    reply = long_header(version, SCID, SERVER_CID, 3)  # the server answers to the client's SCID
    assert classify_flow(UDP, 50000, 443, [one], [reply]).kind == "quic"
    stranger = long_header(version, bytes(8), SERVER_CID, 3)  # shares no connection id
    assert classify_flow(UDP, 50000, 443, [one], [stranger]).kind != "quic"
    other_version = long_header(0x12345679, DCID, SCID, 2)
    assert classify_flow(UDP, 50000, 443, [one, other_version], []).kind != "quic"


def test_quic_version_negotiation_from_the_server() -> None:
    client = long_header(0x12345678, DCID, SCID, 1)
    vn = bytes([0x80]) + bytes(4) + bytes([8]) + SCID + bytes([8]) + DCID
    offered = struct.pack(">II", 0x00000001, 0x6B3343CF)
    v = classify_flow(UDP, 50000, 443, [client], [vn + offered])
    assert (v.kind, v.version, v.detail) == (
        "quic", "QUIC version negotiation",
        "QUIC version negotiation packet, seen from the responder",
    )
    unknown_only = struct.pack(">I", 0x12345679)
    assert classify_flow(UDP, 50000, 443, [client], [vn + unknown_only]).kind != "quic"
    assert classify_flow(UDP, 50000, 443, [client], [vn + offered[:-1]]).kind != "quic"


def test_dns_queries_sharing_an_id_are_not_quic() -> None:
    """A query id >= 0x8000 reads as a long header with a 1-byte "connection id"; A and AAAA
    queries under one id share the version and that byte, which is not enough."""
    name = b"\x03www\x07example\x03com\x00"
    a = bytes.fromhex("9abc 0100 0001 0000 0000 0000") + name + bytes.fromhex("0001 0001")
    aaaa = bytes.fromhex("9abc 0100 0001 0000 0000 0000") + name + bytes.fromhex("001c 0001")
    assert classify_flow(UDP, 50000, 53, [a, aaaa], []).kind == "none"


# --------------------------------------------------------------------------- plaintext protocols


def kerberos_tgs_req(seed: int, ticket: int = 1600) -> bytes:
    """A TGS-REQ carrying a ``ticket``-byte encrypted ticket, built by scapy (an independent
    encoder): the kind of message whose first kilobyte is mostly ciphertext."""
    kerberos = pytest.importorskip("scapy.layers.kerberos")
    asn1 = pytest.importorskip("scapy.asn1.asn1")
    rng = random.Random(seed)
    realm = "EXAMPLE.COM"
    tgt = kerberos.KRB_Ticket(
        realm=realm, sname=kerberos.PrincipalName(nameType=2, nameString=["krbtgt", realm]),
        encPart=kerberos.EncryptedData(etype=18, kvno=2, cipher=rng.randbytes(ticket)),
    )
    ap_req = kerberos.KRB_AP_REQ(
        ticket=tgt, authenticator=kerberos.EncryptedData(etype=18, cipher=rng.randbytes(180))
    )
    body = kerberos.KRB_KDC_REQ_BODY(
        realm=realm, sname=kerberos.PrincipalName(nameType=2, nameString=["ldap", "dc1.example.com"]),
        till=asn1.ASN1_GENERALIZED_TIME("20370913024805Z"), nonce=rng.getrandbits(31),
        etype=[18, 17, 23],
    )
    tgs = kerberos.KRB_TGS_REQ(padata=[kerberos.PADATA(padataType=1, padataValue=ap_req)],
                               reqBody=body)
    return bytes(kerberos.Kerberos(root=tgs))


def ldap_sasl_bind(seed: int) -> bytes:
    """An LDAP SASL/GSSAPI bind whose credentials carry a Kerberos ticket (scapy-built)."""
    ldap = pytest.importorskip("scapy.layers.ldap")
    token = kerberos_tgs_req(seed, 1200)  # a Kerberos message carrying a ticket
    credentials = ldap.LDAP_Authentication_SaslCredentials(mechanism=b"GSSAPI", credentials=token)
    return bytes(ldap.LDAP(messageID=1, protocolOp=ldap.LDAP_BindRequest(authentication=credentials)))


def segments(data: bytes) -> list[bytes]:
    return [data[k : k + 1448] for k in range(0, len(data), 1448)]


def first_random(build: Callable[[int], bytes], flow: Callable[[bytes], Flow]) -> bytes:
    """The first seed's message whose bytes pass the entropy test off the protocol's port."""
    for seed in range(100):
        message = build(seed)
        if classify_flow(*flow(message)).kind == "entropy":
            return message
    raise AssertionError("no message passed the entropy test")


def test_kerberos_on_its_port_is_not_entropy() -> None:
    off_port = first_random(kerberos_tgs_req, lambda m: (UDP, 50000, 8888, [m], []))
    v = classify_flow(UDP, 50000, 88, [off_port], [])
    assert (v.kind, v.detail) == (
        "none", PLAIN + "opens with Kerberos framing on its own port (a plaintext protocol)",
    )
    record = struct.pack(">I", len(off_port)) + off_port  # TCP: a 4-byte record mark first
    assert classify_flow(TCP, 50000, 88, segments(record), []).kind == "none"
    assert classify_flow(TCP, 50000, 8888, segments(record), []).kind == "entropy"


def test_ldap_bind_on_its_port_is_not_entropy() -> None:
    bind = first_random(ldap_sasl_bind, lambda m: (TCP, 50000, 8389, segments(m), []))
    v = classify_flow(TCP, 50000, 389, segments(bind), [])
    assert (v.kind, v.detail) == (
        "none", PLAIN + "opens with LDAP framing on its own port (a plaintext protocol)",
    )


def radius(code: int, body: bytes, length: int | None = None) -> bytes:
    size = 20 + len(body) if length is None else length
    return bytes([code, 7]) + u16(size) + bytes(16) + body


RANDOM_BODY = random.Random(11).randbytes(600)


@pytest.mark.parametrize(
    ("proto", "port", "payload", "name"),
    [
        (UDP, 1812, radius(1, RANDOM_BODY), "RADIUS"),
        (UDP, 1813, radius(4, RANDOM_BODY), "RADIUS"),
        (TCP, 445, b"\x00\x00\x02\x64\xfeSMB" + RANDOM_BODY, "SMB"),
        (TCP, 139, b"\x00\x00\x02\x64\xffSMB" + RANDOM_BODY, "SMB"),
        (UDP, 161, b"\x30\x82\x02\x68\x02\x01\x01\x04\x06public" + RANDOM_BODY, "SNMP"),
        (UDP, 53, bytes.fromhex("1234 0000 0001 0000 0000 0001") + RANDOM_BODY, "DNS"),
        (TCP, 53, u16(612) + bytes.fromhex("1234 2800 0001 0000 0000 0001") + RANDOM_BODY, "DNS"),
    ],
)
def test_plaintext_framings_on_their_ports(proto: int, port: int, payload: bytes, name: str) -> None:
    """Random bytes behind each framing: clear on the protocol's port, random elsewhere."""
    v = classify_flow(proto, 50000, port, [payload], [])
    assert (v.kind, v.detail) == (
        "none", PLAIN + f"opens with {name} framing on its own port (a plaintext protocol)",
    )
    assert classify_flow(proto, 50000, 40001, [payload], []).kind == "entropy"


@pytest.mark.parametrize(
    ("proto", "port", "payload"),
    [
        (UDP, 1812, radius(1, RANDOM_BODY, length=300)),  # length field disagrees
        (UDP, 1812, radius(99, RANDOM_BODY)),  # no such code
        (TCP, 445, b"\x00\x00\x02\x64\xfdSMB" + RANDOM_BODY),  # SMB3 transform: encrypted SMB
        (UDP, 161, b"\x30\x82\x02\x68\x02\x01\x03\x04\x06public" + RANDOM_BODY),  # SNMPv3
        (UDP, 53, bytes.fromhex("1234 0000 0401 0000 0000 0001") + RANDOM_BODY),  # 1025 queries
        (UDP, 88, RANDOM_BODY),
        (TCP, 389, RANDOM_BODY),
    ],
)
def test_a_port_alone_does_not_make_plaintext(proto: int, port: int, payload: bytes) -> None:
    assert classify_flow(proto, 50000, port, [payload], []).kind == "entropy"


def test_random_bytes_on_plaintext_ports_stay_entropy() -> None:
    rng = random.Random(3)
    ports = [(UDP, 53), (UDP, 88), (TCP, 88), (TCP, 389), (TCP, 445), (UDP, 1812), (UDP, 161)]
    kinds = Counter(
        classify_flow(proto, 50000, port, [rng.randbytes(700)], []).kind
        for proto, port in ports for _ in range(100)
    )
    assert kinds == {"entropy": 700}


# --------------------------------------------------------------------------- real captures


def variant_flows() -> list[Flow]:
    """The crafted flows above, for the batch cross-check."""
    vn = bytes([0x80]) + bytes(4) + bytes([8]) + SCID + bytes([8]) + DCID + struct.pack(">I", 1)
    one = long_header(0x12345678, DCID, SCID, 1)
    return [
        (UDP, 53000, 53, [DNS_QUERY, DNS_QUERY], []),
        (UDP, 53001, 5355, [LLMNR_QUERY, LLMNR_QUERY], []),
        (UDP, 50000, 4789, [vxlan_frame(b"x" * 40), vxlan_frame(b"y" * 60)], []),
        (UDP, 500, 500, [IKE_INIT, IKE_INIT], []),
        (UDP, 50000, 1194, [ovpn(7, SESSION), ovpn(7, SESSION)], []),
        (UDP, 54107, 443, [anyconnect_hello()], []),
        (UDP, 60555, 2408, [warp(1, 84), warp(2, 92)], []),
        (UDP, 60555, 2408, [warp(1, 84), warp(2, 92, receiver=1)], [warp(7, 84)]),
        (UDP, 50000, 443, [long_header(0x1A2A3A4A, DCID, b"", 1)], []),
        (UDP, 50000, 443, [one, long_header(0x12345678, DCID, SCID, 2)], []),
        (UDP, 50000, 443, [one, one], []),
        (UDP, 50000, 443, [one], [long_header(0x12345678, SCID, SERVER_CID, 3)]),
        (UDP, 50000, 443, [one], [vn]),
        (UDP, 1812, 50000, [radius(1, RANDOM_BODY)], [radius(2, RANDOM_BODY)]),
        (TCP, 50000, 445, [b"\x00\x00\x02\x64\xfeSMB" + RANDOM_BODY], []),
        (UDP, 50000, 161, [b"\x30\x82\x02\x68\x02\x01\x00\x04\x06public" + RANDOM_BODY], []),
        (UDP, 50000, 88, [RANDOM_BODY], []),
    ]


def flows_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["flows", str(path)]) == 0
    return [json.loads(line)["burstwatch"]["encryption"]
            for line in capsys.readouterr().out.splitlines()]


def test_anyconnect_capture_end_to_end(shared_pcaps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_pcaps / "encap" / "ndpi-anyconnect-vpn.pcap"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    rows = flows_cli(path, capsys)
    dtls = [r for r in rows if r["verdict"] == "dtls"]
    assert len(dtls) == 1  # the tunnel's UDP 443 flow to 8.37.102.91
    assert dtls[0]["version"] == "DTLS 1.0 (pre-standard 0x0100)"
    assert dtls[0]["detail"] == "DTLS ClientHello without SNI"
    assert Counter(r["verdict"] for r in rows)["tls"] == 11  # the TLS flows stay TLS


def test_cloudflare_warp_capture_end_to_end(
    shared_pcaps: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_pcaps / "encap" / "ndpi-cloudflare-warp.pcap"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    rows = flows_cli(path, capsys)
    wg = [r for r in rows if r["verdict"] == "wireguard"]
    assert len(wg) == 1  # UDP 60555 <-> 162.159.192.7:2408
    assert wg[0]["version"] == "WireGuard (WARP variant)"
    assert "header c4027800" in str(wg[0]["detail"])
