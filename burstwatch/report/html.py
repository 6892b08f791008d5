"""The analyst's report as one self-contained HTML file.

Everything an analyst must read is server-rendered HTML (tables, numbers, sentences), so the
file is useful with JavaScript off; the plots are plotly.js figures drawn from JSON embedded
in the page, with plotly.js itself inlined once. Nothing is fetched: a Content-Security-Policy
forbids every request, so the file behaves the same on an air-gapped laptop. Every captured
text (server names, organisations, rule titles) is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from burstwatch import __version__
from burstwatch.alerts.record import LEVEL_ORDER, human
from burstwatch.conversations.judge import departure_text
from burstwatch.report.data import CaseView, Connection, ReportData, parse_time
from burstwatch.report.plots import MAX_DRAWN, bar_figure, interval_figure, rate_figure

MAX_TABLE_BURSTS = 50  # the newest bursts listed in a case's table (all are plotted)
MAX_LISTED = 30  # connections (and their ids) listed per case, the newest

_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'")

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 6px}h3{font-size:15px;margin:16px 0 4px}
table{border-collapse:collapse;margin:6px 0 10px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,monospace;background:#f4f4f4;padding:1px 3px}
.lvl{display:inline-block;min-width:5em;text-align:center;border-radius:3px;color:#fff;font-weight:600;padding:0 4px}
.critical{background:#7b1fa2}.high{background:#c0392b}.medium{background:#d68910}.low{background:#7f8c8d}
section.case{border-top:3px solid #ccc;margin-top:26px;content-visibility:auto;contain-intrinsic-size:auto 2000px}
table.bursts td:nth-child(n+2):not(:last-child){text-align:right;font-variant-numeric:tabular-nums}.note{color:#555;font-style:italic}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px}
.plot{min-height:60px}.muted{color:#777}ul.ev{margin:2px 0 6px 0}
"""

# Plots are drawn when they come near the viewport, so a report of a hundred cases opens as
# fast as one of a few; printing draws them all first. ``burstwatchDrawAll`` draws every plot.
_RUNTIME = """
(function(){
  var config={displaylogo:false,responsive:true};
  var specs=Array.prototype.slice.call(document.querySelectorAll('script.figure'));
  function draw(s){
    if(s.dataset.drawn){return;}
    s.dataset.drawn='yes';
    var spec=JSON.parse(s.textContent);
    Plotly.newPlot(document.getElementById(s.dataset.target),spec.data,spec.layout,config);
  }
  window.burstwatchDrawAll=function(){specs.forEach(draw);};
  window.addEventListener('beforeprint',window.burstwatchDrawAll);
  if('IntersectionObserver' in window){
    var of={};
    specs.forEach(function(s){of[s.dataset.target]=s;});
    var seen=new IntersectionObserver(function(entries){
      entries.forEach(function(e){
        if(e.isIntersecting){draw(of[e.target.id]);seen.unobserve(e.target);}
      });
    },{rootMargin:'400px'});
    specs.forEach(function(s){seen.observe(document.getElementById(s.dataset.target));});
  }else{window.burstwatchDrawAll();}
  document.body.dataset.ready='yes';
})();
"""


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package (read once per process)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _utc(ns: int | None) -> str:
    if ns is None:
        return "-"
    sec, frac = divmod(int(ns), 1_000_000_000)
    return (datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            + f".{frac // 1_000_000:03d} UTC")


def _bytes(n: int | float) -> str:
    return f"{human(n, 'bytes')} ({int(n):,})"


def _json(spec: dict[str, Any]) -> str:
    """JSON safe inside <script>: no '<' can close the element or open a comment."""
    return json.dumps(spec, separators=(",", ":")).replace("<", "\\u003c")


