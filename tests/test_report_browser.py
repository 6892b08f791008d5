"""The HTML report in a real headless browser (Debian's chromium driven by Playwright):
no console errors, no request leaves the page, every case's plots hold its bursts, and the
overview's numbers are the JSON alerts' numbers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from burstwatch.cli.main import main
from burstwatch.synth.model import Endpoint
from burstwatch.synth.scenarios import write_scenario

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEMO = Path(__file__).resolve().parent.parent / "pcaps" / "demo.pcap"
WAIT_MS = 120_000  # generous: the machine may be busy; nothing here is a speed test

# Three hosts, three shapes of exfiltration (parameters as in test_conversation_cases).
MULTI = [
    ("exfil_jittered_session", 11, {"burst_bytes": (400_000, 900_000)}, "192.168.1.51"),
    ("exfil_conn_per_burst", 12, {"burst_bytes": (400_000, 900_000)}, "192.168.1.52"),
    ("exfil_many_small", 15, {"slots": 25}, "192.168.1.53"),
]


def _why_not() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


# A real browser for each report: about 25 s in all, run with the slow tests (CI runs them).
pytestmark = [pytest.mark.skipif(_why_not() is not None, reason=str(_why_not())),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@dataclass
class Opened:
    page: Any
    requests: list[str] = field(default_factory=list)  # every request but the report itself
    errors: list[str] = field(default_factory=list)  # console errors and page errors


def open_report(browser: Any, path: Path, *, javascript: bool = True) -> Opened:
    """Open the file offline, every request routed: only the report itself may load."""
    ctx = browser.new_context(offline=True, java_script_enabled=javascript,
                              viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    opened = Opened(page)
    own = path.resolve().as_uri()

    def route(r: Any) -> None:
        if r.request.url == own:
            r.continue_()
        else:
            opened.requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.goto(own)
    if javascript:
        page.wait_for_function("document.body.dataset.ready === 'yes'", timeout=WAIT_MS)
    return opened


def scan(capsys: pytest.CaptureFixture[str], tmp_path: Path, *paths: str,
         extra: tuple[str, ...] = ()) -> tuple[Path, list[dict[str, Any]]]:
    report, alerts = tmp_path / "report.html", tmp_path / "alerts.jsonl"
    code = main(["scan", *paths, "--alerts", str(alerts), "--report", str(report), *extra])
    capsys.readouterr()
    records = [json.loads(x) for x in alerts.read_text().splitlines()]
    assert code == (1 if records else 0)
    assert report.is_file()
    return report, records


def case_plots(page: Any) -> dict[str, dict[str, Any]]:
    """Scroll to every case (plots are drawn when near the viewport) and read each plot's
    data back from plotly's graph divs."""
    out: dict[str, dict[str, Any]] = {}
    for section in page.locator("section.case").all():
        section.scroll_into_view_if_needed()
        cid = section.get_attribute("data-case-id")
        for div in section.locator("div.plot").all():
            div.scroll_into_view_if_needed()
            page.wait_for_function("d => d.data !== undefined", arg=div.element_handle(),
                                   timeout=WAIT_MS)
        out[cid] = section.evaluate("""s => {
            const plots = {};
            s.querySelectorAll('div.plot').forEach(d => {
                plots[d.dataset.role] = d.data.map(t => ({name: t.name || '', x: t.x, y: t.y || []}));
            });
            return {plots: plots, bursts: Number(s.dataset.uploadBursts),
                    table: s.querySelectorAll('table.bursts tbody tr').length};
        }""")
    return out


def check_overview(page: Any, records: list[dict[str, Any]]) -> None:
    levels = {lv: 0 for lv in ("low", "medium", "high", "critical")}
    for r in records:
        levels[r["burstwatch"]["case"]["level"]] += 1
    shown = page.evaluate("""() => Object.fromEntries(Array.from(
        document.querySelectorAll('#by-level [data-level]')).map(e => [e.dataset.level, Number(e.textContent)]))""")
    assert shown == levels
    rows = page.locator("#case-list tbody tr").all()
    assert len(rows) == len(records)
    # the list is most severe first, and says each case's bursts as the records do
    listed = [(r.locator("td").nth(1).inner_text(), int(r.locator("td").nth(4).inner_text().replace(",", "")))
              for r in rows]
    expect = sorted(records, key=lambda r: -r["event"]["severity"])
    assert [x[0] for x in listed] == [r["source"]["ip"] for r in expect]
    assert [x[1] for x in listed] == [r["burstwatch"]["case"]["upload_bursts"] for r in expect]


def ranking(page: Any, axis: str) -> dict[str, int]:
    """A ranking table's rows: label -> bytes (the exact count in brackets)."""
    rows = page.evaluate(f"""() => Array.from(document.querySelectorAll(
        "table[data-ranking='{axis}'] tbody tr")).map(r => [r.cells[0].textContent, r.cells[1].textContent])""")
    return {label: int(text.rsplit("(", 1)[1].rstrip(")").replace(",", "")) for label, text in rows}


def check_cases(page: Any, records: list[dict[str, Any]], *, ledger: bool) -> None:
    plots = case_plots(page)
    assert set(plots) == {r["burstwatch"]["case"]["id"] for r in records}
    for r in records:
        case = r["burstwatch"]["case"]
        got = plots[case["id"]]
        n = case["upload_bursts"] if ledger else len(case["bursts"])
        assert got["bursts"] == n
        marks = next(t for t in got["plots"]["rate"] if t["name"] == "upload bursts")
        assert len(marks["x"]) == min(n, 200)  # one marker per upload burst (the newest 200)
        rate = next(t for t in got["plots"]["rate"] if t["name"].startswith("upload rate"))
        peak = max(b["rate"] for b in case["bursts"])
        assert max(rate["y"]) >= 0.99 * peak and rate["y"][0] == 0 and rate["y"][-1] == 0
        assert rate["y"].count(0) >= 2  # silence between bursts is drawn as zero
        hist = got["plots"]["intervals"][0]
        assert len(hist["x"]) == n - 1
        assert got["table"] == min(n, 50)


