"""Layout of the flow table's state arrays and of the records it emits.

All per-flow state lives in a few 2-D/3-D numpy arrays indexed by slot, so the compiled
kernel can update it without any Python object per flow or per packet. The accumulator
layout (``I_*`` integer fields, ``F_*`` float fields) is shared by window rows and whole-flow
rows; features are computed from it afterwards, vectorised.
"""

from __future__ import annotations

# ---- per-slot metadata (int64 matrix meta[slot, M_*]) ----
M_ACTIVE = 0
M_ORIG_IS_A = 1
M_WIN_START = 2
M_WIN_INDEX = 3
M_FIN_FLAGS = 4  # bit 0: FIN from originator, bit 1: FIN from responder, bit 2: RST
M_CLOSED_AT = 5
M_PREV_BURST_END = 6  # end of the flow's latest burst (either direction), -1 if none
M_FLOW_ID = 7
M_WINDOWED = 8  # 1 once the flow has rolled over at least one window
M_PREV_BURST_START0 = 9  # start of the previous burst in direction 0 (+1: direction 1), -1 if none
M_ROLE = 11  # flows.roles: which key side is local by address (kept while the key is in the table)
M_PORT_ROLE = 12  # flows.roles: which key side has the client port
M_PREV_INIT = 13  # initiator of the previous flow on this key (M_INIT_IS_A), -1 if none
M_PREV_END = 14  # when that flow ended (ns)
M_INIT_IS_A = 15  # the side that opened the connection (SYN sender...), which may be remote
N_META = 16

# ---- per-slot, per-direction open run of payload packets (int64 runs[slot, dir, R_*]) ----
R_START = 0
R_LAST = 1
R_PKTS = 2
R_BYTES = 3
R_SAMPLED = 4  # payload packets kept for deep parsing so far
N_RUN = 5

# ---- accumulators (int64 acc_i[slot, scope, I_*]; float64 acc_f[slot, scope, F_*]) ----
SCOPE_WINDOW = 0
SCOPE_FLOW = 1

I_FIRST = 0
I_LAST = 1
I_FIRST0 = 2  # originator -> responder
I_FIRST1 = 3  # responder -> originator
I_LAST0 = 4
I_LAST1 = 5
I_PKTS0 = 6
I_PKTS1 = 7
I_WIRE0 = 8
I_WIRE1 = 9
I_PAY0 = 10
I_PAY1 = 11
I_WIRESQ = 12
I_BCOUNT0 = 13
I_BCOUNT1 = 14
I_BBYTES0 = 15
I_BBYTES1 = 16
I_BBYTES_MAX = 17
I_BBYTES_MAX0 = 18
I_BDUR_SUM = 19
I_BDUR_MAX = 20
I_FIRST_BURST_START = 21  # -1 if no burst yet
I_IDLE_BEFORE_FIRST = 22  # ns of quiet before the first burst of this scope, -1 if none
I_NINT = 23  # number of inter-burst intervals (start to start, within one direction)
I_INT_MIN = 24  # ns, -1 if none
N_ACC_I = 25

F_PEAK_RATE = 0
F_PEAK_RATE0 = 1
F_INT_SUM = 2  # seconds
F_INT_SUMSQ = 3
N_ACC_F = 4

# ---- why a row was emitted ----
END_INTERIM = 0  # window closed, flow still open
END_IDLE = 1
END_ACTIVE = 2
END_FIN = 3
END_RST = 4
END_INPUT = 5  # input ended with the flow still open
END_EVICTED = 6  # ended early: the flow table was at its ceiling (flows.table.FlowTable)
END_NAMES = ("interim", "idle", "active_timeout", "fin", "rst", "end_of_input", "evicted")

# ---- row kinds ----
ROW_FLOW = 0  # the whole life of a flow
ROW_WINDOW = 1  # one window of a long-lived flow
