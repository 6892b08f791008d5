"""Conversation features: exact values on tiny hand-made conversations, periodicity over many
seeds (jittered schedules high, random timing low), and all-at-once equals one-by-one."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest

from burstwatch.conversations.features import ConversationFeatures, conversation_features
from burstwatch.conversations.model import ConversationBursts, Conversations
from burstwatch.conversations.registry import CONVERSATION_FEATURE_NAMES, CONVERSATION_FEATURES

NS = 1_000_000_000
DAY = 86_400
H0 = 1_699_999_200 * NS  # horizon start, on an hour boundary (22:00 UTC)

Row = tuple[int, int, float, float, int, int]  # conversation, direction, start s, end s, bytes, flow


def conversations(n: int, **cols: Any) -> Conversations:
    """n conversations of one host with 30 days of history; keyword columns override."""
    obj = lambda v: np.array([v] * n, dtype=object)  # noqa: E731
    i64 = lambda v: np.full(n, v, dtype=np.int64)  # noqa: E731
    c = Conversations(
        local_ip=obj("10.0.0.5"),
        party=np.array([f"p{i}.example" for i in range(n)], dtype=object),
        party_kind=obj("domain"),
        remote_ip=obj("198.51.100.7"),
        remote_ips=i64(1),
        remote_port=i64(443),
        transport=obj("tcp"),
        remote_country=obj("DE"),
        remote_asn=i64(64500),
        remote_org=obj("Example Net"),
        encryption=obj("tls"),
        server_name=obj("up.p.example"),
        connections=i64(1),
        bytes_up=i64(1000),
        bytes_down=i64(1000),
        first_seen_ns=i64(H0),
        last_seen_ns=i64(H0 + DAY * NS),
        party_first_seen_ns=i64(H0 - 10 * DAY * NS),
        asn_first_seen_ns=i64(H0 - 10 * DAY * NS),
        country_first_seen_ns=i64(H0 - 10 * DAY * NS),
        host_first_seen_ns=i64(H0 - 30 * DAY * NS),
        host_peak_up_rate=np.full(n, 1e6),
        horizon_start_ns=i64(H0),
        horizon_end_ns=i64(H0 + DAY * NS),
    )
    for name, value in cols.items():
        old = getattr(c, name)
        setattr(c, name, np.asarray(value, dtype=old.dtype))
    return c


def bursts(rows: list[Row]) -> ConversationBursts:
    """Bursts from (conversation, direction, start s, end s, bytes, flow), times after H0."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    n = a.shape[0]
    return ConversationBursts(
        conversation=a[:, 0].astype(np.int64),
        direction=a[:, 1].astype(np.int8),
        start_ns=H0 + np.rint(a[:, 2] * NS).astype(np.int64),
        end_ns=H0 + np.rint(a[:, 3] * NS).astype(np.int64),
        bytes=a[:, 4].astype(np.int64),
        packets=np.ones(n, np.int64),
        flow_id=a[:, 5].astype(np.int64),
        remote_ip=np.array(["203.0.113.7"] * n, dtype=object),
    )


def uploads(conv: int, starts: np.ndarray | list[float], size: int = 50_000) -> list[Row]:
    """One-second upload bursts at the given start times, one connection each."""
    return [(conv, 0, float(s), float(s) + 1.0, size, conv * 100_000 + i) for i, s in enumerate(starts)]


def features(rows: list[Row], n: int | None = None, **cols: Any) -> ConversationFeatures:
    n = n if n is not None else max(r[0] for r in rows) + 1
    return conversation_features(conversations(n, **cols), bursts(rows))


def col(f: ConversationFeatures, name: str) -> list[float]:
    return f.column(name).tolist()


# --- registry --------------------------------------------------------------------------


def test_registry_names_are_unique_documented_and_match_the_matrix() -> None:
    assert len(set(CONVERSATION_FEATURE_NAMES)) == len(CONVERSATION_FEATURE_NAMES)
    for f in CONVERSATION_FEATURES:
        assert f.name.isidentifier() and f.unit and len(f.description) > 10
        assert "|" not in f.description  # would break the markdown table
    f = features(uploads(0, [0, 10, 20]))
    assert f.names == CONVERSATION_FEATURE_NAMES
    assert f.values.shape == (1, len(CONVERSATION_FEATURE_NAMES))


