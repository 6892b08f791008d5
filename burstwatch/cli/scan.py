"""`burstwatch scan FILE...`: which sessions sent bursty encrypted traffic abroad, and why.

Exit status: 0 nothing flagged, 1 something flagged, 2 error (like grep).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from burstwatch.alerts.frame import rule_catalog
from burstwatch.alerts.record import LEVEL_ORDER, Alert
from burstwatch.cli.console import stderr_console, stdout_console
from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import add_flow_options, add_input_options, flow_config
from burstwatch.cli.progress import progress_bar
from burstwatch.cli.scoring import add_score_options, make_detector
from burstwatch.enrich.annotate import (
    EnrichStats,
    FlowAnnotator,
    add_enrich_options,
    geo_from_args,
    settings_from_args,
)
from burstwatch.errors import BurstwatchError
from burstwatch.flows.roles import local_nets
from burstwatch.pipeline import RunStats, run_flows
from burstwatch.rules import load_rules
from burstwatch.rules_path import bundled_rules_dir


class ScanError(BurstwatchError):
    """scan cannot start (no rules found, alerts file unwritable)."""


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="flag bursty encrypted sessions to foreign endpoints")
    add_input_options(p)
    p.add_argument("--rules", nargs="+", metavar="PATH", help="rule files or folders (default: the shipped rules)")
    p.add_argument("--alerts", metavar="OUT.jsonl", help="also write alerts as JSON lines here")
    p.add_argument("--format", choices=("table", "jsonl"), default="table",
                   help="standard output: a table for people (default) or JSON lines")
    add_flow_options(p)
    add_enrich_options(p)
    add_score_options(p)
    p.set_defaults(handler=run)


def _rule_paths(args: argparse.Namespace) -> list[str]:
    if args.rules:
        return list(args.rules)
    bundled = bundled_rules_dir()
    if bundled is None:
        raise ScanError("no rules given and the shipped rules are not installed; use --rules PATH")
    return [str(bundled)]


def _open_alerts(path: str | None) -> IO[str] | None:
    if not path:
        return None
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise ScanError(f"{path}: cannot write alerts ({exc.strerror})") from None


def _alert_lines(a: Alert) -> tuple[str, str, str]:
    """(headline, rules, why) for one alert, shared by the table and the plain listing."""
    r = a.to_record()
    bw = r["burstwatch"]
    dst = r["destination"]
    geo = dst.get("geo", {}).get("country_iso_code", "--")
    asn = dst.get("as", {})
    org = asn.get("organization", {}).get("name", "")
    where = f"{geo} AS{asn['number']} {org}".strip() if asn.get("number") else geo
    enc = bw["encryption"]["kind"]
    sni = r.get("tls", {}).get("client", {}).get("server_name")
    head = (
        f"{r['event']['start'][:19].replace('T', ' ')}  {r['source']['ip']}:{r['source']['port']}"
        f" -> {dst['ip']}:{dst['port']}/{r['network']['transport']}  {where}  "
        f"{enc}{f' ({sni})' if sni else ''}"
    )
    rules = "; ".join(f"{h['id']} {h['name']}" for h in bw["rules"]) or r["rule"]["name"]
    return head, rules, bw["reason"]


def _print_alerts(out: Console, alerts: list[Alert], plain: bool) -> None:
    if plain:
        for a in alerts:
            head, rules, why = _alert_lines(a)
            print(f"{a.level.upper():<8} {head}")
            print(f"         rules: {rules}")
            print(f"         why: {why}")
        return
    t = Table(title="Alerts (most severe first)", title_justify="left", expand=True)
    t.add_column("level", no_wrap=True)
    t.add_column("session", ratio=3)
    t.add_column("rules and why", ratio=4)
    for a in alerts:
        head, rules, why = _alert_lines(a)
        t.add_row(a.level, head, f"{rules}\n[dim]{why}[/dim]")
    out.print(t)


def run(args: argparse.Namespace) -> int:
    err = stderr_console()
    as_table = args.format == "table"
    out: Console = stdout_console() if as_table else err
    settings = settings_from_args(args)
    geo = geo_from_args(args)
    rules = load_rules(_rule_paths(args), rule_catalog())
    detector, model_line = make_detector(rules, args)
    alerts_file = _open_alerts(args.alerts)

    inputs = ", ".join("<stdin>" if f == "-" else f for f in args.files)
    out.print(f"burstwatch scan: {inputs}", markup=False)
    out.print(f"home countries: {', '.join(settings.home_countries)} ({settings.source})", markup=False)
    out.print(f"rules: {len(rules)} loaded from {', '.join(_rule_paths(args))}", markup=False)
    out.print(geo.header(), markup=False)
    out.print(model_line, markup=False)
    stale = geo.staleness_warning()
    if stale:
        err.print(f"burstwatch: warning: {stale}", markup=False)

    stats = RunStats()
    enrich_stats = EnrichStats()
    alerts: list[Alert] = []
    try:
        with progress_bar() as progress:
            for batch in run_flows(args.files, flow_config(args), stats,
                                   lambda: FlowAnnotator(geo, settings, enrich_stats), progress,
                                   on_features=detector.prefetch,
                                   local=local_nets(settings.internal_nets),
                                   separate=args.separate):
                for alert in detector(batch):
                    alerts.append(alert)
                    line = json.dumps(alert.to_record(), separators=(",", ":"))
                    if alerts_file is not None:
                        alerts_file.write(line + "\n")
                        alerts_file.flush()
                    if not as_table:
                        sys.stdout.write(line + "\n")
                        sys.stdout.flush()
    finally:
        if alerts_file is not None:
            alerts_file.close()
        for w in stats.warnings:
            err.print(f"burstwatch: warning: {w}", markup=False)

    alerts.sort(key=lambda a: (-a.severity, a.flow["event"]["start"]))
    if as_table:
        if alerts:
            _print_alerts(out, alerts, plain=not sys.stdout.isatty())
        else:
            out.print("No alerts.", markup=False)
    by_level = ", ".join(f"{lvl} {detector.stats.alerts_by_level.get(lvl, 0)}" for lvl in reversed(LEVEL_ORDER))
    out.print(
        f"summary: {stats.packets:,} packets, {stats.flow_rows:,} flows "
        f"({stats.window_rows:,} window records), {enrich_stats.encrypted_flows:,} encrypted, "
        f"{enrich_stats.foreign_flows:,} to foreign endpoints, "
        f"{enrich_stats.allowlisted:,} allow-listed; alerts: {len(alerts)} ({by_level})",
        markup=False,
    )
    return ExitCode.FLAGGED if alerts else ExitCode.OK