class _Page:
    """Collects the body and the figures; figures are drawn by one script at the end."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.figures = 0

    def add(self, *text: str) -> None:
        self.parts.extend(text)

    def figure(self, spec: dict[str, Any], role: str) -> None:
        self.figures += 1
        div = f"fig{self.figures}"
        height = int(spec.get("layout", {}).get("height", 300))
        self.add(f'<div class="plot" id="{div}" data-role="{_e(role)}" '
                 f'style="height:{height}px"></div>',
                 f'<script type="application/json" class="figure" data-target="{div}">'
                 f"{_json(spec)}</script>")

    def table(self, head: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int],
              attrs: str = "") -> None:
        """A table whose cells are HTML already (each caller escapes what it captured)."""
        cls = [' class="n"' if i in numeric else "" for i in range(len(head))]
        out = [f"<table{attrs}><thead><tr>"]
        out += [f"<th{c}>{_e(h)}</th>" for h, c in zip(head, cls, strict=True)]
        out.append("</tr></thead><tbody>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td{c}>{cell}</td>" for cell, c in zip(row, cls, strict=True))
                       + "</tr>")
        out.append("</tbody></table>")
        self.add("".join(out))


def render(data: ReportData) -> str:
    """The whole report as one HTML document."""
    page = _Page()
    _overview(page, data)
    for view in data.cases:
        _case(page, view)
    title = f"burstwatch report: {len(data.cases)} case{'s' if len(data.cases) != 1 else ''}"
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1><p class='muted'>burstwatch {_e(__version__)}, made {made}. "
        "All times are UTC.</p>",
        "<noscript><p class='note'>JavaScript is off: the plots are not drawn; every number "
        "is in the tables.</p></noscript>",
        *page.parts,
        f"<script>{plotly_js()}</script>" if page.figures else "",
        f"<script>{_RUNTIME}</script>" if page.figures else "",
        "</body></html>\n",
    ])


# ---- overview ----
def _overview(page: _Page, data: ReportData) -> None:
    page.add("<section id='overview'><h2>Overview</h2>")
    for note in data.notes:
        page.add(f"<p class='note'>{_e(note)}</p>")
    levels = data.by_level()
    facts = [
        ("captures", "<br>".join(_e(c) for c in data.captures) or "-"),
        ("time span", f"{_utc(data.first_ns)} to {_utc(data.last_ns)}"),
        ("packets", "not recorded" if data.packets is None else f"{data.packets:,}"),
        ("flows", "not recorded" if data.flows is None else f"{data.flows:,}"),
        ("home countries", _e(", ".join(data.home)) or "-"),
    ]
    page.add("<table id='facts'><tbody>" + "".join(
        f"<tr><th>{k}</th><td data-fact='{k}'>{v}</td></tr>" for k, v in facts) + "</tbody></table>")
    page.add("<h3>Cases by level</h3>")
    page.table(["level", "cases"],
               ([f"<span class='lvl {lv}'>{lv}</span>",
                 f"<span data-level='{lv}'>{levels.get(lv, 0)}</span>"]
                for lv in reversed(LEVEL_ORDER)), {1}, " id='by-level'")
    page.add(f"<h3>Upload abroad</h3><p class='muted'>{_e(data.abroad_from)}; "
             f"home: {_e(', '.join(data.home))}.</p><div class='grid'>")
    for title, rows, axis in (("by country", data.by_country, "country"),
                              ("by autonomous system", data.by_asn, "AS"),
                              ("top local hosts", data.by_host, "host")):
        page.add(f"<div><h3>{title}</h3>")
        if rows:
            page.table([axis, "upload bytes"], ([_e(r.label), _e(_bytes(r.bytes))] for r in rows),
                       {1}, f" data-ranking='{axis}'")
            page.figure(bar_figure(rows, axis), f"bars-{axis}")
        else:
            page.add("<p class='muted'>none</p>")
        page.add("</div>")
    page.add("</div>")
    if data.cases:
        page.add("<h3>Cases, most severe first</h3>")
        page.table(["level", "host", "party", "where", "upload bursts", "uploaded", "last burst"],
                   ([f"<span class='lvl {_e(v.level)}'>{_e(v.level)}</span>",
                     _e(v.record["source"]["ip"]),
                     f"<a href='#case-{_e(v.case['id'])}'>{_e(v.case['party'])}</a>",
                     _e(_where(v.record)), f"{int(v.case.get('upload_bursts', 0)):,}",
                     _e(human(int(v.case.get("upload_bytes", 0)), "bytes")),
                     _e(_utc(parse_time(v.record["event"]["end"])))]
                    for v in data.cases), {4, 5}, " id='case-list'")
    page.add("</section>")


def _where(rec: dict[str, Any]) -> str:
    dst = rec["destination"]
    where = dst.get("geo", {}).get("country_iso_code", "--")
    a = dst.get("as", {})
    if a.get("number"):
        where += f" AS{a['number']} {a.get('organization', {}).get('name', '')}".rstrip()
    return where


# ---- one case ----
def _case(page: _Page, view: CaseView) -> None:
    rec, case, bw = view.record, view.case, view.record["burstwatch"]
    cid = str(case["id"])
    page.add(f"<section class='case' id='case-{_e(cid)}' data-case-id='{_e(cid)}' "
             f"data-level='{_e(view.level)}' data-upload-bursts='{len(view.uploads)}'>",
             f"<h2><span class='lvl {_e(view.level)}'>{_e(view.level)}</span> "
             f"{_e(rec['source']['ip'])} &rarr; {_e(case['party'])} <span class='muted'>"
             f"{_e(_where(rec))}</span></h2>",
             f"<p>{_e(case.get('reason', ''))}</p>")
    _pivot(page, view)
    page.add("<h3>Rate over time</h3>")
    if len(view.uploads):
        shown = ("upload and download of every connection of the conversation"
                 if view.bursts is not None else
                 "upload bursts listed in the case record (no ledger: no downloads)")
        many = (f"; the newest {MAX_DRAWN} of {len(view.uploads):,} upload bursts are marked"
                if len(view.uploads) > MAX_DRAWN else "")
        page.add(f"<p class='muted'>{shown}; the area under each burst is shaded; the line at "
                 f"zero is silence{many}.</p>")
        downloads = view.bursts.take(view.bursts.direction == 1) if view.bursts is not None else None
        page.figure(rate_figure(view.uploads, downloads, _life(view)), "rate")
    else:
        page.add("<p class='muted'>no upload bursts to draw</p>")
    page.add("<div class='grid'><div>")
    _party(page, view)
    page.add("</div><div><h3>Time between upload bursts</h3>")
    hist = interval_figure(view.uploads)
    if hist is None:
        page.add("<p class='muted'>fewer than two upload bursts: no intervals</p>")
    else:
        page.figure(hist, "intervals")
    page.add("</div></div>")
    _why(page, bw)
    _bursts(page, view)
    _connections(page, view)
    page.add("</section>")


def _life(view: CaseView) -> tuple[int, int] | None:
    """From the first to the last packet of the case's connections (ledger only)."""
    if not view.connections:
        return None
    return (min(c.first_ns for c in view.connections), max(c.last_ns for c in view.connections))