# --- sizes, counts, connections ---------------------------------------------------------


def test_counts_totals_median_max_and_connections() -> None:
    rows: list[Row] = [
        (0, 0, 0, 1, 100, 7),
        (0, 1, 0.5, 2, 30, 7),
        (0, 0, 10, 11, 300, 7),
        (0, 0, 20, 21, 200, 8),
        (0, 1, 25, 26, 70, 9),  # a download-only connection: not counted
        (1, 1, 0, 1, 500, 1),  # conversation 1: downloads only
    ]
    f = features(rows, n=3)  # conversation 2: no bursts at all
    assert col(f, "burst_count") == [3, 0, 0]
    assert col(f, "upload_bytes_total") == [600, 0, 0]
    assert col(f, "upload_bytes_median")[0] == 200
    assert col(f, "upload_bytes_max")[0] == 300
    assert col(f, "download_bytes_total") == [100, 500, 0]
    assert col(f, "connections") == [2, 0, 0]
    assert col(f, "bursts_per_connection")[0] == 1.5
    assert col(f, "largest_burst_share")[0] == 0.5
    assert col(f, "repetition") == [3, 0, 0]
    for name in ("upload_bytes_median", "upload_bytes_max", "bursts_per_connection",
                 "active_span", "quiet_share", "upload_peak_rate", "rate_vs_host_peak",
                 "largest_burst_share", "periodicity", "regularity", "hour_concentration"):
        assert np.isnan(f.column(name)[1:]).all(), name


def test_median_of_an_even_count_interpolates() -> None:
    f = features([(0, 0, i * 10, i * 10 + 1, b, i) for i, b in enumerate((100, 400, 200, 900))])
    assert col(f, "upload_bytes_median") == [300]  # (200 + 400) / 2


def test_repetition_separates_one_transfer_from_repeated_bursts() -> None:
    one = [(0, 0, 0, 600, 80_000_000, 1)]
    repeated = [(1, 0, i * 600, i * 600 + 2, s, 10 + i) for i, s in enumerate([900, 1000, 1100, 1000, 400])]
    f = features(one + repeated)
    assert col(f, "repetition") == [1, 4]  # 400 < 0.5 * median 1000
    assert col(f, "largest_burst_share") == [1.0, 1100 / 4400]


# --- time: span, quiet share, intervals -------------------------------------------------


def test_active_span_and_quiet_share_count_the_union_of_bursts_both_ways() -> None:
    rows: list[Row] = [
        (0, 0, 0, 10, 1000, 1),
        (0, 0, 100, 110, 1000, 2),
        (0, 1, 105, 120, 1000, 2),  # overlaps the upload: union 100..120
        (0, 0, 200, 205, 1000, 3),
        (0, 1, 203, 204, 1000, 3),  # inside an upload: adds nothing
        (0, 1, 300, 310, 1000, 3),  # after the last upload: outside the span
        (1, 0, 50, 60, 1000, 4),  # one burst: covers its whole span
        (2, 0, 50, 50, 1000, 5),  # one instantaneous burst: no span
    ]
    f = features(rows)
    assert col(f, "active_span") == [205.0, 10.0, 0.0]
    assert col(f, "quiet_share")[:2] == [1 - 35 / 205, 0.0]
    assert np.isnan(col(f, "quiet_share")[2])


def test_interval_median_mad_ratio_and_bowley_skew() -> None:
    # gaps 10, 20, 30, 60, 100: Q1 20, median 30, Q3 60; |gap - 30| = 20, 10, 0, 30, 70
    f = features(uploads(0, [0, 10, 30, 60, 120, 220]))
    assert col(f, "interval_median") == [30.0]
    assert col(f, "interval_mad_ratio") == [pytest.approx(20 / 30)]
    assert col(f, "interval_bowley_skew") == [pytest.approx((20 + 60 - 2 * 30) / (60 - 20))]
    # regularity = mean(1 - |skew|, max(0, 1 - mad_ratio / 0.5), periodicity)
    p = col(f, "periodicity")[0]
    assert col(f, "regularity") == [pytest.approx((0.5 + 0.0 + p) / 3)]


