"""SSH: the identification line "SSH-2.0-..." (or "SSH-1.99-...") in either direction.

RFC 4253 section 4.2 lets a server send other lines before its identification, so the first
few lines of each direction are searched, not just the first bytes.
"""

from __future__ import annotations

from burstwatch.enrich.encryption._bytes import printable
from burstwatch.enrich.encryption.verdict import PROTO_TCP, EncryptionVerdict, FlowSample

_PREFIXES = (b"SSH-2.0-", b"SSH-1.99-")
_MAX_LINES = 8
_MAX_LINE = 255  # RFC 4253: the identification line is at most 255 characters with CR LF


def find_banner(stream: bytes) -> str | None:
    """The SSH identification string among the first lines of ``stream``, without CR LF."""
    for line in stream.split(b"\n", _MAX_LINES)[:_MAX_LINES]:
        if line.startswith(_PREFIXES):
            banner = line.rstrip(b"\r")
            if len(banner) > _MAX_LINE - 2 or any(b < 0x20 or b > 0x7E for b in banner):
                return None
            return printable(banner)
    return None


def detect_ssh(sample: FlowSample) -> EncryptionVerdict | None:
    """SSH if the originator identifies itself, or sent nothing yet and the responder does.

    A server banner alone is not enough when the client spoke first in another protocol (an
    HTTP request sent to an SSH port gets a banner back, yet nothing was ever encrypted).
    """
    if sample.proto != PROTO_TCP:
        return None
    client = find_banner(b"".join(sample.client))
    server = find_banner(b"".join(sample.server))
    if client is None and (sample.client or server is None):
        return None
    banner = client or server
    if client and server:
        detail = f"SSH banners: client {client}, server {server}"
    else:
        detail = f"SSH banner from the {'originator' if client else 'responder'}: {banner}"
    return EncryptionVerdict(kind="ssh", version=banner, detail=detail)
