"""Offline endpoint geography: country, ASN and organisation per address, vectorised.

"Abroad" is the heart of a burst-transmission finding, so every remote endpoint needs a
country without network access at run time. The bundled tables (built by
``burstwatch.builders.geodata``, see docs/geoip.md) are sorted range starts searched with
``np.searchsorted``, mapped from the package's file (``burstwatch.npzmap``: nothing is read
at start, and a run keeps in memory only the pages its lookups touch); a user-supplied MaxMind-format database (``from_mmdb``) is queried once
per distinct address instead. Special-purpose addresses (private, loopback, documentation,
...) are always ``internal`` and never get a country, whatever a database says.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import ipaddress
import json
import os
import re
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, SupportsIndex

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.nets import NetSet, Sorted128, sort_u32, unsort
from burstwatch.errors import BurstwatchError
from burstwatch.netaddr import unique_pairs
from burstwatch.npzmap import load_npz

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
Codes = npt.NDArray[np.str_]

FORMAT_VERSION = 2
STALE_AFTER_DAYS = 365
NAT64_HI = np.uint64(0x0064_FF9B_0000_0000)
"""``hi`` of the well-known NAT64 prefix 64:ff9b::/96: its low 32 bits are the real IPv4 peer."""


class GeoError(BurstwatchError):
    """A geo option is unusable (bad CIDR, bad country code)."""


class GeoDataError(GeoError):
    """A geo database file is missing, unreadable or corrupt."""


class Scope(enum.IntEnum):
    """Where an endpoint is, as stored in ``uint8`` scope columns."""

    UNKNOWN = 0
    """Public address without country data."""
    INTERNAL = 1
    """Special-purpose or user-declared internal network: never abroad."""
    PUBLIC = 2
    """Public address (``lookup`` result before home/foreign classification)."""
    HOME = 3
    FOREIGN = 4


SCOPE_NAMES: tuple[str, ...] = tuple(s.name.lower() for s in Scope)

# IANA special-purpose registries (RFC 6890 and successors): not globally reachable, or not
# real endpoints. IPv4-mapped ::ffff:0:0/96 is not listed: it is checked as the IPv4 it holds.
SPECIAL_PURPOSE_NETS: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation TEST-NET-1
    "192.168.0.0/16",  # private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation TEST-NET-2
    "203.0.113.0/24",  # documentation TEST-NET-3
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, includes limited broadcast 255.255.255.255
    "::/128",  # unspecified
    "::1/128",  # loopback
    "64:ff9b:1::/48",  # local-use NAT64
    "100::/64",  # discard-only
    "2001:2::/48",  # benchmarking
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation (RFC 9637)
    "5f00::/16",  # SRv6 SIDs
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "fec0::/10",  # deprecated site-local
    "ff00::/8",  # multicast
)


@functools.lru_cache(maxsize=1)
def special_purpose() -> NetSet:
    """The special-purpose ranges as a searchable set (built once)."""
    return NetSet.from_cidrs(SPECIAL_PURPOSE_NETS)


def internal_nets(cidrs: Iterable[str]) -> NetSet:
    """Parse ``--internal-nets`` CIDRs; a bad one is a user error with a one-line message."""
    items = list(cidrs)
    for text in items:
        try:
            ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise GeoError(f"--internal-nets: {text!r} is not an IP network (CIDR)") from None
    return NetSet.from_cidrs(items)


@dataclass(frozen=True, eq=False)
class GeoResult:
    """Per-address geo columns, aligned with the queried (hi, lo) arrays.

    ``org`` indexes ``org_names`` (0 = unknown) so each name is stored once per database,
    not once per packet.
    """

    country: Codes
    """'<U2' ISO 3166 codes, "" where unknown or internal."""
    asn: U32
    """Autonomous system number, 0 where unknown."""
    org: U32
    org_names: npt.NDArray[np.object_] | OrgNames
    """Organisation names (object array of str, or ``OrgNames``), entry 0 is ""."""
    scope: U8
    """``Scope.INTERNAL`` or ``Scope.PUBLIC``."""

    def __len__(self) -> int:
        return int(self.asn.shape[0])

    def org_strings(self) -> npt.NDArray[np.object_]:
        """Organisation names per row (for output; "" where unknown)."""
        if isinstance(self.org_names, OrgNames):
            return self.org_names.take(self.org)
        return np.asarray(self.org_names, dtype=object)[self.org]

    def take(self, index: npt.ArrayLike) -> GeoResult:
        """Rows selected by an index or mask (e.g. expand per-endpoint results to packets)."""
        idx = np.asarray(index)
        return replace(
            self,
            country=self.country[idx],
            asn=self.asn[idx],
            org=self.org[idx],
            scope=self.scope[idx],
        )


def mark_internal(
    result: GeoResult, hi: npt.ArrayLike, lo: npt.ArrayLike, nets: NetSet
) -> GeoResult:
    """Set scope to internal where the address is in ``nets`` (user-declared networks).

    Country and ASN are kept: for a company's own public block they are still true, but the
    traffic is not "abroad".
    """
    if not nets:
        return result
    hit = nets.contains(hi, lo)
    if not hit.any():
        return result
    scope = result.scope.copy()
    scope[hit] = Scope.INTERNAL
    return replace(result, scope=scope)


def classify_scope(result: GeoResult, home_countries: Iterable[str]) -> U8:
    """Codes internal / home / foreign / unknown (``Scope`` values) for each address."""
    home = {c.strip().upper() for c in home_countries}
    for code in home:
        if len(code) != 2 or not code.isalpha():
            raise GeoError(f"home country {code!r} is not a two-letter ISO 3166 code")
    country = np.ascontiguousarray(result.country, dtype="<U2")
    out = np.full(country.shape, Scope.UNKNOWN, dtype=np.uint8)
    known = country != ""
    # '<U2' is 8 bytes; comparing as uint64 avoids string compares per row.
    as_int = country.view(np.uint64)
    is_home = np.zeros(country.shape, dtype=np.bool_)
    for code in sorted(home):
        is_home |= as_int == np.array(code, dtype="<U2").view(np.uint64)
    out[known & ~is_home] = Scope.FOREIGN
    out[known & is_home] = Scope.HOME
    out[result.scope == Scope.INTERNAL] = Scope.INTERNAL
    return out


class _Backend(Protocol):
    """Resolves public addresses to (country index, ASN, org index) columns."""

    def countries(self) -> Codes: ...

    def org_names(self) -> npt.NDArray[np.object_] | OrgNames: ...

    def resolve_v4(self, v4: U32) -> tuple[npt.NDArray[np.integer[Any]], U32, U32]: ...

    def resolve_v6(self, hi: U64, lo: U64) -> tuple[npt.NDArray[np.integer[Any]], U32, U32]: ...


class _RangeTables:
    """Bundled-format backend: sorted range starts plus per-row attributes."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        version = int(arrays["format_version"])
        if version != FORMAT_VERSION:
            raise GeoDataError(
                f"geo table format {version} is not supported (want {FORMAT_VERSION})"
            )
        self.v4_start = np.asarray(arrays["v4_start"], dtype=np.uint32)
        self.v6_start = Sorted128(np.asarray(arrays["v6_hi"], dtype=np.uint64),
                                  np.asarray(arrays["v6_lo"], dtype=np.uint64))
        self.asn_keys = np.asarray(arrays["asn_keys"], dtype=np.uint32)
        self.asn_org = np.asarray(arrays["asn_org"], dtype=np.uint32)
        self.v4_asn = np.asarray(arrays["v4_asn"], dtype=np.uint32)
        self.v6_asn = np.asarray(arrays["v6_asn"], dtype=np.uint32)
        self.v4_country = np.asarray(arrays["v4_country"], dtype=np.uint8)
        self.v6_country = np.asarray(arrays["v6_country"], dtype=np.uint8)
        self._countries = np.char.decode(arrays["countries"], "ascii").astype("<U2")
        self._orgs = OrgNames(np.asarray(arrays["org_blob"], dtype=np.uint8),
                              np.asarray(arrays["org_offsets"], dtype=np.int64))
        n4, n6 = self.v4_start.shape[0], len(self.v6_start)
        if not (
            n4
            and n6
            and self.v4_start[0] == 0
            and self.v6_start.hi[0] == 0
            and self.v6_start.lo[0] == 0
            and self.v4_asn.shape[0] == self.v4_country.shape[0] == n4
            and self.v6_asn.shape[0] == self.v6_country.shape[0] == n6
            and int(max(self.v4_country.max(), self.v6_country.max())) < len(self._countries)
        ):
            raise GeoDataError("geo table is inconsistent (rebuild it with burstwatch.builders.geodata)")

    def countries(self) -> Codes:
        return self._countries

    def org_names(self) -> OrgNames:
        return self._orgs

    def resolve_v4(self, v4: U32) -> tuple[U8, U32, U32]:
        row = np.searchsorted(self.v4_start, v4, side="right") - 1
        asn = self.v4_asn[row]
        return self.v4_country[row], asn, _org_of(asn, self.asn_keys, self.asn_org)

    def resolve_v6(self, hi: U64, lo: U64) -> tuple[U8, U32, U32]:
        row = self.v6_start.search_right(hi, lo) - 1
        asn = self.v6_asn[row]
        return self.v6_country[row], asn, _org_of(asn, self.asn_keys, self.asn_org)


