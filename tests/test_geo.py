"""Offline geography: bundled tables, special-purpose ranges, .mmdb files, scope classes."""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import ipaddress
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.builders import geodata as geodata_build
from burstwatch.enrich.geo import (
    GeoDatabase,
    GeoDataError,
    GeoError,
    GeoResult,
    Scope,
    classify_scope,
    internal_nets,
    mark_internal,
)
from burstwatch.enrich.nets import SORT_MIN_QUERIES, NetSet, Sorted128
from burstwatch.errors import BurstwatchError
from burstwatch.netaddr import format_addresses, hilo_to_ip, ip_to_hilo, parse_addresses

DATA_DIR = geodata_build.DATA_DIR


def lookup(db: GeoDatabase, addrs: list[str], **kw: object) -> GeoResult:
    hi, lo = parse_addresses(addrs)
    return db.lookup(hi, lo, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def db() -> GeoDatabase:
    return GeoDatabase.bundled()


# --- address helpers -------------------------------------------------------------------


def test_ip_to_hilo_maps_ipv4() -> None:
    assert ip_to_hilo("8.8.8.8") == (0, 0xFFFF_0808_0808)
    assert ip_to_hilo("::ffff:8.8.8.8") == ip_to_hilo("8.8.8.8")
    assert ip_to_hilo("2001:db8::1") == (0x2001_0DB8_0000_0000, 1)
    with pytest.raises(ValueError):
        ip_to_hilo("not-an-ip")


def test_format_addresses_round_trip() -> None:
    addrs = ["8.8.8.8", "2001:4860:4860::8888", "8.8.8.8", "::1", "0.0.0.0", "::"]
    hi, lo = parse_addresses(addrs)
    assert format_addresses(hi, lo) == addrs
    assert hilo_to_ip(*ip_to_hilo("10.1.2.3")) == "10.1.2.3"
    assert format_addresses(np.zeros(0, np.uint64), np.zeros(0, np.uint64)) == []


# --- bundled data: known addresses -----------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "country", "asn", "org_part"),
    [
        ("8.8.8.8", "US", 15169, "google"),
        ("2001:4860:4860::8888", "US", 15169, "google"),
        ("::ffff:8.8.8.8", "US", 15169, "google"),
        ("64:ff9b::8.8.8.8", "US", 15169, "google"),  # NAT64: the peer is 8.8.8.8
        ("77.88.8.8", "RU", None, None),
        ("114.114.114.114", "CN", None, None),
        ("193.0.6.139", "NL", None, None),
    ],
)
def test_known_addresses(
    db: GeoDatabase, addr: str, country: str, asn: int | None, org_part: str | None
) -> None:
    r = lookup(db, [addr])
    assert r.country[0] == country
    assert r.scope[0] == Scope.PUBLIC
    if asn is not None:
        assert int(r.asn[0]) == asn
    if org_part is not None:
        assert org_part in r.org_strings()[0].lower()


def test_lookup_dtypes_and_org_table(db: GeoDatabase) -> None:
    r = lookup(db, ["8.8.8.8", "10.0.0.1", "2001:4860:4860::8888"])
    assert r.country.dtype == np.dtype("<U2")
    assert r.asn.dtype == np.uint32 and r.org.dtype == np.uint32 and r.scope.dtype == np.uint8
    assert r.org_names[0] == ""
    assert r.org[0] == r.org[2] != 0  # one table entry per organisation, not per address
    assert len(r) == 3


def test_metadata_licence_and_size() -> None:
    meta = json.loads((DATA_DIR / "geo.json").read_text(encoding="utf-8"))
    assert meta["license"] and meta["attribution"] and meta["data_date"]
    # stored uncompressed, to be mapped (burstwatch/npzmap.py); git and the wheel compress it
    table = (DATA_DIR / "geo.npz").read_bytes()
    assert len(table) < 20_000_000 and len(zlib.compress(table, 6)) < 5_000_000
    assert hashlib.sha256(table).hexdigest() == meta["table_sha256"]


def test_build_date_and_staleness(db: GeoDatabase) -> None:
    assert isinstance(db.build_date, dt.date)
    assert db.build_date.isoformat() in db.header()
    fresh = db.build_date + dt.timedelta(days=30)
    old = db.build_date + dt.timedelta(days=400)
    assert not db.is_stale(fresh) and db.staleness_warning(fresh) is None
    assert db.is_stale(old)
    warning = db.staleness_warning(old)
    assert warning is not None and "400 days old" in warning


