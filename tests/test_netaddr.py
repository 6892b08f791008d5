"""Address helpers shared by enrichment and output."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from burstwatch.netaddr import format_addresses, unique_pairs

u64 = st.integers(0, 2**64 - 1)


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2**64 - 1]), u64 | st.integers(0, 3)), max_size=60))
def test_unique_pairs_matches_numpy_unique(pairs: list[tuple[int, int]]) -> None:
    hi = np.array([p[0] for p in pairs], np.uint64)
    lo = np.array([p[1] for p in pairs], np.uint64)
    uh, ul, inverse = unique_pairs(hi, lo)
    want = sorted(set(pairs))
    assert list(zip(uh.tolist(), ul.tolist(), strict=True)) == want
    assert [want[i] for i in inverse.tolist()] == pairs


def test_format_addresses_repeats_and_mixes_families() -> None:
    v4 = (0, (0xFFFF << 32) | 0x08080808)
    v6 = (0x20014860_48600000, 0x8888)
    hi = np.array([v4[0], v6[0], v4[0]], np.uint64)
    lo = np.array([v4[1], v6[1], v4[1]], np.uint64)
    assert format_addresses(hi, lo) == ["8.8.8.8", "2001:4860:4860::8888", "8.8.8.8"]


def test_vectorised_formatting_equals_the_ipaddress_module() -> None:
    """format_distinct builds dotted quads and IPv6 text with numpy; every address, edge
    octets included, reads exactly as the standard library prints it."""
    import ipaddress

    from burstwatch.netaddr import format_distinct, parse_addresses

    rng = np.random.default_rng(3)
    quads = [".".join(str(x) for x in rng.integers(0, 256, 4)) for _ in range(500)]
    texts = [*quads, "0.0.0.0", "255.255.255.255", "10.0.0.1", "2001:db8::1", "::1",
             "fd00::50", "::ffff:0:1", "2a02:6b8::feed:ff"]
    hi, lo = parse_addresses(texts)
    expected = []
    for t in texts:
        ip = ipaddress.ip_address(t)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        expected.append(str(mapped or ip))  # IPv4-mapped addresses are stored IPv4
    assert format_distinct(hi, lo).tolist() == expected


# Hextets drawn so that zero runs of every length and place, and ties between runs, occur.
hextets = st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xABC]) | st.integers(0, 0xFFFF),
                   min_size=8, max_size=8)


@given(st.lists(hextets, min_size=1, max_size=40))
def test_ipv6_text_is_what_ipaddress_writes(addresses: list[list[int]]) -> None:
    """RFC 5952 as the standard library applies it: the longest zero run (two or more, the
    first of equals) as "::", hex digits lower-case without leading zeros."""
    import ipaddress

    from burstwatch.netaddr import format_ipv6

    values = [int("".join(f"{w:04x}" for w in words), 16) for words in addresses]
    hi = np.array([v >> 64 for v in values], np.uint64)
    lo = np.array([v & (2**64 - 1) for v in values], np.uint64)
    assert format_ipv6(hi, lo).tolist() == [str(ipaddress.IPv6Address(v)) for v in values]


def test_ipv6_text_edges() -> None:
    from burstwatch.netaddr import format_ipv6, parse_addresses

    texts = ["::", "::1", "1::", "1:0:0:1:0:0:0:1", "1:0:0:1:1:0:0:1", "1:0:1:1:1:1:1:1",
             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:1:0:1:0:1:0:1", "fe80::1:0:0:0"]
    hi, lo = parse_addresses(texts)
    assert format_ipv6(hi, lo).tolist() == [
        "::", "::1", "1::", "1:0:0:1::1", "1::1:1:0:0:1", "1:0:1:1:1:1:1:1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:1:0:1:0:1:0:1", "fe80::1:0:0:0"]  # equal runs: the first
