"""Community ID v1 against the published vectors of the spec (corelight/community-id-spec,
baseline/baseline_deflt.json with seed 0 and baseline_seed1.json with seed 1)."""

from __future__ import annotations

import pytest

from burstwatch.outputs.community_id import community_id

# (proto, saddr, daddr, sport, dport, id with seed 0, id with seed 1)
VECTORS = [
    (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136,
     "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136,
     "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
    (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0,
     "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
    (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4,
     "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
    (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129,
     "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
    (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134,
     "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
    (1, "192.168.0.89", "192.168.0.1", 8, 0,
     "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "192.168.0.1", "192.168.0.89", 0, 8,
     "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    (1, "10.0.0.1", "10.0.0.2", 11, 0,
     "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
    (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
    (132, "192.168.170.8", "192.168.170.56", 7, 7,
     "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
    (6, "128.232.110.120", "66.35.250.204", 34855, 80,
     "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (17, "192.168.1.52", "8.8.8.8", 54585, 53,
     "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (46, "10.1.12.1", "10.1.12.2", None, None,
     "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
]


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: f"{v[0]}-{v[1]}-{v[3]}")
def test_published_vectors(vec: tuple) -> None:
    proto, s, d, sp, dp, deflt, seed1 = vec
    assert community_id(proto, s, d, sp, dp) == deflt
    assert community_id(proto, s, d, sp, dp, seed=1) == seed1


@pytest.mark.parametrize("vec", [v for v in VECTORS if v[0] in (6, 17, 132, 46)],
                         ids=lambda v: f"{v[0]}-{v[1]}")
def test_both_directions_give_one_id(vec: tuple) -> None:
    proto, s, d, sp, dp, deflt, _ = vec
    assert community_id(proto, d, s, dp, sp) == deflt


def test_vectorised_ids_are_the_published_vectors() -> None:
    """The columns' way (one compiled SHA-1 per row) gives every published seed-0 id."""
    import numpy as np

    from burstwatch.netaddr import parse_addresses
    from burstwatch.outputs.community_id import community_ids

    sh, sl = parse_addresses([v[1] for v in VECTORS])
    dh, dl = parse_addresses([v[2] for v in VECTORS])
    got = community_ids(np.array([v[0] for v in VECTORS]), sh, sl, dh, dl,
                        np.array([v[3] or 0 for v in VECTORS]),
                        np.array([v[4] or 0 for v in VECTORS]))
    assert got == [v[5] for v in VECTORS]


def test_compiled_sha1_is_hashlibs_for_every_one_block_length() -> None:
    """Messages of 0 to 55 bytes (all that fit one padded block), random and all-ones."""
    import hashlib

    import numpy as np

    from burstwatch.outputs.community_id import _sha1_rows

    rng = np.random.default_rng(7)
    lengths = np.repeat(np.arange(56, dtype=np.int64), 4)
    messages = rng.integers(0, 256, (lengths.shape[0], 55), dtype=np.uint8)
    messages[::4] = 0xFF
    out = np.empty((lengths.shape[0], 20), np.uint8)
    _sha1_rows(messages, lengths, out)
    assert [out[i].tobytes() for i in range(out.shape[0])] == [
        hashlib.sha1(messages[i, :n].tobytes()).digest() for i, n in enumerate(lengths.tolist())]
