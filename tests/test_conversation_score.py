"""The conversation anomaly score: one-sided departures, monotone scores, calibration, the model
file, training rows from a ledger, `burstwatch train`, and the shipped model on real captures.

Scores are checked as rankings and bounds over several seeds, never as exact floats.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from burstwatch.builders.conversation_measure import catalog, must_stay_low, real_captures
from burstwatch.cli import main as cli_main
from burstwatch.config import load_settings
from burstwatch.conversations.features import conversation_features
from burstwatch.conversations.judge import ANOMALY_THRESHOLD, RAISE_THRESHOLD, Judge
from burstwatch.conversations.registry import CONVERSATION_FEATURE_INDEX, CONVERSATION_FEATURES
from burstwatch.enrich.annotate import FlowAnnotator
from burstwatch.enrich.geo import GeoDatabase
from burstwatch.flows.roles import local_nets
from burstwatch.ledger import DAY_NS, Ledger, conversations
from burstwatch.pipeline import run_flows
from burstwatch.score import ModelError
from burstwatch.score.conversation import (
    DIRECTIONS,
    MIN_ROWS,
    ConversationModel,
    rows_from_captures,
    rows_from_ledger,
)
from burstwatch.score.conversation.explain import NOT_SCORED
from burstwatch.score.conversation.model import check_schema, default_model_path
from burstwatch.score.conversation.rows import horizon_ends
from burstwatch.score.conversation.transform import SIDES, USED, floor32, transform
from burstwatch.score.model_file import read_model, write_model
from burstwatch.synth import Endpoint, merge, run_scenario, write_capture
from burstwatch.synth.addresses import internal_v4

F64 = npt.NDArray[np.float64]
NF = len(CONVERSATION_FEATURES)
IDX = CONVERSATION_FEATURE_INDEX
S = 1_000_000_000
T0 = 1_710_201_600.0  # 2024-03-12 00:00:00 UTC


# ---- toy data: a baseline of ordinary conversations, and one far toward exfiltration ----


def toy_rows(seed: int, n: int = 400) -> F64:
    """Benign-looking conversation rows: every feature drawn around a typical value."""
    rng = np.random.default_rng(seed)
    X = np.full((n, NF), np.nan)
    for j, f in enumerate(CONVERSATION_FEATURES):
        if f.unit in ("bytes", "bytes/s"):
            X[:, j] = rng.lognormal(np.log(2e6), 1.0, n)
        elif f.unit == "s":
            X[:, j] = rng.lognormal(np.log(300.0), 1.0, n)
        elif f.unit in ("bursts", "connections"):
            X[:, j] = rng.integers(1, 8, n)
        elif f.unit == "flag":
            X[:, j] = np.where(rng.random(n) < 0.3, np.nan, (rng.random(n) < 0.1).astype(float))
        else:
            X[:, j] = rng.uniform(0.0, 0.6, n)
    X[rng.random(n) < 0.3, IDX["periodicity"]] = np.nan  # fewer than 3 bursts
    return X


def exfil_row(baseline: F64) -> F64:
    """Every used feature well past the baseline's extreme, toward exfiltration."""
    row = np.nanmedian(baseline, axis=0)
    for j in USED.tolist():
        side = SIDES[j]
        hi = np.nanmax(baseline[:, j])
        if side.direction > 0:
            row[j] = 1.0 if side.unit in ("ratio", "score 0-1", "flag") else hi * 20
        else:
            row[j] = 0.0
    return row


@pytest.fixture(scope="module")
def toy_model() -> tuple[ConversationModel, F64]:
    X = toy_rows(0)
    return ConversationModel(n_estimators=60, random_state=0).fit(X, hosts=["h"] * len(X), source="toy"), X


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_conversation_far_toward_exfiltration_outranks_typical_ones(seed: int) -> None:
    X = toy_rows(seed)
    model = ConversationModel(n_estimators=100, random_state=seed).fit(X)
    fresh = toy_rows(seed + 100, 300)
    scores, _ = model.score(np.vstack([fresh, exfil_row(X)]))
    assert scores[-1] >= ANOMALY_THRESHOLD
    assert scores[-1] > np.quantile(scores[:-1], 0.99)
    # calibrated: on rows like the baseline, thresholds pass about 1 - t of them
    assert np.mean(scores[:-1] >= 0.9) <= 0.2
    assert np.mean(scores[:-1] >= RAISE_THRESHOLD) <= 0.05


