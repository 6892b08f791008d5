"""Who is on the far end: the registrable domain of a server name, or the remote network.

Uploads to "a.files.example.co.uk" and "b.files.example.co.uk" go to one party, as do
connections to neighbouring addresses of one provider without a name. The Public Suffix
List ships inside ``publicsuffixlist`` (no download at run time); its private section is
used too, so buckets and pages on shared hosts ("x.s3.amazonaws.com", "y.github.io") are
parties of their own. Everything here is computed once per distinct name or address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from publicsuffixlist import PSLFILE, PublicSuffixList

from burstwatch.netaddr import format_distinct, is_ipv4_mapped, unique_pairs

U64 = npt.NDArray[np.uint64]
V4_NET_MASK = np.uint64(~0xFF & ((1 << 64) - 1))
V6_NET_MASK = np.uint64(((1 << 48) - 1) << 16)  # the top 48 bits of ``hi``
_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")


@lru_cache(maxsize=2)
def _psl(punycode: bool = True) -> PublicSuffixList:
    """The Public Suffix List, parsed once; with ``punycode``, each non-ASCII rule also in its
    punycode form, as publicsuffixlist makes it by putting all 10 k rules through the IDNA
    codec (45 ms). Here only the few hundred non-ASCII ones are encoded, and only for a name
    that can match one: a name without an "xn--" label cannot, and is looked up in the list
    as written (16 ms to parse). Both give the library's own answers (tests/test_ledger.py)."""
    with open(PSLFILE, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    encoded = []
    for line in lines if punycode else ():
        if line.isascii():
            continue
        rule = line.lower().split(" ")[0].rstrip()
        if rule and not rule.startswith("//") and not rule.isascii():
            bang = "!" if rule.startswith("!") else ""
            encoded.append(bang + rule.lstrip("!").encode("idna").decode("ascii"))
    return PublicSuffixList(lines + encoded, accept_encoded_idn=False)


def registrable_domain(name: str) -> str | None:
    """"upload.files.example.co.uk" -> "example.co.uk"; None for "" and address literals.

    A name with no registrable part ("localhost", "co.uk") is its own party."""
    name = name.strip().rstrip(".").lower()
    if not name:
        return None
    if ":" in name or _DIGITS_AND_DOTS.fullmatch(name):
        try:
            ipaddress.ip_address(name.strip("[]"))
            return None
        except ValueError:
            pass
    return _psl(punycode="xn--" in name).privatesuffix(name) or name


def from_distinct(values: Sequence[str | None], inverse: npt.NDArray[np.integer]) -> pa.Array:
    """A string column given its distinct values and each row's index among them."""
    return pa.DictionaryArray.from_arrays(
        pa.array(inverse.astype(np.int32, copy=False)), pa.array(values, pa.string())
    )


class TextCache:
    """Addresses, networks and domains as text.

    Addresses and networks are formatted per distinct value of each batch, vectorised
    (``netaddr.format_distinct``); domains, which need the Public Suffix List, are
    remembered across batches (the same few names recur). The table is emptied when it
    reaches ``limit``.
    """

    def __init__(self, limit: int = 1 << 20) -> None:
        self._limit = limit
        self._domains: dict[str, str | None] = {}

    def addresses(self, hi: U64, lo: U64) -> pa.Array:
        """Each (hi, lo) address as text."""
        uhi, ulo, inverse = unique_pairs(hi, lo)
        return from_distinct(format_distinct(uhi, ulo).tolist(), inverse)

    def networks(self, hi: U64, lo: U64) -> pa.Array:
        """Each address's /24 (IPv4) or /48 (IPv6) as "a.b.c.0/24" or "2001:db8:1::/48"."""
        v4 = is_ipv4_mapped(hi, lo)
        net_hi = np.where(v4, hi, hi & V6_NET_MASK)
        net_lo = np.where(v4, lo & V4_NET_MASK, np.uint64(0))
        uhi, ulo, inverse = unique_pairs(net_hi, net_lo)
        suffix = np.where(is_ipv4_mapped(uhi, ulo), "/24", "/48").astype(object)
        return from_distinct((format_distinct(uhi, ulo) + suffix).tolist(), inverse)

    def domains(self, sni: pa.DictionaryArray) -> pa.Array:
        """Registrable domain of each server name (null where there is none), from the names
        encoded once each."""
        cache = self._domains
        if len(cache) >= self._limit:
            cache.clear()
        names = []
        for name in sni.dictionary.to_pylist():
            if name not in cache:
                cache[name] = registrable_domain(name)
            names.append(cache[name])
        return pa.DictionaryArray.from_arrays(sni.indices, pa.array(names, pa.string()))


