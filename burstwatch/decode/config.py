"""Decapsulation and reassembly settings, with the reasons for their defaults.

UDP tunnels are recognised by port, as Zeek does (its ``Tunnel::vxlan_ports``,
``Tunnel::geneve_ports``, ``GTPv1`` and ``Teredo`` analyzers): VXLAN 4789 (RFC 7348), Geneve
6081 (RFC 8926), GTP-U 2152 (3GPP TS 29.281), Teredo 3544 (RFC 4380), and MPLS over UDP 6635
(RFC 7510, which tcpdump decodes on that port). A packet on such a port whose payload does not
look like that tunnel (flags, version) stays the UDP flow it is.

max_depth 8 (Zeek's ``Tunnel::max_depth`` is 2, ours is larger because a mirrored VXLAN link
carrying GRE carrying MPLS is real): IP layers beyond it are counted (``too_deep``), not opened.

Reassembly limits: a datagram is at most 65,535 bytes by definition (IPv6 jumbograms are not
fragmented); all partial datagrams together hold at most 32 MiB, so a flood of first fragments
cannot grow memory; a partial datagram is dropped 30 s after its first fragment (Linux's
``ipfrag_time`` default; Zeek uses 60 s for ``frag_timeout`` when set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the methods the decoder calls, so the settings are light
    import numpy as np
    import numpy.typing as npt

# Kinds of UDP tunnels, as held in the port table the compiled decoder reads.
UDP_VXLAN = 1
UDP_GENEVE = 2
UDP_GTP = 3
UDP_TEREDO = 4
UDP_MPLS = 5


@dataclass(frozen=True)
class DecodeConfig:
    decap: bool = True
    reassemble: bool = True
    max_depth: int = 8
    vxlan_ports: tuple[int, ...] = (4789,)
    geneve_ports: tuple[int, ...] = (6081,)
    gtp_ports: tuple[int, ...] = (2152,)
    teredo_ports: tuple[int, ...] = (3544,)
    mpls_udp_ports: tuple[int, ...] = (6635,)
    frag_timeout: float = 30.0
    frag_max_total_bytes: int = 32 << 20
    frag_max_datagram_bytes: int = 65535

    def kernel_config(self) -> npt.NDArray[np.int64]:
        """(decap on, max IP layers) for the compiled decoder."""
        import numpy as np

        return np.array([int(self.decap), self.max_depth], np.int64)

    def udp_table(self) -> npt.NDArray[np.uint8]:
        """Tunnel kind per UDP port (0: none), for the compiled decoder."""
        import numpy as np

        table = np.zeros(65536, np.uint8)
        for kind, ports in ((UDP_VXLAN, self.vxlan_ports), (UDP_GENEVE, self.geneve_ports),
                            (UDP_GTP, self.gtp_ports), (UDP_TEREDO, self.teredo_ports),
                            (UDP_MPLS, self.mpls_udp_ports)):
            for port in ports:
                table[port] = kind
        return table