def test_large_batches_match_small_ones(db: GeoDatabase) -> None:
    """The sorted fast path (many queries) must agree with the plain per-query search."""
    rng = np.random.default_rng(3)
    n = 3 * SORT_MIN_QUERIES
    v4 = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.uint64(0xFFFF << 32) | v4
    v6 = rng.random(n) < 0.3
    hi[v6] = rng.integers(0x2000 << 48, 0x2C10 << 48, int(v6.sum()), dtype=np.uint64)
    lo[v6] = rng.integers(0, 1 << 63, int(v6.sum()), dtype=np.uint64)
    lo[:50] = np.uint64(0xFFFF << 32) | np.uint64(0x0A000001)  # repeats and specials
    big = db.lookup(hi, lo)
    step = SORT_MIN_QUERIES // 4
    for start in range(0, n, step):
        small = db.lookup(hi[start : start + step], lo[start : start + step])
        sl = slice(start, start + step)
        assert (small.country == big.country[sl]).all()
        assert (small.asn == big.asn[sl]).all()
        assert (small.org == big.org[sl]).all()
        assert (small.scope == big.scope[sl]).all()


# --- special-purpose ranges ------------------------------------------------------------

SPECIAL = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
    "224.0.0.0/4",
    "ff00::/8",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "2001:db8::/32",
    "198.18.0.0/15",
    "2001:2::/48",
    "fc00::/7",
    "0.0.0.0/8",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
]


