"""`burstwatch state info|prune|export`: output, exit statuses, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from burstwatch.cli.main import main
from burstwatch.ledger import Ledger
from tests.ledgercraft import CURRENT, DAY, HISTORY, S, T

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ledger_path(tmp_path: Path) -> str:
    path = str(tmp_path / "ledger.duckdb")
    with Ledger.open(path, retention_days=45) as ledger:
        ledger.append(HISTORY)
        ledger.append(CURRENT)
        ledger.put_state("flows", b"\x00" * 10)
    return path


def test_info_json(ledger_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "info", ledger_path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info.pop("file_bytes") == os.path.getsize(ledger_path) > 0
    assert info == {
        "path": ledger_path, "schema_version": 1, "retention_days": 45.0, "bursts": 7,
        "flow_rows": 8, "hosts": 2, "conversations": 3, "first_ns": T - 10 * DAY,
        "last_ns": T + 3300 * S, "pruned_before_ns": T + 3300 * S - 45 * DAY,
        "state": {"flows": 10},
    }


def test_info_table(ledger_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "info", ledger_path]) == 0
    out = capsys.readouterr().out
    for line in ("retention", "45 days", "bursts", "conversations", "2023-11-04 22:13:20 UTC",
                 "2023-11-14 23:08:20 UTC", "flows: 10 bytes"):
        assert line in out


def test_prune(ledger_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "prune", ledger_path]) == 0  # the recorded 45 days: nothing to do
    assert "deleted 0 bursts and flow rows" in capsys.readouterr().out
    assert main(["state", "prune", ledger_path, "--older-than", "5"]) == 0
    assert capsys.readouterr().out == (
        f"{ledger_path}: deleted 2 bursts and flow rows that ended before "
        "2023-11-09 23:08:20 UTC (older than 5 days)\n")
    assert main(["state", "info", ledger_path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["bursts"], info["flow_rows"], info["retention_days"]) == (6, 7, 45.0)


def test_export(ledger_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "export"
    assert main(["state", "export", ledger_path, "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"{out}/bursts: 7 rows\n{out}/flows: 8 rows\n"
    assert ds.dataset(out / "flows", partitioning="hive").count_rows() == 8
    assert main(["state", "export", ledger_path, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"burstwatch: error: {out}/bursts already exists and is not empty; choose a new directory\n"


@pytest.mark.parametrize("action", [["info"], ["prune"], ["export", "-o", "x"]])
def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], action: list[str]) -> None:
    missing = str(tmp_path / "missing.duckdb")
    assert main(["state", action[0], missing, *action[1:]]) == 2
    assert capsys.readouterr().err == f"burstwatch: error: {missing}: no such ledger file\n"
    assert not os.path.exists(missing)
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"\x00garbage" * 1000)
    assert main(["state", action[0], str(junk), *action[1:]]) == 2
    assert capsys.readouterr().err == (
        f"burstwatch: error: {junk} is not a burstwatch ledger (not a DuckDB database)\n")


def test_bad_older_than(ledger_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "prune", ledger_path, "--older-than", "0"]) == 2
    assert "--older-than: expected a positive number of days" in capsys.readouterr().err


def test_locked(ledger_path: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with Ledger.open(ledger_path):
        done = subprocess.run(
            [sys.executable, "-m", "burstwatch", "state", "info", ledger_path],
            capture_output=True, text=True, env=env, timeout=120,
        )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"burstwatch: error: {ledger_path} is in use by another burstwatch process "
        f"(pid {os.getpid()})\n")
