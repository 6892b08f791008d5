"""Who is on the far end: the registrable domain of a server name, or the remote network.

Uploads to "a.files.example.co.uk" and "b.files.example.co.uk" go to one party, as do
connections to neighbouring addresses of one provider without a name. The Public Suffix
List ships inside ``publicsuffixlist`` (no download at run time); its private section is
used too, so buckets and pages on shared hosts ("x.s3.amazonaws.com", "y.github.io") are
parties of their own. Everything here is computed once per distinct name or address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from publicsuffixlist import PublicSuffixList

from burstwatch.netaddr import hilo_to_ip, is_ipv4_mapped, unique_pairs

U64 = npt.NDArray[np.uint64]
V4_NET_MASK = np.uint64(~0xFF & ((1 << 64) - 1))
V6_NET_MASK = np.uint64(((1 << 48) - 1) << 16)  # the top 48 bits of ``hi``


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def registrable_domain(name: str) -> str | None:
    """"upload.files.example.co.uk" -> "example.co.uk"; None for "" and address literals.

    A name with no registrable part ("localhost", "co.uk") is its own party."""
    name = name.strip().rstrip(".").lower()
    if not name:
        return None
    try:
        ipaddress.ip_address(name.strip("[]"))
        return None
    except ValueError:
        pass
    return _psl().privatesuffix(name) or name


def from_distinct(values: Sequence[str | None], inverse: npt.NDArray[np.integer]) -> pa.Array:
    """A string column given its distinct values and each row's index among them."""
    return pa.DictionaryArray.from_arrays(
        pa.array(inverse.astype(np.int32, copy=False)), pa.array(values, pa.string())
    )


def domains(sni: pa.Array) -> pa.Array:
    """Registrable domain of each server name (null where there is none)."""
    encoded = pc.dictionary_encode(sni)
    names = [registrable_domain(s) for s in encoded.dictionary.to_pylist()]
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.array(names, pa.string()))


def addresses(hi: U64, lo: U64) -> pa.Array:
    """Each (hi, lo) address as text, formatted once per distinct address."""
    uhi, ulo, inverse = unique_pairs(hi, lo)
    return from_distinct([hilo_to_ip(h, w) for h, w in zip(uhi.tolist(), ulo.tolist(), strict=True)],
                         inverse)


def networks(hi: U64, lo: U64) -> pa.Array:
    """Each address's /24 (IPv4) or /48 (IPv6) as "a.b.c.0/24" or "2001:db8:1::/48"."""
    v4 = is_ipv4_mapped(hi, lo)
    net_hi = np.where(v4, hi, hi & V6_NET_MASK)
    net_lo = np.where(v4, lo & V4_NET_MASK, np.uint64(0))
    uhi, ulo, inverse = unique_pairs(net_hi, net_lo)
    bits = np.where(is_ipv4_mapped(uhi, ulo), 24, 48).tolist()
    names = [f"{hilo_to_ip(h, w)}/{b}" for h, w, b in zip(uhi.tolist(), ulo.tolist(), bits, strict=True)]
    return from_distinct(names, inverse)