def test_bowley_skew_is_zero_when_the_quartiles_coincide_and_negative_when_left_skewed() -> None:
    f = features(uploads(0, [0, 60, 120, 180, 240]) + uploads(1, [0, 10, 80, 150, 160]))
    # conversation 1: gaps 10, 70, 70, 10 -> Q1 10, median 40, Q3 70: symmetric
    assert col(f, "interval_bowley_skew") == [0.0, 0.0]
    assert col(f, "interval_mad_ratio") == [0.0, pytest.approx(30 / 40)]
    # gaps 10, 50, 55, 60: Q1 40, median 52.5, Q3 56.25 -> (40 + 56.25 - 105) / 16.25
    g = features(uploads(0, [0, 10, 60, 115, 175]))
    assert col(g, "interval_bowley_skew") == [pytest.approx((40 + 56.25 - 105) / 16.25)]


def test_interval_features_are_nan_below_three_upload_bursts() -> None:
    f = features(uploads(0, [0]) + uploads(1, [0, 600]) + uploads(2, [0, 600, 1200]))
    for name in ("interval_median", "interval_mad_ratio", "interval_bowley_skew",
                 "periodicity", "regularity", "hour_concentration"):
        v = f.column(name)
        assert np.isnan(v[:2]).all() and not np.isnan(v[2]), name


def test_simultaneous_bursts_give_no_mad_ratio_and_zero_periodicity() -> None:
    f = features(uploads(0, [0, 0, 0, 5]))
    assert col(f, "interval_median") == [0.0]
    assert np.isnan(col(f, "interval_mad_ratio")[0])
    assert col(f, "periodicity") == [0.0]


# --- rates, shares, novelty, time of day ------------------------------------------------


def test_rate_vs_host_peak_is_one_on_a_slow_uplink_used_to_the_full() -> None:
    rows: list[Row] = [
        (0, 0, 0, 1, 200_000, 1),
        (0, 0, 10, 11, 400_000, 2),  # 0.4 MB/s, the host's best
        (1, 0, 0, 2, 400_000, 3),  # 0.2 MB/s on a host whose peak is 0.8 MB/s
        (2, 0, 0, 0.0005, 100, 4),  # under 1 ms counts as 1 ms: 100 kB/s
        (3, 0, 0, 1, 100, 5),  # no host peak known
    ]
    f = features(rows, host_peak_up_rate=[400_000.0, 800_000.0, 1e6, 0.0])
    assert col(f, "upload_peak_rate") == [400_000.0, 200_000.0, 100_000.0, 100.0]
    rel = col(f, "rate_vs_host_peak")
    assert rel[:3] == [1.0, 0.25, 0.1] and np.isnan(rel[3])


def test_upload_share_comes_from_the_conversation_byte_counts() -> None:
    f = features(uploads(0, [0]) + uploads(1, [0]) + uploads(2, [0]),
                 bytes_up=[900, 0, 0], bytes_down=[100, 50, 0])
    share = col(f, "upload_share")
    assert share[:2] == [0.9, 0.0] and np.isnan(share[2])


def test_novelty_needs_history_before_the_horizon() -> None:
    day = DAY * NS
    f = features(
        uploads(0, [0]) + uploads(1, [0]) + uploads(2, [0]) + uploads(3, [0]),
        # 0: old host, new party, old ASN, unknown country
        # 1: old host, everything seen before (two days of history)
        # 2: host first seen within the horizon: novelty unknown
        # 3: host first seen exactly at the horizon start: no history either
        host_first_seen_ns=[H0 - 30 * day, H0 - 2 * day, H0 + 3600 * NS, H0],
        party_first_seen_ns=[H0 + 100 * NS, H0 - day, H0 + 3600 * NS, H0],
        asn_first_seen_ns=[H0 - 5 * day, H0 - day, H0 + 3600 * NS, H0],
        country_first_seen_ns=[-1, H0 - day, H0 + 3600 * NS, H0],
    )
    assert col(f, "party_new")[:2] == [1.0, 0.0]
    assert col(f, "asn_new")[:2] == [0.0, 0.0]
    assert np.isnan(col(f, "country_new")[0]) and col(f, "country_new")[1] == 0.0
    for name in ("party_new", "asn_new", "country_new"):
        assert np.isnan(f.column(name)[2:]).all(), name
    assert col(f, "host_history_span") == [30 * DAY, 2 * DAY, 0.0, 0.0]


