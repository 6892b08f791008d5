"""Which side of a flow is local: orientation by role, not by who spoke first.

A burst transmitter's server may speak first after every quiet spell (it polls its implant),
and a flow split by the idle timeout starts again with whoever sends next. Upload must still
mean local -> remote, so the local side is decided from the addresses, as Zeek's
``Site::local_nets`` does: private, CGNAT, link-local and unique-local ranges plus the site's
own prefixes. Only when both or neither side is local do the packets decide: the SYN sender,
else the side of the flow that ended on this 5-tuple within the conversation timeout, else
the side with the ephemeral (client) port, else the first sender.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.nets import NetSet

# Ranges whose hosts sit on the monitored side of any sensor (RFC 1918, RFC 6598 shared space,
# loopback, link-local, RFC 4193 unique-local). Multicast and broadcast are not hosts.
PRIVATE_NETS: tuple[str, ...] = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)

ROLE_UNKNOWN = -1
ROLE_A = 1  # side "a" of the canonical key is the local side / originates
ROLE_B = 0

WELL_KNOWN_PORT_END = 1024
EPHEMERAL_PORT_START = 32768


def local_nets(extra: Iterable[str] = ()) -> NetSet:
    """The private ranges plus the site's own prefixes (``internal_nets``)."""
    return NetSet.from_cidrs([*PRIVATE_NETS, *extra])


def address_roles(
    nets: NetSet, a_hi: npt.NDArray[np.uint64], a_lo: npt.NDArray[np.uint64],
    b_hi: npt.NDArray[np.uint64], b_lo: npt.NDArray[np.uint64],
) -> npt.NDArray[np.int64]:
    """ROLE_A where only side a is local, ROLE_B where only b is, else ROLE_UNKNOWN."""
    a_local = nets.contains(a_hi, a_lo)
    b_local = nets.contains(b_hi, b_lo)
    role = np.full(a_hi.shape[0], ROLE_UNKNOWN, np.int64)
    role[a_local & ~b_local] = ROLE_A
    role[b_local & ~a_local] = ROLE_B
    return role


def port_roles(ports: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """The client side by ports, from canonical key ports (``proto << 32 | a << 16 | b``).

    A well-known port (< 1024) against any other marks the server; otherwise a port in the
    ephemeral range (>= 32768: Linux allocates from 32768, Windows and the IANA range from
    49152) against one below it marks the client. Anything else says nothing.
    """
    a_port = ((ports >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.int64)
    b_port = (ports & np.uint64(0xFFFF)).astype(np.int64)
    role = np.full(ports.shape[0], ROLE_UNKNOWN, np.int64)
    a_eph = a_port >= EPHEMERAL_PORT_START
    b_eph = b_port >= EPHEMERAL_PORT_START
    role[a_eph & ~b_eph] = ROLE_A
    role[b_eph & ~a_eph] = ROLE_B
    a_known = a_port < WELL_KNOWN_PORT_END
    b_known = b_port < WELL_KNOWN_PORT_END
    role[b_known & ~a_known] = ROLE_A
    role[a_known & ~b_known] = ROLE_B
    return role
