"""Application payload bytes in real wire formats: TLS, QUIC, WireGuard, DNS, HTTP, SRTP.

Handshakes are well-formed enough for real parsers (dpkt, scapy, Wireshark) to read their
fields; encrypted parts are random bytes, which is what ciphertext looks like on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

TLS_RECORD_MAX = 16384 + 17  # TLS 1.3: plaintext limit plus content type and AEAD tag
TLS_RECORD_MIN = 5 + 17

_CIPHER_SUITES = (
    0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
    0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035,
)  # fmt: skip
_SIG_ALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
_GROUPS = (0x001D, 0x0017, 0x0018)


def random_bytes(rng: np.random.Generator, n: int) -> bytes:
    """High-entropy filler: ciphertext, or an unknown encrypted protocol."""
    return rng.bytes(n)


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _u16_list(values: Sequence[int]) -> bytes:
    return struct.pack(f"!H{len(values)}H", 2 * len(values), *values)


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    """One TLS record: type, legacy version, length, body."""
    return struct.pack("!BHH", content_type, version, len(body)) + body


def tls_client_hello(
    rng: np.random.Generator, sni: str, alpn: Sequence[str] = ("h2", "http/1.1")
) -> bytes:
    """A TLS 1.3 ClientHello record (as browsers send it) naming ``sni`` and offering ``alpn``."""
    name = sni.encode("ascii")
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    protos = b"".join(bytes([len(p)]) + p.encode("ascii") for p in alpn)
    key_share = struct.pack("!HHH", 36, 0x001D, 32) + rng.bytes(32)
    extensions = b"".join(
        [
            _ext(0x0000, server_name),
            _ext(0x0017, b""),  # extended_master_secret
            _ext(0xFF01, b"\x00"),  # renegotiation_info
            _ext(0x000A, _u16_list(_GROUPS)),  # supported_groups
            _ext(0x000B, b"\x01\x00"),  # ec_point_formats
            _ext(0x0023, b""),  # session_ticket
            _ext(0x0010, struct.pack("!H", len(protos)) + protos),  # ALPN
            _ext(0x0005, b"\x01\x00\x00\x00\x00"),  # status_request
            _ext(0x000D, _u16_list(_SIG_ALGS)),  # signature_algorithms
            _ext(0x0033, key_share),  # key_share
            _ext(0x002D, b"\x01\x01"),  # psk_key_exchange_modes
            _ext(0x002B, b"\x04\x03\x04\x03\x03"),  # supported_versions: TLS 1.3, 1.2
        ]
    )
    # pad the handshake to 512 bytes like Chrome and Firefox do
    fixed = 2 + 32 + 33 + 2 + 2 * len(_CIPHER_SUITES) + 2 + 2 + len(extensions)
    if fixed + 4 < 512:
        extensions += _ext(0x0015, bytes(max(0, 512 - fixed - 4 - 4)))
    body = (
        struct.pack("!H", 0x0303)
        + rng.bytes(32)
        + bytes([32])
        + rng.bytes(32)
        + _u16_list(_CIPHER_SUITES)
        + b"\x01\x00"
        + struct.pack("!H", len(extensions))
        + extensions
    )
    return tls_record(0x16, _handshake(1, body), version=0x0301)


def tls_server_hello(rng: np.random.Generator, session_id: bytes | None = None) -> bytes:
    """A TLS 1.3 ServerHello record (TLS_AES_128_GCM_SHA256, x25519)."""
    sid = session_id if session_id is not None else rng.bytes(32)
    extensions = _ext(0x002B, b"\x03\x04") + _ext(
        0x0033, struct.pack("!HH", 0x001D, 32) + rng.bytes(32)
    )
    body = (
        struct.pack("!H", 0x0303)
        + rng.bytes(32)
        + bytes([len(sid)])
        + sid
        + struct.pack("!HB", 0x1301, 0)
        + struct.pack("!H", len(extensions))
        + extensions
    )
    return tls_record(0x16, _handshake(2, body))


CHANGE_CIPHER_SPEC = tls_record(0x14, b"\x01")


def tls_server_flight(rng: np.random.Generator, cert_bytes: int = 2800) -> bytes:
    """ServerHello, ChangeCipherSpec and the encrypted rest of the server's handshake."""
    encrypted = [
        tls_record(0x17, rng.bytes(n)) for n in (int(rng.integers(30, 60)), cert_bytes, 281, 69)
    ]
    return tls_server_hello(rng) + CHANGE_CIPHER_SPEC + b"".join(encrypted)


