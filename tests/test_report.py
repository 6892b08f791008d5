"""The report's parts without a browser: the rate step function, reading alerts files,
escaping captured text, bad input, and the one-line cases of scan and live."""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from burstwatch.cli.caseline import CaseFacts, case_lines, fit
from burstwatch.cli.main import main
from burstwatch.report.data import Bursts, from_records, parse_time, read_alerts
from burstwatch.report.html import plotly_js, render
from burstwatch.report.plots import MIN_BURST_NS, interval_figure, rate_figure, rate_steps

DEMO = Path(__file__).resolve().parent.parent / "pcaps" / "demo.pcap"
S = 1_000_000_000


@pytest.fixture(scope="module")
def demo_alerts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    path = folder / "alerts.jsonl"
    assert main(["scan", str(DEMO), "--alerts", str(path), "--format", "jsonl"]) == 1
    return path


def record(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text().splitlines()[0]))


# ---- the rate over time ----
def test_rate_steps_sum_overlapping_bursts_and_fall_to_zero_between() -> None:
    # bursts [0, 2 s) at 10 B/s and [1 s, 3 s) at 5 B/s, then [10 s, 11 s) at 7 B/s
    start = np.array([0, 1 * S, 10 * S], np.int64)
    end = np.array([2 * S, 3 * S, 11 * S], np.int64)
    t, y = rate_steps(start, end, np.array([10.0, 5.0, 7.0]))
    assert t.tolist() == [0, 0, 1 * S, 2 * S, 3 * S, 10 * S, 11 * S]
    assert y.tolist() == [0.0, 10.0, 15.0, 5.0, 0.0, 7.0, 0.0]


def test_a_burst_of_one_packet_is_drawn_one_millisecond_long() -> None:
    t, y = rate_steps(np.array([5 * S]), np.array([5 * S]), np.array([1000.0]))
    assert t.tolist() == [5 * S, 5 * S, 5 * S + MIN_BURST_NS] and y.tolist() == [0.0, 1000.0, 0.0]


def test_back_to_back_bursts_do_not_leave_float_residue() -> None:
    t, y = rate_steps(np.array([0, S, 2 * S]), np.array([S, 2 * S, 3 * S]),
                      np.array([0.1, 0.2, 0.3]))
    assert y.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.0]) and y[-1] == 0.0


def test_rate_figure_spans_the_connections_life_so_silence_shows() -> None:
    up = Bursts(np.array([10 * S]), np.array([11 * S]), np.array([100]), np.array([100.0]),
                np.array([0], np.int8), ["00000000000000aa"])
    fig = rate_figure(up, None, (0, 60 * S))
    line = fig["data"][0]  # x in ms since the epoch (a date axis draws them as UTC)
    assert line["x"] == [0, 10_000, 10_000, 11_000, 60_000]
    assert line["y"] == [0, 0, 100, 0, 0] and line["fill"] == "tozeroy"
    marks = fig["data"][-1]
    assert marks["name"] == "upload bursts" and marks["x"] == [10_000] and marks["customdata"] == [100]


def test_busy_plots_keep_every_bursts_peak_in_bounded_size() -> None:
    # 1,000 bursts of 1 s at 1..1000 B/s, one every 10 s: drawn as 300 bins of 33.3 s
    n = 1_000
    start = np.arange(n, dtype=np.int64) * 10 * S
    up = Bursts(start, start + S, np.arange(1, n + 1), np.arange(1, n + 1, dtype=np.float64),
                np.zeros(n, np.int8), ["00000000000000aa"] * n)
    fig = rate_figure(up, None, (0, n * 10 * S))
    line = fig["data"][0]
    assert line["name"].startswith("upload rate (peak per 0.556 min)")
    assert len(line["x"]) == 300 + 1  # the bins and the end (the bins span the whole axis)
    # bins of 33.3 s hold bursts 0-3, 4-6, 7-9, ...: each bin's peak is its fastest burst's
    assert line["y"][:3] == [4, 7, 10] and max(line["y"]) == n and line["y"][-1] == 0
    hist = interval_figure(up)
    assert hist is not None and hist["data"][0]["type"] == "bar"  # binned here: 999 intervals
    assert sum(hist["data"][0]["y"]) == n - 1
    assert len(fig["data"][-1]["x"]) == 200  # the newest 200 marked


