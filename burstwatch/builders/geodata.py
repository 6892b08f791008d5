"""Build the bundled geo range tables from ip-location-db CSV files.

Run as ``python -m burstwatch.builders.geodata SRC_DIR`` where SRC_DIR holds the
unpacked npm packages ``@ip-location-db/geo-whois-asn-country`` and ``@ip-location-db/asn``
(see docs/geoip.md). The raw CSVs are ~100 MB; the output is a few MB of sorted range
tables that ``burstwatch.enrich.geo`` searches with ``np.searchsorted``, so nothing is
downloaded or parsed at run time.

Country and ASN sources have different range boundaries; the build merges them into one
table per IP version (one search per lookup instead of two) and drops rows that repeat
their predecessor.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

FORMAT_VERSION = 2
DATA_DIR = Path(__file__).resolve().parents[1] / "enrich" / "data"
TABLE_NAME = "geo.npz"
META_NAME = "geo.json"

COUNTRY_V4 = "geo-whois-asn-country-ipv4-num.csv"
COUNTRY_V6 = "geo-whois-asn-country-ipv6-num.csv"
ASN_V4 = "asn-ipv4-num.csv"
ASN_V6 = "asn-ipv6-num.csv"

NAME = "ip-location-db"
SOURCE = (
    "ip-location-db (https://github.com/sapics/ip-location-db), npm packages "
    "@ip-location-db/geo-whois-asn-country and @ip-location-db/asn"
)
LICENSE = "CC BY 4.0"
ATTRIBUTION = (
    "Geo data: ip-location-db by sapics; country from RIR data by NRO (nro.net, CC BY 4.0) "
    "and geofeeds; ASN from RouteViews (routeviews.org, CC BY 4.0) and NRO; AS names from "
    "IP to ASN Lite by DB-IP (db-ip.com, CC BY 4.0). Modified: merged into range tables."
)
NO_COUNTRY = {"", "ZZ", "--", "XX"}

Range = tuple[int, int, int]
"""(first, last, value): an inclusive address range and a small integer attribute."""


class BuildError(Exception):
    """The source directory does not hold usable CSVs; the message says what is wrong."""


def find_source(src: Path, name: str) -> Path:
    """The one file called ``name`` under ``src`` (npm tarballs unpack into package/)."""
    hits = sorted(src.rglob(name))
    if not hits:
        raise BuildError(f"{name} not found under {src}")
    if len(hits) > 1:
        raise BuildError(f"{name} found more than once under {src}: {hits}")
    return hits[0]


def read_rows(path: Path) -> Iterator[list[str]]:
    """CSV rows; organisation names may be quoted and hold commas."""
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if row and not row[0].startswith("#"):
                yield row


def flatten(ranges: list[Range]) -> list[Range]:
    """Sorted, non-overlapping ranges where the most specific (smallest) range wins.

    The sources nest geofeed and sub-allocation entries inside larger blocks (a /29 in
    another country inside a /22); like longest-prefix routing, the narrower entry is the
    better answer for the addresses it covers.
    """
    if not ranges:
        return []
    points = sorted({f for f, _, _ in ranges} | {last + 1 for _, last, _ in ranges})
    index = {p: i for i, p in enumerate(points)}
    seg = [0] * (len(points) - 1)
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0] - ranges[i][1])
    for i in order:
        first, last, value = ranges[i]
        lo_i, hi_i = index[first], index[last + 1]
        seg[lo_i:hi_i] = [value] * (hi_i - lo_i)
    out: list[Range] = []
    for i, value in enumerate(seg):
        if not value:
            continue
        first, last = points[i], points[i + 1] - 1
        if out and out[-1][2] == value and out[-1][1] + 1 == first:
            out[-1] = (out[-1][0], last, value)
        else:
            out.append((first, last, value))
    return out


def read_country(path: Path, codes: dict[str, int]) -> list[Range]:
    """Country ranges; codes get small indices (0 stays "unknown")."""
    out: list[Range] = []
    for row in read_rows(path):
        code = row[2].strip().upper()
        if code in NO_COUNTRY:
            continue
        if len(code) != 2 or not code.isalpha():
            raise BuildError(f"{path.name}: bad country code {code!r}")
        idx = codes.setdefault(code, len(codes) + 1)
        out.append((int(row[0]), int(row[1]), idx))
    return flatten(out)


def read_asn(path: Path, names: dict[int, Counter[str]]) -> list[Range]:
    """ASN ranges; every organisation name seen per ASN is counted to pick one later."""
    out: list[Range] = []
    for row in read_rows(path):
        asn = int(row[2])
        if asn <= 0 or asn >= 1 << 32:
            continue
        org = row[3].strip() if len(row) > 3 else ""
        if org:
            names.setdefault(asn, Counter())[org] += 1
        out.append((int(row[0]), int(row[1]), asn))
    return flatten(out)


def _value_at(ranges: list[Range], points: list[int]) -> list[int]:
    """Attribute of the range holding each (sorted) point, 0 where none does."""
    out: list[int] = []
    i = 0
    n = len(ranges)
    for p in points:
        while i < n and ranges[i][1] < p:
            i += 1
        out.append(ranges[i][2] if i < n and ranges[i][0] <= p else 0)
    return out


def merge_tables(
    country: list[Range], asn: list[Range], space_end: int
) -> tuple[list[int], list[int], list[int]]:
    """One sorted table of (start, country, asn) covering [0, space_end); gaps get zeros."""
    points = {0}
    for table in (country, asn):
        for first, last, _ in table:
            points.add(first)
            if last + 1 < space_end:
                points.add(last + 1)
    starts = sorted(points)
    cc = _value_at(country, starts)
    an = _value_at(asn, starts)
    out_s: list[int] = []
    out_c: list[int] = []
    out_a: list[int] = []
    for s, c, a in zip(starts, cc, an, strict=True):
        if out_s and out_c[-1] == c and out_a[-1] == a:
            continue
        out_s.append(s)
        out_c.append(c)
        out_a.append(a)
    return out_s, out_c, out_a


def pick_org_names(names: dict[int, Counter[str]]) -> tuple[list[str], list[int], list[int]]:
    """(org table with "" first, sorted ASNs, org index per ASN): the commonest name wins."""
    chosen = {
        asn: min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        for asn, counter in names.items()
    }
    orgs = [""] + sorted(set(chosen.values()))
    org_index = {name: i for i, name in enumerate(orgs)}
    asns = sorted(chosen)
    return orgs, asns, [org_index[chosen[a]] for a in asns]


def encode_strings(items: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 blob plus offsets, so the table loads without pickle."""
    encoded = [s.encode("utf-8") for s in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.uint32)
    offsets[1:] = np.cumsum([len(b) for b in encoded], dtype=np.uint64)
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return blob, offsets