def _toward_benign(row: F64, j: int, amount: float) -> F64:
    out = row.copy()
    d = SIDES[j].direction
    if np.isnan(out[j]) or d == 0:
        return out
    out[j] = out[j] * (1 - amount) if d > 0 else out[j] + (1.0 - out[j]) * amount
    if j == IDX["burst_count"]:
        out[j] = max(out[j], 1.0)  # still a conversation with an upload burst
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10_000), st.integers(0, NF - 1), st.floats(0.0, 1.0), st.floats(0.0, 30.0))
def test_moving_any_feature_toward_benign_never_raises_the_score(
    toy_model: tuple[ConversationModel, F64], seed: int, j: int, amount: float, stretch: float
) -> None:
    model, X = toy_model
    rng = np.random.default_rng(seed)
    row = X[rng.integers(len(X))] * (1.0 + stretch * rng.random(NF))  # some rows far out
    row = np.where(np.isin(np.arange(NF), [IDX[n] for n in DIRECTIONS if SIDES[IDX[n]].unit in
                                           ("ratio", "score 0-1", "flag")]), np.minimum(row, 1.0), row)
    lower = _toward_benign(row, j, amount)
    before, _ = model.score(row[None, :])
    after, _ = model.score(lower[None, :])
    assert after[0] <= before[0]
    assert model.raw_score(lower[None, :])[0] <= model.raw_score(row[None, :])[0]


def test_values_on_the_benign_side_of_the_median_or_undefined_are_exactly_typical(
    toy_model: tuple[ConversationModel, F64],
) -> None:
    model, X = toy_model
    median = np.nanmedian(X, axis=0)
    smaller = median.copy()
    undefined = median.copy()
    for j in USED.tolist():
        d = SIDES[j].direction
        smaller[j] = median[j] * 0.01 if d > 0 else min(1.0, median[j] * 3)
        if j != IDX["burst_count"]:
            undefined[j] = np.nan
    smaller[IDX["burst_count"]] = undefined[IDX["burst_count"]] = 1
    rows = np.vstack([smaller, undefined])
    floor = floor32(model.medians_)
    assert (transform(rows, model.medians_) == floor).all()  # both are the baseline's median row
    scores, reasons = model.score(rows)
    assert scores[0] == scores[1] and list(reasons) == [[], []]


def test_conversations_without_an_upload_burst_score_zero(toy_model: tuple[ConversationModel, F64]) -> None:
    model, X = toy_model
    row = exfil_row(X)
    row[IDX["burst_count"]] = 0
    scores, reasons = model.score(row[None, :])
    assert scores[0] == 0.0 and reasons[0] == [{"text": NOT_SCORED}]


def test_reasons_name_the_largest_departures_with_units(toy_model: tuple[ConversationModel, F64]) -> None:
    model, X = toy_model
    row = np.nanmedian(X, axis=0)
    row[IDX["upload_bytes_total"]] = 80e6
    row[IDX["quiet_share"]] = 0.99
    scores, reasons = model.score(row[None, :])
    texts = [r["text"] for r in reasons[0]]
    assert 1 <= len(texts) <= 3
    assert any(t.startswith("upload_bytes_total 80.0 MB is above every baseline row (max ") and "MB)" in t
               for t in texts)
    assert all(r["direction"] in ("above", "below") and r["baseline_tail_share"] <= 0.05 for r in reasons[0])
    # a row just on the benign side of every median has nothing to name, and a typical score
    typical = np.nanmedian(X, axis=0)
    for j in USED.tolist():
        typical[j] *= 0.9 if SIDES[j].direction > 0 else 1.1
    score, why = model.score(typical[None, :])
    assert why[0] == [] and score[0] < 0.9


