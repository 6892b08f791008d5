"""Capture filters: tcpdump-syntax expressions compiled by libpcap, attached to a socket.

libpcap is loaded through ctypes (the shared library only, no tcpdump), because it is the one
compiler of the filter language that users already know; the kernel then runs the classic
BPF program before a packet is copied to user space, so filtered-out traffic costs nothing.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from functools import lru_cache

from burstwatch.errors import BurstwatchError

SO_ATTACH_FILTER = 26
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
BPF_RET_K = 0x06  # BPF_RET | BPF_K: accept, keeping at most k bytes

# libpcap's link types (DLT_*, not LINKTYPE_*) for the two framings a live socket delivers.
DLT_EN10MB = 1
DLT_RAW = 12

_LIBPCAP_NAMES = ("libpcap.so.1", "libpcap.so.0.8", "libpcap.so")

Program = list[tuple[int, int, int, int]]  # (code, jt, jf, k) per instruction


class FilterError(BurstwatchError):
    """The capture filter cannot be compiled or attached."""


class _BpfInsn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


@lru_cache(maxsize=1)
def _libpcap() -> ctypes.CDLL:
    import ctypes.util  # here: it runs ldconfig, and importing it costs every start 9 ms

    names = [ctypes.util.find_library("pcap"), *_LIBPCAP_NAMES]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
            ctypes.c_uint32,
        ]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.restype = None
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.restype = None
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        return lib
    raise FilterError(
        "capture filters need libpcap, which is not installed "
        "(Debian/Ubuntu: apt-get install libpcap0.8; Fedora: dnf install libpcap)"
    )


def compile_filter(expression: str, dlt: int = DLT_EN10MB, snaplen: int = 262144) -> Program:
    """Compile a tcpdump-syntax expression; accepted packets are cut to ``snaplen`` bytes."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(dlt, snaplen)
    if not handle:
        raise FilterError("libpcap could not open a handle to compile the filter")
    prog = _BpfProgram()
    try:
        text = expression.encode()
        if lib.pcap_compile(handle, ctypes.byref(prog), text, 1, PCAP_NETMASK_UNKNOWN) != 0:
            reason = (lib.pcap_geterr(handle) or b"").decode(errors="replace").strip()
            raise FilterError(f"bad capture filter {expression!r}: {reason or 'cannot compile'}")
        insns = [prog.bf_insns[i] for i in range(prog.bf_len)]
        out = [(int(i.code), int(i.jt), int(i.jf), int(i.k)) for i in insns]
        lib.pcap_freecode(ctypes.byref(prog))
        return out
    finally:
        lib.pcap_close(handle)


def snap_program(snaplen: int) -> Program:
    """A one-instruction program that accepts everything, cut to ``snaplen`` bytes."""
    return [(BPF_RET_K, 0, 0, snaplen)]


def attach_filter(sock: socket.socket, program: Program) -> None:
    """Attach a classic BPF program to a socket (SO_ATTACH_FILTER)."""
    if not program:
        raise FilterError("empty capture filter program")
    insns = (_BpfInsn * len(program))(*(_BpfInsn(*insn) for insn in program))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native layout)
    fprog = struct.pack("HP", len(program), ctypes.addressof(insns))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise FilterError(f"the kernel refused the capture filter: {exc.strerror}") from exc