def tls_client_finish(rng: np.random.Generator) -> bytes:
    """The client's ChangeCipherSpec and encrypted Finished."""
    return CHANGE_CIPHER_SPEC + tls_record(0x17, rng.bytes(53))


def tls_app_data(rng: np.random.Generator, total: int) -> bytes:
    """Application-data records (0x17 0x03 0x03 len ...) whose bytes add up to exactly ``total``.

    Exact totals let scenarios state the bytes a burst carried without rounding.
    """
    if total < TLS_RECORD_MIN:
        raise ValueError(f"a TLS record needs at least {TLS_RECORD_MIN} bytes, not {total}")
    buf = bytearray(rng.bytes(total))
    pos = 0
    while pos < total:
        remaining = total - pos
        size = min(remaining, 5 + TLS_RECORD_MAX)
        if 0 < remaining - size < TLS_RECORD_MIN:
            size = remaining - TLS_RECORD_MIN
        buf[pos : pos + 5] = struct.pack("!BHH", 0x17, 0x0303, size - 5)
        pos += size
    return bytes(buf)


# QUIC (RFC 9000). Protected header bits are random, as header protection makes them.
QUIC_V1 = 0x00000001


def _varint(value: int) -> bytes:
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return struct.pack("!H", 0x4000 | value)
    return struct.pack("!I", 0x80000000 | value)


def quic_long(
    rng: np.random.Generator,
    packet_type: int,
    dcid: bytes,
    scid: bytes,
    size: int,
    token: bytes = b"",
) -> bytes:
    """A version-1 long-header packet (0 Initial, 2 Handshake) of exactly ``size`` bytes."""
    first = 0xC0 | (packet_type << 4) | int(rng.integers(0, 16))
    head = (
        struct.pack("!BI", first, QUIC_V1) + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    )
    if packet_type == 0:
        head += _varint(len(token)) + token
    rest = size - len(head) - 2
    if rest < 20:
        raise ValueError(f"QUIC long-header packet of {size} bytes is too small")
    return head + _varint(rest) + rng.bytes(rest)


def quic_initial(rng: np.random.Generator, dcid: bytes, scid: bytes, size: int = 1200) -> bytes:
    """A client Initial padded to 1200 bytes, as RFC 9000 requires."""
    return quic_long(rng, 0, dcid, scid, size)


def quic_server_hello(rng: np.random.Generator, dcid: bytes, scid: bytes) -> list[bytes]:
    """The server's first flight: Initial+Handshake coalesced, then more Handshake packets."""
    first = quic_long(rng, 0, dcid, scid, 140) + quic_long(rng, 2, dcid, scid, 1060)
    return [first, quic_long(rng, 2, dcid, scid, 1200), quic_long(rng, 2, dcid, scid, 520)]


def quic_short(rng: np.random.Generator, dcid: bytes, size: int) -> bytes:
    """A 1-RTT short-header packet: fixed bit set, destination CID, protected payload."""
    first = 0x40 | int(rng.integers(0, 64))
    return bytes([first]) + dcid + rng.bytes(max(1, size - 1 - len(dcid)))


# WireGuard (whitepaper section 5.4); the sizes are fixed by the protocol.
WG_INITIATION = 148
WG_RESPONSE = 92
WG_TRANSPORT_OVERHEAD = 32


def wg_initiation(rng: np.random.Generator, sender: int) -> bytes:
    """Handshake initiation: type 1, sender index, ephemeral, encrypted static/timestamp, MACs."""
    return struct.pack("<B3xI", 1, sender) + rng.bytes(32 + 48 + 28) + rng.bytes(16) + bytes(16)


