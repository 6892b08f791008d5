"""The feature registry: every burst-shape feature's name, unit and meaning, in one place.

Records and rules name a feature ``burstwatch.flow.<name>`` (``burstwatch/schema/fields.py``),
the scorer stores the names in its model file, and ``docs/features.md`` is generated from
this table and the conversation features' one (``burstwatch/conversations/registry.py``) by
``python -m burstwatch.features``.
The originator ("orig") is the flow's local side and the responder its remote side, whoever
spoke first (``flows.roles``); "up" is an upload, local -> remote.
Undefined values (a ratio with nothing to divide, an interval with fewer than two bursts)
are NaN, and a rule condition on NaN is never true.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("duration", "s", "Time from the first to the last packet of the flow (or window)."),
    Feature("orig_packets", "packets", "Packets sent by the local side (originator)."),
    Feature("resp_packets", "packets", "Packets sent by the remote side (responder)."),
    Feature("orig_bytes", "bytes", "Bytes on the wire (whole frames) sent by the local side."),
    Feature("resp_bytes", "bytes", "Bytes on the wire (whole frames) sent by the remote side."),
    Feature("orig_payload_bytes", "bytes", "Transport payload bytes uploaded (local -> remote)."),
    Feature("resp_payload_bytes", "bytes", "Transport payload bytes downloaded (remote -> local)."),
    Feature("burst_count", "bursts", "Bursts in either direction."),
    Feature("up_burst_count", "bursts", "Upload bursts (local -> remote)."),
    Feature("down_burst_count", "bursts", "Download bursts (remote -> local)."),
    Feature("burst_bytes_sum", "bytes", "Payload bytes carried in bursts, both directions."),
    Feature("burst_bytes_max", "bytes", "Payload bytes of the largest burst."),
    Feature("burst_bytes_mean", "bytes", "Mean payload bytes per burst."),
    Feature("up_burst_bytes_max", "bytes", "Payload bytes of the largest upload burst."),
    Feature("burst_duration_max", "s", "Duration of the longest burst."),
    Feature("burst_duration_mean", "s", "Mean burst duration."),
    Feature("peak_burst_rate", "bytes/s", "Highest burst rate (burst bytes / burst duration, bursts under 1 ms count as 1 ms)."),
    Feature("up_peak_burst_rate", "bytes/s", "Highest rate of an upload burst."),
    Feature("mean_rate", "bytes/s", "All payload bytes / duration (durations under 1 ms count as 1 ms)."),
    Feature("peak_to_mean_rate", "ratio", "peak_burst_rate / mean_rate: how much burstier than its average the flow is."),
    Feature("burst_duty_cycle", "ratio", "Time spent in bursts / duration, capped at 1: low for quiet-then-burst senders."),
    Feature("idle_before_first_burst", "s", "Quiet time before the first burst: since the previous burst of the flow, or since the flow's first packet."),
    Feature("inter_burst_mean", "s", "Mean time between the starts of consecutive bursts in the same direction."),
    Feature("inter_burst_cv", "ratio", "Coefficient of variation of inter-burst intervals: near 0 for a fixed sending schedule."),
    Feature("inter_burst_min", "s", "Shortest time between the starts of consecutive bursts."),
    Feature("upload_share", "ratio", "Uploaded payload bytes / all payload bytes."),
    Feature("burst_upload_share", "ratio", "Upload burst bytes / all burst bytes."),
    Feature("burst_byte_share", "ratio", "Burst bytes / all payload bytes: how much of the data moved in bursts."),
    Feature("packet_size_mean", "bytes", "Mean frame size, both directions."),
    Feature("packet_size_std", "bytes", "Standard deviation of frame size, both directions."),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}


def render_markdown() -> str:
    """The reference page for docs/features.md."""
    lines = [
        "# Features",
        "",
        "Generated from `burstwatch/features/registry.py` by `python -m burstwatch.features`;",
        "do not edit by hand. One row of these per flow (its whole life) and, for flows longer",
        "than the window (default 300 s), per window. The originator is the flow's local side",
        "(an internal host) and the responder the remote side, whoever spoke first; \"up\" is an",
        "upload, local to remote. Undefined values are NaN (a rule condition on NaN is never true).",
        "In flow records and rules each is `burstwatch.flow.<name>` (docs/fields.md).",
        "",
        "| name | unit | description |",
        "|---|---|---|",
    ]
    lines += [f"| `{f.name}` | {f.unit} | {f.description} |" for f in FEATURES]
    # Imported here: the conversation registry builds on this module's Feature.
    from burstwatch.conversations.registry import CONVERSATION_FEATURES

    lines += [
        "",
        "## Conversation features",
        "",
        "Generated from `burstwatch/conversations/registry.py`. One row of these per",
        "conversation, a local host and one remote party (the registrable domain of the server",
        "name, else the remote /24 or /48), over a horizon (default 24 h), from its bursts.",
        "\"Upload\" is local host to remote party. Undefined values are NaN. In conversation",
        "and alert records and in rules each is `burstwatch.conversation.<name>`.",
        "",
        "| name | unit | description |",
        "|---|---|---|",
    ]
    lines += [f"| `{f.name}` | {f.unit} | {f.description} |" for f in CONVERSATION_FEATURES]
    return "\n".join(lines) + "\n"
