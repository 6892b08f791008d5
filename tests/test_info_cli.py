"""`burstwatch info`: the JSON summary, standard input, errors and real captures."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from burstwatch.cli.main import main
from tests.craft import catalog_packet_counts, pcap_bytes, pcapng_bytes, pcapng_reader_available

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
T0 = 1_700_000_000_250_000_001
PACKETS = [
    (T0, bytes(ETH / IP(src="192.0.2.1", dst="198.51.100.7") / TCP(flags="S"))),  # 54 B
    (T0 + 1_500_000_000, bytes(ETH / ARP())),  # 42 B
    (T0 + 2_000_000_002, bytes(ETH / IP() / UDP() / Raw(b"u" * 200))),  # 242 B, cut to 100
]
EXPECTED = {
    "format": "pcap-ns",
    "link_types": {"Ethernet (1)": 3},
    "packets": 3,
    "captured_bytes": 54 + 42 + 100,
    "wire_bytes": 54 + 42 + 242,
    "first_ts_ns": 1_700_000_000_250_000_001,
    "last_ts_ns": 1_700_000_002_250_000_003,
    "duration_s": 2.000000002,
    "decode": {"ok": 2, "arp": 1},
    "encapsulation": {},
    "not_ip": {"ethertype 0x0806": 1},
    "reassembly": {},
    "decode_warning": None,
    "warnings": [],
}


def capture() -> bytes:
    return pcap_bytes(PACKETS, nanosecond=True, big_endian=True, snaplen=100).data


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real command in a child process: exit status, stdout and stderr as a user sees them."""
    return subprocess.run(
        [sys.executable, "-m", "burstwatch", *args], input=stdin, capture_output=True, timeout=120
    )


def info_json(capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run `info --json` in-process; return the exit status, one object per line, stderr."""
    status = main(["info", "--json", *paths])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def test_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "three.pcap"
    path.write_bytes(capture())
    status, objs, err = info_json(capsys, str(path))
    assert (status, err) == (0, "")
    assert objs == [{"file": str(path), **EXPECTED}]


def test_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "three.pcap"
    path.write_bytes(capture())
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("pcap-ns", "Ethernet (1): 3", "196", "338", "2023-11-14 22:13:20.250000001 UTC",
                 "2.000000 s", "ok: 2, arp: 1"):
        assert text in out


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_standard_input(compress: bool) -> None:
    data = gzip.compress(capture()) if compress else capture()
    done = run_cli("info", "--json", "-", stdin=data)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    want = {"file": "<stdin>", **EXPECTED, "format": "pcap-ns.gz" if compress else "pcap-ns"}
    assert [json.loads(line) for line in done.stdout.splitlines()] == [want]


def test_standard_input_cut_short_warns_with_offset() -> None:
    data = capture()[:-30]  # inside the last record, whose header starts at byte 152
    done = run_cli("info", "--json", "-", stdin=data)
    assert done.returncode == 0
    assert done.stderr.decode() == (
        "burstwatch: warning: <stdin>: at byte offset 152: "
        "capture is cut short inside a record (86 trailing bytes ignored)\n"
    )
    obj = json.loads(done.stdout)
    assert obj["packets"] == 2
    assert obj["warnings"] == [{"byte_offset": 152, "message": "capture is cut short inside a record "
                                "(86 trailing bytes ignored)"}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"just some text, not packets\n", "not a pcap or pcapng capture (starts with 0x6a757374)"),
        (b"", "too short to be a capture file"),
        (b"\x1f\x8b\x08\x00garbage", "gzip data is damaged"),
    ],
)
def test_not_a_capture_exits_2_with_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "notes.pcap"
    path.write_bytes(content)
    done = run_cli("info", "--json", str(path))
    assert done.returncode == 2
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"burstwatch: error: {path}: {message}")


def test_missing_file_exits_2(tmp_path: Path) -> None:
    done = run_cli("info", str(tmp_path / "absent.pcap"))
    assert done.returncode == 2
    assert done.stderr.decode() == f"burstwatch: error: {tmp_path / 'absent.pcap'}: no such file\n"


def test_one_bad_file_among_good_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.pcap"
    good.write_bytes(capture())
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"nope")
    status, objs, err = info_json(capsys, str(bad), str(good))
    assert status == 2
    assert [o["file"] for o in objs] == [str(good)]
    assert err.splitlines() == [f"burstwatch: error: {bad}: not a pcap or pcapng capture (starts with 0x6e6f7065)"]


def test_pcapng_named_pcap_is_identified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "really-pcapng.pcap"
    path.write_bytes(pcapng_bytes([(p[0], p[1]) for p in PACKETS]))
    if not pcapng_reader_available():
        pytest.skip("pcapng reader not available")
    status, objs, err = info_json(capsys, str(path))
    assert (status, err) == (0, "")
    assert objs[0]["format"] == "pcapng"
    assert objs[0]["packets"] == 3
    assert objs[0]["decode"] == {"ok": 2, "arp": 1}


def test_pcap_named_pcapng_is_identified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "really-pcap.pcapng"
    path.write_bytes(capture())
    status, objs, _ = info_json(capsys, str(path))
    assert status == 0
    assert objs == [{"file": str(path), **EXPECTED}]


def test_real_captures_match_catalog(shared_pcaps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = catalog_packet_counts(shared_pcaps / "CATALOG.md")
    assert len(counts) >= 19
    have_pcapng = pcapng_reader_available()
    checked = []
    for name, packets in sorted(counts.items()):
        path = shared_pcaps / name
        if path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a" and not have_pcapng:
            continue
        status, objs, err = info_json(capsys, str(path))
        assert status == 0, (name, err)
        assert objs[0]["packets"] == packets, name
        if "truncated" in name:
            assert [w["byte_offset"] for w in objs[0]["warnings"]] == [3276005]
            assert err.startswith(f"burstwatch: warning: {path}: at byte offset 3276005: ")
        else:
            assert (objs[0]["warnings"], err) == ([], ""), name
        checked.append(name)
    if len(checked) < len(counts):
        pytest.skip("pcapng reader not available")


def test_counts_per_encapsulation_and_outcome(shared_pcaps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GTP-U whose outer packets were fragmented: 108 packets, 40 of them fragments held
    # until their datagram completes (36 reassembled, some of them inner fragments again).
    path = shared_pcaps / "encap" / "zeek-tunnel-gtp1-fragmented.pcap"
    assert main(["info", "--json", str(path)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["packets"] == 108
    assert got["decode"] == {"ok": 68, "fragment": 40}
    assert got["encapsulation"] == {"gtp": 68}
    assert got["reassembly"] == {"reassembled": 36}
    assert main(["info", "--json", "--no-decap", str(path)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["encapsulation"] == {}


def test_mostly_not_ip_is_a_warning(shared_pcaps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_pcaps / "encap" / "tcpdump-pppoes.pcap"  # two PPP LCP echo requests
    assert main(["info", str(path)]) == 0
    err = capsys.readouterr().err
    assert "100 % of packets were not IP: ethertype 0x8864 (2)" in err