def wg_response(rng: np.random.Generator, sender: int, receiver: int) -> bytes:
    """Handshake response: type 2, both indices, ephemeral, empty encrypted, MACs."""
    return (
        struct.pack("<B3xII", 2, sender, receiver) + rng.bytes(32 + 16) + rng.bytes(16) + bytes(16)
    )


def wg_transport(rng: np.random.Generator, receiver: int, counter: int, inner: int) -> bytes:
    """Transport data: type 4, receiver index, 64-bit counter, inner packet padded to 16, tag."""
    padded = -(-inner // 16) * 16
    return struct.pack("<B3xIQ", 4, receiver, counter) + rng.bytes(padded + 16)


# DNS (RFC 1035) with an EDNS(0) OPT record, as stub resolvers send today.
DNS_A = 1
DNS_AAAA = 28
_EDNS_OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


def _qname(name: str) -> bytes:
    return (
        b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split(".")) + b"\x00"
    )


def dns_query(txid: int, name: str, qtype: int = DNS_A) -> bytes:
    """A recursive query for ``name``."""
    header = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 1)
    return header + _qname(name) + struct.pack("!HH", qtype, 1) + _EDNS_OPT


def dns_response(
    txid: int, name: str, addresses: Sequence[bytes], qtype: int = DNS_A, ttl: int = 300
) -> bytes:
    """The answer to :func:`dns_query`: one A/AAAA record per packed address."""
    header = struct.pack("!HHHHHH", txid, 0x8180, 1, len(addresses), 0, 1)
    question = _qname(name) + struct.pack("!HH", qtype, 1)
    answers = b"".join(struct.pack("!HHHIH", 0xC00C, qtype, 1, ttl, len(a)) + a for a in addresses)
    return header + question + answers + _EDNS_OPT


# Plain HTTP/1.1.
_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36"


def http_request(host: str, path: str = "/", method: str = "GET", user_agent: str = _UA) -> bytes:
    """An HTTP/1.1 request header block."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {user_agent}",
        "Accept: */*",
        "Accept-Encoding: gzip, deflate",
        "Connection: keep-alive",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def http_response(
    rng: np.random.Generator, body_bytes: int, content_type: str = "application/octet-stream"
) -> bytes:
    """An HTTP/1.1 200 response: text headers then ``body_bytes`` of (compressed-looking) body."""
    head = "\r\n".join(
        [
            "HTTP/1.1 200 OK",
            "Server: nginx",
            f"Content-Type: {content_type}",
            f"Content-Length: {body_bytes}",
            "Cache-Control: public, max-age=86400",
            "Connection: keep-alive",
            "",
            "",
        ]
    ).encode("ascii")
    return head + rng.bytes(body_bytes)


# SRTP (RFC 3711): an RTP header in the clear, encrypted payload, 10-byte auth tag.
def srtp_packet(
    rng: np.random.Generator, ssrc: int, seq: int, timestamp: int, payload: int, pt: int = 111
) -> bytes:
    """One SRTP packet (Opus payload type by default) of ``payload`` encrypted bytes."""
    header = struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
    return header + rng.bytes(payload) + rng.bytes(10)


# SSH (RFC 4253): banners and key exchange in the clear, then chacha20-poly1305@openssh.com.
SSH_MSG_KEXINIT = 20
SSH_MSG_NEWKEYS = 21
SSH_MSG_KEX_ECDH_INIT = 30
SSH_MSG_KEX_ECDH_REPLY = 31
SSH_CHANNEL_DATA_HEADER = 9  # message code, recipient channel, data length
SSH_MAX_DATA = 32768  # OpenSSH's channel packet size: larger output comes in several packets

_SSH_KEX_CLIENT = (
    "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
    "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
    "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,ext-info-c"
)
_SSH_KEX_SERVER = (
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
    "ecdh-sha2-nistp521,sntrup761x25519-sha512@openssh.com,"
    "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256"
)
_SSH_HOSTKEYS_CLIENT = (
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256"
)
_SSH_HOSTKEYS_SERVER = "rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ssh-ed25519"
_SSH_CIPHERS = (
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,"
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com"
)
_SSH_MACS = (
    "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
    "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
    "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1"
)


def _ssh_string(data: bytes) -> bytes:
    return struct.pack("!I", len(data)) + data


def ssh_banner(software: str) -> bytes:
    """The identification line each side sends first, e.g. ``SSH-2.0-OpenSSH_9.6``."""
    return f"SSH-2.0-{software}\r\n".encode("ascii")


def ssh_packet(rng: np.random.Generator, payload: bytes, block: int = 8) -> bytes:
    """An unencrypted binary packet: length, padding length, payload, 4+ bytes of padding."""
    pad = block - (5 + len(payload)) % block
    if pad < 4:
        pad += block
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + rng.bytes(pad)


def ssh_kexinit(rng: np.random.Generator, client: bool) -> bytes:
    """SSH_MSG_KEXINIT with the algorithm lists an OpenSSH client or server offers."""
    lists = (
        _SSH_KEX_CLIENT if client else _SSH_KEX_SERVER,
        _SSH_HOSTKEYS_CLIENT if client else _SSH_HOSTKEYS_SERVER,
        _SSH_CIPHERS,
        _SSH_CIPHERS,
        _SSH_MACS,
        _SSH_MACS,
        "none,zlib@openssh.com",
        "none,zlib@openssh.com",
        "",
        "",
    )
    body = b"".join(_ssh_string(x.encode("ascii")) for x in lists)
    payload = bytes([SSH_MSG_KEXINIT]) + rng.bytes(16) + body + b"\x00" + bytes(4)
    return ssh_packet(rng, payload)


def ssh_ecdh_init(rng: np.random.Generator) -> bytes:
    """SSH_MSG_KEX_ECDH_INIT carrying the client's curve25519 public key."""
    return ssh_packet(rng, bytes([SSH_MSG_KEX_ECDH_INIT]) + _ssh_string(rng.bytes(32)))