def test_demo_report_in_a_browser(browser: Any, capsys: pytest.CaptureFixture[str],
                                  tmp_path: Path) -> None:
    report, records = scan(capsys, tmp_path, str(DEMO))
    assert records, "the demo raises a case"
    opened = open_report(browser, report)
    page = opened.page
    check_overview(page, records)
    check_cases(page, records, ledger=True)
    # the overview's facts are the scan's summary; the Community ID is the connection's
    assert page.locator("[data-fact='packets']").inner_text() == "3,660"
    conn = records[0]
    cid_text = page.locator("table.pivot").inner_text()
    assert "1:" in cid_text and conn["burstwatch"]["case"]["id"] in cid_text
    # the foreign upload by country counts at least the case's bytes (all flows abroad)
    country = ranking(page, "country")
    cc = conn["destination"]["geo"]["country_iso_code"]
    assert country[cc] >= conn["burstwatch"]["case"]["upload_bytes"]
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert opened.errors == []
    assert opened.requests == []


@pytest.fixture(scope="module")
def multi_capture(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("multi")
    paths = []
    for name, seed, params, host in MULTI:
        path = folder / f"{name}.pcap"
        write_scenario(str(path), name, seed, client=Endpoint(host), **params)
        paths.append(str(path))
    return paths


def test_multi_case_report_in_a_browser(browser: Any, capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path, multi_capture: list[str]) -> None:
    report, records = scan(capsys, tmp_path, *multi_capture)
    assert {r["source"]["ip"] for r in records} >= {m[3] for m in MULTI}
    opened = open_report(browser, report)
    check_overview(opened.page, records)
    check_cases(opened.page, records, ledger=True)
    hosts = ranking(opened.page, "host")
    for r in records:
        assert hosts[r["source"]["ip"]] >= r["burstwatch"]["case"]["upload_bytes"]
    opened.page.screenshot(path=str(tmp_path / "multi.png"), full_page=True)
    assert (tmp_path / "multi.png").stat().st_size > 10_000
    assert opened.errors == []
    assert opened.requests == []


def test_report_from_alerts_alone_and_from_the_ledger(
    browser: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path, multi_capture: list[str]
) -> None:
    state = tmp_path / "state.duckdb"
    _, records = scan(capsys, tmp_path, *multi_capture, extra=("--state", str(state)))

    # alerts alone: the cases' own bursts; the rankings are the records' sums, exactly
    alone = tmp_path / "alone.html"
    assert main(["report", str(tmp_path / "alerts.jsonl"), "-o", str(alone)]) == 0
    opened = open_report(browser, alone)
    check_overview(opened.page, records)
    check_cases(opened.page, records, ledger=False)
    assert ranking(opened.page, "host") == {
        r["source"]["ip"]: r["burstwatch"]["case"]["upload_bytes"] for r in records}
    assert "no ledger" in opened.page.locator("#overview").inner_text()
    assert opened.page.locator("[data-fact='packets']").inner_text() == "not recorded"
    assert opened.errors == [] and opened.requests == []

    # the ledger and the alerts: the cases as recorded, with the ledger's detail
    both = tmp_path / "both.html"
    assert main(["report", str(tmp_path / "alerts.jsonl"), "--state", str(state),
                 "-o", str(both)]) == 0
    opened = open_report(browser, both)
    check_overview(opened.page, records)
    check_cases(opened.page, records, ledger=True)
    assert opened.errors == [] and opened.requests == []

    # a shorter horizon than the judgement's still shows every burst of the cases given
    short = tmp_path / "short.html"
    assert main(["report", str(tmp_path / "alerts.jsonl"), "--state", str(state), "--horizon",
                 "1", "-o", str(short)]) == 0
    shown = dict(re.findall(r"data-case-id='([0-9a-f]+)' data-level='\w+' data-upload-bursts='(\d+)'",
                            short.read_text()))
    assert shown == {r["burstwatch"]["case"]["id"]: str(r["burstwatch"]["case"]["upload_bursts"])
                     for r in records}

    # the ledger alone: judged again (conversation rules and score; the report says so)
    judged = tmp_path / "judged.html"
    assert main(["report", "--state", str(state), "-o", str(judged)]) == 0
    opened = open_report(browser, judged)
    assert "flow-rule hits are not kept" in opened.page.locator("#overview").inner_text()
    ids = {s.get_attribute("data-case-id") for s in opened.page.locator("section.case").all()}
    assert ids == {r["burstwatch"]["case"]["id"] for r in records}
    assert opened.errors == [] and opened.requests == []
    capsys.readouterr()


def test_the_essentials_read_without_javascript(browser: Any, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    report, records = scan(capsys, tmp_path, str(DEMO))
    opened = open_report(browser, report, javascript=False)
    page = opened.page
    assert page.locator("noscript").count() == 1
    assert page.locator("#by-level [data-level='high']").inner_text() == "1"
    case = records[0]["burstwatch"]["case"]
    text = page.locator("section.case").inner_text()
    assert case["id"] in text and records[0]["burstwatch"]["conversation"]["party"] in text
    assert page.locator("table.bursts tbody tr").count() == case["upload_bursts"]
    assert page.evaluate("document.querySelectorAll('.main-svg').length") == 0  # nothing drawn
    assert opened.requests == []
