"""live's case desk: what it keeps between evaluations stays bounded, and a case is written
once, then again only when it grows."""

from __future__ import annotations

import argparse
from typing import Any

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
    assert [(r["burstwatch"]["case"]["party"], r["burstwatch"]["case"]["revision"]) for r, _ in written] == [
        ("example.net", 1)]