def ssh_ecdh_reply(rng: np.random.Generator) -> bytes:
    """SSH_MSG_KEX_ECDH_REPLY (ed25519 host key, server public key, signature) and NEWKEYS."""
    host_key = _ssh_string(b"ssh-ed25519") + _ssh_string(rng.bytes(32))
    signature = _ssh_string(b"ssh-ed25519") + _ssh_string(rng.bytes(64))
    reply = (
        bytes([SSH_MSG_KEX_ECDH_REPLY])
        + _ssh_string(host_key)
        + _ssh_string(rng.bytes(32))
        + _ssh_string(signature)
    )
    return ssh_packet(rng, reply) + ssh_newkeys(rng)


def ssh_newkeys(rng: np.random.Generator) -> bytes:
    """SSH_MSG_NEWKEYS: the last packet in the clear."""
    return ssh_packet(rng, bytes([SSH_MSG_NEWKEYS]))


def ssh_encrypted(rng: np.random.Generator, payload: int) -> bytes:
    """One chacha20-poly1305@openssh.com packet carrying a ``payload``-byte message.

    Encrypted length (4), then padding length, message and padding to a multiple of 8 (at
    least 4 bytes of padding), then the 16-byte tag: a one-character keystroke
    (SSH_MSG_CHANNEL_DATA, 10 bytes) is 36 bytes on the wire.
    """
    body = 1 + payload
    pad = 8 - body % 8
    if pad < 4:
        pad += 8
    return rng.bytes(4 + body + pad + 16)


def ssh_channel_data(rng: np.random.Generator, data: int) -> bytes:
    """``data`` bytes of terminal output (or input) as SSH_MSG_CHANNEL_DATA packets."""
    out = []
    while True:
        n = min(data, SSH_MAX_DATA)
        out.append(ssh_encrypted(rng, SSH_CHANNEL_DATA_HEADER + n))
        data -= n
        if data <= 0:
            return b"".join(out)
