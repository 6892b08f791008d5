"""Encryption verdicts: crafted handshakes per detector, JA4 vectors, calibration, real captures."""

from __future__ import annotations

import gzip
import random
import socket
import struct
import sysconfig
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.enrich.encryption import (
    MAX_DEFICIT_RATIO,
    EncryptionVerdict,
    classify_flow,
    ja4,
    parse_client_hello,
    quic_initial,
)
from burstwatch.enrich.encryption.entropy import (
    deficit_ratio,
    expected_uniform_entropy,
    shannon,
)
from burstwatch.enrich.encryption.entropy_detector import judge
from burstwatch.enrich.encryption.ja4 import alpn_code, ja4_raw
from burstwatch.enrich.encryption.quic import chlo_tags

TCP, UDP, ESP = 6, 17, 50
needs_crypto = pytest.mark.skipif(not quic_initial.AVAILABLE, reason="cryptography not installed")

# --------------------------------------------------------------------------- builders


def u16(v: int) -> bytes:
    return v.to_bytes(2, "big")


def u24(v: int) -> bytes:
    return v.to_bytes(3, "big")


def ext(ext_type: int, data: bytes) -> tuple[int, bytes]:
    return ext_type, data


def ext_sni(name: str) -> tuple[int, bytes]:
    entry = b"\x00" + u16(len(name)) + name.encode()
    return 0x0000, u16(len(entry)) + entry


def ext_alpn(*protos: bytes) -> tuple[int, bytes]:
    body = b"".join(bytes([len(p)]) + p for p in protos)
    return 0x0010, u16(len(body)) + body


def ext_versions(*versions: int) -> tuple[int, bytes]:
    body = b"".join(u16(v) for v in versions)
    return 0x002B, bytes([len(body)]) + body


def ext_sigalgs(*algs: int) -> tuple[int, bytes]:
    body = b"".join(u16(a) for a in algs)
    return 0x000D, u16(len(body)) + body


def client_hello_body(
    ciphers: list[int],
    extensions: list[tuple[int, bytes]],
    *,
    version: int = 0x0303,
    cookie: bytes | None = None,
) -> bytes:
    body = u16(version) + bytes(range(32)) + b"\x20" + bytes(32)
    if cookie is not None:
        body += bytes([len(cookie)]) + cookie
    body += u16(2 * len(ciphers)) + b"".join(u16(c) for c in ciphers) + b"\x01\x00"
    exts = b"".join(u16(t) + u16(len(d)) + d for t, d in extensions)
    return body + u16(len(exts)) + exts


def server_hello_body(version: int = 0x0303, selected: int | None = None) -> bytes:
    body = u16(version) + bytes(32) + b"\x00" + u16(0x1301) + b"\x00"
    exts = b"" if selected is None else u16(0x002B) + u16(2) + u16(selected)
    return body + u16(len(exts)) + exts


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + u24(len(body)) + body


def tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return bytes([content_type]) + u16(version) + u16(len(body)) + body


def dtls_record(content_type: int, body: bytes, version: int = 0xFEFD, epoch: int = 0) -> bytes:
    return bytes([content_type]) + u16(version) + u16(epoch) + bytes(6) + u16(len(body)) + body


def dtls_handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + u24(len(body)) + u16(0) + u24(0) + u24(len(body)) + body


def simple_hello(sni: str = "example.com") -> bytes:
    """A TLS 1.3 ClientHello handshake message with SNI and ALPN h2/http1.1."""
    return handshake(
        1,
        client_hello_body(
            [0x1301, 0x1302, 0xC02B],
            [
                ext_sni(sni),
                ext_alpn(b"h2", b"http/1.1"),
                ext_versions(0x0304, 0x0303),
                ext_sigalgs(0x0403, 0x0804),
            ],
        ),
    )


