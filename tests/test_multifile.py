"""Several capture files are one capture: rotated parts, overlapping captures, directories,
``--separate``, and a bad file among good ones, through the real CLI."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.cli.main import main
from burstwatch.pipeline import run_flows
from burstwatch.synth.scenarios import write_scenario
from tests.conftest import PROJECT_PCAPS

DEMO = PROJECT_PCAPS / "demo.pcap"


def pcap_records(path: Path) -> tuple[bytes, list[tuple[int, bytes]]]:
    """(global header, [(timestamp ns, record bytes incl. its header)]) of a classic
    little-endian microsecond pcap."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out, pos = [], 24
    while pos < len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, pos)
        out.append((sec * 1_000_000_000 + usec * 1000, data[pos : pos + 16 + caplen]))
        pos += 16 + caplen
    return data[:24], out


def write_parts(src: Path, folder: Path, cuts: list[int]) -> list[Path]:
    """``src`` cut before each record index in ``cuts``, as tcpdump -C/-G rotation does."""
    header, records = pcap_records(src)
    bounds = [0, *sorted(cuts), len(records)]
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(len(bounds) - 1):
        path = folder / f"part{k}.pcap"
        path.write_bytes(header + b"".join(r for _, r in records[bounds[k] : bounds[k + 1]]))
        paths.append(path)
    return paths


def merged_file(paths: list[Path], out: Path) -> Path:
    """The captures merged by timestamp (stable: file order, then record order), as mergecap."""
    header = b""
    records = []
    for rank, p in enumerate(paths):
        header, recs = pcap_records(p)
        records += [(ts, rank, k, r) for k, (ts, r) in enumerate(recs)]
    records.sort(key=lambda x: x[:3])
    out.write_bytes(header + b"".join(r[3] for r in records))
    return out


def scan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = main(["scan", "--format", "jsonl", *args])
    captured = capsys.readouterr()
    alerts = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    for a in alerts:
        a["burstwatch"].pop("capture", None)  # the input's name, which differs by design
    return code, alerts, captured.err


def flow_table(paths: list[str], separate: bool = False) -> list[tuple]:
    """Every flow/window row and burst, as comparable tuples."""
    out = []
    for b in run_flows(paths, separate=separate):
        r = b.rows
        out += list(zip(r.flow_id.tolist(), r.kind.tolist(), r.reason.tolist(),
                        map(tuple, r.acc_i.tolist()), map(tuple, np.round(r.acc_f, 6).tolist()),
                        strict=True))
        bu = b.bursts
        out += list(zip(bu.flow_id.tolist(), bu.direction.tolist(), bu.start_ns.tolist(),
                        bu.bytes.tolist(), strict=True))
    return sorted(out)


@pytest.fixture(scope="module")
def demo_whole() -> list[tuple]:
    return flow_table([str(DEMO)])


@pytest.fixture(scope="module")
def demo_cases() -> list[dict]:
    """The demo's cases as `scan --format jsonl` writes them (the capture's name left out)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["scan", "--format", "jsonl", str(DEMO)])
    cases = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]
    for c in cases:
        c["burstwatch"].pop("capture", None)
    assert cases
    return cases


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 3659), min_size=1, max_size=4, unique=True), st.randoms())
def test_a_capture_split_anywhere_gives_the_same_flows_bursts_and_alerts(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str],
    demo_whole: list[tuple], demo_cases: list[dict], cuts: list[int], rnd
) -> None:
    parts = write_parts(DEMO, tmp_path_factory.mktemp("parts"), cuts)
    rnd.shuffle(parts)  # the order on the command line does not matter
    assert flow_table([str(p) for p in parts]) == demo_whole
    assert scan(capsys, *[str(p) for p in parts])[1] == demo_cases


def test_split_capture_gives_the_same_alerts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, whole, _ = scan(capsys, str(DEMO))
    assert whole  # the demo has its exfiltration alert
    # Cuts inside the exfiltration session: between the handshake and the bursts, and inside
    # the second burst (records 1800 and 2300 of 3660 lie in 14:01:xx and 14:02:xx).
    parts = write_parts(DEMO, tmp_path / "rot", [900, 1800, 2300, 3000])
    code, split, err = scan(capsys, *[str(p) for p in reversed(parts)])
    assert code == 1 and split == whole and "warning" not in err
    # A directory of the parts, and a glob, are the same capture.
    assert scan(capsys, str(tmp_path / "rot"))[1] == whole
    assert scan(capsys, str(tmp_path / "rot" / "part*.pcap"))[1] == whole


def test_overlapping_captures_are_merged_by_time(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Two sensors' captures over the same minutes: one timeline, as mergecap would make."""
    a = tmp_path / "a.pcap"
    b = tmp_path / "b.pcap"
    write_scenario(str(a), "exfil_tls", 3, bursts=3, gap_s=20)
    write_scenario(str(b), "browsing", 4, client=None)
    merged = merged_file([a, b], tmp_path / "merged.pcap")
    assert flow_table([str(a), str(b)]) == flow_table([str(merged)])
    assert scan(capsys, str(b), str(a))[1] == scan(capsys, str(merged))[1]


def test_separate_reads_each_file_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    parts = write_parts(DEMO, tmp_path / "rot", [1800])
    alone = sorted(
        (row for p in parts for row in flow_table([str(p)])), key=repr
    )
    assert sorted(flow_table([str(p) for p in parts], separate=True), key=repr) == alone
    each = [a for p in parts for a in scan(capsys, str(p))[1]]
    together = scan(capsys, "--separate", *[str(p) for p in parts])[1]
    key = lambda a: json.dumps(a, sort_keys=True)  # noqa: E731
    assert sorted(together, key=key) == sorted(each, key=key)


def test_a_bad_file_among_good_ones_is_a_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    parts = write_parts(DEMO, tmp_path / "rot", [1800])
    junk = tmp_path / "rot" / "notes.pcap"
    junk.write_text("not a capture\n")
    missing = tmp_path / "gone.pcap"
    code, alerts, err = scan(capsys, str(parts[0]), str(junk), str(missing), str(parts[1]))
    assert code == 1 and alerts == scan(capsys, str(DEMO))[1]
    assert f"{junk}: skipped: not a pcap or pcapng capture" in err
    assert f"{missing}: skipped" in err
    # The table and the summary are still printed.
    code = main(["scan", str(parts[0]), str(junk), str(parts[1])])
    out = capsys.readouterr().out
    assert code == 1 and "summary:" in out and "192.168.1.50" in out and "RU AS13238" in out


def test_nothing_readable_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "a.pcap"
    junk.write_text("not a capture\n")
    code = main(["scan", str(junk), str(tmp_path / "gone.pcap")])
    err = capsys.readouterr().err
    assert code == 2 and "not a pcap or pcapng capture" in err and err.count("\n") <= 3
    assert main(["scan", str(tmp_path / "nothing-*.pcap")]) == 2
    assert "nothing-*.pcap: pattern matches no files" in capsys.readouterr().err