# ---- alerts files ----
def test_parse_time_keeps_nanoseconds() -> None:
    assert parse_time("2024-03-12T14:01:00.000054000Z") == 1_710_252_060_000_054_000
    assert parse_time("1970-01-01T00:00:01Z") == S


def test_newest_revision_of_each_case_wins_and_bad_lines_are_named(
    demo_alerts: Path, tmp_path: Path
) -> None:
    first = record(demo_alerts)
    second = copy.deepcopy(first)
    second["burstwatch"]["case"]["revision"] = 2
    second["burstwatch"]["case"]["upload_bursts"] = 4
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join([json.dumps(second), "{not json", json.dumps({"x": 1}),
                               json.dumps(first)]) + "\n")
    records, warnings = read_alerts(str(path))
    assert [r["burstwatch"]["case"]["revision"] for r in records] == [2]
    assert [w.split(": ")[0] for w in warnings] == [f"{path}:2", f"{path}:3"]
    assert "no field burstwatch" in warnings[1]


BROKEN = [
    ("event", "start", 5),
    ("source", "ip", None),
    ("network", "transport", ["tcp"]),
    ("burstwatch", "conversation", {"party": 5}),
    ("burstwatch", "case", {"id": "x"}),
    ("event", "end", "yesterday"),
]


@pytest.mark.parametrize(("where", "key", "value"), BROKEN, ids=lambda v: str(v)[:12])
def test_a_damaged_record_is_skipped_with_a_warning(demo_alerts: Path, tmp_path: Path,
                                                    where: str, key: str, value: Any) -> None:
    good, bad = record(demo_alerts), record(demo_alerts)
    bad[where][key] = value
    bad["burstwatch"]["case"] = bad["burstwatch"]["case"] if key != "case" else value
    good["burstwatch"]["case"]["id"] = "0000000000000001"
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    records, warnings = read_alerts(str(path))
    assert [r["burstwatch"]["case"]["id"] for r in records] == ["0000000000000001"]
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:1: not a case record (")
    assert "burstwatch report: 1 case" in render(from_records(records, ["US"]))


@pytest.mark.parametrize("content", ["{\"a\": 1}\n", "garbage\n", "\x00\x01\n"])
def test_an_alerts_file_without_cases_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"burstwatch: error: {path}: no case records (see docs/alert.schema.json)"
    assert not (tmp_path / "r.html").exists()


def test_report_input_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          demo_alerts: Path) -> None:
    out = str(tmp_path / "r.html")
    cases = [
        (["report", "-o", out], "give an alerts file"),
        (["report", str(tmp_path / "missing.jsonl"), "-o", out], "cannot read"),
        (["report", "--state", str(tmp_path / "none.duckdb"), "-o", out], "no such ledger file"),
        (["report", str(demo_alerts), "-o", str(tmp_path / "no" / "r.html")],
         "cannot write the report"),
        (["scan", str(DEMO), "--report", str(tmp_path / "no" / "r.html")],
         "cannot write the report there"),
    ]
    for argv, expect in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) >= 1 and err[-1].startswith("burstwatch: error: ") and expect in err[-1]
        assert "Traceback" not in "".join(err)


