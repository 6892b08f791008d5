"""``scan --state``: history across runs. An hourly scan of rotated files builds the same
ledger as one scan of the whole capture, and cases are revised rather than repeated."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from burstwatch.cli.main import main
from tests.test_multifile import DEMO, write_parts

# Every column but the capture's name, which differs between the parts and the whole.
_COLUMNS = {
    "bursts": "start_ns, end_ns, local_ip, local_port, remote_ip, remote_port, transport, "
              "direction, bytes, packets, flow_id, verdict, sni, ja4, remote_country, remote_asn, "
              "provisional",
    "flows": "flow_id, kind, window_index, reason, start_ns, end_ns, local_ip, remote_ip, "
             "bytes_up, bytes_down, packets_up, packets_down, peak_rate, verdict, sni, "
             "remote_country, provisional",
}


def ledger_rows(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: sorted(con.execute(f"SELECT {cols} FROM {t}").fetchall(), key=repr)
                for t, cols in _COLUMNS.items()}
    finally:
        con.close()


def scan_cases(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    code = main(["scan", "--format", "jsonl", *args])
    out = capsys.readouterr().out
    return code, [json.loads(x) for x in out.splitlines() if x.strip()]


@pytest.mark.parametrize("cuts", [[1800], [700, 1750, 2900]])
def test_runs_over_rotated_parts_build_the_ledger_of_one_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cuts: list[int]
) -> None:
    whole_state = tmp_path / "whole.duckdb"
    code, whole_cases = scan_cases(capsys, "--state", str(whole_state), str(DEMO))
    assert code == 1
    parts = write_parts(DEMO, tmp_path / "parts", cuts)
    state = tmp_path / "hourly.duckdb"
    for part in parts:  # one run per rotated file, as an hourly cron would
        code, cases = scan_cases(capsys, "--state", str(state), str(part))
    expected = ledger_rows(whole_state)
    got = ledger_rows(state)
    assert got["bursts"] and got["flows"]
    assert got == expected
    # The last run judged the whole history: the same case as the single run, revised.
    assert [c["burstwatch"]["case"]["id"] for c in cases] == [
        c["burstwatch"]["case"]["id"] for c in whole_cases]
    assert cases[0]["burstwatch"]["case"]["upload_bursts"] == 3
    assert cases[0]["burstwatch"]["case"]["revision"] >= 1


def test_a_case_is_revised_only_when_it_grows(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = tmp_path / "s.duckdb"
    parts = write_parts(DEMO, tmp_path / "parts", [2650])  # after the second burst
    _, first = scan_cases(capsys, "--state", str(state), str(parts[0]))
    _, second = scan_cases(capsys, "--state", str(state), str(parts[1]))
    assert first[0]["burstwatch"]["case"]["upload_bursts"] == 2
    assert second[0]["burstwatch"]["case"]["upload_bursts"] == 3
    assert first[0]["burstwatch"]["case"]["id"] == second[0]["burstwatch"]["case"]["id"]
    assert (first[0]["burstwatch"]["case"]["revision"], second[0]["burstwatch"]["case"]["revision"]) == (1, 2)


def test_an_older_capture_does_not_resume_newer_open_flows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Scanning the parts in the wrong order: the second run starts before the first run's
    open flows, so it keeps their rows as final instead of continuing them."""
    state = tmp_path / "s.duckdb"
    parts = write_parts(DEMO, tmp_path / "parts", [1800])
    scan_cases(capsys, "--state", str(state), str(parts[1]))
    scan_cases(capsys, "--state", str(state), str(parts[0]))
    from tests.test_multifile import pcap_records

    later_start = pcap_records(parts[1])[1][0][0]
    con = duckdb.connect(str(state), read_only=True)
    try:
        kept = con.execute("SELECT count(*) FROM flows WHERE NOT provisional AND start_ns >= ?",
                           [later_start]).fetchone()
        open_now = con.execute("SELECT count(*) FROM flows WHERE provisional AND start_ns < ?",
                               [later_start]).fetchone()
    finally:
        con.close()
    assert kept is not None and kept[0] > 0  # the first run's open flows, kept as final
    assert open_now is not None and open_now[0] > 0  # the last run's open flows


def test_a_second_writer_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import subprocess
    import sys

    state = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "sys.stdin.read()", str(state)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        code = main(["scan", "--state", str(state), str(DEMO)])
        err = capsys.readouterr().err
        assert code == 2
        assert "in use by another" in err and err.count("\n") == 1
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def test_an_empty_capture_between_two_parts_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A rotated file with no packet (a quiet hour) leaves the open flows for the next run:
    nothing is dropped, nothing is closed early."""
    from tests.test_multifile import pcap_records

    whole_state = tmp_path / "whole.duckdb"
    scan_cases(capsys, "--state", str(whole_state), str(DEMO))
    parts = write_parts(DEMO, tmp_path / "parts", [1800])
    empty = tmp_path / "parts" / "quiet.pcap"
    empty.write_bytes(pcap_records(DEMO)[0])  # the header alone
    state = tmp_path / "hourly.duckdb"
    for path in (parts[0], empty, parts[1]):
        scan_cases(capsys, "--state", str(state), str(path))
    assert ledger_rows(state) == ledger_rows(whole_state)


def test_scanning_the_same_capture_twice_keeps_one_copy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    once = tmp_path / "once.duckdb"
    twice = tmp_path / "twice.duckdb"
    scan_cases(capsys, "--state", str(once), str(DEMO))
    for _ in range(2):
        code, cases = scan_cases(capsys, "--state", str(twice), str(DEMO))
    assert ledger_rows(twice) == ledger_rows(once)
    assert code == 1 and cases[0]["burstwatch"]["case"]["upload_bursts"] == 3


def test_a_state_path_that_cannot_be_made_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    for state, says in ((blocker / "s.duckdb", "cannot create the ledger's folder"),
                        (tmp_path, "cannot open the ledger")):
        assert main(["scan", "--state", str(state), str(DEMO)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err and "Traceback" not in err


def test_what_retention_deletes_is_counted_and_said(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Rows from 2023 in a ledger that a 2024 capture is scanned into, with 30 days' retention:
    every one of them goes, and the summary says how many."""
    from burstwatch.ledger import Ledger
    from tests.ledgercraft import HISTORY

    state = tmp_path / "ledger.duckdb"
    with Ledger.open(str(state), 3650.0) as ledger:
        ledger.append(HISTORY)
    old = len(HISTORY.rows) + len(HISTORY.bursts)
    assert old > 0
    code = main(["scan", "--format", "table", str(DEMO), "--state", str(state), "--retention", "30"])
    captured = capsys.readouterr()
    assert code == 1
    said = [ln for ln in (captured.out + captured.err).splitlines() if ln.startswith("ledger: retention")]
    assert said == [f"ledger: retention (30 days) deleted {old:,} bursts and flow rows older than that"]
    jan_2024_ns = 1_704_067_200 * 10**9
    assert all(r[4] >= jan_2024_ns for r in ledger_rows(state)["flows"])  # start_ns
