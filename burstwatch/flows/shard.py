"""One worker's share of a packet batch: the flows whose canonical key hash falls to it.

The hash is the flow table's own (``flows.key``), direction-independent, so both directions
of a connection, every later flow on the same 5-tuple and any keys that collide all land
with the same worker, which then holds everything the table knows about them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from burstwatch.decode.batch import PacketBatch
from burstwatch.flows.key import batch_keys

# The decode status given to another worker's packets: non-zero, so the flow table skips
# them; decode counts are taken before, so it is never reported.
OTHER_SHARD = np.uint8(255)


def keep_shard(packets: PacketBatch, shard: int, shards: int) -> tuple[PacketBatch, int | None]:
    """``packets`` with every other shard's packets marked skipped, and the batch's clock
    (its newest decoded packet, over all shards; None when it has none)."""
    valid = np.flatnonzero(packets.status == 0)
    if not valid.shape[0]:
        return packets, None
    clock = int(packets.ts_ns[valid].max())
    owner = batch_keys(packets, valid).hash % np.uint64(shards)
    status = packets.status.copy()
    status[valid[owner != np.uint64(shard)]] = OTHER_SHARD
    return dataclasses.replace(packets, status=status), clock