def start_mid_end(cidr: str) -> list[str]:
    net = ipaddress.ip_network(cidr)
    first, last = int(net.network_address), int(net.broadcast_address)
    cls = type(net.network_address)
    return [str(cls(first)), str(cls((first + last) // 2)), str(cls(last))]


@pytest.mark.parametrize("cidr", SPECIAL)
def test_special_ranges_are_internal(db: GeoDatabase, cidr: str) -> None:
    addrs = start_mid_end(cidr)
    if ipaddress.ip_network(cidr).version == 4:
        addrs += [f"::ffff:{a}" for a in addrs]  # IPv4-mapped spelling
        addrs += [f"64:ff9b::{a}" for a in addrs[:3]]  # behind NAT64
    r = lookup(db, addrs)
    assert (r.scope == Scope.INTERNAL).all(), addrs
    assert (r.country == "").all() and (r.asn == 0).all() and (r.org == 0).all()


@pytest.mark.parametrize(
    "addr",
    [
        "9.255.255.255",
        "11.0.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "1.0.0.0",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "2001:4860::1",
        "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ],
)
def test_neighbours_of_special_ranges_are_public(db: GeoDatabase, addr: str) -> None:
    assert lookup(db, [addr]).scope[0] == Scope.PUBLIC


def test_special_ranges_in_large_batch(db: GeoDatabase) -> None:
    addrs = [a for cidr in SPECIAL for a in start_mid_end(cidr)]
    addrs = (addrs + ["8.8.8.8"]) * (SORT_MIN_QUERIES // len(addrs) + 2)
    r = lookup(db, addrs)
    assert ((r.scope == Scope.INTERNAL) == (np.array(addrs) != "8.8.8.8")).all()


# --- internal nets ----------------------------------------------------------------------


def test_internal_nets_mark_internal_keep_geo(db: GeoDatabase) -> None:
    nets = internal_nets(["8.8.8.0/24", "2001:4860::/32"])
    addrs = ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "77.88.8.8"]
    r = lookup(db, addrs, internal=nets)
    assert list(r.scope) == [Scope.INTERNAL, Scope.PUBLIC, Scope.INTERNAL, Scope.PUBLIC]
    assert r.country[0] == "US"  # a declared-internal public block keeps its data
    plain = lookup(db, addrs)
    hi, lo = parse_addresses(addrs)
    assert (mark_internal(plain, hi, lo, nets).scope == r.scope).all()


def test_internal_nets_ipv6_spelling_of_ipv4() -> None:
    nets = internal_nets(["::ffff:8.8.8.0/120"])
    hi, lo = parse_addresses(["8.8.8.8", "8.8.9.1"])
    assert list(nets.contains(hi, lo)) == [True, False]


def test_internal_nets_bad_cidr() -> None:
    with pytest.raises(GeoError, match="not an IP network") as info:
        internal_nets(["10.0.0.0/8", "nonsense"])
    assert isinstance(info.value, BurstwatchError)


def py_contains(nets: list[str], addr: int) -> bool:
    ip = ipaddress.IPv6Address(addr)
    mapped = ip.ipv4_mapped
    for text in nets:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 6 and ip in net:
            return True
        if net.version == 4 and mapped is not None and mapped in net:
            return True
    return False


ADDR = st.one_of(
    st.integers(0, (1 << 32) - 1).map(lambda v: (0xFFFF << 32) | v),
    st.integers(0, (1 << 128) - 1),
    st.integers(0, 1 << 16),
)


@st.composite
def cidrs(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return f"{ipaddress.IPv4Address(draw(st.integers(0, (1 << 32) - 1)))}/{draw(st.integers(0, 32))}"
    return f"{ipaddress.IPv6Address(draw(ADDR))}/{draw(st.integers(0, 128))}"


@settings(max_examples=200, deadline=None)
@given(st.lists(cidrs(), max_size=6), st.lists(ADDR, min_size=1, max_size=20))
def test_netset_matches_ipaddress(nets: list[str], addrs: list[int]) -> None:
    hi = np.array([a >> 64 for a in addrs], dtype=np.uint64)
    lo = np.array([a & ((1 << 64) - 1) for a in addrs], dtype=np.uint64)
    got = NetSet.from_cidrs(nets).contains(hi, lo)
    assert list(got) == [py_contains(nets, a) for a in addrs]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=30),
    st.lists(st.integers(0, 40), min_size=1, max_size=30),
)
def test_sorted128_matches_bisect(table: list[int], queries: list[int]) -> None:
    """Small values in both halves force the equal-``hi`` refine step."""
    spread = lambda v: ((v // 8) << 64) | (v % 8) << 60  # noqa: E731
    keys = sorted({spread(v) for v in table})
    qs = [spread(v) + 1 if v % 3 == 0 else spread(v) for v in queries]
    s = Sorted128(
        np.array([k >> 64 for k in keys], np.uint64),
        np.array([k & ((1 << 64) - 1) for k in keys], np.uint64),
    )
    qh = np.array([q >> 64 for q in qs], np.uint64)
    ql = np.array([q & ((1 << 64) - 1) for q in qs], np.uint64)
    assert list(s.search_right(qh, ql)) == [bisect.bisect_right(keys, q) for q in qs]


def test_sorted128_large_query_path() -> None:
    rng = np.random.default_rng(5)
    keys = sorted({int(h) << 64 | int(w) for h, w in rng.integers(0, 50, (500, 2))})
    s = Sorted128(
        np.array([k >> 64 for k in keys], np.uint64),
        np.array([k & ((1 << 64) - 1) for k in keys], np.uint64),
    )
    qh = rng.integers(0, 52, 2 * SORT_MIN_QUERIES, dtype=np.uint64)
    ql = rng.integers(0, 52, 2 * SORT_MIN_QUERIES, dtype=np.uint64)
    want = [bisect.bisect_right(keys, int(h) << 64 | int(w)) for h, w in zip(qh, ql, strict=True)]
    assert list(s.search_right(qh, ql)) == want


# --- home / foreign -----------------------------------------------------------------------


def test_classify_scope() -> None:
    result = GeoResult(
        country=np.array(["US", "RU", "", "", "DE"], dtype="<U2"),
        asn=np.zeros(5, np.uint32),
        org=np.zeros(5, np.uint32),
        org_names=np.array([""], dtype=object),
        scope=np.array([2, 2, 2, 1, 1], np.uint8),
    )
    codes = classify_scope(result, {"us", "GB"})
    assert list(codes) == [Scope.HOME, Scope.FOREIGN, Scope.UNKNOWN, Scope.INTERNAL, Scope.INTERNAL]
    assert list(classify_scope(result, set())) == [4, 4, 0, 1, 1]
    with pytest.raises(GeoError):
        classify_scope(result, {"USA"})


def test_classify_scope_bundled(db: GeoDatabase) -> None:
    r = lookup(db, ["8.8.8.8", "77.88.8.8", "192.168.1.1", "2001:4860:4860::8888"])
    assert list(classify_scope(r, {"US"})) == [
        Scope.HOME,
        Scope.FOREIGN,
        Scope.INTERNAL,
        Scope.HOME,
    ]


# --- user-supplied .mmdb ------------------------------------------------------------------


@pytest.fixture()
def mmdb_path(tmp_path: Path) -> Path:
    mmdb_writer = pytest.importorskip(
        "mmdb_writer", reason="the mmdb-writer package (test-only) is needed to write a .mmdb"
    )
    from netaddr import IPSet

    w = mmdb_writer.MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="Test-Geo", description="tiny test db"
    )
    layouts: list[tuple[str, dict[str, object]]] = [
        # MaxMind GeoLite2/GeoIP2 City/Country (also DB-IP Lite)
        ("5.1.0.0/16", {"country": {"iso_code": "DE", "names": {"en": "Germany"}}}),
        ("5.2.0.0/16", {"registered_country": {"iso_code": "AT"}}),
        # MaxMind ASN
        (
            "5.3.0.0/16",
            {"autonomous_system_number": 64500, "autonomous_system_organization": "Org A"},
        ),
        # IPinfo Lite: country is the name, country_code the code, asn a string
        (
            "5.4.0.0/16",
            {"asn": "AS64501", "as_name": "Org B", "country_code": "FR", "country": "France"},
        ),
        # IPinfo legacy
        ("5.5.0.0/16", {"org": "AS64502 Org C", "country": "JP"}),
        ("2a00:1::/32", {"country": {"iso_code": "SE"}, "asn": 64503, "as_name": "Org D"}),
        # a database claiming private space must not win over the special-purpose rule
        ("10.0.0.0/8", {"country": {"iso_code": "US"}}),
    ]
    for cidr, rec in layouts:
        w.insert_network(IPSet([cidr]), rec)
    path = tmp_path / "test.mmdb"
    w.to_db_file(str(path))
    return path


def test_mmdb_round_trip(mmdb_path: Path) -> None:
    db = GeoDatabase.from_mmdb(mmdb_path)
    addrs = [
        "5.1.2.3",
        "5.2.2.3",
        "5.3.2.3",
        "5.4.2.3",
        "5.5.2.3",
        "2a00:1::5",
        "10.1.1.1",
        "9.9.9.9",
    ]
    r = lookup(db, addrs + addrs)  # repeats: resolved once per distinct address
    assert list(r.country[:8]) == ["DE", "AT", "", "FR", "JP", "SE", "", ""]
    assert list(r.asn[:8]) == [0, 0, 64500, 64501, 64502, 64503, 0, 0]
    assert list(r.org_strings()[:8]) == ["", "", "Org A", "Org B", "Org C", "Org D", "", ""]
    assert r.scope[6] == Scope.INTERNAL and r.scope[7] == Scope.PUBLIC
    assert (r.country[:8] == r.country[8:]).all()
    assert db.build_date is not None
    assert abs((db.build_date - dt.datetime.now(dt.timezone.utc).date()).days) <= 1
    assert "Test-Geo" in db.header()


def test_mmdb_ipv4_only_database_ipv6_query(tmp_path: Path) -> None:
    mmdb_writer = pytest.importorskip(
        "mmdb_writer", reason="mmdb-writer is needed to write a .mmdb"
    )
    from netaddr import IPSet

    w = mmdb_writer.MMDBWriter(ip_version=4, database_type="Test-V4")
    w.insert_network(IPSet(["5.1.0.0/16"]), {"country_code": "DE"})
    path = tmp_path / "v4.mmdb"
    w.to_db_file(str(path))
    r = lookup(GeoDatabase.from_mmdb(path), ["5.1.0.1", "2a00:1::5"])
    assert list(r.country) == ["DE", ""]


def test_mmdb_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GeoDataError, match="not found"):
        GeoDatabase.from_mmdb(tmp_path / "absent.mmdb")


def test_mmdb_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mmdb"
    path.write_bytes(b"this is not a maxmind database\x00" * 100)
    with pytest.raises(GeoDataError) as info:
        GeoDatabase.from_mmdb(path)
    assert isinstance(info.value, BurstwatchError)
    assert "\n" not in str(info.value) and "corrupt.mmdb" in str(info.value)


def test_mmdb_truncated_file(mmdb_path: Path, tmp_path: Path) -> None:
    data = mmdb_path.read_bytes()
    path = tmp_path / "truncated.mmdb"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GeoDataError):
        GeoDatabase.from_mmdb(path)


# --- build script -------------------------------------------------------------------------


def v6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def write_source(root: Path) -> None:
    pkg_c = root / "country" / "package"
    pkg_a = root / "asn" / "package"
    pkg_c.mkdir(parents=True)
    pkg_a.mkdir(parents=True)
    (pkg_c / "package.json").write_text(
        json.dumps({"name": "c", "version": "2.3.2025010203", "license": "CC0-1.0"})
    )
    (pkg_a / "package.json").write_text(
        json.dumps({"name": "a", "version": "2.3.2025020304", "license": "CC-BY-4.0"})
    )
    (pkg_c / geodata_build.COUNTRY_V4).write_text(
        f"{v4('1.0.0.0')},{v4('1.0.3.255')},AU\n"
        f"{v4('1.0.1.8')},{v4('1.0.1.15')},NZ\n"  # nested: the narrower entry wins
        f"{v4('2.0.0.0')},{v4('2.0.0.255')},FR\n"
    )
    (pkg_c / geodata_build.COUNTRY_V6).write_text(
        f"{v6('2001:200::')},{v6('2001:200:ffff:ffff:ffff:ffff:ffff:ffff')},JP\n"
        f"{v6('2001:200:1::')},{v6('2001:200:1::ffff')},KR\n"  # sub-/64 range
    )
    (pkg_a / geodata_build.ASN_V4).write_text(
        f'{v4("1.0.0.0")},{v4("1.0.0.255")},64500,"Org, with comma"\n'
        f"{v4('2.0.0.128')},{v4('2.0.1.255')},64501,Org Two\n"
    )
    (pkg_a / geodata_build.ASN_V6).write_text(
        f"{v6('2001:200:1::')},{v6('2001:200:1::ff')},64502,Org Three\n"
    )


def test_build_script_round_trip(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_source(src)
    assert geodata_build.main([str(src), "--out", str(out)]) == 0
    meta = json.loads((out / "geo.json").read_text())
    assert meta["data_date"] == "2025-01-02"  # the older package decides
    db = GeoDatabase.from_tables(out / "geo.npz", out / "geo.json")
    assert db.build_date == dt.date(2025, 1, 2)
    addrs = [
        "1.0.0.1", "1.0.1.9", "1.0.1.16", "1.0.4.0", "2.0.0.1", "2.0.0.200", "2.0.1.1",
        "0.255.255.255", "2001:200::1", "2001:200:1::1", "2001:200:1::100",
        "2001:200:1::1:0", "2001:200:2::", "2001:201::",
    ]  # fmt: skip
    r = lookup(db, addrs)
    assert list(r.country) == [
        "AU",
        "NZ",
        "AU",
        "",
        "FR",
        "FR",
        "",
        "",
        "JP",
        "KR",
        "KR",
        "JP",
        "JP",
        "",
    ]
    assert list(r.asn) == [64500, 0, 0, 0, 0, 64501, 64501, 0, 0, 64502, 0, 0, 0, 0]
    assert r.org_strings()[0] == "Org, with comma"


def test_build_script_missing_source(tmp_path: Path) -> None:
    assert geodata_build.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2


def test_from_tables_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "geo.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(GeoDataError):
        GeoDatabase.from_tables(bad)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes((DATA_DIR / "geo.npz").read_bytes()[:5000])
    with pytest.raises(GeoDataError):
        GeoDatabase.from_tables(truncated)
    with pytest.raises(GeoDataError, match="not found"):
        GeoDatabase.from_tables(tmp_path / "missing.npz")


def test_mmdb_hostile_metadata_and_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build time past year 9999 is an unknown date; a 5,000-digit ASN string is no ASN;
    neither is a traceback."""
    mmdb_writer = pytest.importorskip("mmdb_writer", reason="mmdb-writer is needed to write a .mmdb")
    from netaddr import IPSet

    w = mmdb_writer.MMDBWriter(ip_version=4, database_type="Test-Hostile",
                               description={"en": "x" * 10})
    w.insert_network(IPSet(["5.1.0.0/16"]), {"country_code": "DE", "asn": "AS" + "9" * 5000,
                                             "as_name": "Org"})
    w.insert_network(IPSet(["5.2.0.0/16"]), {"org": "AS" + "1" * 5000 + " Org Z"})
    w.insert_network(IPSet(["5.3.0.0/16"]), {"asn": "AS99999999999", "as_name": "Too big"})
    monkeypatch.setattr(mmdb_writer.time, "time", lambda: 10**13)  # year ~318857
    path = tmp_path / "hostile.mmdb"
    w.to_db_file(str(path))
    monkeypatch.undo()
    db = GeoDatabase.from_mmdb(path)
    assert db.build_date is None
    r = lookup(db, ["5.1.0.1", "5.2.0.1", "5.3.0.1"])
    assert list(r.country) == ["DE", "", ""]
    assert list(r.asn) == [0, 0, 0]


def test_bundled_tables_are_pickled_as_a_reference_others_whole(db: GeoDatabase) -> None:
    """A worker process is sent the bundled database by name (it loads its own copy once);
    a database loaded from files travels whole and answers the same."""
    import pickle

    small = pickle.dumps(db)
    assert len(small) < 200 and pickle.loads(small) is db
    other = GeoDatabase.from_tables(DATA_DIR / "geo.npz", DATA_DIR / "geo.json")
    whole = pickle.dumps(other)
    assert len(whole) > 1_000_000
    copy = pickle.loads(whole)
    assert copy is not db and copy is not other
    addrs = ["8.8.8.8", "10.0.0.1", "2001:4860:4860::8888", "193.119.129.209"]
    a, b = lookup(other, addrs), lookup(copy, addrs)
    assert a.country.tolist() == b.country.tolist() and a.asn.tolist() == b.asn.tolist()
    assert list(a.org_strings()) == list(b.org_strings()) and any(a.org_strings())


def test_bundled_organisation_names_decoded_on_demand_are_the_names() -> None:
    """``OrgNames`` decodes only the names asked for; they are the names the blob holds."""
    from burstwatch.enrich.geo import OrgNames

    names = ["", "Org A", "Ørg, with comma", "", "日本"]
    data = [n.encode() for n in names]
    offsets = np.cumsum([0] + [len(d) for d in data]).astype(np.int64)
    orgs = OrgNames(b"".join(data), offsets)
    assert len(orgs) == len(names) and [orgs[k] for k in range(len(names))] == names
    assert orgs[-1] == "日本"
    rows = np.array([4, 1, 1, 0, 2, 4], np.uint32)
    assert orgs.take(rows).tolist() == [names[k] for k in rows]
    assert orgs.take(np.zeros(0, np.uint32)).tolist() == []
    with pytest.raises(IndexError):
        orgs[len(names)]
    for bad in (offsets[::-1].copy(), np.append(offsets, offsets[-1] + 1)):
        with pytest.raises(GeoDataError):
            OrgNames(b"".join(data), bad)


# --- the shipped tables, mapped --------------------------------------------------------------


@pytest.fixture
def fresh_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled tables not yet loaded, for this test only (a cache of its own)."""
    import functools

    from burstwatch.enrich import geo

    monkeypatch.setattr(geo, "_load_bundled",
                        functools.lru_cache(maxsize=1)(geo._load_bundled.__wrapped__))


def test_the_bundled_tables_are_loaded_once_whoever_asks_meanwhile(
    monkeypatch: pytest.MonkeyPatch, fresh_bundled: None
) -> None:
    import threading

    loads: list[str] = []
    started, go = threading.Event(), threading.Event()
    real = GeoDatabase.from_tables.__func__  # type: ignore[attr-defined]

    def slow_load(cls: type[GeoDatabase], *args: Path) -> GeoDatabase:
        loads.append(threading.current_thread().name)
        started.set()
        assert go.wait(60)
        return real(cls, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(GeoDatabase, "from_tables", classmethod(slow_load))
    got: list[GeoDatabase] = []
    first = threading.Thread(target=lambda: got.append(GeoDatabase.bundled()), name="first")
    first.start()
    assert started.wait(60)  # the first asker is inside the load
    second = threading.Thread(target=lambda: got.append(GeoDatabase.bundled()), name="second")
    second.start()  # waits for the first's load, does not start its own
    go.set()
    first.join(60)
    second.join(60)
    assert loads == ["first"]
    assert len(got) == 2 and got[0] is got[1] is GeoDatabase.bundled()
    assert lookup(got[0], ["8.8.8.8"]).country[0] == "US"


def test_the_bundled_tables_are_mapped_read_only_from_the_package(fresh_bundled: None) -> None:
    """Nothing is inflated or copied at load: the range tables are views of the file."""
    import mmap

    backend = GeoDatabase.bundled()._backend
    for array in (backend.v4_start, backend.v4_asn, backend.v6_start.hi, backend.v6_start.lo):
        assert not array.flags.writeable
        base = array
        while isinstance(base, np.ndarray):
            base = base.base
        assert isinstance(base.obj if isinstance(base, memoryview) else base, mmap.mmap)