# JA4 reference values published by FoxIO (technical_details/JA4.md and the expected output of
# pcap/sigalg-grease.pcapng in the JA4 repository); wire order taken from their JA4_ro strings.
CHROME_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8]
CHROME_CIPHERS += [0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
CHROME_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def foxio_doc_hello() -> bytes:
    """The JA4.md example: JA4 = t13d1516h2_8daaf6152771_e5627efa2ab1 (GREASE added here)."""
    order = [0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D]
    order += [0x0005, 0x0023, 0x0012, 0x002B, 0xFF01, 0x000B, 0x000A, 0x0015]
    exts: list[tuple[int, bytes]] = [ext(0x2A2A, b"")]
    for t in order:
        if t == 0x0000:
            exts.append(ext_sni("example.com"))
        elif t == 0x0010:
            exts.append(ext_alpn(b"h2", b"http/1.1"))
        elif t == 0x002B:
            exts.append(ext_versions(0x7A7A, 0x0304, 0x0303))
        elif t == 0x000D:
            exts.append(ext_sigalgs(*CHROME_SIGALGS))
        else:
            exts.append(ext(t, b"\x00"))
    exts.append(ext(0xFAFA, b"\x00"))
    return client_hello_body([0x0A0A, *CHROME_CIPHERS], exts)


def foxio_sigalg_grease_hello() -> bytes:
    """sigalg-grease.pcapng: JA4 = t13d1517h2_8daaf6152771_cb7bf5808d99, GREASE in sigalgs."""
    order = [0xFE0D, 0x0010, 0x0017, 0x0033, 0x44CD, 0xFF01, 0x000A, 0x000D, 0x0023]
    order += [0x002B, 0x000B, 0xCA34, 0x002D, 0x0000, 0x0005, 0x001B, 0x0012]
    exts: list[tuple[int, bytes]] = [ext(0x3A3A, b"")]
    for t in order:
        if t == 0x0000:
            exts.append(ext_sni("optimizationguide-pa.googleapis.com"))
        elif t == 0x0010:
            exts.append(ext_alpn(b"h2", b"http/1.1"))
        elif t == 0x002B:
            exts.append(ext_versions(0xDADA, 0x0304, 0x0303))
        elif t == 0x000D:
            exts.append(ext_sigalgs(0x0A0A, 0x0904, 0x0905, 0x0906, *CHROME_SIGALGS))
        else:
            exts.append(ext(t, b"\x01\x02"))
    exts.append(ext(0x9A9A, b"\x00"))
    return client_hello_body([0x5A5A, *CHROME_CIPHERS], exts)


# --------------------------------------------------------------------------- JA4


def test_ja4_matches_the_foxio_specification_example() -> None:
    hello = parse_client_hello(foxio_doc_hello())
    assert ja4(hello) == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    part_a, ciphers, exts = ja4_raw(hello)
    assert ciphers == "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
    assert exts == (
        "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_"
        "0403,0804,0401,0503,0805,0501,0806,0601"
    )


def test_ja4_matches_foxio_capture_with_grease_signature_algorithm() -> None:
    hello = parse_client_hello(foxio_sigalg_grease_hello())
    assert ja4(hello) == "t13d1517h2_8daaf6152771_cb7bf5808d99"
    assert "_".join(ja4_raw(hello)) == (
        "t13d1517h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
        "0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,ca34,fe0d,ff01_"
        "0904,0905,0906,0403,0804,0401,0503,0805,0501,0806,0601"
    )


def test_ja4_without_signature_algorithms_hashes_the_extension_list_alone() -> None:
    # JA4.md: "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01" = 6d807ffa2a79
    exts = [ext(t, b"\x00") for t in (0x0005, 0x000A, 0x000B, 0x0012, 0x0015, 0x0017, 0x001B)]
    exts += [ext(t, b"\x00") for t in (0x0023, 0x002B, 0x002D, 0x0033, 0x4469, 0xFF01)]
    exts.append(ext_sigalgs())
    hello = parse_client_hello(client_hello_body([0x1301], exts))
    assert ja4(hello).endswith("_6d807ffa2a79")
    assert ja4(hello).startswith("t12i0114")  # no supported_versions entry: legacy 0x0303


@pytest.mark.parametrize(
    ("alpn", "code"),
    [((), "00"), ((b"",), "00"), ((b"h2",), "h2"), ((b"http/1.1",), "h1"), ((b"x",), "xx")],
)
def test_ja4_alpn_code(alpn: tuple[bytes, ...], code: str) -> None:
    assert alpn_code(alpn) == code


def test_ja4_alpn_code_uses_hex_for_non_alphanumeric_ends() -> None:
    assert alpn_code((b"\xab",)) == "ab"
    assert alpn_code((b"\xab\xcd",)) == "ad"
    assert alpn_code((b"\x30\xab",)) == "3b"
    assert alpn_code((b"\x30\xab\xcd\x31",)) == "01"


# --------------------------------------------------------------------------- TLS


def test_tls_client_hello_split_over_records_and_segments() -> None:
    message = simple_hello()
    records = tls_record(22, message[:40], 0x0301) + tls_record(22, message[40:], 0x0301)
    segments = [records[:7], records[7:60], records[60:]]
    server = [tls_record(22, handshake(2, server_hello_body(selected=0x0304)))]
    v = classify_flow(TCP, 50000, 8443, segments, server)
    assert v.kind == "tls"
    assert v.version == "TLS 1.3"
    assert v.sni == "example.com"
    assert v.alpn == ("h2", "http/1.1")
    assert v.fingerprint is not None and v.fingerprint.startswith("t13d0304h2_")
    assert "ClientHello with SNI example.com" in v.detail


def test_tls_without_server_hello_reports_the_highest_offered_version() -> None:
    v = classify_flow(TCP, 50000, 443, [tls_record(22, simple_hello(), 0x0301)], [])
    assert (v.kind, v.version) == ("tls", "TLS 1.3")


def test_tls_server_hello_without_supported_versions_is_tls_1_2() -> None:
    server = [tls_record(22, handshake(2, server_hello_body()))]
    v = classify_flow(TCP, 50000, 443, [tls_record(22, simple_hello())], server)
    assert v.version == "TLS 1.2"


def test_tls_mid_stream_application_data() -> None:
    client = [tls_record(23, random.Random(1).randbytes(300)), tls_record(23, bytes(40))]
    v = classify_flow(TCP, 50000, 443, client, [])
    assert v.kind == "tls" and v.sni is None and v.version is None
    assert "application_data" in v.detail


def test_tls_truncated_client_hello_is_still_tls_without_evidence() -> None:
    record = tls_record(22, simple_hello())
    v = classify_flow(TCP, 50000, 443, [record[:60]], [])
    assert v.kind == "tls" and v.sni is None and v.fingerprint is None


def test_tls_is_only_tcp() -> None:
    assert classify_flow(UDP, 50000, 443, [tls_record(22, simple_hello())], []).kind != "tls"


def test_tls_server_alert_to_plain_http_request_is_not_tls() -> None:
    client = [b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"]
    server = [tls_record(21, b"\x02\x46", 0x0301)]
    assert classify_flow(TCP, 50000, 443, client, server).kind == "none"


# --------------------------------------------------------------------------- QUIC

RFC9001_CLIENT_INITIAL = bytes.fromhex(
    # RFC 9001 appendix A.2: a client Initial for DCID 8394c8f03e515708, SNI example.com
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8bab936b47d"
    "92ec356c0bab7df5976d27cd449f63300099f3991c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad"
    "67500cadb8e7378c8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df621230c83711"
    "b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5457afd84d05dfffdb20392844ae81215"
    "4682e9cf012f9021a6f0be17ddd0c2084dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948"
    "838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3485e8a94dc250ae3"
    "fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db059ae0648db2f64264ed5e39be2e20d82df566da"
    "8dd5998ccabdae053060ae6c7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556be52afe3f565636ad1b17d50"
    "8b73d8743eeb524be22b3dcbc2c7468d54119c7468449a13d8e3b95811a198f3491de3e7fe942b330407abf8"
    "2a4ed7c1b311663ac69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00f064c99e"
    "3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632291d6a418211cc2962e20fe47feb3edf"
    "330f2c603a9d48c0fcb5699dbfe5896425c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2"
    "c25e50fd14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ffef132eef2fa09346"
    "aee33c28eb130ff28f5b766953334113211996d20011a198e3fc433f9f2541010ae17c1bf202580f6047472f"
    "b36857fe843b19f5984009ddc324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605cb0504db8763"
    "2cf3d8b4dae6e705769d1de354270123cb11450efc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d06"
    "9fc33bd801b03adea2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e72404790a21810"
    "14f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2162f40a29f0c3c8745c0f50fba3852e5"
    "66d44575c29d39a03f0cda721984b6f440591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b6"
    "5bfc5ca06948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e8f2e6ff5800175f1"
    "13253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8"
    "078cdfcb3868263ff8f0940054da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9f96f3ca9ec1dde434da7d2d3"
    "92b905ddf3d1f9af93d1af5950bd493f5aa731b4056df31bd267b6b90a079831aaf579be0a39013137aac6d4"
    "04f518cfd46840647e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241e221af44"
    "860018ab0856972e194cd934"
)


def test_quic_initial_keys_match_rfc9001_and_rfc9369() -> None:
    dcid = bytes.fromhex("8394c8f03e515708")
    assert [k.hex() for k in quic_initial.client_keys(1, dcid)] == [
        "1f369613dd76d5467730efcbe3b1a22d",
        "fa044b2f42a3fd3b46fb255c",
        "9f50449e04a0e810283a1e9933adedd2",
    ]
    assert [k.hex() for k in quic_initial.client_keys(0x6B3343CF, dcid)] == [
        "8b1a0bc121284290a29e0971b5cd045d",
        "91f73e2351d8fa91660e909f",
        "45b95e15235d6f45a6b19cbcb0294ba9",
    ]


def quic_long_header(version: int, payload_len: int = 1200, first: int = 0xC3) -> bytes:
    header = bytes([first]) + version.to_bytes(4, "big") + b"\x08" + bytes(range(8)) + b"\x00"
    header += b"\x00" + b"\x44\x9e"  # empty token, length 1182 as a 2-byte varint
    return header + random.Random(version).randbytes(payload_len - len(header))


@pytest.mark.parametrize(
    ("version", "name"),
    [
        (0x00000001, "QUIC v1"),
        (0x6B3343CF, "QUIC v2"),
        (0xFF00001D, "QUIC draft-29"),
        (int.from_bytes(b"T051", "big"), "gQUIC T051"),
        (int.from_bytes(b"Q050", "big"), "gQUIC Q050"),
    ],
)
def test_quic_long_header_versions(version: int, name: str) -> None:
    short = [bytes([0x41]) + bytes(range(8)) + random.Random(2).randbytes(60)]
    v = classify_flow(UDP, 50000, 443, [quic_long_header(version), *short], [])
    assert (v.kind, v.version) == ("quic", name)
    assert "1 short-header packet(s) follow" in v.detail


def test_quic_q046_long_header() -> None:
    packet = b"\xc3Q046\x50" + bytes(8) + random.Random(3).randbytes(1300)
    assert classify_flow(UDP, 50000, 443, [packet], []).version == "gQUIC Q046"


def gquic_chlo(sni: str, version: bytes = b"Q043") -> bytes:
    tags = [(b"PAD\x00", bytes(20)), (b"SNI\x00", sni.encode()), (b"VER\x00", version)]
    index, values, end = b"", b"", 0
    for tag, value in tags:
        end += len(value)
        index += tag + struct.pack("<I", end)
        values += value
    message = b"CHLO" + struct.pack("<HH", len(tags), 0) + index + values
    header = b"\x0d" + bytes(range(8)) + version + b"\x01"
    return header + bytes(12) + b"\xa0\x01" + message


def test_gquic_legacy_header_with_chlo_gives_sni() -> None:
    v = classify_flow(UDP, 50000, 443, [gquic_chlo("upload.youtube.com")], [])
    assert (v.kind, v.version, v.sni) == ("quic", "gQUIC Q043", "upload.youtube.com")
    assert chlo_tags(gquic_chlo("a.b"))[b"VER\x00"] == b"Q043"


def test_quic_unknown_version_and_random_udp_are_not_quic() -> None:
    assert classify_flow(UDP, 50000, 443, [quic_long_header(0x12345678)], []).kind != "quic"
    rng = random.Random(4)
    for _ in range(200):
        assert classify_flow(UDP, 50000, 443, [rng.randbytes(200)], []).kind != "quic"


def test_quic_v1_initial_without_decryption_still_is_quic() -> None:
    v = classify_flow(UDP, 50000, 443, [RFC9001_CLIENT_INITIAL], [])
    assert (v.kind, v.version) == ("quic", "QUIC v1")
    if not quic_initial.AVAILABLE:
        assert v.sni is None and v.fingerprint is None


@needs_crypto
def test_quic_v1_initial_from_rfc9001_is_decrypted() -> None:
    v = classify_flow(UDP, 50000, 443, [RFC9001_CLIENT_INITIAL], [])
    assert v.sni == "example.com"
    assert v.alpn == ("alpn",)
    assert v.fingerprint is not None and v.fingerprint.startswith("q13d0211an_")


def encrypt_initial(version: int, dcid: bytes, frames: bytes, pn: int = 2) -> bytes:
    """Build a client Initial the way a QUIC stack does (for round-trip tests)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, iv, hp = quic_initial.client_keys(version, dcid)
    type_bits = 1 if version == 0x6B3343CF else 0
    frames += bytes(1162 - len(frames))  # PADDING up to a 1200-byte datagram
    length = 4 + len(frames) + 16
    first = 0xC0 | (type_bits << 4) | 0x03
    header = bytes([first]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid + b"\x00"
    header += b"\x00" + (0x4000 | length).to_bytes(2, "big") + pn.to_bytes(4, "big")
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    payload = AESGCM(key).encrypt(nonce, frames, header)
    pn_offset = len(header) - 4
    sample = payload[:16]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    protected = bytearray(header)
    protected[0] ^= mask[0] & 0x0F
    for i in range(4):
        protected[pn_offset + i] ^= mask[1 + i]
    return bytes(protected) + payload


def crypto_frame(offset: int, data: bytes) -> bytes:
    return (
        b"\x06"
        + (0x4000 | offset).to_bytes(2, "big")
        + (0x4000 | len(data)).to_bytes(2, "big")
        + data
    )


@needs_crypto
def test_quic_v2_client_hello_split_over_two_initials_in_shuffled_frames() -> None:
    hello = simple_hello("split.example")
    half = len(hello) // 2
    dcid = bytes.fromhex("0011223344556677")
    first = encrypt_initial(0x6B3343CF, dcid, crypto_frame(half, hello[half:]) + b"\x01")
    second = encrypt_initial(0x6B3343CF, dcid, crypto_frame(0, hello[:half]), pn=3)
    v = classify_flow(UDP, 50000, 443, [first, second], [])
    assert (v.kind, v.version, v.sni) == ("quic", "QUIC v2", "split.example")
    assert v.fingerprint is not None and v.fingerprint.startswith("q13d0304h2_")


# --------------------------------------------------------------------------- DTLS


def test_dtls_client_hello_with_cookie() -> None:
    body = client_hello_body(
        [0xC02B, 0xC02F],
        [ext_sni("turn.example"), ext_sigalgs(0x0403)],
        version=0xFEFD,
        cookie=b"c" * 20,
    )
    client = [dtls_record(22, dtls_handshake(1, body))]
    v = classify_flow(UDP, 50000, 3478, client, [])
    assert (v.kind, v.version, v.sni) == ("dtls", "DTLS 1.2", "turn.example")
    assert v.fingerprint is not None and v.fingerprint.startswith("dd2d0202")


def test_dtls_after_stun_and_application_data() -> None:
    stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(12)
    app = dtls_record(23, random.Random(5).randbytes(200), epoch=1)
    v = classify_flow(UDP, 50000, 50001, [stun, app], [])
    assert (v.kind, v.version) == ("dtls", "DTLS 1.2")


def test_dtls_length_must_fill_the_datagram() -> None:
    record = dtls_record(23, random.Random(6).randbytes(200), epoch=1)
    assert classify_flow(UDP, 50000, 50001, [record + b"x"], []).kind != "dtls"


# --------------------------------------------------------------------------- SSH


def test_ssh_banners() -> None:
    v = classify_flow(
        TCP, 50000, 22, [b"SSH-2.0-OpenSSH_9.6\r\n"], [b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n"]
    )
    assert (v.kind, v.version) == ("ssh", "SSH-2.0-OpenSSH_9.6")


def test_ssh_server_may_send_lines_before_its_banner_and_client_may_be_silent() -> None:
    server = [b"Welcome\r\nSSH-1.99-Cisco-1.25\r\n"]
    v = classify_flow(TCP, 50000, 2222, [], server)
    assert (v.kind, v.version) == ("ssh", "SSH-1.99-Cisco-1.25")


def test_http_request_answered_by_ssh_banner_is_not_ssh() -> None:
    client = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]
    assert classify_flow(TCP, 50000, 22, client, [b"SSH-2.0-OpenSSH_9.6\r\n"]).kind == "none"


# --------------------------------------------------------------------------- WireGuard


def wg(kind: int, size: int, receiver: int = 0, counter: int = 0) -> bytes:
    head = bytes([kind, 0, 0, 0])
    if kind == 4:
        head += struct.pack("<IQ", receiver, counter)
    return head + random.Random(size + counter).randbytes(size - len(head))


def test_wireguard_handshake() -> None:
    v = classify_flow(UDP, 40000, 51820, [wg(1, 148)], [wg(2, 92)])
    assert (v.kind, v.version) == ("wireguard", "WireGuard")
    assert "handshake initiation" in v.detail


def test_wireguard_transport_needs_corroboration() -> None:
    one = [wg(4, 128, 7, 5)]
    assert classify_flow(UDP, 40000, 51820, one, []).kind != "wireguard"
    rising = [wg(4, 128, 7, 5), wg(4, 96, 7, 6), wg(4, 1440, 7, 9)]
    assert classify_flow(UDP, 40000, 51820, rising, []).kind == "wireguard"
    falling = [wg(4, 128, 7, 9), wg(4, 96, 7, 6)]
    assert classify_flow(UDP, 40000, 51820, falling, []).kind != "wireguard"
    both = classify_flow(UDP, 40000, 51820, [wg(4, 128, 7, 5)], [wg(4, 64, 9, 1)])
    assert both.kind == "wireguard"


def test_wireguard_sizes_are_exact() -> None:
    assert classify_flow(UDP, 40000, 51820, [wg(1, 149)], []).kind != "wireguard"
    assert classify_flow(UDP, 40000, 51820, [wg(4, 130, 1, 1), wg(4, 130, 1, 2)], []).kind != (
        "wireguard"
    )


# --------------------------------------------------------------------------- OpenVPN


def ovpn(opcode: int, session: bytes, rest: bytes = b"\x00" + bytes(4), key_id: int = 0) -> bytes:
    return bytes([opcode << 3 | key_id]) + session + rest


SESSION_A, SESSION_B = bytes.fromhex("334857703d96db39"), bytes.fromhex("d31c3a6964602fa0")


def test_openvpn_udp_reset_then_control_of_the_same_session() -> None:
    client = [ovpn(7, SESSION_A), ovpn(5, SESSION_A, b"\x01" + bytes(4) + SESSION_B)]
    v = classify_flow(UDP, 60201, 1194, client, [])
    assert (v.kind, v.version) == ("openvpn", "OpenVPN over UDP")


def test_openvpn_tcp_length_prefixed_resets_in_both_directions() -> None:
    def framed(p: bytes) -> bytes:
        return u16(len(p)) + p

    stream = framed(ovpn(7, SESSION_A)) + framed(ovpn(4, SESSION_A, bytes(30)))
    server = [framed(ovpn(8, SESSION_B, b"\x01" + bytes(4) + SESSION_A + bytes(4)))]
    v = classify_flow(TCP, 39772, 443, [stream[:9], stream[9:]], server)
    assert (v.kind, v.version) == ("openvpn", "OpenVPN over TCP")


def test_openvpn_single_opcode_byte_is_not_enough() -> None:
    rng = random.Random(8)
    client = [ovpn(7, rng.randbytes(8), rng.randbytes(200))]
    assert classify_flow(UDP, 50000, 1194, client, []).kind != "openvpn"
    other_session = [ovpn(7, SESSION_A), ovpn(4, SESSION_B, bytes(40))]
    assert classify_flow(UDP, 50000, 1194, other_session, []).kind != "openvpn"


# --------------------------------------------------------------------------- IPsec


def ike(version: int = 0x20, exchange: int = 34, next_payload: int = 33) -> bytes:
    body = bytes(40)
    header = bytes(range(1, 9)) + bytes(8) + bytes([next_payload, version, exchange, 0x08])
    return header + bytes(4) + struct.pack(">I", 28 + len(body)) + body


def test_ipsec_esp_protocol() -> None:
    assert classify_flow(ESP, 0, 0, [b"\x00\x00\x10\x01" + bytes(60)], []).kind == "ipsec"


def test_ipsec_ike_v2_and_v1() -> None:
    v2 = classify_flow(UDP, 500, 500, [ike()], [])
    assert (v2.kind, v2.version) == ("ipsec", "IKEv2")
    v1 = classify_flow(UDP, 500, 500, [ike(0x10, 2, 1)], [])
    assert (v1.kind, v1.version) == ("ipsec", "IKEv1")


def test_ipsec_nat_traversal_marker_and_esp_in_udp() -> None:
    v = classify_flow(
        UDP, 4500, 4500, [b"\x00\x00\x00\x00" + ike(exchange=35, next_payload=46)], []
    )
    assert (v.kind, v.version) == ("ipsec", "IKEv2")
    esp = [
        b"\xc0\x01\x02\x03" + struct.pack(">I", n) + random.Random(n).randbytes(80)
        for n in (1, 2, 3)
    ]
    v = classify_flow(UDP, 4500, 4500, esp, [])
    assert (v.kind, v.version) == ("ipsec", "ESP-in-UDP")


def test_ipsec_needs_more_than_the_port() -> None:
    bad_length = ike()[:-1]
    assert classify_flow(UDP, 500, 500, [bad_length], []).kind != "ipsec"
    assert classify_flow(UDP, 5000, 5000, [ike()], []).kind != "ipsec"
    assert classify_flow(UDP, 4500, 4500, [b"\xff"], []).kind == "none"  # NAT keepalive


# --------------------------------------------------------------------------- entropy


def test_expected_uniform_entropy_matches_simulation() -> None:
    rng = random.Random(9)
    for n in (128, 1024):
        mean = sum(shannon(rng.randbytes(n)) for _ in range(400)) / 400
        assert abs(mean - expected_uniform_entropy(n)) < 0.01
    assert expected_uniform_entropy(128) == pytest.approx(6.550, abs=1e-3)
    assert expected_uniform_entropy(1024) == pytest.approx(7.809, abs=1e-3)


def test_entropy_verdict_on_random_bytes() -> None:
    rng = random.Random(10)
    v = classify_flow(UDP, 50000, 50000, [rng.randbytes(700), rng.randbytes(500)], [])
    assert v.kind == "entropy" and v.entropy is not None and v.entropy > 7.7


def test_entropy_needs_enough_originator_bytes() -> None:
    rng = random.Random(11)
    short = classify_flow(UDP, 50000, 50000, [rng.randbytes(100)], [rng.randbytes(1400)])
    assert short.kind == "none" and "only 100 bytes" in short.detail


def test_entropy_true_positive_rate_on_random_bytes() -> None:
    rng = random.Random(12)
    for n in (128, 256, 512, 1024):
        passed = sum(judge((rng.randbytes(n),)).passed for _ in range(1000))
        assert passed >= 995, n


def benign_texts() -> list[bytes]:
    """Plain text that is on every machine running the tests: the standard library's sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))[:120]
    return [f.read_bytes() for f in files if f.stat().st_size > 3000]


def synthetic_png(seed: int, width: int = 96, height: int = 64) -> bytes:
    """A PNG of a noisy gradient: deflate-compressed, flat-histogram IDAT after small chunks."""
    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00" + bytes((x * 3 + y + rng.randrange(40)) & 0xFF for x in range(width * 3))
        for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))