def test_a_report_never_replaces_a_device_fifo_or_folder(tmp_path: Path, demo_alerts: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The report is renamed into place; run as root, a rename over `-o /dev/full` replaced the
    device with the file. Anything but a regular file is refused and left as it was."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    for target, why in ((fifo, "is not a regular file"), (folder, "is a directory")):
        for argv in (["report", str(demo_alerts), "-o", str(target)],
                     ["scan", str(DEMO), "--report", str(target)]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip().splitlines()
            assert err[-1].startswith("burstwatch: error: ") and why in err[-1], err
    assert stat.S_ISFIFO(fifo.stat().st_mode) and folder.is_dir() and not any(folder.iterdir())


def test_a_model_is_never_written_over_a_device_or_fifo(tmp_path: Path) -> None:
    from burstwatch.score.model_file import ModelError, write_model

    fifo = tmp_path / "model.bwm"
    os.mkfifo(fifo)
    with pytest.raises(ModelError, match="is not a regular file"):
        write_model(fifo, {"kind": "conversation"}, {"x": np.zeros(2)})
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_an_empty_alerts_file_gives_a_report_with_no_cases(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    out = tmp_path / "r.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    text = out.read_text()
    assert "burstwatch report: 0 cases" in text and "<script>" not in text


# ---- captured text is escaped ----
def test_captured_text_cannot_inject_markup_or_script(demo_alerts: Path) -> None:
    rec = record(demo_alerts)
    evil = "</script><img src=x onerror=alert(1)><!--"
    rec["tls"] = {"client": {"server_name": evil}}
    rec["destination"]["as"]["organization"]["name"] = evil
    rec["burstwatch"]["conversation"]["party"] = evil
    rec["burstwatch"]["case"]["bursts"][0]["flow_id"] = evil
    page = render(from_records([rec], ["US"]))
    assert evil not in page
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    # inside embedded figure JSON no '<' survives (it cannot end the script element)
    for body in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S):
        assert "<" not in body
        json.loads(body)


def test_the_plot_library_is_inlined_once_and_nothing_points_outside(demo_alerts: Path) -> None:
    page = render(from_records([record(demo_alerts)], ["US"]))
    assert page.count(plotly_js()) == 1
    assert page.count("<script>") == 2  # the bundle and the drawing code, once each
    ours = page.replace(plotly_js(), "")  # the bundle's own strings (help links) aside
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", ours)
    assert "default-src 'none'" in page  # the page may fetch nothing


# ---- one line per case ----
def test_lines_fit_80_columns_and_keep_the_end_of_server_names() -> None:
    facts = CaseFacts("CRITICAL", "03-12 14:03", "192.168.100.200",
                      "upload.a-very-long-subdomain.example.com",
                      "NL AS1234567 Some Very Long Hosting Organisation B.V.", "250 bursts 1.2 GB rev 3")
    lines = fit([facts, facts], 80)
    assert all(len(x) <= 80 for x in lines)
    assert "…ain.example.com NL " in lines[0]
    assert lines[0].startswith("CRITICAL 03-12 14:03 192.168.100.200")
    assert lines[0].endswith("250 bursts 1.2 GB rev 3")
    # a long IPv6 host leaves little room: the line still fits, the country stays
    v6 = fit([CaseFacts("HIGH", "03-12 14:03", "2001:db8:1234:5678:9abc::50",
                        facts.peer, facts.where, "12 bursts 3.0 MB")], 80)[0]
    assert len(v6) <= 80 and "2001:db8:1234:5678:9abc::50" in v6 and " NL" in v6
    assert v6.endswith("12 bursts 3.0 MB")
    short = fit([CaseFacts("LOW", "03-12 14:03", "10.0.0.1", "a.example", "US", "2 bursts 10 kB")])
    assert short[0].rstrip() == "LOW 03-12 14:03 10.0.0.1 a.example US 2 bursts 10 kB"


def test_control_characters_in_captured_text_do_not_reach_the_terminal(demo_alerts: Path) -> None:
    rec = record(demo_alerts)
    rec["tls"] = {"client": {"server_name": "evil\x1b[2J\x1b]0;pwned\x07.example.net"}}
    rec["destination"]["as"]["organization"]["name"] = "Org\r\nFAKE LINE"
    line = case_lines([rec], 200, header=False)[0]
    assert line.isprintable() and "\\x1b[2J" in line and "Org\\r\\nFAKE LINE" in line


def test_live_alert_lines_carry_the_same_facts_as_scan(
    demo_alerts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from burstwatch.cli.live import Output

    rec = record(demo_alerts)
    args = argparse.Namespace(format="table", verbose=False, interface="lo", status_every=10.0)
    out = Output(args, None)
    out.alert(rec, rec["burstwatch"]["case"]["level"])
    printed = capsys.readouterr().out.splitlines()
    assert printed == case_lines([rec], 80, header=False)
    line = printed[0]
    for fact in ("HIGH", "192.168.1.50", "AS13238 YANDE", "example.net", "3 bursts 1.4 MB"):
        assert fact in line, fact
