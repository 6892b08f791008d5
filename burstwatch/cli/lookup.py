"""`burstwatch lookup ADDR...`: what burstwatch believes about an address."""

from __future__ import annotations

import argparse
from typing import Any

from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import add_enrich_options, geo_from_args, settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("lookup", help="show country, ASN, organisation and scope of addresses")
    p.add_argument("addresses", nargs="+", metavar="ADDR")
    p.add_argument("--json", action="store_true", help="one JSON object per address, per line")
    add_enrich_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not above: the parser is built without loading numpy or the tables.
    import numpy as np

    from burstwatch.cli.console import TextTable, clean, stderr_console, stdout_console
    from burstwatch.config.settings import ConfigError
    from burstwatch.enrich.geo import SCOPE_NAMES, classify_scope, internal_nets
    from burstwatch.netaddr import ip_to_hilo
    from burstwatch.outputs.jsonline import json_line

    settings = settings_from_args(args)
    geo = geo_from_args(args)
    pairs = []
    for text in args.addresses:
        try:
            pairs.append(ip_to_hilo(text))
        except ValueError:
            raise ConfigError(f"{text!r} is not an IPv4 or IPv6 address") from None
    hi = np.array([p[0] for p in pairs], np.uint64)
    lo = np.array([p[1] for p in pairs], np.uint64)
    nets = internal_nets(settings.internal_nets) if settings.internal_nets else None
    res = geo.lookup(hi, lo, nets)
    scope = classify_scope(res, settings.home_countries)
    orgs = res.org_strings()
    home = ",".join(settings.home_countries)
    records = [
        {
            "address": text,
            "country": str(res.country[i]) or None,
            "asn": int(res.asn[i]) or None,
            "organization": str(orgs[i]) or None,
            "scope": SCOPE_NAMES[int(scope[i])],
            "home_countries": list(settings.home_countries),
        }
        for i, text in enumerate(args.addresses)
    ]
    if args.json:
        for r in records:
            print(json_line(r, compact=False))
        return ExitCode.OK
    out = stdout_console()
    stderr_console().print(f"{geo.header()}; home countries: {home}", markup=False)
    warn = geo.staleness_warning()
    if warn:
        stderr_console().print(f"burstwatch: warning: {clean(warn)}")
    t = TextTable("address", "country", "ASN", "organisation", "scope")
    for r in records:
        t.add_row(r["address"], r["country"] or "-", str(r["asn"] or "-"), r["organization"] or "-", r["scope"])
    out.print(t)
    return ExitCode.OK