def synthetic_jpeg(seed: int) -> bytes:
    """JFIF markers with table segments, then random entropy-coded data with 0xFF stuffing."""
    rng = random.Random(seed)
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb\x00\x43\x00" + bytes(rng.randrange(1, 60) for _ in range(64))
    sof = b"\xff\xc0\x00\x11\x08\x00\x40\x00\x60\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    dht = b"\xff\xc4\x00\x1f\x00" + bytes([0, 1, 5, 1, 1, 1, 1, 1, 1] + [0] * 7) + bytes(range(12))
    scan = rng.randbytes(3000).replace(b"\xff", b"\xff\x00")
    return b"\xff\xd8" + app0 + dqt + sof + dht + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + scan


def segments(data: bytes, mss: int = 1448) -> tuple[bytes, ...]:
    return tuple(data[i : i + mss] for i in range(0, min(len(data), 4 * mss), mss))


def benign_samples() -> Iterator[tuple[str, tuple[bytes, ...]]]:
    texts = benign_texts()
    for text in texts:
        body = gzip.compress(text)
        header = (
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        yield "gzip HTTP response", segments(header + body)
        yield "gzip HTTP response, minimal header", segments(b"HTTP/1.1 200 OK\r\n\r\n" + body)
        yield "gzip HTTP response, header alone in packet 1", (header, *segments(body)[:3])
        yield "gzip upload by HTTP POST", segments(b"POST /u HTTP/1.1\r\nHost: h\r\n\r\n" + body)
        yield "gzip body alone", segments(body)
        yield "plain text", segments(text)
    for seed in range(60):
        png, jpeg = synthetic_png(seed), synthetic_jpeg(seed)
        yield "PNG", segments(png)
        yield "PNG in an HTTP response", segments(b"HTTP/1.1 200 OK\r\n\r\n" + png)
        yield "JPEG", segments(jpeg)
    yield "SIP", (b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n" * 4,)
    yield (
        "DNS",
        (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x07example\x03com\x00" * 9,),
    )


def test_entropy_false_positive_rate_on_compressed_but_plain_payloads() -> None:
    rejected: dict[str, list[int]] = {}
    for name, payloads in benign_samples():
        counts = rejected.setdefault(name, [0, 0])
        counts[0] += judge(payloads).passed
        counts[1] += 1
    assert rejected["gzip HTTP response"][1] >= 20 and rejected["PNG"][1] == 60
    assert {name: fp for name, (fp, _) in rejected.items() if fp} == {}


def test_histogram_alone_cannot_tell_compressed_from_encrypted() -> None:
    """Why the format and text guards exist: a gzip body looks as random as ciphertext."""
    bodies = [gzip.compress(t)[:1024] for t in benign_texts()]
    flat = sum(deficit_ratio(b) <= MAX_DEFICIT_RATIO for b in bodies if len(b) >= 1024)
    assert flat > 0


# --------------------------------------------------------------------------- precedence, none


def test_precedence_protocol_before_entropy() -> None:
    rng = random.Random(13)
    app = [tls_record(23, rng.randbytes(1000)), tls_record(23, rng.randbytes(1000))]
    assert classify_flow(TCP, 50000, 443, app, []).kind == "tls"


@pytest.mark.parametrize(
    ("proto", "client", "server"),
    [
        (TCP, [b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"], []),
        (
            UDP,
            [
                b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
            ],
            [],
        ),
        (UDP, [b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\n\r\n"], []),
        (TCP, [], []),
    ],
)
def test_plain_protocols_are_none(proto: int, client: list[bytes], server: list[bytes]) -> None:
    v = classify_flow(proto, 50000, 443, client, server)
    assert v.kind == "none" and not v.encrypted


def test_verdict_is_frozen() -> None:
    v = classify_flow(TCP, 1, 2, [], [])
    with pytest.raises(AttributeError):
        v.kind = "tls"  # type: ignore[misc]


# --------------------------------------------------------------------------- robustness

VALID_HANDSHAKES: list[tuple[int, int, list[bytes], list[bytes]]] = [
    (
        TCP,
        50000,
        [tls_record(22, simple_hello())],
        [tls_record(22, handshake(2, server_hello_body(selected=0x0304)))],
    ),
    (TCP, 50000, [tls_record(22, handshake(1, foxio_sigalg_grease_hello()))], []),
    (UDP, 50000, [quic_long_header(1)], []),
    (UDP, 50000, [gquic_chlo("x.example")], []),
    (
        UDP,
        50000,
        [dtls_record(22, dtls_handshake(1, client_hello_body([1], [ext_sni("a")], cookie=b"")))],
        [],
    ),
    (TCP, 50000, [b"SSH-2.0-OpenSSH_9.6\r\n"], []),
    (UDP, 51820, [wg(1, 148)], [wg(2, 92)]),
    (UDP, 1194, [ovpn(7, SESSION_A), ovpn(5, SESSION_A)], [ovpn(8, SESSION_B)]),
    (UDP, 500, [ike()], []),
    (UDP, 4500, [b"\x00\x00\x00\x00" + ike()], []),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    proto=st.sampled_from([TCP, UDP, ESP, 1]),
    port=st.sampled_from([443, 500, 4500, 1194, 51820, 22, 53]),
    client=st.lists(st.binary(max_size=300), max_size=5),
    server=st.lists(st.binary(max_size=300), max_size=5),
)
def test_random_bytes_never_raise(
    proto: int, port: int, client: list[bytes], server: list[bytes]
) -> None:
    assert isinstance(classify_flow(proto, 40000, port, client, server), EncryptionVerdict)


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(0, len(VALID_HANDSHAKES) - 1),
    cut=st.integers(0, 2000),
    flip=st.integers(0, 2000),
    byte=st.integers(0, 255),
)
def test_truncated_or_corrupted_handshakes_never_raise(
    index: int, cut: int, flip: int, byte: int
) -> None:
    proto, port, client, server = VALID_HANDSHAKES[index]
    first = bytearray(client[0][: cut % (len(client[0]) + 1)])
    if first:
        first[flip % len(first)] = byte
    v = classify_flow(proto, 40000, port, [bytes(first), *client[1:]], server)
    assert isinstance(v, EncryptionVerdict)


@pytest.mark.parametrize("index", range(len(VALID_HANDSHAKES)))
def test_every_prefix_of_each_handshake_is_handled(index: int) -> None:
    proto, port, client, server = VALID_HANDSHAKES[index]
    whole = client[0]
    for cut in range(0, len(whole) + 1, max(1, len(whole) // 150)):
        classify_flow(proto, 40000, port, [whole[:cut], *client[1:]], server)


# --------------------------------------------------------------------------- real captures

Flow = tuple[int, str, int, str, int]  # proto, client ip, client port, server ip, server port


def _reader(f: BinaryIO) -> dpkt.pcap.Reader | dpkt.pcapng.Reader:
    """Pick the reader by the magic: some captures named .pcap are pcapng."""
    head = f.read(4)
    f.seek(0)
    if head == b"\x0a\x0d\x0d\x0a":
        return dpkt.pcapng.Reader(f)
    return dpkt.pcap.Reader(f)


def _network_layer(linktype: int, frame: bytes) -> object | None:
    if linktype == dpkt.pcap.DLT_EN10MB:
        return dpkt.ethernet.Ethernet(frame).data
    if linktype == 276:  # Linux SLL2: protocol type first, 20-byte header
        ether_type, frame = int.from_bytes(frame[:2], "big"), frame[20:]
        return dpkt.ip.IP(frame) if ether_type == 0x0800 else dpkt.ip6.IP6(frame)
    if linktype in (12, 14, 101, 228, 229):  # raw IP
        return dpkt.ip.IP(frame) if frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)
    return None


def capture_flows(
    path: Path, per_direction: int = 4
) -> dict[Flow, tuple[list[bytes], list[bytes]]]:
    """First payloads per direction of each 5-tuple; whoever sent the first packet is the client."""
    flows: dict[Flow, tuple[list[bytes], list[bytes]]] = {}
    index: dict[tuple[int, frozenset[tuple[str, int]]], Flow] = {}
    with path.open("rb") as f:
        reader = _reader(f)
        linktype = reader.datalink()
        records = iter(reader)
        while True:
            try:
                _, frame = next(records)
            except StopIteration:
                break
            except (dpkt.NeedData, dpkt.UnpackError, ValueError):
                break
            try:
                ip = _network_layer(linktype, frame)
            except (dpkt.UnpackError, IndexError):
                continue
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            family = socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6
            proto = ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt
            src, dst = socket.inet_ntop(family, ip.src), socket.inet_ntop(family, ip.dst)
            l4 = ip.data
            if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
                sport, dport, payload = l4.sport, l4.dport, bytes(l4.data)
            else:
                sport = dport = 0
                payload = bytes(l4)
            key = (proto, frozenset({(src, sport), (dst, dport)}))
            if key not in index:
                index[key] = (proto, src, sport, dst, dport)
                flows[index[key]] = ([], [])
            flow = index[key]
            client, server = flows[flow]
            side = client if (src, sport) == (flow[1], flow[2]) else server
            if payload and len(side) < per_direction:
                side.append(payload)
    return flows


def verdicts(path: Path) -> dict[Flow, EncryptionVerdict]:
    return {
        flow: classify_flow(flow[0], flow[2], flow[4], client, server)
        for flow, (client, server) in capture_flows(path).items()
    }


def test_real_wireguard(shared_pcaps: Path) -> None:
    results = verdicts(shared_pcaps / "ndpi-wireguard.pcap")
    public = [v for f, v in results.items() if "139.162.192.157" in (f[1], f[3])]
    assert public and all(v.kind == "wireguard" for v in public)


def test_real_tailscale(shared_pcaps: Path) -> None:
    results = verdicts(shared_pcaps / "ndpi-tailscale.pcap")
    assert {v.kind for v in results.values()} == {"wireguard"}


def test_real_openvpn_udp_and_tcp(shared_pcaps: Path) -> None:
    results = verdicts(shared_pcaps / "ndpi-openvpn.pcap")
    kinds = {(f[0], v.kind) for f, v in results.items()}
    assert kinds == {(UDP, "openvpn"), (TCP, "openvpn")}


def test_real_tinc(shared_pcaps: Path) -> None:
    """tinc: UDP data packets are bare ciphertext (entropy); its TCP meta connection opens with
    a plain-text ID / key exchange, so its first payloads are honestly not encrypted."""
    results = verdicts(shared_pcaps / "ndpi-tinc.pcap")
    by_proto = {(f[0], v.kind) for f, v in results.items()}
    assert by_proto == {(UDP, "entropy"), (TCP, "none")}


def test_real_forticlient_is_tls(shared_pcaps: Path) -> None:
    results = verdicts(shared_pcaps / "ndpi-forticlient.pcap")
    assert {v.kind for v in results.values()} == {"tls"}
    assert all(v.fingerprint for v in results.values())


@pytest.mark.parametrize(
    ("name", "sni"),
    [
        ("ndpi-youtube_quic.pcap", "yt3.ggpht.com"),
        ("ndpi-youtubeupload.pcap", "upload.youtube.com"),
    ],
)
def test_real_gquic(shared_pcaps: Path, name: str, sni: str) -> None:
    results = verdicts(shared_pcaps / name)
    quic = [v for f, v in results.items() if f[0] == UDP]
    assert quic and all(v.kind == "quic" and v.version.startswith("gQUIC") for v in quic)  # type: ignore[union-attr]
    assert sni in {v.sni for v in quic}


def test_real_whatsapp_tls_sni(shared_pcaps: Path) -> None:
    results = verdicts(shared_pcaps / "ndpi-whatsappfiles.pcap")
    assert {v.kind for v in results.values()} == {"tls"}
    assert {v.sni for v in results.values()} == {"mmg-fna.whatsapp.net"}


def test_real_http_ipv6_has_tls_and_quic(shared_pcaps: Path) -> None:
    kinds = {v.kind for v in verdicts(shared_pcaps / "ndpi-http_ipv6.pcap").values()}
    assert {"tls", "quic"} <= kinds


@pytest.mark.parametrize(
    "name",
    [
        "ndpi-windowsupdate_over_http.pcap",
        "ndpi-sip.pcap",
        "ndpi-dns_exfiltration.pcap",
        "tcpdump-LINKTYPE_RAW_ipv4.pcap",
        "filesamples-simple_http_sll2.pcap",
    ],
)
def test_real_plain_captures_are_never_encrypted(shared_pcaps: Path, name: str) -> None:
    results = verdicts(shared_pcaps / name)
    assert results
    assert {v.kind for v in results.values()} == {"none"}
