"""The conversation feature registry: every conversation feature's name, unit and meaning.

A conversation is (local host, remote party) judged over a horizon (default 24 h) from its
bursts; "upload" means local host -> remote party (burst direction 0). ``docs/features.md``
gets its "Conversation features" section from this table (``python -m burstwatch.features``).
Undefined values are NaN, and a rule condition on NaN is never true.
"""

from __future__ import annotations

from burstwatch.features.registry import Feature

CONVERSATION_FEATURES: tuple[Feature, ...] = (
    Feature("burst_count", "bursts", "Upload bursts within the horizon."),
    Feature("upload_bytes_total", "bytes", "Payload bytes carried by upload bursts."),
    Feature("upload_bytes_median", "bytes", "Median payload bytes of an upload burst (NaN without upload bursts)."),
    Feature("upload_bytes_max", "bytes", "Payload bytes of the largest upload burst (NaN without upload bursts)."),
    Feature("download_bytes_total", "bytes", "Payload bytes carried by download bursts (remote party to local host)."),
    Feature("connections", "connections", "Distinct connections (flows) that carried at least one upload burst: one per burst is typical of a device that reconnects for every upload."),
    Feature("bursts_per_connection", "bursts", "burst_count / connections (NaN without upload bursts)."),
    Feature("active_span", "s", "From the start of the first upload burst to the end of the last (NaN without upload bursts)."),
    Feature("quiet_share", "ratio", "Share of active_span with no burst in either direction: near 1 for a host that stays quiet between short bursts (NaN without upload bursts or when active_span is 0)."),
    Feature("upload_share", "ratio", "Payload bytes sent by the local host / all payload bytes of the conversation within the horizon, from the flows, bursts or not."),
    Feature("interval_median", "s", "Median time between the starts of consecutive upload bursts (NaN below 3 upload bursts)."),
    Feature("interval_mad_ratio", "ratio", "Median absolute deviation of those intervals / their median: a robust spread, near 0 for a fixed schedule, about 0.2 for a schedule jittered by ±40 %, about 0.7 for random timing (NaN below 3 upload bursts or when the median is 0)."),
    Feature("interval_bowley_skew", "ratio", "Quartile (Bowley) skewness of those intervals, (Q1 + Q3 - 2 Q2) / (Q3 - Q1), in [-1, 1], 0 when Q3 = Q1; near 0 for a symmetric jitter around a period, as RITA scores beacons (NaN below 3 upload bursts)."),
    Feature("periodicity", "score 0-1", "How well the upload burst starts fit a sending schedule with one period, allowing jitter and missed slots, compared with random timing: 1 for a fixed period, about 0.8 for ±40 % jitter with a tenth of the slots missed, near 0 for random (Poisson) timing; below about 20 bursts chance alone lifts some random series to 0.3-0.7 (NaN below 3 upload bursts)."),
    Feature("regularity", "score 0-1", "RITA-style beacon score: mean of 1 - abs(interval_bowley_skew), max(0, 1 - interval_mad_ratio / 0.5) and periodicity (NaN below 3 upload bursts)."),
    Feature("upload_peak_rate", "bytes/s", "Highest rate of an upload burst (burst bytes / burst duration, bursts under 1 ms count as 1 ms; NaN without upload bursts)."),
    Feature("rate_vs_host_peak", "ratio", "upload_peak_rate / the host's highest upload burst rate in the ledger: 1.0 means this conversation uses the host's whole uplink, however slow that uplink is (NaN without upload bursts or host peak)."),
    Feature("party_new", "flag", "1 if the host first talked to this party within the horizon although it has older history, 0 if it talked to it before; NaN when the host has no history before the horizon (novelty unknown)."),
    Feature("asn_new", "flag", "As party_new, for the party's autonomous system (NaN also when the ASN is unknown)."),
    Feature("country_new", "flag", "As party_new, for the party's country (NaN also when the country is unknown)."),
    Feature("host_history_span", "s", "How long the host had been in the ledger before the horizon started (0 for a host first seen within the horizon)."),
    Feature("hour_concentration", "score 0-1", "Concentration of upload bursts in hours of the day (UTC): 1 - entropy of the bursts' hour histogram / log(min(bursts, 24)); 1 when all fall in one hour, 0 when they are spread evenly (NaN below 3 upload bursts)."),
    Feature("largest_burst_share", "ratio", "Largest upload burst / upload_bytes_total: near 1 for one continuous transfer, small for many similar bursts (NaN without upload bytes)."),
    Feature("repetition", "bursts", "Upload bursts of at least half the median upload burst size: 1 for a single transfer, many for repeated bursts of similar size (read with largest_burst_share: one big transfer among small ones counts the small ones too)."),
)

# How a sentence for an analyst names each feature (the names themselves stay in the JSON).
CONVERSATION_PHRASES: dict[str, str] = {
    "burst_count": "upload bursts",
    "upload_bytes_total": "bytes uploaded",
    "upload_bytes_median": "the median upload burst",
    "upload_bytes_max": "the largest upload burst",
    "download_bytes_total": "bytes downloaded in bursts",
    "connections": "connections with upload bursts",
    "bursts_per_connection": "upload bursts per connection",
    "active_span": "the time from first to last upload burst",
    "quiet_share": "the share of that time without bursts",
    "upload_share": "the share of bytes sent by the host",
    "interval_median": "the median time between bursts",
    "interval_mad_ratio": "the spread of the time between bursts",
    "interval_bowley_skew": "the skew of the time between bursts",
    "periodicity": "how well the bursts keep to a schedule",
    "regularity": "the regularity of the bursts",
    "upload_peak_rate": "the fastest upload burst",
    "rate_vs_host_peak": "its share of the host's fastest upload",
    "party_new": "the party being new to the host",
    "asn_new": "the network (ASN) being new to the host",
    "country_new": "the country being new to the host",
    "host_history_span": "the host's history",
    "hour_concentration": "how much the bursts keep to certain hours",
    "largest_burst_share": "the largest burst's share of the upload",
    "repetition": "upload bursts of similar size",
}

CONVERSATION_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in CONVERSATION_FEATURES)
CONVERSATION_FEATURE_INDEX: dict[str, int] = {
    name: i for i, name in enumerate(CONVERSATION_FEATURE_NAMES)
}
