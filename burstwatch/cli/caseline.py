"""Cases on a terminal: one line each, fitted to the width, the same for `scan` and `live`.

Both commands print from the case record (the JSON they also write), so a line carries the
same facts whichever printed it: level, time of the newest burst (UTC), host, server name or
party, country, AS and organisation, and how much went up in how many bursts. ``-v`` adds
the case in full: where it went, its id and the sentence saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from burstwatch.alerts.record import human
from burstwatch.cli.console import clean

ELLIPSIS = "…"


@dataclass(frozen=True)
class CaseFacts:
    """What one line says, taken from a case record."""

    level: str
    last: str  # MM-DD HH:MM of the newest upload burst, UTC
    host: str
    peer: str  # the server name the client asked for, else the party
    where: str  # country, AS and organisation
    volume: str  # "3 bursts 1.4 MB", with the revision when it is not the first

    @staticmethod
    def of(record: dict[str, Any]) -> CaseFacts:
        bw = record["burstwatch"]
        case = bw["case"]
        dst = record["destination"]
        where = dst.get("geo", {}).get("country_iso_code", "--")
        asn = dst.get("as", {})
        if asn.get("number"):
            where += f" AS{asn['number']} {asn.get('organization', {}).get('name', '')}".rstrip()
        sni = record.get("tls", {}).get("client", {}).get("server_name", "")
        n = int(case.get("upload_bursts", 0))
        volume = f"{n} burst{'s' if n != 1 else ''} {human(int(case.get('upload_bytes', 0)), 'bytes')}"
        if int(case.get("revision", 1)) > 1:
            volume += f" rev {case['revision']}"
        end = str(record["event"]["end"])
        party = bw.get("conversation", {}).get("party", "")
        return CaseFacts(str(case["level"]).upper(), f"{end[5:10]} {end[11:16]}",
                         str(record["source"]["ip"]), clean(sni or party),
                         clean(where), volume)


HEADER = CaseFacts("LEVEL", "LAST (UTC)", "HOST", "SERVER/PARTY", "WHERE", "UPLOAD")


def _cut(text: str, width: int) -> str:
    """Cut at the right end (places, organisations)."""
    if len(text) <= width:
        return text
    return text[: width - 1] + ELLIPSIS if width > 0 else ""


def _cut_left(text: str, width: int) -> str:
    """Cut at the left end: a server name's right end (its domain) says most."""
    if len(text) <= width:
        return text
    return ELLIPSIS + text[len(text) - width + 1:] if width > 0 else ""


def _place(where: str, width: int) -> str:
    """Country, AS, organisation cut at the right; a bare country code is never cut."""
    return where[:width] if width <= 3 else _cut(where, width)


def fit(rows: list[CaseFacts], width: int = 80) -> list[str]:
    """Aligned lines no wider than ``width``: level, time, host and volume whole; server
    name and place share what is left, each cut (with an ellipsis) only as far as it must."""
    def longest(get: Any) -> int:
        return max(len(get(r)) for r in rows)

    lw, hw = longest(lambda r: r.level), longest(lambda r: r.host)
    vw, tw = longest(lambda r: r.volume), longest(lambda r: r.last)
    pw, ww = longest(lambda r: r.peer), longest(lambda r: r.where)
    room = width - (lw + tw + hw + vw + 5)  # five one-space gaps
    if pw + ww > room:
        keep = min(ww, 2)  # the country code at least
        pw = min(pw, max(room - ww, room // 2, min(room - keep, 16)))
        ww = max(room - pw, keep)
    return [_cut(f"{r.level:<{lw}} {r.last:<{tw}} {r.host:<{hw}} "
                 f"{_cut_left(r.peer, pw):<{pw}} {_place(r.where, ww):<{ww}} {r.volume}", width)
            for r in rows]


def case_lines(records: list[dict[str, Any]], width: int = 80, header: bool = True) -> list[str]:
    """The cases as aligned one-line rows (with a header row)."""
    facts = [CaseFacts.of(r) for r in records]
    lines = fit([HEADER, *facts] if header else facts, width)
    return [line.rstrip() for line in lines]


def case_details(record: dict[str, Any]) -> list[str]:
    """The case in full (``-v``): connection, times, id and revision, and why."""
    bw, case, dst = record["burstwatch"], record["burstwatch"]["case"], record["destination"]
    start = str(record["event"]["start"])[:19].replace("T", " ")
    end = str(record["event"]["end"])[:19].replace("T", " ")
    return [clean(line) for line in (
        f"         {record['source']['ip']} -> {dst.get('ip', '')}:{dst.get('port', 0)}/"
        f"{record['network'].get('transport', '')}  {bw['encryption']['verdict']}  "
        f"{case.get('connections', 0)} connection(s); {start} to {end} UTC",
        f"         case {case['id']} (revision {case.get('revision', 1)})",
        f"         why: {case['reason']}",
    )]