def read_data_date(src: Path) -> dt.date | None:
    """Data date from the npm versions (``2.3.YYYYMMDDhh``); the older package wins."""
    dates: list[dt.date] = []
    for pkg in src.rglob("package.json"):
        try:
            version = str(json.loads(pkg.read_text(encoding="utf-8")).get("version", ""))
        except (OSError, ValueError):
            continue
        m = re.fullmatch(r"\d+\.\d+\.(\d{4})(\d{2})(\d{2})\d{2}", version)
        if m:
            dates.append(dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    return min(dates) if dates else None


def read_packages(src: Path) -> list[dict[str, str]]:
    """Name, version and licence of each npm package found, recorded in the metadata."""
    out: list[dict[str, str]] = []
    for pkg in sorted(src.rglob("package.json")):
        try:
            info = json.loads(pkg.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        out.append({k: str(info.get(k, "")) for k in ("name", "version", "license")})
    return out


def build(src: Path, out_dir: Path, data_date: dt.date | None = None) -> dict[str, object]:
    """Read the four CSVs under ``src`` and write the table and metadata to ``out_dir``."""
    codes: dict[str, int] = {}
    names: dict[int, Counter[str]] = {}
    c4 = read_country(find_source(src, COUNTRY_V4), codes)
    c6 = read_country(find_source(src, COUNTRY_V6), codes)
    a4 = read_asn(find_source(src, ASN_V4), names)
    a6 = read_asn(find_source(src, ASN_V6), names)
    date = data_date or read_data_date(src)
    if date is None:
        raise BuildError("cannot tell the data date from package.json; pass --data-date")

    # Renumber countries alphabetically so the table does not depend on file order.
    ordered = sorted(codes)
    remap = np.zeros(len(codes) + 1, dtype=np.uint8)
    for new, code in enumerate(ordered, start=1):
        remap[codes[code]] = new
    countries = np.array([b""] + [c.encode("ascii") for c in ordered], dtype="S2")

    s4, cc4, as4 = merge_tables(c4, a4, 1 << 32)
    s6, cc6, as6 = merge_tables(c6, a6, 1 << 128)
    orgs, asn_keys, asn_org = pick_org_names(names)
    blob, offsets = encode_strings(orgs)

    v4_start = np.array(s4, dtype=np.uint32)
    v6_hi = np.array([s >> 64 for s in s6], dtype=np.uint64)
    v6_lo = np.array([s & ((1 << 64) - 1) for s in s6], dtype=np.uint64)
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.uint32),
        "v4_start": v4_start,
        "v4_country": remap[np.array(cc4, dtype=np.intp)],
        "v4_asn": np.array(as4, dtype=np.uint32),
        "v6_hi": v6_hi,
        "v6_lo": v6_lo,
        "v6_country": remap[np.array(cc6, dtype=np.intp)],
        "v6_asn": np.array(as6, dtype=np.uint32),
        "countries": countries,
        "asn_keys": np.array(asn_keys, dtype=np.uint32),
        "asn_org": np.array(asn_org, dtype=np.uint32),
        "org_blob": blob,
        "org_offsets": offsets,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    table_path = out_dir / TABLE_NAME
    # Stored, not compressed: the tables are mapped from the file where they are installed
    # (burstwatch.npzmap), so a run reads only the pages its lookups touch (the repository
    # and the wheel compress them anyway).
    np.savez(table_path, **arrays)  # type: ignore[arg-type]
    meta: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "name": NAME,
        "source": SOURCE,
        "packages": read_packages(src),
        "license": LICENSE,
        "attribution": ATTRIBUTION,
        "data_date": date.isoformat(),
        "built": dt.date.today().isoformat(),
        "rows_v4": len(s4),
        "rows_v6": len(s6),
        "countries": len(ordered),
        "asns": len(asn_keys),
        "orgs": len(orgs) - 1,
        "table_sha256": hashlib.sha256(table_path.read_bytes()).hexdigest(),
    }
    (out_dir / META_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: build and print a one-line summary."""
    parser = argparse.ArgumentParser(
        prog="python -m burstwatch.builders.geodata",
        description="Build burstwatch's bundled geo tables from ip-location-db CSVs.",
    )
    parser.add_argument("src_dir", type=Path, help="folder holding the unpacked npm packages")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    parser.add_argument(
        "--data-date",
        type=dt.date.fromisoformat,
        default=None,
        help="date of the data (YYYY-MM-DD); default: from the npm package versions",
    )
    args = parser.parse_args(argv)
    try:
        meta = build(args.src_dir, args.out, args.data_date)
    except BuildError as exc:
        print(f"burstwatch.builders.geodata: {exc}", file=sys.stderr)
        return 2
    size = (args.out / TABLE_NAME).stat().st_size
    print(
        f"wrote {args.out / TABLE_NAME} ({size / 1e6:.1f} MB): {meta['rows_v4']} IPv4 rows, "
        f"{meta['rows_v6']} IPv6 rows, {meta['asns']} ASNs, data date {meta['data_date']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
