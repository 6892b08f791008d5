"""Live capture from a network interface (Linux AF_PACKET), as a stream of RecordBatches.

The kernel writes packets into a TPACKET_V3 ring shared with us: fixed-size blocks, each
holding many packets, handed over whole. We copy a ready block out (one memcpy) and return
it to the kernel at once, so a slow decode or flow stage only delays the copies we already
hold, never the kernel; then a compiled walk fills the record columns from the copy.

If the ring cannot be set up (an old kernel, locked-memory limits) the source falls back to
one ``recvmsg`` per packet, still batched, and says so in :attr:`LiveSource.notice`.

Usage::

    with LiveSource("eth1", bpf="tcp or udp") as src:
        for batch in src.batches(timeout_ms=500):
            if len(batch) == 0:   # a quiet link: advance the flow clock by wall time
                table.advance(time.time_ns())
                continue
            table.update(decode(batch))
        packets, drops = src.stats()

Several processes can share one interface's traffic: give each a ``LiveSource`` with the same
``fanout_group``; the kernel spreads packets by a symmetric flow hash, so each process sees
both directions of its flows and no flow is split.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator
from types import TracebackType

import numpy as np

from burstwatch.errors import BurstwatchError
from burstwatch.ingest.bpf import (
    DLT_EN10MB,
    DLT_RAW,
    attach_filter,
    compile_filter,
    snap_program,
)
from burstwatch.ingest.records import U8, RecordBatch
from burstwatch.jit import njit

# <linux/if_packet.h>, <linux/if_ether.h>, <linux/sockios.h>, <linux/if_arp.h>
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_IGNORE_OUTGOING = 23
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000  # reassemble IP fragments first, so they hash with their flow
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
ETH_P_ALL = 0x0003
SIOCGIFFLAGS = 0x8913
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772  # Linux loopback frames carry a (zeroed) Ethernet header
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33

# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1 from byte 8.
BD_STATUS = 8
BD_NUM_PKTS = 12
BD_FIRST_PKT = 16
BD_BLK_LEN = 20
# struct tpacket3_hdr (48 bytes): next_offset, sec, nsec, snaplen, len, status, mac, net, ...
TP3_NEXT = 0
TP3_SEC = 4
TP3_NSEC = 8
TP3_SNAPLEN = 12
TP3_LEN = 16
TP3_MAC = 24
TP3_HDR_LEN = 48
TPACKET3_HDRLEN = 68  # TPACKET_ALIGN(sizeof(tpacket3_hdr)) + sizeof(sockaddr_ll)

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
MAX_SNAPLEN = 262144
DEFAULT_BLOCK_SIZE = 1 << 20
DEFAULT_BLOCK_COUNT = 64
RETIRE_BLOCK_MS = 50  # the kernel hands over a part-filled block after this long
FRAME_SIZE = 2048  # only checked by the kernel for V3; blocks hold variable-size frames
MAX_BATCH_BYTES = 32 << 20
FALLBACK_BATCH_BYTES = 8 << 20
_BIG_ENDIAN = sys.byteorder == "big"


class LiveCaptureError(BurstwatchError):
    """Live capture cannot start or stopped: missing interface, privilege, bad settings."""


def privilege_message() -> str:
    """What to tell a user who may not open packet sockets."""
    python = os.path.realpath(sys.executable)
    return (
        "live capture needs root or CAP_NET_RAW "
        f"(try: sudo setcap cap_net_raw,cap_net_admin=eip {python})"
    )


@njit(cache=True, nogil=True)
def _u32(buf: U8, p: int, big: bool) -> int:
    a, b, c, d = int(buf[p]), int(buf[p + 1]), int(buf[p + 2]), int(buf[p + 3])
    if big:
        return (a << 24) | (b << 16) | (c << 8) | d
    return (d << 24) | (c << 16) | (b << 8) | a


@njit(cache=True, nogil=True)
def _u16(buf: U8, p: int, big: bool) -> int:
    if big:
        return (int(buf[p]) << 8) | int(buf[p + 1])
    return (int(buf[p + 1]) << 8) | int(buf[p])


@njit(cache=True, nogil=True)
def walk_blocks(
    buf: U8,
    starts: np.ndarray,
    lengths: np.ndarray,
    big: bool,
    base: int,
    offset: np.ndarray,
    caplen: np.ndarray,
    wirelen: np.ndarray,
    ts_ns: np.ndarray,
    file_offset: np.ndarray,
) -> int:
    """Fill columns from the packets of copied ring blocks; returns the packets found.

    ``buf[starts[b] : starts[b] + lengths[b]]`` is block ``b`` (its descriptor first). A
    header that points outside its block ends that block's walk rather than reading past it.
    """
    n = 0
    cap = offset.shape[0]
    for b in range(starts.shape[0]):
        start = starts[b]
        end = start + lengths[b]
        if lengths[b] < BD_BLK_LEN + 4:
            continue
        count = _u32(buf, start + BD_NUM_PKTS, big)
        pos = start + _u32(buf, start + BD_FIRST_PKT, big)
        for _ in range(count):
            if n >= cap or pos + TP3_HDR_LEN > end:
                break
            snap = _u32(buf, pos + TP3_SNAPLEN, big)
            mac = _u16(buf, pos + TP3_MAC, big)
            if pos + mac + snap > end:
                break
            offset[n] = pos + mac
            caplen[n] = snap
            wirelen[n] = _u32(buf, pos + TP3_LEN, big)
            sec = _u32(buf, pos + TP3_SEC, big)
            ts_ns[n] = sec * 1_000_000_000 + _u32(buf, pos + TP3_NSEC, big)
            file_offset[n] = base + pos
            n += 1
            step = _u32(buf, pos + TP3_NEXT, big)
            if step == 0:
                break
            pos += step
    return n


def _ifreq(iface: str) -> bytes:
    return struct.pack("16s16s", iface.encode(), b"")


def _interface(iface: str) -> tuple[int, int, int]:
    """(ifindex, flags, ARPHRD type) of an interface; a one-line error if it is unusable."""
    if not iface or len(iface.encode()) > 15 or "/" in iface:
        raise LiveCaptureError(f"{iface!r} is not a valid interface name")
    try:
        index = socket.if_nametoindex(iface)
    except OSError:
        raise LiveCaptureError(f"interface {iface} does not exist") from None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            flags = struct.unpack_from("H", fcntl.ioctl(probe, SIOCGIFFLAGS, _ifreq(iface)), 16)[0]
            hw = fcntl.ioctl(probe, SIOCGIFHWADDR, _ifreq(iface))
            hwtype = struct.unpack_from("H", hw, 16)[0]  # sockaddr.sa_family: the ARPHRD type
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise LiveCaptureError(f"interface {iface} does not exist") from None
            raise LiveCaptureError(f"cannot query interface {iface}: {exc.strerror}") from None
    if not flags & IFF_UP:
        raise LiveCaptureError(f"interface {iface} is down (bring it up: ip link set {iface} up)")
    return index, flags, hwtype


def _framing(hwtype: int) -> tuple[int, int, int]:
    """(socket type, LINKTYPE, libpcap DLT) for an interface's hardware type.

    Ethernet-like devices are read with their link header (SOCK_RAW). Anything else (tunnels,
    WireGuard, PPP) is read from the network header on (SOCK_DGRAM) and labelled raw IP.
    """
    if hwtype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
        return socket.SOCK_RAW, LINKTYPE_ETHERNET, DLT_EN10MB
    return socket.SOCK_DGRAM, LINKTYPE_RAW, DLT_RAW


def _packet_socket(kind: int) -> socket.socket:
    try:
        # Protocol 0: nothing is queued until bind(), after the filter and ring are in place.
        return socket.socket(socket.AF_PACKET, kind, 0)
    except PermissionError:
        raise LiveCaptureError(privilege_message()) from None
    except OSError as exc:
        raise LiveCaptureError(f"cannot open a packet socket: {exc.strerror}") from None


class LiveSource:
    """Packets from one interface, in promiscuous mode, as RecordBatches.

    ``bpf``: a tcpdump-syntax filter run in the kernel. ``snaplen``: bytes kept per packet.
    ``block_size`` (a power of two, multiple of the page size) x ``block_count`` is the
    kernel ring (64 MiB by default): the burst it absorbs while we are busy.
    ``fanout_group``: join this PACKET_FANOUT group (0-65535) to share the interface's
    traffic, by flow, with other sources in the same group. ``ring=False`` forces the plain
    ``recvmsg`` path. After construction, :attr:`linktype` is the LINKTYPE of every record,
    :attr:`mode` is ``"tpacket_v3"`` or ``"recvmsg"``, and :attr:`notice` says why the
    ring was not used (None when it was).
    """

    def __init__(
        self,
        iface: str,
        bpf: str | None = None,
        snaplen: int = MAX_SNAPLEN,
        block_size: int = DEFAULT_BLOCK_SIZE,
        block_count: int = DEFAULT_BLOCK_COUNT,
        fanout_group: int | None = None,
        ring: bool = True,
    ) -> None:
        _check_settings(snaplen, block_size, block_count, fanout_group)
        self.iface = iface
        self.snaplen = snaplen
        self.notice: str | None = None
        self._ifindex, _, hwtype = _interface(iface)
        self._loopback = hwtype == ARPHRD_LOOPBACK
        self.mode = "recvmsg"
        kind, self.linktype, dlt = _framing(hwtype)
        program = compile_filter(bpf, dlt, snaplen) if bpf else snap_program(snaplen)
        self._packets = 0
        self._drops = 0
        self._delivered = 0  # bytes of blocks/packets handed out so far (for file_offset)
        self._mm: mmap.mmap | None = None
        self._ring = np.zeros(0, np.uint8)
        self._words = np.zeros(0, np.uint32)
        self._block_size = block_size
        self._block_count = block_count
        self._next_block = 0
        self._closed = False
        self._sock = _packet_socket(kind)
        try:
            if ring:
                try:
                    self._setup_ring(block_size, block_count)
                    self.mode = "tpacket_v3"
                except OSError as exc:
                    self._drop_ring()
                    self._sock.close()
                    self._sock = _packet_socket(kind)
                    self.notice = (
                        f"TPACKET_V3 ring unavailable on {iface} ({exc.strerror or exc}); "
                        "capturing with one recvmsg per packet (slower, drops sooner)"
                    )
            if self._mm is None:
                self.mode = "recvmsg"
                self._setup_recv()
            attach_filter(self._sock, program)
            self._bind(fanout_group)
        except BaseException:
            self.close()
            raise
        self._poll = select.poll()
        self._poll.register(self._sock.fileno(), select.POLLIN | select.POLLERR)

    # ---- setup ----
    def _setup_ring(self, block_size: int, block_count: int) -> None:
        self._sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        frames = block_size // FRAME_SIZE * block_count
        req = struct.pack(
            "7I", block_size, block_count, FRAME_SIZE, frames, RETIRE_BLOCK_MS, 0, 0
        )
        self._sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        size = block_size * block_count
        self._mm = mmap.mmap(
            self._sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._ring = np.frombuffer(self._mm, np.uint8)
        self._words = np.frombuffer(self._mm, np.uint32)

    def _setup_recv(self) -> None:
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        want = 64 << 20
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, want)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)

    def _bind(self, fanout_group: int | None) -> None:
        if self._loopback:
            # Loopback hands every packet to taps twice (sent, then received): keep one.
            with contextlib.suppress(OSError):  # before Linux 4.20: duplicates stay
                self._sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        try:
            self._sock.bind((self.iface, ETH_P_ALL))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise LiveCaptureError(f"interface {self.iface} does not exist") from None
            raise LiveCaptureError(f"cannot capture on {self.iface}: {exc.strerror}") from None
        mreq = struct.pack("iHH8s", self._ifindex, PACKET_MR_PROMISC, 0, b"")
        try:
            self._sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            raise LiveCaptureError(
                f"cannot put {self.iface} in promiscuous mode: {exc.strerror}"
            ) from None
        if fanout_group is not None:
            mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG
            arg = struct.pack("I", fanout_group | (mode << 16))  # id low 16 bits, type_flags high
            try:
                self._sock.setsockopt(SOL_PACKET, PACKET_FANOUT, arg)
            except OSError as exc:
                raise LiveCaptureError(
                    f"cannot join fan-out group {fanout_group} on {self.iface}: {exc.strerror} "
                    "(is another program using that group id with other settings?)"
                ) from None

    # ---- reading ----
    def batches(self, timeout_ms: int = 1000) -> Iterator[RecordBatch]:
        """Yield batches as packets arrive; an empty batch after ``timeout_ms`` of silence.

        Runs until :meth:`close` (or the caller stops iterating); one consumer per source.
        Records point into a copy, so batches stay valid after the ring moves on. Raises
        LiveCaptureError if the interface goes down or disappears.
        """
        read = self._read_ring if self._mm is not None else self._read_recv
        while not self._closed:
            batch = read()
            if batch is not None:
                yield batch
                continue
            events = self._poll.poll(timeout_ms)
            if self._closed:
                return
            if not events:
                yield RecordBatch.empty()
                continue
            if any(ev & (select.POLLERR | select.POLLNVAL) for _, ev in events):
                self._raise_socket_error()

    def _raise_socket_error(self) -> None:
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err in (errno.ENETDOWN, errno.ENODEV, errno.ENXIO):
            what = "went down" if err == errno.ENETDOWN else "disappeared"
            raise LiveCaptureError(f"interface {self.iface} {what}; capture stopped")
        if err:
            raise LiveCaptureError(f"capture on {self.iface} failed: {os.strerror(err)}")

    def _read_ring(self) -> RecordBatch | None:
        """Copy out every ready block (up to MAX_BATCH_BYTES), release them, walk the copy."""
        words, ring = self._words, self._ring
        bs, nr = self._block_size, self._block_count
        stride = bs // 4
        blocks: list[int] = []
        b = self._next_block
        limit = max(1, min(nr, MAX_BATCH_BYTES // bs))
        while len(blocks) < limit and words[b * stride + BD_STATUS // 4] & TP_STATUS_USER:
            blocks.append(b)
            b = (b + 1) % nr
        if not blocks:
            return None
        self._next_block = b
        lengths = np.array(
            [min(int(words[k * stride + BD_BLK_LEN // 4]), bs) for k in blocks], np.int64
        )
        packets = sum(int(words[k * stride + BD_NUM_PKTS // 4]) for k in blocks)
        starts = np.zeros(len(blocks), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        data = np.empty(int(lengths.sum()), np.uint8)
        for k, start, length in zip(blocks, starts.tolist(), lengths.tolist(), strict=True):
            data[start : start + length] = ring[k * bs : k * bs + length]
            words[k * stride + BD_STATUS // 4] = TP_STATUS_KERNEL  # hand the block back
        offset = np.empty(packets, np.int64)
        caplen = np.empty(packets, np.uint32)
        wirelen = np.empty(packets, np.uint32)
        ts_ns = np.empty(packets, np.int64)
        file_offset = np.empty(packets, np.int64)
        n = walk_blocks(
            data, starts, lengths, _BIG_ENDIAN, self._delivered, offset, caplen, wirelen,
            ts_ns, file_offset,
        )
        self._delivered += data.shape[0]
        return self._batch(data, offset[:n], caplen[:n], wirelen[:n], ts_ns[:n], file_offset[:n])

    def _read_recv(self) -> RecordBatch | None:
        """Fallback: read waiting packets one recvmsg at a time into one batch buffer."""
        snap = self.snaplen
        size = max(FALLBACK_BATCH_BYTES, snap)
        data = np.empty(size, np.uint8)
        view = memoryview(data)  # type: ignore[arg-type]
        offs: list[int] = []
        caps: list[int] = []
        wires: list[int] = []
        stamps: list[int] = []
        pos = 0
        flags = socket.MSG_TRUNC | socket.MSG_DONTWAIT
        while pos + snap <= size:
            try:
                got, anc, _, _ = self._sock.recvmsg_into([view[pos : pos + snap]], 64, flags)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in (errno.ENETDOWN, errno.ENODEV, errno.ENXIO):
                    msg = f"interface {self.iface} went down; capture stopped"
                else:
                    msg = f"capture on {self.iface} failed: {exc.strerror}"
                raise LiveCaptureError(msg) from None
            stamp = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                    sec, nsec = struct.unpack_from("qq", payload)
                    stamp = sec * 1_000_000_000 + nsec
            cap = min(got, snap)
            offs.append(pos)
            caps.append(cap)
            wires.append(got)
            stamps.append(stamp or time.time_ns())
            pos += (cap + 7) & ~7
        if not offs:
            return None
        offset = np.array(offs, np.int64)
        self._delivered += pos
        return self._batch(
            data[:pos], offset, np.array(caps, np.uint32), np.array(wires, np.uint32),
            np.array(stamps, np.int64), offset + (self._delivered - pos),
        )

    def _batch(
        self, data: U8, offset: np.ndarray, caplen: np.ndarray, wirelen: np.ndarray,
        ts_ns: np.ndarray, file_offset: np.ndarray,
    ) -> RecordBatch:
        n = offset.shape[0]
        return RecordBatch(
            data=data, offset=offset, caplen=caplen, wirelen=wirelen, ts_ns=ts_ns,
            linktype=np.full(n, self.linktype, np.uint16), iface=np.zeros(n, np.uint16),
            file_offset=file_offset,
        )

    # ---- status and teardown ----
    def stats(self) -> tuple[int, int]:
        """(packets, drops) since open, from PACKET_STATISTICS.

        ``packets`` counts every packet that passed the filter, including the ``drops``
        the kernel could not queue (ring or buffer full). The kernel resets its counters on
        each read, so they are accumulated here.
        """
        if not self._closed:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
            packets, drops = struct.unpack_from("II", raw)
            self._packets += packets
            self._drops += drops
        return self._packets, self._drops

    def close(self) -> None:
        """Release the ring and the socket (leaves promiscuous mode). Safe to call twice."""
        if self._closed:
            return
        if hasattr(self, "_poll"):
            with contextlib.suppress(OSError):
                self.stats()  # keep the final counts readable after close
        self._closed = True
        self._drop_ring()
        self._sock.close()

    def _drop_ring(self) -> None:
        self._ring = np.zeros(0, np.uint8)
        self._words = np.zeros(0, np.uint32)
        if self._mm is not None:
            # A view still alive somewhere keeps the mapping; the GC unmaps it later.
            with contextlib.suppress(BufferError):
                self._mm.close()
            self._mm = None

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_sock") and not getattr(self, "_closed", True):
            self.close()


def _check_settings(
    snaplen: int, block_size: int, block_count: int, fanout_group: int | None
) -> None:
    """Reject settings the kernel would refuse, with the reason, before touching a socket."""
    page = mmap.PAGESIZE
    if not 64 <= snaplen <= MAX_SNAPLEN:
        raise LiveCaptureError(f"snaplen must be between 64 and {MAX_SNAPLEN} bytes, not {snaplen}")
    if block_size < page or block_size & (block_size - 1):
        raise LiveCaptureError(
            f"ring block size must be a power of two of at least {page} bytes, not {block_size}"
        )
    if block_size < snaplen + TPACKET3_HDRLEN + 64:
        raise LiveCaptureError(
            f"ring block size {block_size} cannot hold a {snaplen}-byte packet; "
            "use a larger block size or a smaller snaplen"
        )
    if block_count < 2:
        raise LiveCaptureError(f"the ring needs at least 2 blocks, not {block_count}")
    if fanout_group is not None and not 0 <= fanout_group <= 0xFFFF:
        raise LiveCaptureError(f"fan-out group must be between 0 and 65535, not {fanout_group}")