class OrgNames:
    """The bundled organisation names, one UTF-8 blob and offsets, decoded when asked for: a
    command looks up a few of the 81 k, and decoding them all cost every start 40 ms."""

    def __init__(self, blob: bytes | U8, offsets: npt.NDArray[np.int64]) -> None:
        self._blob = np.frombuffer(blob, np.uint8) if isinstance(blob, bytes) else blob
        if offsets.ndim != 1 or offsets.shape[0] < 1 or np.any(np.diff(offsets) < 0) or (
                int(offsets[0]) < 0 or int(offsets[-1]) > len(self._blob)):
            raise GeoDataError("geo table's organisation names are inconsistent")
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, k: int) -> str:
        if not -len(self) <= k < len(self):
            raise IndexError(k)
        k %= len(self)
        return self._blob[int(self._offsets[k]):int(self._offsets[k + 1])].tobytes().decode("utf-8")

    def take(self, rows: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """The names of ``rows``, each distinct one decoded once."""
        index = np.asarray(rows, dtype=np.int64).ravel()
        distinct, inverse = np.unique(index, return_inverse=True)
        names = _object_array([self[int(k)] for k in distinct])
        return names[inverse.reshape(-1)]


def _object_array(items: Sequence[str]) -> npt.NDArray[np.object_]:
    """1-D object array of strings (``np.array`` would make a fixed-width '<U' array)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _org_of(asn: U32, keys: U32, org: U32) -> U32:
    """Org index of each AS number found (0: none). Resolved per lookup, for the rows found:
    resolving every table row at load cost each command 70 ms."""
    if keys.shape[0] == 0:
        return np.zeros(asn.shape, dtype=np.uint32)
    pos = np.minimum(np.searchsorted(keys, asn), keys.shape[0] - 1)
    return np.where(keys[pos] == asn, org[pos], 0).astype(np.uint32)


# AS numbers are 32-bit: at most ten digits (a 5,000-digit "ASN" would exceed int()'s limit).
_ASN_TEXT = re.compile(r"^\s*(?:AS)?(\d{1,10})(?!\d)\s*(.*)$", re.IGNORECASE)
_LAST_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z, the last time a date can hold


def _country_from_record(rec: Mapping[str, Any]) -> str:
    """ISO code from MaxMind/DB-IP (``country.iso_code``) or IPinfo (``country_code``) layouts."""
    candidates: list[object] = []
    country = rec.get("country")
    if isinstance(country, Mapping):
        candidates.append(country.get("iso_code"))
    candidates.append(rec.get("country_code"))
    if isinstance(country, str):
        candidates.append(country)  # older IPinfo files: "US"; IPinfo Lite puts the name here
    registered = rec.get("registered_country")
    if isinstance(registered, Mapping):
        candidates.append(registered.get("iso_code"))
    for value in candidates:
        if isinstance(value, str) and len(value) == 2 and value.isalpha():
            code = value.upper()
            if code not in ("ZZ", "XX"):
                return code
    return ""


def _asn_org_from_record(rec: Mapping[str, Any]) -> tuple[int, str]:
    """(ASN, organisation) from MaxMind ASN, DB-IP ASN or IPinfo layouts."""
    asn = 0
    for key in ("autonomous_system_number", "asn"):
        value = rec.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            asn = value
        elif isinstance(value, str):
            m = _ASN_TEXT.match(value)
            asn = int(m.group(1)) if m else 0
        if asn:
            break
    org = ""
    for key in ("autonomous_system_organization", "as_name", "asn_org", "org"):
        value = rec.get(key)
        if isinstance(value, str) and value.strip():
            org = value.strip()
            if key == "org":  # IPinfo legacy: "AS15169 Google LLC"
                m = _ASN_TEXT.match(org)
                if m and org.upper().startswith("AS"):
                    asn = asn or int(m.group(1))
                    org = m.group(2).strip()
            break
    if not 0 <= asn < 1 << 32:
        asn = 0
    return asn, org


class _NotRegular(Exception):
    """The database path is a FIFO, a socket or a device."""


class _MmdbBackend:
    """MaxMind-format backend: one reader call per distinct address, results cached."""

    CACHE_LIMIT = 1 << 20

    def __init__(self, path: Path) -> None:
        import maxminddb  # deferred: only needed when a user passes a database

        try:
            if path.exists() and not path.is_dir() and not path.is_file():
                raise _NotRegular  # a FIFO would block the reader's open for ever
            self.reader = maxminddb.open_database(str(path))
        except FileNotFoundError:
            raise GeoDataError(f"geo database not found: {path}") from None
        except IsADirectoryError:
            raise GeoDataError(f"geo database is a directory, not a file: {path}") from None
        except PermissionError:
            raise GeoDataError(f"geo database not readable (permission denied): {path}") from None
        except _NotRegular:
            raise GeoDataError(f"geo database is not a regular file (a FIFO or a device): {path}") from None
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
            raise GeoDataError(f"not a valid MaxMind DB (.mmdb) file: {path} ({exc})") from None
        self.metadata = self.reader.metadata()
        self._codes: dict[str, int] = {"": 0}
        self._orgs: dict[str, int] = {"": 0}
        self._cache: dict[int, tuple[int, int, int]] = {}
        self._countries_cache: Codes | None = None
        self._orgs_cache: npt.NDArray[np.object_] | None = None

    def countries(self) -> Codes:
        if self._countries_cache is None or self._countries_cache.shape[0] != len(self._codes):
            self._countries_cache = np.array(list(self._codes), dtype="<U2")
        return self._countries_cache

    def org_names(self) -> npt.NDArray[np.object_]:
        if self._orgs_cache is None or self._orgs_cache.shape[0] != len(self._orgs):
            self._orgs_cache = _object_array(list(self._orgs))
        return self._orgs_cache

    def _resolve_one(
        self, key: int, addr: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> tuple[int, int, int]:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        try:
            rec = self.reader.get(addr)
        except ValueError:  # IPv6 address in an IPv4-only database
            rec = None
        except Exception as exc:  # corrupt data section: surface as a user-facing error
            raise GeoDataError(f"geo database lookup failed for {addr}: {exc}") from None
        if isinstance(rec, Mapping):
            code = _country_from_record(rec)
            asn, org = _asn_org_from_record(rec)
        else:
            code, asn, org = "", 0, ""
        out = (
            self._codes.setdefault(code, len(self._codes)),
            asn,
            self._orgs.setdefault(org, len(self._orgs)),
        )
        if len(self._cache) >= self.CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _columns(
        self, rows: list[tuple[int, int, int]], inverse: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.uint16], U32, U32]:
        arr = np.array(rows, dtype=np.uint32).reshape(-1, 3)
        return (
            arr[:, 0].astype(np.uint16)[inverse],
            arr[:, 1][inverse],
            arr[:, 2][inverse],
        )

    def resolve_v4(self, v4: U32) -> tuple[npt.NDArray[np.uint16], U32, U32]:
        uniq, inverse = np.unique(v4, return_inverse=True)
        rows = [
            self._resolve_one((0xFFFF << 32) | v, ipaddress.IPv4Address(v)) for v in uniq.tolist()
        ]
        return self._columns(rows, inverse.ravel())

    def resolve_v6(self, hi: U64, lo: U64) -> tuple[npt.NDArray[np.uint16], U32, U32]:
        uhi, ulo, inverse = unique_pairs(hi, lo)
        rows = []
        for h, w in zip(uhi.tolist(), ulo.tolist(), strict=True):
            value = (h << 64) | w
            rows.append(self._resolve_one(value, ipaddress.IPv6Address(value)))
        return self._columns(rows, inverse)


class GeoDatabase:
    """Country, ASN and organisation lookups over (hi, lo) address columns."""

    def __init__(
        self,
        backend: _Backend,
        *,
        name: str,
        source: str,
        license: str,
        attribution: str,
        build_date: dt.date | None,
    ) -> None:
        self._backend = backend
        self.name = name
        self.source = source
        self.license = license
        self.attribution = attribution
        self.build_date = build_date
        """Date of the data (not of the burstwatch release); None if the file does not say."""

    @classmethod
    def bundled(cls) -> GeoDatabase:
        """The tables shipped in the package, loaded once per process."""
        with _bundled_lock:
            return _load_bundled()

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        """The bundled tables are pickled as a reference: a worker process loads its own
        copy once (one forked from the preloaded server has it already), instead of being
        sent about 19 MB each. Any other database is pickled whole."""
        if _load_bundled.cache_info().currsize and self is _load_bundled():
            return (GeoDatabase.bundled, ())
        return super().__reduce_ex__(protocol)

    @classmethod
    def from_tables(cls, table: Path, meta: Path | None = None) -> GeoDatabase:
        """Load tables written by ``burstwatch.builders.geodata`` (the bundled ones or a rebuilt copy)."""
        try:
            arrays = load_npz(table)
            info: dict[str, Any] = (
                json.loads(meta.read_text(encoding="utf-8")) if meta is not None else {}
            )
        except FileNotFoundError as exc:
            raise GeoDataError(f"geo table not found: {exc.filename or table}") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise GeoDataError(f"geo table unreadable: {table} ({exc})") from None
        try:
            backend = _RangeTables(arrays)
        except KeyError as exc:
            raise GeoDataError(f"geo table lacks column {exc}: {table}") from None
        date_text = info.get("data_date")
        return cls(
            backend,
            name=str(info.get("name", table.name)),
            source=str(info.get("source", table.name)),
            license=str(info.get("license", "unknown")),
            attribution=str(info.get("attribution", "")),
            build_date=dt.date.fromisoformat(date_text) if date_text else None,
        )

    @classmethod
    def from_mmdb(cls, path: str | Path) -> GeoDatabase:
        """Use a MaxMind DB file (GeoLite2/GeoIP2 Country, City or ASN, DB-IP, IPinfo)."""
        backend = _MmdbBackend(Path(path))
        meta = backend.metadata
        epoch = getattr(meta, "build_epoch", None)
        # The metadata is the file's word: a build time past year 9999 (or not a number) is
        # an unknown date, not an OverflowError.
        build_date = (
            dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).date()
            if isinstance(epoch, int) and 0 < epoch <= _LAST_EPOCH else None
        )
        description = getattr(meta, "description", {}) or {}
        text = description.get("en") if isinstance(description, dict) else None
        text = text if isinstance(text, str) else None
        db_type = str(getattr(meta, "database_type", "") or "mmdb")
        return cls(
            backend,
            name=f"{Path(path).name} ({db_type})",
            source=f"{Path(path)} ({db_type}{': ' + text if text else ''})",
            license="as supplied by the user",
            attribution="",
            build_date=build_date,
        )

    def lookup(
        self, hi: npt.ArrayLike, lo: npt.ArrayLike, internal: NetSet | None = None
    ) -> GeoResult:
        """Geo columns for each address; ``internal`` adds user-declared internal networks.

        IPv4 (IPv4-mapped, or behind the NAT64 prefix 64:ff9b::/96) is searched as uint32;
        other IPv6 as 128-bit values. Special-purpose ranges come out ``internal`` with no
        country, ASN or organisation.
        """
        hi_a = np.ascontiguousarray(hi, dtype=np.uint64).ravel()
        lo_a = np.ascontiguousarray(lo, dtype=np.uint64).ravel()
        if hi_a.shape != lo_a.shape:
            raise ValueError("hi and lo must have the same length")
        top = lo_a >> np.uint64(32)
        as_v4 = ((hi_a == 0) & (top == np.uint64(0xFFFF))) | ((hi_a == NAT64_HI) & (top == 0))
        special = special_purpose()
        if as_v4.all():
            cc, asn, org, is_special = self._lookup_v4(lo_a.astype(np.uint32))
        else:
            n = hi_a.shape[0]
            cc = np.zeros(n, dtype=np.uint16)
            asn = np.zeros(n, dtype=np.uint32)
            org = np.zeros(n, dtype=np.uint32)
            is_special = np.zeros(n, dtype=np.bool_)
            if as_v4.any():
                v4 = lo_a[as_v4].astype(np.uint32)
                cc[as_v4], asn[as_v4], org[as_v4], is_special[as_v4] = self._lookup_v4(v4)
            v6 = ~as_v4
            h6, l6 = hi_a[v6], lo_a[v6]
            cc[v6], asn[v6], org[v6] = self._backend.resolve_v6(h6, l6)
            is_special[v6] = special.contains_v6(h6, l6)
        if is_special.any():
            cc = np.where(is_special, 0, cc)
            asn = np.where(is_special, 0, asn).astype(np.uint32)
            org = np.where(is_special, 0, org).astype(np.uint32)
        scope = np.where(is_special, np.uint8(Scope.INTERNAL), np.uint8(Scope.PUBLIC))
        result = GeoResult(
            country=self._backend.countries()[cc],
            asn=asn,
            org=org,
            org_names=self._backend.org_names(),
            scope=scope.astype(np.uint8),
        )
        if internal is not None:
            result = mark_internal(result, hi_a, lo_a, internal)
        return result

    def _lookup_v4(
        self, v4: U32
    ) -> tuple[npt.NDArray[np.integer[Any]], U32, U32, npt.NDArray[np.bool_]]:
        """IPv4 attributes plus the special-purpose flag, searched in sorted order.

        Random queries make every binary-search step a cache miss; sorting them first
        (one SIMD sort) turns the search into an in-order walk and is several times faster.
        """
        sv, order = sort_u32(v4)
        cc, asn, org = self._backend.resolve_v4(sv)
        special = special_purpose()
        is_special = special.contains_v4(sv) if order is None else special.contains_v4_sorted(sv)
        return unsort(cc, order), unsort(asn, order), unsort(org, order), unsort(is_special, order)

    def age_days(self, today: dt.date | None = None) -> int | None:
        """Days since the data was built; None when the database does not say."""
        if self.build_date is None:
            return None
        return ((today or dt.date.today()) - self.build_date).days

    def is_stale(self, today: dt.date | None = None, max_age_days: int = STALE_AFTER_DAYS) -> bool:
        """True when the data is older than ``max_age_days`` (a year by default)."""
        age = self.age_days(today)
        return age is not None and age > max_age_days

    def staleness_warning(
        self, today: dt.date | None = None, max_age_days: int = STALE_AFTER_DAYS
    ) -> str | None:
        """One-line warning for run headers when the data is old, else None.

        Address blocks move between countries and networks; old data misplaces endpoints.
        """
        if not self.is_stale(today, max_age_days):
            return None
        return (
            f"geo data is {self.age_days(today)} days old (from {self.build_date}); "
            "update burstwatch or pass a current .mmdb file"
        )

    def header(self) -> str:
        """Run-header line naming the data, its date and licence."""
        date = self.build_date.isoformat() if self.build_date else "unknown"
        return f"geo data: {self.name}, data date {date}, licence {self.license}"


_bundled_lock = threading.Lock()  # one load, whichever thread asks first


def _new_lock_in_child() -> None:
    """A process forked while the loading thread held the lock starts with a free one (the
    thread is not in the child; the child loads the tables itself if it needs them)."""
    global _bundled_lock
    _bundled_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


@functools.lru_cache(maxsize=1)
def _load_bundled() -> GeoDatabase:
    """Load the package-data tables (cached: a few hundred ms, done once per process)."""
    data = resources.files("burstwatch.enrich.data")
    table = data.joinpath("geo.npz")
    meta = data.joinpath("geo.json")
    if not table.is_file() or not meta.is_file():
        raise GeoDataError(
            "bundled geo tables are missing from the installation; reinstall burstwatch "
            "or rebuild them with python -m burstwatch.builders.geodata"
        )
    with resources.as_file(table) as table_path, resources.as_file(meta) as meta_path:
        return GeoDatabase.from_tables(Path(table_path), Path(meta_path))
