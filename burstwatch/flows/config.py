"""Flow, burst and window settings, with the reasons for their defaults.

burst_gap = 0.5 s: inside a bulk transfer consecutive data segments are separated by at most
about one round trip (a congestion-window-limited sender waits for ACKs); intercontinental
round trips stay below ~300 ms, so 0.5 s keeps one transfer in one burst even across oceans,
while the idle that separates bursts — keepalives, user think time, a device's sending
schedule — is measured in seconds.

burst_min_bytes = 16 KiB: about eleven full-size segments. Handshakes, keepalives, chatty
request/response exchanges and DNS stay below it; anything worth calling a transmission of
data is above it.

idle_timeout 120 s and active_timeout 30 min follow common NetFlow/IPFIX practice; window 300 s
makes a long-lived session visible while it is still open. tcp_close_linger: after RST or FINs
in both directions, trailing ACKs within this time still belong to the flow.

conversation_timeout 1 h: a flow split by the idle or active timeout is the same conversation
when the same 5-tuple is seen again within it; the new part keeps the old orientation (when
the addresses do not decide it) and its encryption verdict, SNI and evidence.

flow_memory_mb 512: the ceiling on what open flows cost, counted at 4 KiB per flow across
the pipeline (``FlowTable.FLOW_BYTES``: the table's slot, enrichment's state, live's interval
evaluation). That is 131,072 concurrent flows, more than a busy site's span port carries at
once, yet a flood of unique 5-tuples (each costs a flow) stops there instead of taking the
machine's memory. At the ceiling the table ends flows early, half-open ones first
(``flows.table``), and counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from burstwatch.decode.config import DecodeConfig

NS = 1_000_000_000


@dataclass(frozen=True)
class FlowConfig:
    idle_timeout: float = 120.0
    active_timeout: float = 1800.0
    window: float = 300.0
    burst_gap: float = 0.5
    burst_min_bytes: int = 16384
    tcp_close_linger: float = 2.0
    payload_samples: int = 4  # first payload packets per direction kept for deep parsing
    conversation_timeout: float = 3600.0
    flow_memory_mb: float = 512.0
    # Capture batches (of at most 16 MiB each) whose flow-table output is enriched and kept
    # together: what follows the table costs mostly per batch, and one capture batch ends
    # only a few hundred flows. Worker processes group the batches the same way, so a
    # burst's verdict (known once its flow's first payloads are) does not depend on -j.
    # Sixteen rather than eight: 3 % quicker on the 5 M-packet capture, at a peak 24 MiB
    # higher (272 MiB), which a scan's ledger without a database left room for.
    steps_per_batch: int = 16
    # How packets are decoded before they reach the table (tunnels, fragments).
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def as_ns(self) -> tuple[int, int, int, int, int, int]:
        """(idle, active, window, burst_gap, linger, conversation) in nanoseconds, for the
        compiled kernels."""
        return (
            int(self.idle_timeout * NS),
            int(self.active_timeout * NS),
            int(self.window * NS),
            int(self.burst_gap * NS),
            int(self.tcp_close_linger * NS),
            int(self.conversation_timeout * NS),
        )