def _pivot(page: _Page, view: CaseView) -> None:
    case = view.case
    cid = _e(case["id"])
    rows = [("case id", f"<code>{cid}</code> (revision {_e(case.get('revision', 1))}); "
             f"JSON <code>burstwatch.case.id</code>; "
             f"<code>jq 'select(.burstwatch.case.id==\"{cid}\")' ALERTS.jsonl</code>"),
            ("flow ids", _ids(case.get("flows", [])))]
    ids = [c.community_id for c in view.connections if c.community_id]
    if ids:
        rows.append(("Community IDs", _ids(ids)))
    page.add("<table class='pivot'><tbody>" + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</tbody></table>")


def _ids(ids: Sequence[str]) -> str:
    shown = " ".join(f"<code>{_e(i)}</code>" for i in ids[-MAX_LISTED:])
    return (f"(the newest {MAX_LISTED} of {len(ids):,}) " if len(ids) > MAX_LISTED else "") + (shown or "-")


def _party(page: _Page, view: CaseView) -> None:
    rec, case, bw = view.record, view.case, view.record["burstwatch"]
    dst = rec["destination"]
    remote = sorted({c.remote_ip for c in view.connections}) or [dst.get("ip", "-")]
    snis = sorted({c.sni for c in view.connections if c.sni}) or (
        [rec["tls"]["client"]["server_name"]] if rec.get("tls", {}).get("client", {}).get("server_name")
        else [])
    ja4 = sorted({c.ja4 for c in view.connections if c.ja4})
    verdicts = sorted({c.verdict for c in view.connections if c.verdict}) or [
        str(bw.get("encryption", {}).get("verdict", "none"))]
    a = dst.get("as", {})
    rows = [
        ("party", f"{_e(case['party'])} ({_e(case.get('party_kind', ''))})"),
        ("server name (SNI)", "<br>".join(_e(s) for s in snis) or "-"),
        ("addresses", f"{'<br>'.join(_e(r) for r in remote)} "
         f"<span class='muted'>({_e(case.get('remote_ips', len(remote)))} in all; port "
         f"{_e(dst.get('port', '-'))}/{_e(rec['network'].get('transport', ''))})</span>"),
        ("country", _e(dst.get("geo", {}).get("country_iso_code", "-"))
         + f" <span class='muted'>({_e(bw.get('destination', {}).get('scope', ''))})</span>"),
        ("AS", _e(f"AS{a['number']} {a.get('organization', {}).get('name', '')}") if a.get("number") else "-"),
        ("encryption verdict", "<br>".join(_e(v) for v in verdicts)),
        ("JA4", "<br>".join(f"<code>{_e(j)}</code>" for j in ja4) or "-"),
    ]
    page.add("<h3>The party</h3><table class='party'><tbody>" + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</tbody></table>")


def _why(page: _Page, bw: dict[str, Any]) -> None:
    case, conv = bw.get("case", {}), bw.get("conversation", {})
    page.add("<h3>Why this level</h3>", f"<p><b>{_e(case.get('decided_by', ''))}</b></p><ul>")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in case.get("findings", []):  # a flow rule fires once per connection: one entry each
        if f.get("kind") == "anomaly score":
            continue  # its departures are listed below, one by one
        groups.setdefault((str(f.get("kind", "rule")), str(f.get("id", ""))), []).append(f)
    for (kind, rid), found in groups.items():
        f = found[0]
        flows = [str(x["flow_id"]) for x in found if x.get("flow_id")]
        where = ""
        if flows:
            where = (f" on {len(flows)} connection{'s' if len(flows) != 1 else ''} ("
                     + " ".join(f"<code>{_e(x)}</code>" for x in flows[:12])
                     + (" ..." if len(flows) > 12 else "") + ")")
        evidence = "".join(f"<li>{_e(e.get('text', ''))}</li>" for e in f.get("evidence", []))
        if evidence and len(flows) > 1:
            evidence = f"<li class='muted'>as on connection {_e(flows[0])}:</li>{evidence}"
        page.add(f"<li>{_e(kind)} <code>{_e(rid)}</code> ({_e(f.get('level', ''))}){where}: "
                 f"{_e(f.get('name', ''))}"
                 + (f"<ul class='ev'>{evidence}</ul>" if evidence else "") + "</li>")
    page.add("</ul>")
    score = conv.get("anomaly_score")
    reasons = conv.get("anomaly_reasons") or []
    if score is not None:
        page.add(f"<p>Anomaly score {float(score):.3f}"
                 + (": departures from the baseline:" if reasons else ".") + "</p>")
    if reasons:
        page.add("<ul>" + "".join(
            f"<li>{_e(departure_text(r) or r.get('text', ''))}</li>" for r in reasons) + "</ul>")


def _bursts(page: _Page, view: CaseView) -> None:
    up = view.uploads
    n = len(up)
    page.add("<h3>Upload bursts</h3>")
    if not n:
        page.add("<p class='muted'>none</p>")
        return
    first = max(0, n - MAX_TABLE_BURSTS)
    if first:
        page.add(f"<p class='muted'>the newest {MAX_TABLE_BURSTS} of {n:,} (all are plotted)</p>")
    # Written by hand, not with _Page.table: the longest table of the page, kept lean.
    rows = "".join(
        f"<tr><td>{_utc(int(up.start_ns[i]))[:-4]}</td>"
        f"<td>{(up.end_ns[i] - up.start_ns[i]) / 1e9:.3f} s</td><td>{int(up.bytes[i]):,}</td>"
        f"<td>{_e(human(float(up.rate[i]), 'bytes/s'))}</td><td>{_e(up.flow_id[i])}</td></tr>"
        for i in range(first, n))
    page.add("<table class='bursts'><thead><tr><th>start (UTC)</th><th>duration</th><th>bytes</th>"
             f"<th>rate</th><th>connection</th></tr></thead><tbody>{rows}</tbody></table>")


def _connections(page: _Page, view: CaseView) -> None:
    if not view.connections:
        if view.bursts is None:
            page.add("<p class='muted'>connections: not in the case record (needs the ledger)</p>")
        return
    page.add("<h3>Connections</h3>")

    def row(c: Connection) -> list[str]:
        return [f"<code>{_e(c.flow_id)}</code>", f"<code>{_e(c.community_id or '-')}</code>",
                _e(f"{c.local_ip}:{c.local_port} -> {c.remote_ip}:{c.remote_port}/{c.transport}"),
                _e(_utc(c.first_ns)), _e(_utc(c.last_ns)), _e(human(c.bytes_up, "bytes")),
                _e(human(c.bytes_down, "bytes")), _e(c.sni or "-"), _e(c.verdict or "-")]

    listed = view.connections[-MAX_LISTED:]
    if len(listed) < len(view.connections):
        page.add(f"<p class='muted'>the newest {MAX_LISTED} of {len(view.connections):,}</p>")
    page.table(["flow id", "Community ID", "connection", "first", "last", "up", "down", "SNI",
                "verdict"], (row(c) for c in listed), {5, 6}, " class='connections'")
