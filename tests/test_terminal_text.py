"""What came from a capture, a database, a rule or a path reaches the terminal as text: never
rich markup, never a control sequence; CSV cells never start a spreadsheet formula."""

from __future__ import annotations

import csv
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from burstwatch.cli.console import clean
from burstwatch.synth.scenarios import write_scenario
from tests.conftest import REPO

# A ClientHello can carry any printable ASCII as the server name: markup that would crash the
# table ('[/]'), draw a clickable fake link, or restyle the line.
MARKUP_SNI = "[/]a[link=https://evil.test]relay.example.net[/link][bold red]b"
# A database or a path can carry anything: clear the screen, set the window title, forge a
# line, reverse the text direction.
CONTROLS = "x\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil\ny"
CONTROL_BYTES = ("\x1b", "\x07", "\x9b", "\u202e")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "600", "TERM": "xterm-256color"}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "burstwatch", *args], capture_output=True,
                          text=True, timeout=timeout, env=_env())


def run_on_terminal(*args: str, timeout: float = 300) -> tuple[int, str, str]:
    """The command with standard output on a pseudo-terminal, as an analyst runs it: rich
    draws tables and interprets markup only there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "burstwatch", *args], stdout=slave,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env())
    os.close(slave)
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    out = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code = proc.wait(timeout=timeout)
    reader.join(timeout)
    return code, out.decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace")


def test_clean_escapes_every_control_and_keeps_text() -> None:
    assert clean("relay.example.net [x] é ✓") == "relay.example.net [x] é ✓"
    assert clean(CONTROLS) == "x\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eevil\\ny"
    assert clean("a\tb\rc\x00\x7f") == "a\\tb\\rc\\x00\\x7f"


def test_markup_in_a_server_name_is_shown_as_text_in_the_case_table(tmp_path: Path) -> None:
    cap = tmp_path / "markup.pcap"
    write_scenario(str(cap), "exfil_tls", 0, sni=MARKUP_SNI)
    code, out, err = run_on_terminal("scan", str(cap))
    assert code == 1, err  # flagged, and no MarkupError after the detection
    assert "Traceback" not in err
    assert MARKUP_SNI in out
    assert "\x1b]8;" not in out  # no hyperlink drawn


@pytest.fixture()
def hostile_mmdb(tmp_path: Path) -> Path:
    mmdb_writer = pytest.importorskip("mmdb_writer", reason="mmdb-writer writes the test .mmdb")
    from netaddr import IPSet

    w = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True,
                               database_type="Hostile[/]\x1b[5m", description="hostile")
    w.insert_network(IPSet(["77.88.8.0/24"]), {
        "country": {"iso_code": "RU"}, "autonomous_system_number": 13238,
        "autonomous_system_organization": "[/]" + CONTROLS})
    path = tmp_path / "hostile.mmdb"
    w.to_db_file(str(path))
    return path


@pytest.mark.slow
def test_database_text_is_escaped_in_lookup_and_scan(hostile_mmdb: Path, tmp_path: Path) -> None:
    for code, out, err in (run_on_terminal("lookup", "77.88.8.8", "--geoip", str(hostile_mmdb)),
                           (lambda p: (p.returncode, p.stdout, p.stderr))(
                               run_cli("lookup", "77.88.8.8", "--geoip", str(hostile_mmdb)))):
        assert code == 0, err
        assert "[/]x\\x1b[2J" in out
        assert not any(c in out + err for c in CONTROL_BYTES[1:])
        assert "Hostile[/]\\x1b[5m" in err and "\x1b[5m" not in err
    cap = tmp_path / "exfil.pcap"
    write_scenario(str(cap), "exfil_tls", 0)
    code, out, err = run_on_terminal("scan", str(cap), "--geoip", str(hostile_mmdb))
    assert code == 1, err
    assert "[/]x\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eevil\\ny" in out
    assert not any(c in out for c in CONTROL_BYTES[1:])
    piped = run_cli("scan", str(cap), "--geoip", str(hostile_mmdb))
    assert piped.returncode == 1 and "\x1b" not in piped.stdout + piped.stderr
    assert "AS13238 [/]x\\x1b[2J" in piped.stdout


def test_paths_with_controls_are_escaped_in_tables_warnings_and_errors(tmp_path: Path) -> None:
    cap = tmp_path / f"cap{CONTROLS.replace(chr(10), '_')}[bold].pcap"
    write_scenario(str(cap), "exfil_tls", 0)
    cap.write_bytes(cap.read_bytes()[:-7])  # cut short: a warning naming the file
    code, out, err = run_on_terminal("info", str(cap))
    assert code == 0, err
    assert "\\x1b[2J" in out and "[bold].pcap" in out
    assert not any(c in out + err for c in CONTROL_BYTES[1:])
    assert "warning" in err and "\\x1b[2J" in err
    missing = run_cli("scan", str(tmp_path / "no\x1b[2Jsuch\nfile[/].pcap"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "\x1b" not in missing.stderr
    assert "no\\x1b[2Jsuch\\nfile[/].pcap" in missing.stderr


def test_rule_text_is_escaped_in_lint_and_test_output(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text('name: "r1[/]\\e[2J"\ntitle: "T\\e]0;x\\a"\ndescription: D\n'
                    'tags: [attack.exfiltration]\nlevel: high\nid: "\\e[2J"\n'
                    'logsource: {product: burstwatch, category: flow}\n'
                    'detection:\n  selection:\n    "up\\e[31m_bytes[/]|gt": 1\n'
                    '  condition: selection\n', encoding="utf-8")
    lint = run_cli("rules", "lint", str(rule))
    assert lint.returncode == 2
    assert "up\\x1b[31m_bytes[/]" in lint.stdout and "\x1b" not in lint.stdout + lint.stderr
    code, out, err = run_on_terminal("rules", "test", str(rule))
    assert code == 2
    assert not any(c in out + err for c in CONTROL_BYTES[:2])


def test_csv_cells_that_would_start_a_formula_are_neutralised(tmp_path: Path) -> None:
    import numpy as np

    from burstwatch.outputs.writers import cell_values
    from burstwatch.schema import field

    texts = ["=HYPERLINK(\"http://evil.test\",\"x\")", "+1+cmd", "-5e3", "-2+3", "@SUM(A1)",
             "\tz", "\rz", "ok", "-"]
    col = np.empty(len(texts), object)
    col[:] = texts
    cells = cell_values(field("tls.client.server_name"), col, len(texts))
    numbers = cell_values(field("burstwatch.flow.upload_share"), np.array([-5.0, -0.5]), 2)
    path = tmp_path / "out.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow([*cells, *numbers])
    with path.open(newline="", encoding="utf-8") as fh:
        row = next(csv.reader(fh))
    assert row == ["'=HYPERLINK(\"http://evil.test\",\"x\")", "'+1+cmd", "-5e3", "'-2+3",
                   "'@SUM(A1)", "'\tz", "'\rz", "ok", "'-", "-5", "-0.5"]


def test_flows_csv_export_neutralises_a_hostile_server_name(tmp_path: Path) -> None:
    cap = tmp_path / "formula.pcap"
    write_scenario(str(cap), "exfil_tls", 0, sni="=cmd|' /C calc'!A0")
    out = tmp_path / "flows.csv"
    done = run_cli("flows", str(cap), "-o", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="", encoding="utf-8") as fh:
        names = {r["tls.client.server_name"] for r in csv.DictReader(fh)}
    assert "'=cmd|' /C calc'!A0" in names and not any(n.startswith("=") for n in names)


def test_live_alert_lines_escape_what_the_record_holds(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from burstwatch.cli.live import Output

    out = Output(argparse.Namespace(format="table", interface="eth0", status_every=10.0,
                                    verbose=True), None)
    record = {
        "event": {"start": "2026-06-17T10:00:00.000000000Z", "end": "2026-06-17T11:00:00.000000000Z"},
        "source": {"ip": "192.168.1.50"},
        "destination": {"ip": "77.88.8.8", "port": 443, "geo": {"country_iso_code": "RU"},
                        "as": {"number": 64500, "organization": {"name": "org" + CONTROLS}}},
        "network": {"transport": "tcp"},
        "tls": {"client": {"server_name": "sni" + CONTROLS}},
        "burstwatch": {"encryption": {"verdict": "tls"},
                       "conversation": {"party": "example.net"},
                       "case": {"id": "c1", "revision": 1, "level": "high", "upload_bursts": 3,
                                "upload_bytes": 3_000_000, "connections": 1,
                                "reason": "because " + CONTROLS}},
    }
    out.alert(record, "high")
    shown = capsys.readouterr().out
    assert shown.count("\n") == 4 and not any(c in shown for c in CONTROL_BYTES)
    assert "evil\\ny RU AS64500" in shown and "because x\\x1b[2J" in shown


def test_a_line_break_in_database_text_cannot_forge_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    from burstwatch.cli.console import stderr_console

    stderr_console().print("geo data: Forged\nHIGH     10.0.0.1 -> evil")
    assert capsys.readouterr().err == "geo data: Forged\\nHIGH     10.0.0.1 -> evil\n"
