"""live's case desk: what it keeps between evaluations stays bounded, and a case is written
once, then again only when it grows."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from burstwatch.alerts.detect import Detector
from burstwatch.alerts.frame import rule_catalog
from burstwatch.cli.live import CaseDesk
from burstwatch.config import load_settings
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.pipeline import run_flows
from burstwatch.rules import load_rules
from tests.conftest import PROJECT_PCAPS, REPO


def test_an_open_flow_matched_every_interval_is_held_once_and_its_case_written_once() -> None:
    settings = load_settings(None, None, None)
    rules = load_rules([REPO / "rules"], rule_catalog())
    written: list[tuple[dict[str, Any], str]] = []
    args = argparse.Namespace(no_state=True, state=None, retention=30.0, horizon=24.0,
                              no_score=True, model=None)
    desk = CaseDesk(args, rules, settings, lambda record, level: written.append((record, level)))
    geo = GeoDatabase.bundled()
    batches = list(run_flows([str(PROJECT_PCAPS / "demo.pcap")],
                             enricher_factory=lambda: FlowAnnotator(geo, settings)))
    alerts = [a for b in batches for a in Detector(rules)(b)]
    assert alerts
    try:
        for b in batches:
            desk.take(b, [])
        for _ in range(5):  # the same hits, as five evaluation intervals would bring them
            desk.take(None, alerts)
            desk.evaluate("eth0")
    finally:
        desk.close()
    assert len(desk.flow_alerts) == len(alerts)
    assert [(r["burstwatch"]["conversation"]["party"], r["burstwatch"]["case"]["revision"]) for r, _ in written] == [
        ("example.net", 1)]


def test_a_ledger_that_cannot_be_written_does_not_stop_live_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk under live's ledger: the error is said once, the batches wait in memory,
    and once the disk has room again they are all written and the case comes out."""
    from burstwatch.ledger import Ledger, LedgerError

    settings = load_settings(None, None, None)
    rules = load_rules([REPO / "rules"], rule_catalog())
    written: list[tuple[dict[str, Any], str]] = []
    args = argparse.Namespace(no_state=False, state=str(tmp_path / "live.duckdb"), retention=30.0,
                              horizon=24.0, no_score=True, model=None)
    desk = CaseDesk(args, rules, settings, lambda record, level: written.append((record, level)))
    said: list[str] = []
    desk.failed = said.append
    full = [True]
    insert = Ledger._insert

    def insert_unless_full(self: Ledger, tables: Any) -> None:
        if full[0]:
            raise LedgerError(f"{self.path}: cannot write: IO Error: No space left on device")
        insert(self, tables)

    monkeypatch.setattr(Ledger, "_insert", insert_unless_full)
    geo = GeoDatabase.bundled()
    batches = list(run_flows([str(PROJECT_PCAPS / "demo.pcap")],
                             enricher_factory=lambda: FlowAnnotator(geo, settings)))
    try:
        for b in batches:
            desk.take(b, [])
        desk.evaluate("eth0")
        assert written == [] and len(desk.unwritten) == len(batches)
        assert said and all("No space left on device" in m for m in said)
        full[0] = False  # room again
        desk.take(None, [])
        desk.evaluate("eth0")
        assert written == []  # nothing new was appended yet: the next batch writes the backlog
        desk.take(batches[-1], [])
        desk.evaluate("eth0")
    finally:
        desk.close()
    assert not desk.unwritten and desk.lost_batches == 0
    assert [r["burstwatch"]["conversation"]["party"] for r, _ in written] == ["example.net"]
    with Ledger.open(args.state, None, read_only=True) as ledger:
        held = ledger.connection.execute("SELECT count(*) FROM bursts").fetchone()
    assert held is not None and held[0] == sum(len(b.bursts) for b in batches)