def test_hour_concentration() -> None:
    f = features(
        uploads(0, [10, 700, 3000])  # all within 22:00-23:00 UTC
        + uploads(1, [10, 3610, 7210])  # three different hours
        + uploads(2, [10, 20, 3610, 3620])  # two hours, two bursts each
    )
    assert col(f, "hour_concentration") == pytest.approx([1.0, 0.0, 1 - np.log(2) / np.log(4)])


# --- periodicity ------------------------------------------------------------------------

PERIOD = 600.0


def jittered_schedule(rng: np.random.Generator, n: int, jitter: float = 0.4, miss: float = 0.1) -> np.ndarray:
    """n burst starts: each gap one period +-jitter (uniform), each slot missed with prob miss."""
    t, times = 0.0, [0.0]
    while len(times) < n:
        t += PERIOD * (1 + rng.uniform(-jitter, jitter))
        if rng.random() >= miss:
            times.append(t)
    return np.array(times)


def poisson_times(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(rng.exponential(mean, n - 1))))


def over_seeds(n: int, seeds: range = range(50)) -> tuple[ConversationFeatures, ConversationFeatures]:
    """Features of a jittered schedule and of Poisson times with the same mean gap, one
    conversation per seed, all seeds in one call."""
    jit_rows: list[Row] = []
    poi_rows: list[Row] = []
    for i, seed in enumerate(seeds):
        t = jittered_schedule(np.random.default_rng(seed), n)
        jit_rows += uploads(i, t)
        mean = float(np.diff(t).mean())
        poi_rows += uploads(i, poisson_times(np.random.default_rng(10_000 + seed), n, mean))
    k = len(seeds)
    return features(jit_rows, n=k), features(poi_rows, n=k)


def periodicity_over_seeds(n: int) -> tuple[np.ndarray, np.ndarray]:
    jit, poi = over_seeds(n)
    return jit.column("periodicity"), poi.column("periodicity")


@pytest.mark.parametrize("n", [20, 50])
def test_periodicity_separates_jittered_schedules_from_random_timing(n: int) -> None:
    jit, poi = periodicity_over_seeds(n)
    assert jit.min() >= 0.6, np.sort(jit)[:5]
    assert poi.max() <= 0.3, np.sort(poi)[-5:]


@pytest.mark.parametrize("n", [20, 50])
def test_regularity_and_dispersion_separate_them_too(n: int) -> None:
    jit, poi = over_seeds(n)
    assert jit.column("regularity").min() > poi.column("regularity").max()
    assert np.median(jit.column("interval_mad_ratio")) < 0.25
    assert np.median(poi.column("interval_mad_ratio")) > 0.6


def test_periodicity_on_short_series_mostly_separates() -> None:
    # 12 bursts: 11 gaps are few, a random series now and then looks scheduled
    jit, poi = periodicity_over_seeds(12)
    assert (jit >= 0.6).mean() >= 0.9
    assert (poi <= 0.3).mean() >= 0.9


def test_periodicity_of_exact_and_gapped_schedules() -> None:
    exact = np.arange(30) * PERIOD
    slots = np.arange(40)
    gapped = np.delete(slots, [5, 11, 12, 23, 31]) * PERIOD  # exact, 5 of 40 slots missed
    tight = jittered_schedule(np.random.default_rng(1), 30, jitter=0.1, miss=0.0)
    f = features(uploads(0, exact) + uploads(1, gapped) + uploads(2, tight))
    p = col(f, "periodicity")
    assert p[0] == pytest.approx(1.0)
    assert p[1] >= 0.85
    assert p[2] >= 0.9
    assert col(f, "regularity")[0] == pytest.approx(1.0)


def test_periodicity_survives_one_long_pause_and_follows_the_typical_gap() -> None:
    rng = np.random.default_rng(3)
    paused = jittered_schedule(rng, 30)
    paused[15:] += 6 * 3600  # six hours off, then the same schedule again
    every_other = np.arange(0, 60, 2) * PERIOD  # half the slots, always the same half
    f = features(uploads(0, paused) + uploads(1, every_other))
    p = col(f, "periodicity")
    assert p[0] >= 0.6
    assert p[1] == pytest.approx(1.0)  # indistinguishable from a period of two slots
    assert col(f, "interval_median")[1] == 2 * PERIOD