def test_calibration_cannot_claim_more_than_its_rows_support() -> None:
    X = toy_rows(5, 40)
    model = ConversationModel(n_estimators=50).fit(X)
    scores, _ = model.score(exfil_row(X)[None, :])
    assert model.calibration_.ceiling == pytest.approx(40 / 41)
    assert scores[0] <= 40 / 41 < ANOMALY_THRESHOLD


def test_too_few_conversations_with_upload_bursts_is_a_model_error() -> None:
    X = toy_rows(6, 60)
    X[MIN_ROWS - 1:, IDX["burst_count"]] = 0
    with pytest.raises(ModelError, match=f"only {MIN_ROWS - 1} conversation.*at least {MIN_ROWS}"):
        ConversationModel().fit(X)


def test_every_feature_has_a_direction_and_the_transform_is_one_sided() -> None:
    assert set(DIRECTIONS) == {f.name for f in CONVERSATION_FEATURES}
    assert DIRECTIONS["upload_bytes_total"] == 1 and DIRECTIONS["quiet_share"] == 1
    assert DIRECTIONS["largest_burst_share"] == -1
    assert all(d in (-1, 0, 1) for d in DIRECTIONS.values())


# ---- the model file ----


def test_model_file_round_trip_gives_the_same_scores_and_reasons(
    toy_model: tuple[ConversationModel, F64], tmp_path: Path
) -> None:
    model, X = toy_model
    path = tmp_path / "site.bwm"
    model.save(path)
    loaded = ConversationModel.load(path)
    rows = np.vstack([toy_rows(42, 50), exfil_row(X)])
    a, ra = model.score(rows)
    b, rb = loaded.score(rows)
    assert np.array_equal(a, b) and list(ra) == list(rb)
    assert loaded.site_trained and loaded.training_ == json.loads(json.dumps(model.training_))
    header, arrays = read_model(path, "conversation", check_schema)
    assert header["kind"] == "conversation"
    assert [f["direction"] for f in header["schema"]["features"]] == [DIRECTIONS[f.name] for f in
                                                                       CONVERSATION_FEATURES]
    assert arrays["medians"].shape == (USED.size,)
    assert {"rows", "hosts", "source", "created", "horizon_hours"} <= header["training"].keys()
    model.save(tmp_path / "again.bwm")  # deterministic bytes
    assert (tmp_path / "again.bwm").read_bytes() == path.read_bytes()


def test_site_trained_is_false_only_for_a_shipped_model(tmp_path: Path) -> None:
    X = toy_rows(7, 60)
    shipped = ConversationModel(n_estimators=20).fit(X, shipped=True, source="generated benign traffic")
    site = ConversationModel(n_estimators=20).fit(X, source="site history x")
    assert not shipped.site_trained and site.site_trained
    shipped.save(tmp_path / "s.bwm")
    site.save(tmp_path / "t.bwm")
    assert not ConversationModel.load(tmp_path / "s.bwm").site_trained
    assert ConversationModel.load(tmp_path / "t.bwm").site_trained


def test_pickled_garbage_foreign_or_altered_files_are_refused(
    toy_model: tuple[ConversationModel, F64], tmp_path: Path
) -> None:
    model, _ = toy_model
    good = tmp_path / "good.bwm"
    model.save(good)
    pickled = tmp_path / "pickled.bwm"
    pickled.write_bytes(pickle.dumps(model))
    garbage = tmp_path / "garbage.bwm"
    garbage.write_bytes(b"\x00garbage" * 100)
    half = tmp_path / "half.bwm"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for bad, pattern in ((pickled, "not a burstwatch model"), (garbage, "not a burstwatch model"),
                         (half, "truncated or damaged"), (tmp_path / "missing.bwm", "cannot read")):
        with pytest.raises(ModelError, match=pattern):
            ConversationModel.load(bad)
    # a model of another kind (a flow model of earlier versions has no kind) is refused by name
    header, arrays = read_model(good, "conversation", check_schema)
    header = {k: v for k, v in header.items()
              if k not in ("format", "format_version", "payload_sha256", "kind")}
    flow = tmp_path / "flow.bwm"
    write_model(flow, header, arrays)
    with pytest.raises(ModelError, match="is a flow model, not a conversation model"):
        ConversationModel.load(flow)
    # a model whose directions were edited (hash recomputed) is refused as another schema
    header, arrays = read_model(good, "conversation", check_schema)
    header = {k: v for k, v in header.items() if k not in ("format", "format_version", "payload_sha256")}
    header["schema"]["features"][IDX["quiet_share"]]["direction"] = -1
    edited = tmp_path / "edited.bwm"
    write_model(edited, header, arrays)
    with pytest.raises(ModelError, match="other conversation features.*treats quiet_share differently"):
        ConversationModel.load(edited)


