"""A run that ends mid-capture hands its open flows to the next run: scanning a capture in
parts, one run per part, gives the flows, bursts and enrichment of one run over the whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.config import load_settings
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows import FlowConfig
from burstwatch.ingest import open_capture
from burstwatch.pipeline import Pipeline
from burstwatch.records import FlowBatch
from tests.test_multifile import DEMO, write_parts

GEO = GeoDatabase.bundled()
SETTINGS = load_settings(None, None, None)


def pipeline(config: FlowConfig | None = None) -> Pipeline:
    return Pipeline("t", config, FlowAnnotator(GEO, SETTINGS))


def records_of(batches: list[FlowBatch]) -> list[tuple]:
    out = []
    for b in batches:
        r = b.rows
        cols = sorted(b.extra)
        for i in range(len(r)):
            out.append(("row", int(r.flow_id[i]), int(r.kind[i]), int(r.reason[i]),
                        bool(r.local_initiated[i]), tuple(r.acc_i[i].tolist()),
                        tuple(np.round(r.acc_f[i], 6).tolist()),
                        tuple(str(b.extra[c][i]) for c in cols)))
        bu = b.bursts
        for i in range(len(bu)):
            out.append(("burst", int(bu.flow_id[i]), int(bu.direction[i]), int(bu.start_ns[i]),
                        int(bu.bytes[i])))
    return sorted(out)


def run_parts(paths: list[Path], config: FlowConfig | None = None) -> list[FlowBatch]:
    """One pipeline per part: each run ends with a checkpoint the next one resumes."""
    out: list[FlowBatch] = []
    image = None
    for k, path in enumerate(paths):
        pipe = pipeline(config)
        if image is not None:
            pipe.resume(image)
        for records in open_capture(str(path)).batches():
            b = pipe.step(records)
            if b is not None:
                out.append(b)
        if k == len(paths) - 1:
            last = pipe.flush()
            out += [last] if last is not None else []
        else:
            image = pipe.checkpoint()
    return out


@pytest.fixture(scope="module")
def whole() -> list[tuple]:
    return records_of(run_parts([DEMO]))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 3659), min_size=1, max_size=4, unique=True))
def test_parts_resumed_from_checkpoints_equal_the_whole(
    tmp_path_factory: pytest.TempPathFactory, whole: list[tuple], cuts: list[int]
) -> None:
    parts = write_parts(DEMO, tmp_path_factory.mktemp("parts"), cuts)
    assert records_of(run_parts(parts)) == whole


def test_resume_refuses_other_settings_and_junk(tmp_path: Path) -> None:
    parts = write_parts(DEMO, tmp_path, [1800])
    pipe = pipeline()
    for records in open_capture(str(parts[0])).batches():
        pipe.step(records)
    image = pipe.checkpoint()
    assert pipe.table.active_flows > 0
    with pytest.raises(ValueError, match="flow settings differ"):
        pipeline(FlowConfig(idle_timeout=60)).resume(image)
    with pytest.raises(ValueError, match="not a flow checkpoint"):
        pipeline().resume(b"PK\x03\x04 not really")
    fresh = pipeline()
    fresh.resume(image)
    assert fresh.table.active_flows == pipe.table.active_flows