def test_periodicity_is_low_for_clustered_bursts() -> None:
    # bursts in clumps at random times: overdispersed, no schedule
    rng = np.random.default_rng(5)
    t = np.sort(np.concatenate([c + rng.uniform(0, 30, 4) for c in rng.uniform(0, 20_000, 6)]))
    f = features(uploads(0, t))
    assert col(f, "periodicity")[0] <= 0.3


def test_periodicity_does_not_depend_on_the_time_scale() -> None:
    t = jittered_schedule(np.random.default_rng(7), 25)
    f = features(uploads(0, t) + uploads(1, t * 37.0))
    a, b = col(f, "periodicity")
    assert a == pytest.approx(b, abs=1e-9)


# --- vectorisation ----------------------------------------------------------------------


def random_rows(rng: np.random.Generator, k: int) -> list[Row]:
    """k conversations of assorted shapes: none, one, two and many bursts, both directions."""
    rows: list[Row] = []
    flow = 0
    for c in range(k):
        n = int(rng.choice([0, 1, 2, 3, 5, 12, 40]))
        starts = np.sort(rng.uniform(0, DAY - 100, n))
        if rng.random() < 0.3:
            starts = np.arange(n) * rng.uniform(60, 2000) + rng.normal(0, 20, n).clip(0)
        for s in starts:
            flow += int(rng.random() < 0.7)
            d = int(rng.random() < 0.3)
            rows.append((c, d, float(s), float(s) + float(rng.exponential(5)), int(rng.integers(1, 10**6)), flow))
    rows.sort(key=lambda r: (r[0], r[2]))
    return rows


def subset(conv: Conversations, b: ConversationBursts, i: int) -> tuple[Conversations, ConversationBursts]:
    one = Conversations(**{f.name: getattr(conv, f.name)[i : i + 1] for f in fields(conv)})
    keep = b.conversation == i
    part = ConversationBursts(**{f.name: getattr(b, f.name)[keep] for f in fields(b)})
    part.conversation = np.zeros(int(keep.sum()), np.int64)
    return one, part


def test_all_conversations_at_once_equal_one_by_one() -> None:
    rng = np.random.default_rng(11)
    k = 60
    conv = conversations(
        k,
        host_first_seen_ns=H0 + rng.integers(-5, 2, k) * DAY * NS,
        party_first_seen_ns=H0 + rng.integers(-3, 2, k) * DAY * NS,
        asn_first_seen_ns=np.where(rng.random(k) < 0.2, -1, H0 + rng.integers(-3, 2, k) * DAY * NS),
        host_peak_up_rate=rng.uniform(0, 1e7, k),
        bytes_up=rng.integers(0, 10**7, k),
        bytes_down=rng.integers(0, 10**7, k),
    )
    b = bursts(random_rows(rng, k))
    together = conversation_features(conv, b).values
    apart = np.vstack([conversation_features(*subset(conv, b, i)).values for i in range(k)])
    np.testing.assert_allclose(together, apart, rtol=1e-12, atol=0, equal_nan=True)
    assert np.isfinite(together[:, CONVERSATION_FEATURE_NAMES.index("periodicity")]).sum() > 10


def test_unsorted_bursts_are_sorted_first() -> None:
    rng = np.random.default_rng(12)
    conv = conversations(20)
    b = bursts(random_rows(rng, 20))
    order = rng.permutation(len(b))
    shuffled = ConversationBursts(**{f.name: getattr(b, f.name)[order] for f in fields(b)})
    np.testing.assert_array_equal(
        conversation_features(conv, b).values, conversation_features(conv, shuffled).values
    )


def test_bursts_must_point_into_the_conversations() -> None:
    with pytest.raises(ValueError):
        conversation_features(conversations(1), bursts(uploads(1, [0])))


def test_no_conversations_no_bursts() -> None:
    f = conversation_features(conversations(0), bursts([]))
    assert f.values.shape == (0, len(CONVERSATION_FEATURE_NAMES))