# ---- training rows from a ledger and from captures ----


def test_horizon_ends_step_back_from_the_newest_record_and_skip_empty_ones() -> None:
    H = DAY_NS
    last = 100 * H + 7
    assert horizon_ends(last, [0, 5, H - 1], H) == [last]  # shorter than one horizon: one
    # a clock that jumps by weeks costs the horizons that hold records, not every one between
    assert horizon_ends(last, [0, 5, H - 1, H, 3 * H + 2, 50 * H], H) == [
        last - 50 * H, last - 3 * H, last - H, last]
    with pytest.raises(ValueError):
        horizon_ends(last, [0], 0)


def _site(path: Path, hosts: int, days: int, seed: int) -> Path:
    """``hosts`` hosts over ``days`` days: photo syncs and cloud backups (small), DNS, a call."""
    flows = []
    for h in range(hosts):
        ip = Endpoint(internal_v4(30 + h))
        for d in range(days):
            rng = np.random.default_rng([seed, h, d])
            day0 = T0 + d * 86_400.0
            for name, params in (("photo_backup_home", {"photos": int(rng.integers(2, 5)),
                                                        "photo_bytes": (150_000, 400_000)}),
                                 ("backup_upload", {"total_bytes": int(rng.integers(300_000, 900_000)),
                                                    "part_bytes": 300_000}),
                                 ("dns_lookups", {"duration_s": 60.0, "per_minute": 4.0})):
                start = day0 + float(rng.uniform(8.0, 20.0)) * 3600.0
                flows.extend(run_scenario(name, int(rng.integers(1 << 30)), start_ts=start, client=ip,
                                          **params).flows)
    write_capture(path, merge(flows))
    return path


@pytest.fixture(scope="module")
def site_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _site(tmp_path_factory.mktemp("site") / "site.pcap", hosts=8, days=2, seed=5)


