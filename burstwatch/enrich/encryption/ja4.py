"""JA4 client fingerprint of a ClientHello (FoxIO JA4 specification, the BSD-3 licensed part).

Layout ``a_b_c``: ``a`` = transport (t/q/d), version, SNI d/i, cipher count, extension count,
first+last character of the first ALPN; ``b`` = sha256 of the sorted cipher list; ``c`` = sha256
of the sorted extension list (without SNI and ALPN) then the signature algorithms in wire order.
GREASE values are ignored everywhere.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from burstwatch.enrich.encryption.hello import EXT_ALPN, EXT_SERVER_NAME, ClientHello, is_grease

Transport = Literal["t", "q", "d"]

_VERSION_CODES = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}

_EMPTY_HASH = "000000000000"


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:12]


def _is_alnum(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def alpn_code(alpn: tuple[bytes, ...]) -> str:
    """Two characters for the first ALPN value: its first and last character, "00" if none.

    A single character counts as both first and last; when either end is not alphanumeric the
    first and last characters of the value's hex form are used instead (JA4 specification).
    """
    if not alpn or not alpn[0]:
        return "00"
    value = alpn[0]
    first, last = value[0], value[-1]
    if _is_alnum(first) and _is_alnum(last):
        return chr(first) + chr(last)
    hexed = value.hex()
    return hexed[0] + hexed[-1]


def ja4_raw(hello: ClientHello, transport: Transport = "t") -> tuple[str, str, str]:
    """The three JA4 parts before hashing: (a, sorted ciphers, sorted extensions_sigalgs)."""
    ciphers = [c for c in hello.ciphers if not is_grease(c)]
    extensions = [e for e in hello.extensions if not is_grease(e)]
    sigalgs = [s for s in hello.signature_algorithms if not is_grease(s)]
    versions = [v for v in hello.supported_versions if not is_grease(v)]
    version = max(versions) if versions else hello.legacy_version
    part_a = "".join(
        (
            transport,
            _VERSION_CODES.get(version, "00"),
            "d" if EXT_SERVER_NAME in extensions else "i",
            f"{min(len(ciphers), 99):02d}",
            f"{min(len(extensions), 99):02d}",
            alpn_code(hello.alpn),
        )
    )
    cipher_list = ",".join(f"{c:04x}" for c in sorted(ciphers))
    ext_list = ",".join(
        f"{e:04x}" for e in sorted(extensions) if e not in (EXT_SERVER_NAME, EXT_ALPN)
    )
    if sigalgs:
        ext_list += "_" + ",".join(f"{s:04x}" for s in sigalgs)
    return part_a, cipher_list, ext_list


def ja4(hello: ClientHello, transport: Transport = "t") -> str:
    """The JA4 fingerprint, e.g. ``t13d1516h2_8daaf6152771_e5627efa2ab1``."""
    part_a, cipher_list, ext_list = ja4_raw(hello, transport)
    part_b = _hash12(cipher_list) if cipher_list else _EMPTY_HASH
    part_c = _hash12(ext_list) if ext_list else _EMPTY_HASH
    return f"{part_a}_{part_b}_{part_c}"
