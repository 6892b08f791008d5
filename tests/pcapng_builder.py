"""Craft pcapng bytes block by block, in either byte order, for reader tests.

Each method appends one block and returns its byte offset, so tests can state where things
are without re-deriving the layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 1
OPB_TYPE = 2
SPB_TYPE = 3
NRB_TYPE = 4
ISB_TYPE = 5
EPB_TYPE = 6
DSB_TYPE = 10
CUSTOM_TYPE = 0x00000BAD


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


@dataclass
class PcapngBuilder:
    """Appends blocks; ``big`` is the byte order of the current section."""

    big: bool = False
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    block_ends: list[int] = field(default_factory=list)

    @property
    def _e(self) -> str:
        return ">" if self.big else "<"

    def option(self, code: int, value: bytes) -> bytes:
        return struct.pack(self._e + "HH", code, len(value)) + pad4(value)

    def options(self, opts: list[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        return b"".join(self.option(c, v) for c, v in opts) + self.option(0, b"")

    def raw(self, data: bytes) -> int:
        """Append bytes as they are (for deliberately broken blocks)."""
        at = self.size
        self.parts.append(data)
        self.size += len(data)
        self.block_ends.append(self.size)
        return at

    def block(self, btype: int, body: bytes, length: int | None = None) -> int:
        body = pad4(body)
        total = 12 + len(body) if length is None else length
        return self.raw(
            struct.pack(self._e + "II", btype, total) + body + struct.pack(self._e + "I", total)
        )

    def shb(
        self,
        big: bool = False,
        version: tuple[int, int] = (1, 0),
        opts: list[tuple[int, bytes]] | None = None,
    ) -> int:
        """Start a section; the byte order switches to ``big`` from here on."""
        self.big = big
        body = struct.pack(self._e + "IHHq", 0x1A2B3C4D, version[0], version[1], -1)
        return self.block(SHB_TYPE, body + self.options(opts or []))

    def idb(
        self,
        linktype: int = 1,
        snaplen: int = 0,
        tsresol: int | None = None,
        tsoffset: int | None = None,
        opts: list[tuple[int, bytes]] | None = None,
    ) -> int:
        all_opts = [(2, b"eth0")]  # if_name, so the parser has to walk past another option
        if tsresol is not None:
            all_opts.append((9, bytes([tsresol])))
        if tsoffset is not None:
            all_opts.append((14, struct.pack(self._e + "q", tsoffset)))
        all_opts += opts or []
        body = struct.pack(self._e + "HHI", linktype, 0, snaplen) + self.options(all_opts)
        return self.block(IDB_TYPE, body)

    def epb(
        self,
        iface: int,
        ts: int,
        data: bytes,
        wirelen: int | None = None,
        caplen: int | None = None,
    ) -> int:
        """Enhanced packet block; ``ts`` is the raw 64-bit count in the interface's units."""
        head = struct.pack(
            self._e + "IIIII",
            iface,
            ts >> 32,
            ts & 0xFFFFFFFF,
            len(data) if caplen is None else caplen,
            len(data) if wirelen is None else wirelen,
        )
        return self.block(EPB_TYPE, head + pad4(data) + self.options([(1, b"a comment")]))

    def opb(
        self, iface: int, ts: int, data: bytes, wirelen: int | None = None, drops: int = 0
    ) -> int:
        head = struct.pack(
            self._e + "HHIIII",
            iface,
            drops,
            ts >> 32,
            ts & 0xFFFFFFFF,
            len(data),
            len(data) if wirelen is None else wirelen,
        )
        return self.block(OPB_TYPE, head + data)

    def spb(self, data: bytes, wirelen: int | None = None) -> int:
        return self.block(
            SPB_TYPE, struct.pack(self._e + "I", len(data) if wirelen is None else wirelen) + data
        )

    def bytes(self) -> bytes:
        return b"".join(self.parts)