@pytest.fixture(scope="module")
def site_ledger(site_capture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site's ledger file, written as scan writes it."""
    path = tmp_path_factory.mktemp("state") / "ledger.duckdb"
    site = load_settings(None, None, None)
    geo = GeoDatabase.bundled()
    with Ledger.open(str(path), 36_500.0) as ledger:
        for _ in run_flows([str(site_capture)], enricher_factory=lambda: FlowAnnotator(geo, site),
                           local=local_nets(site.internal_nets), ledger=ledger):
            pass
    return path


def test_training_rows_cover_every_horizon_of_the_ledger(site_ledger: Path, site_capture: Path) -> None:
    with Ledger.open(str(site_ledger), None, read_only=True) as ledger:
        rows = rows_from_ledger(ledger, DAY_NS)
        conv, bursts = conversations(ledger, DAY_NS)
        latest = conversation_features(conv, bursts)
    assert rows.horizons == 2
    assert len(rows) == int(rows.horizons and len(rows))
    ends = sorted(set(rows.horizon_end_ns.tolist()))
    assert len(ends) == 2 and ends[1] - ends[0] == DAY_NS
    last = rows.horizon_end_ns == ends[1]
    np.testing.assert_array_equal(rows.values[last], latest.values)  # the judge's own rows
    assert rows.hosts() == 8 and rows.scored.sum() == 2 * 8 * 2  # two uploading parties per host-day
    first = rows.values[~last & rows.scored]
    later = rows.values[last & rows.scored]
    assert np.isnan(first[:, IDX["party_new"]]).all()  # no history before the first day
    assert (later[:, IDX["party_new"]] == 0).all()  # the same clouds again
    assert set(rows.remote_ip[rows.scored].tolist()) <= {"52.216.8.19", "17.248.185.40"}
    # captures read straight into a ledger in memory give the same rows
    again = rows_from_captures([str(site_capture)], DAY_NS)
    np.testing.assert_array_equal(again.values, rows.values)


def test_the_model_serves_the_judge(site_ledger: Path) -> None:
    with Ledger.open(str(site_ledger), None, read_only=True) as ledger:
        rows = rows_from_ledger(ledger, DAY_NS)
        conv, bursts = conversations(ledger, DAY_NS)
    model = ConversationModel(n_estimators=50).fit(rows.values, hosts=list(rows.local_ip))
    judgement = Judge([], load_settings(None, None, None), scorer=model)(conv, bursts)
    assert judgement.conversations == len(conv)
    assert judgement.cases == []  # nothing abroad, nothing above the threshold alone


# ---- the train command ----


def _train(argv: list[str]) -> int:
    return cli_main.main(["train", *argv])


def test_train_from_captures_and_from_the_site_ledger(site_capture: Path, site_ledger: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site.bwm"
    assert _train([str(site_capture), "-o", str(out), "--trees", "40", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text
    assert "learned from 32 conversations with upload bursts" in text and "from 8 distinct hosts" in text
    assert "captures site.pcap: 32 rows over 2 horizon(s)" in text
    assert f"warning: no conversation can reach {ANOMALY_THRESHOLD}" in text and "at least 199" in text
    model = ConversationModel.load(out)
    assert model.site_trained and model.n_estimators == 40 and model.trees_.n_trees == 40
    assert model.training_["source"] == "captures site.pcap" and model.training_["hosts"] == 8

    out2 = tmp_path / "state.bwm"
    assert _train(["--state", str(site_ledger), "-o", str(out2), "--trees", "40", "--seed", "3",
                   "--horizon", "12"]) == 0
    text = capsys.readouterr().out
    assert f"site history {site_ledger}" in text and "horizon 12 h" in text
    assert ConversationModel.load(out2).training_["horizon_hours"] == 12

    both = tmp_path / "both.bwm"
    assert _train(["--state", str(site_ledger), str(site_capture), "-o", str(both), "--trees", "20"]) == 0
    assert "learned from 64 conversations" in capsys.readouterr().out


def test_train_refuses_with_one_line(site_capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = _site(tmp_path / "small.pcap", hosts=3, days=1, seed=9)
    cases = [
        (["-o", str(tmp_path / "a.bwm")], "give --state PATH"),
        ([str(small), "-o", str(tmp_path / "b.bwm")], f"only 6 conversation(s) with upload bursts to learn "
                                                       f"from; at least {MIN_ROWS} are needed"),
        (["--state", str(tmp_path / "nope.duckdb"), "-o", str(tmp_path / "c.bwm")], "no such ledger file"),
        ([str(site_capture), "-o", str(tmp_path / "d.bwm"), "--trees", "0"],
         "--trees: expected a whole number of at least 1"),
    ]
    for argv, message in cases:
        assert _train(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err
    assert not list(tmp_path.glob("*.bwm"))


# ---- the shipped model ----


def test_the_shipped_model_loads_and_says_what_it_learned_from() -> None:
    model = ConversationModel.default()
    t = model.training_
    assert not model.site_trained and t["shipped"] and t["source"] == "generated benign traffic"
    assert t["rows"] >= 1000 and t["hosts"] >= 100 and t["horizon_hours"] == 24
    assert model.calibration_.ceiling > ANOMALY_THRESHOLD
    assert default_model_path().parent == Path(__file__).resolve().parent.parent / "burstwatch" / "score" / "data"


@pytest.mark.slow
def test_the_shipped_model_keeps_benign_real_captures_below_the_alert_threshold(shared_pcaps: Path) -> None:
    listed = [(p, label) for p, label in catalog(shared_pcaps) if must_stay_low(label)]
    assert listed, "the catalog lists no NEG or POS* capture"
    results = real_captures(ConversationModel.default(), shared_pcaps)
    checked = [r for r in results if must_stay_low(r.label)]
    assert len(checked) == len(listed)
    high = [(r.file, r.best, r.reason) for r in checked if r.best >= ANOMALY_THRESHOLD]
    assert not high
