"""The live warm-up runs every stage on its generated packets, so no kernel compiles mid-capture."""

from __future__ import annotations

import numpy as np

from burstwatch.alerts.detect import Detector
from burstwatch.alerts.frame import rule_catalog
from burstwatch.cli.warmup import warm_up, warm_up_records
from burstwatch.config import load_settings
from burstwatch.decode import decode
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows import FlowConfig
from burstwatch.rules import load_rules
from tests.conftest import REPO


def test_warm_up_records_decode_cleanly_and_reach_the_detector() -> None:
    records = warm_up_records()
    packets = decode(records)
    assert len(packets) > 20
    assert (packets.status == 0).all()
    assert (packets.payload_len > 0).any()
    rules = load_rules([REPO / "rules"], rule_catalog())
    seen: list[int] = []

    class Counting(Detector):
        def __call__(self, batch):  # type: ignore[no-untyped-def]
            seen.append(len(batch))
            return super().__call__(batch)

    rows = warm_up(FlowConfig(), GeoDatabase.bundled(), load_settings(None, None, None),
                   Counting(rules))
    # the update, the snapshot and the final flush each hand rows to the detector
    assert rows >= 2 and sum(seen) == rows and len(seen) >= 2
    assert np.all(np.asarray(seen) > 0)
