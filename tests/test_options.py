"""Every option is checked where it is parsed: a value that makes no sense is one line on
standard error and exit status 2, before any input is read."""

from __future__ import annotations

import subprocess
import sys

import pytest

from burstwatch.cli.main import main
from burstwatch.config.countries import ISO_3166_ALPHA2
from tests.conftest import PROJECT_PCAPS, REPO

DEMO = str(PROJECT_PCAPS / "demo.pcap")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "burstwatch", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO, stdin=subprocess.DEVNULL)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    assert "Traceback" not in done.stderr and "usage:" not in done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["scan", DEMO, "--window", "-5"], "--window: expected a positive number of seconds"),
        (["scan", DEMO, "--idle-timeout", "0"], "--idle-timeout: expected a positive number"),
        (["scan", DEMO, "--active-timeout", "inf"], "--active-timeout: expected"),
        (["scan", DEMO, "--burst-gap", "nan"], "--burst-gap: expected"),
        (["flows", DEMO, "--burst-min-bytes", "-5"], "--burst-min-bytes: expected a whole number"),
        (["flows", DEMO, "--burst-min-bytes", "1.5"], "--burst-min-bytes: expected a whole number"),
        (["scan", DEMO, "--horizon", "-1"], "--horizon: expected a positive number of hours"),
        (["scan", DEMO, "--retention", "0"], "--retention: expected a positive number of days"),
        (["scan", DEMO, "--home", "XX"], "--home: 'XX' is not an ISO 3166-1 alpha-2 country code"),
        (["scan", DEMO, "--home", "US,UK"], "'UK' is not an ISO 3166-1 alpha-2 country code (GB"),
        (["lookup", "1.1.1.1", "--home", "U1"], "--home: 'U1' is not an ISO 3166-1"),
        (["live", "-i", "lo", "--interval", "0"], "--interval: expected a positive number"),
        (["live", "-i", "lo", "--duration", "nan"], "--duration: expected a positive number"),
        (["live", "-i", "lo", "--status-every", "-1"], "--status-every: expected"),
        (["live", "-i", "lo", "--count", "0"], "--count: expected a whole number of at least 1"),
        (["live", "-i", "lo", "--workers", "0"], "--workers: expected a whole number of at least 1"),
        (["train", "-o", "m.bwm", DEMO, "--trees", "0"], "--trees: expected a whole number"),
        (["train", "-o", "m.bwm", DEMO, "--horizon", "nan"], "--horizon: expected"),
        (["train", "-o", "m.bwm", DEMO, "--seed", "-1"], "--seed: expected a whole number of at least 0"),
        (["state", "prune", "x.duckdb", "--older-than", "-3"], "--older-than: expected a positive"),
        (["scan", DEMO, "--window", "1e300"], "--window: expected a positive number of seconds up to"),
        (["scan", DEMO, "--bogus"], "unrecognized arguments: --bogus"),
        (["scan"], "the following arguments are required: FILE"),
        (["scan", DEMO, "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
        ([], "burstwatch: error: say what to do (see 'burstwatch --help')"),
        (["rules"], "burstwatch rules: error: say what to do (see 'burstwatch rules --help')"),
        (["scan", DEMO, "--internal-nets", "10.0.0.0/33"], "'10.0.0.0/33' is not an IP network"),
        (["generate", "bulk", "x.pcap", "--size", "3"], "burstwatch generate: error: unrecognized"),
        (["generate", "bulk", "x.pcap", "--packets", "-5"], "--packets: expected a whole number"),
        (["generate", "bulk", "x.pcap", "--flows", "0"], "--flows: expected a whole number"),
        (["generate", "bulk", "x.pcap", "--bytes", "xyz"], "--bytes: not a size: 'xyz'"),
        (["generate", "scenario", "exfil_tls", "x.pcap", "--snaplen", "-1"], "--snaplen: expected"),
        (["generate", "scenario", "exfil_tls", "x.pcap", "--param", "nosuch=1"],
         "burstwatch: error: scenario exfil_tls: exfil_tls() got an unexpected keyword"),
        (["generate", "scenario", "exfil_tls", "/nonexistent/dir/x.pcap"],
         "burstwatch: error: /nonexistent/dir/x.pcap: cannot write (No such file or directory)"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(args)
    out, err = capsys.readouterr()
    line = one_line_error(subprocess.CompletedProcess(args, code, out, err))
    assert line.startswith("burstwatch"), line
    assert fragment in line, line


def test_a_bad_option_is_one_line_in_a_real_process_too() -> None:
    line = one_line_error(run_cli("scan", DEMO, "--window", "-5"))
    assert line == ("burstwatch scan: error: argument --window: expected a positive number of "
                    "seconds up to 3.1536e+08, not '-5' (see 'burstwatch scan --help')\n")


def test_good_values_are_accepted_and_passed_on(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", DEMO, "--format", "jsonl", "--home", "us,ru", "--window", "60",
                 "--burst-min-bytes", "1"])
    assert code in (0, 1)
    assert "home countries: US, RU (" in capsys.readouterr().err


def test_the_country_list_is_iso_3166_alpha_2() -> None:
    assert len(ISO_3166_ALPHA2) == 250  # 249 assigned, plus XK as geo databases use it
    assert {"US", "GB", "RU", "CN", "NL", "XK"} <= ISO_3166_ALPHA2
    assert not {"UK", "EU", "XX", "AP"} & ISO_3166_ALPHA2


def test_a_config_file_with_an_unknown_country_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("home_countries: [US, ZZ]\n", encoding="utf-8")
    line = one_line_error(run_cli("lookup", "1.1.1.1", "--config", str(cfg)))
    assert "'ZZ' is not an ISO 3166-1 alpha-2 country code" in line


def test_help_still_exits_0() -> None:
    done = run_cli("scan", "--help")
    assert done.returncode == 0 and "--window" in done.stdout
    done = run_cli("generate", "--help")
    assert done.returncode == 0 and "usage: burstwatch generate" in done.stdout
