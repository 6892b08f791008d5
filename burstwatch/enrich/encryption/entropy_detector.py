"""The fallback: call a flow encrypted when the originator's first bytes look uniformly random.

This module is the one entropy judge, for one flow or many: :func:`judge_slots` judges
direction slots of a :class:`PackedPayloads` in one compiled pass (byte histogram, plain-content
guards), and :func:`judge` is the same function on one direction's payloads.

Calibration (docs/encryption.md): the originator's first payloads are joined and cut at
SAMPLE_BYTES; the sample must hold at least MIN_BYTES and its entropy deficit ratio
``(8 - H) / (8 - E[H_n])`` (see :mod:`burstwatch.enrich.encryption.entropy`) must not exceed
MAX_DEFICIT_RATIO. Samples that open with text, a compressed-format signature, or a well-known
plaintext protocol's framing on its port are clear content, whatever their entropy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from burstwatch.enrich.encryption.cleartext import CLEARTEXT, cleartext_framing
from burstwatch.enrich.encryption.entropy import expected_table
from burstwatch.enrich.encryption.formats import FORMAT_NAMES, MAGICS, TEXT_BYTES, TEXT_PREFIX
from burstwatch.enrich.encryption.packing import PackedPayloads, pack
from burstwatch.enrich.encryption.prefilter import at
from burstwatch.enrich.encryption.verdict import EncryptionVerdict, FlowSample
from burstwatch.jit import njit

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

SAMPLE_BYTES = 1024
# Below 128 bytes a sample is mostly one small message (keys, nonces, short requests) and the
# spread of uniform-byte entropy overlaps with packed binary fields; see docs/encryption.md.
MIN_BYTES = 128
# Random bytes stay under this at every length from 128 to 1024 in >= 99.99 % of trials.
MAX_DEFICIT_RATIO = 1.4

# Why a direction is clear content: code k names PLAIN_REASONS[k] (-1: none of them).
PLAIN_REASONS: tuple[str, ...] = (
    "starts with plain text",
    *(f"carries {name} data in the clear" for name in FORMAT_NAMES),
    *(f"opens with {name} framing on its own port (a plaintext protocol)" for name, _ in CLEARTEXT),
)
_FIRST_FORMAT, _FIRST_CLEARTEXT = 1, 1 + len(FORMAT_NAMES)


def _magic_table() -> tuple[U8, I64]:
    """formats.MAGICS as a padded byte matrix and lengths, for the compiled scan."""
    width = max(len(m) for m, _ in MAGICS)
    table = np.zeros((len(MAGICS), width), np.uint8)
    for row, (magic, _) in enumerate(MAGICS):
        table[row, : len(magic)] = np.frombuffer(magic, np.uint8)
    return table, np.array([len(m) for m, _ in MAGICS], np.int64)


MAGIC, MAGIC_LEN = _magic_table()
TEXT = np.zeros(256, np.bool_)
TEXT[list(TEXT_BYTES)] = True
_NLOGN = np.zeros(SAMPLE_BYTES + 1)  # c * log2(c): a histogram's entropy from integer counts
_NLOGN[1:] = np.arange(1, SAMPLE_BYTES + 1) * np.log2(np.arange(1, SAMPLE_BYTES + 1))


@njit(cache=True)
def file_format(buf: U8, o: int, n: int, magic: U8, magic_len: I64) -> int:
    """Index into formats.FORMAT_NAMES of the signature that starts the payload, else -1:
    a MAGICS row, then ISO media ("ftyp" at 4), then a zlib header (deflate, 32K window, no
    preset dictionary, valid check bits)."""
    for row in range(magic.shape[0]):
        m = magic_len[row]
        if n >= m:
            hit = True
            for k in range(m):
                if buf[o + k] != magic[row, k]:
                    hit = False
                    break
            if hit:
                return row
    if n >= 8 and buf[o + 4] == 102 and buf[o + 5] == 116 and buf[o + 6] == 121 and buf[o + 7] == 112:
        return magic.shape[0]
    if n >= 2 and buf[o] == 0x78 and not (buf[o + 1] & 0x20) and ((0x78 << 8) | at(buf, o + 1)) % 31 == 0:
        return magic.shape[0] + 1
    return -1


@njit(cache=True, nogil=True)
def _direction_stats(
    buf: U8, pkt_off: I64, dir_first: I64, slots: I64, proto: I64, port_a: I64, port_b: I64,
    nlogn: npt.NDArray[np.float64], text: npt.NDArray[np.bool_], magic: U8, magic_len: I64,
    sample_len: I64, entropy: npt.NDArray[np.float64], plain: I64,
) -> None:
    """For each direction slot: sample size, Shannon entropy of the first SAMPLE_BYTES of the
    joined payloads, and the PLAIN_REASONS code (-1 when the sample is not clear content)."""
    hist = np.zeros(256, np.int64)
    for k in range(slots.shape[0]):
        r = slots[k]
        a, b = dir_first[r], dir_first[r + 1]
        s0, s1 = pkt_off[a], pkt_off[b]
        m = min(s1 - s0, SAMPLE_BYTES)
        sample_len[k] = m
        plain[k] = -1
        entropy[k] = 0.0
        if m == 0:
            continue
        hist[:] = 0
        for byte in buf[s0 : s0 + m]:  # unsigned index: no negative-index check per byte
            hist[byte] += 1
        total = 0.0
        for v in range(256):
            c = hist[v]
            if c:
                total += nlogn[c]
        entropy[k] = max(math.log2(m) - total / m, 0.0)
        if s1 - s0 >= TEXT_PREFIX:
            is_text = True
            for i in range(s0, s0 + TEXT_PREFIX):
                if not text[buf[i]]:
                    is_text = False
                    break
            if is_text:
                plain[k] = 0
                continue
        first = pkt_off[a + 1] - s0
        framing = cleartext_framing(buf, s0, first, proto[k], port_a[k], port_b[k],
                                    first < SAMPLE_BYTES)
        if framing:
            plain[k] = _FIRST_CLEARTEXT + framing - 1
            continue
        for j in range(a, b):
            fmt = file_format(buf, pkt_off[j], pkt_off[j + 1] - pkt_off[j], magic, magic_len)
            if fmt >= 0:
                plain[k] = _FIRST_FORMAT + fmt
                break


@lru_cache(maxsize=16)
def _hundredths(size: int) -> tuple[str, ...]:
    """``f"{k / 100:.2f}"`` for k < size, built from integers so no rounding is involved."""
    return tuple(f"{k // 100}.{k % 100:02d}" for k in range(size))


def fixed2(values: npt.NDArray[np.float64]) -> list[str]:
    """Non-negative values with two decimals, rounded half up (``f"{x:.2f}"`` except where
    the third decimal is a 5 to within a few ulps)."""
    if not values.size:
        return []
    k = np.floor(values * 100.0 + 0.5).astype(np.int64)
    table = _hundredths(1 << int(k.max()).bit_length())
    return [table[j] for j in k.tolist()]


@lru_cache(maxsize=1)
def _summary_middles() -> tuple[str, ...]:
    """The part of a summary that depends on the sample size alone, by size."""
    expected = fixed2(expected_table())
    return tuple(
        f" bits/byte over {n} bytes (uniform: {expected[n]}, deficit ratio "
        for n in range(SAMPLE_BYTES + 1)
    )


_SUMMARY_END = f", limit {MAX_DEFICIT_RATIO})"


@dataclass
class Judged:
    """The entropy test of many direction slots, as columns."""

    passed: npt.NDArray[np.bool_]
    entropy: npt.NDArray[np.float64]  # NaN for a direction without payload
    reason: list[str]  # empty unless asked for


def judge_slots(
    packed: PackedPayloads, slots: I64, proto: I64, port_a: I64, port_b: I64,
    want_reason: bool = True,
) -> Judged:
    """The entropy test of each direction slot (with the flow's protocol and ports, which
    scope the plaintext-protocol framings); reasons only when ``want_reason``."""
    k = slots.shape[0]
    size, ent, plain = np.zeros(k, np.int64), np.zeros(k), np.zeros(k, np.int64)
    _direction_stats(
        packed.buf, packed.pkt_off, packed.dir_first, slots, proto, port_a, port_b, _NLOGN, TEXT,
        MAGIC, MAGIC_LEN, size, ent, plain,
    )
    expected = expected_table()[size]
    tested = (size >= MIN_BYTES) & (plain < 0)
    ratio = np.ones(k)
    np.divide(8.0 - ent, 8.0 - expected, out=ratio, where=tested)
    passed = tested & (ratio <= MAX_DEFICIT_RATIO)
    entropy = np.where(size > 0, ent, np.nan)
    reasons: list[str] = []
    if want_reason:
        reasons = [""] * k
        rows = np.flatnonzero(tested)
        middles = _summary_middles()
        for row, e, n, r in zip(
            rows.tolist(), fixed2(ent[rows]), size[rows].tolist(), fixed2(ratio[rows]), strict=True
        ):
            reasons[row] = f"{e}{middles[n]}{r}{_SUMMARY_END}"
        size_l, plain_l = size.tolist(), plain.tolist()
        for row in np.flatnonzero((size > 0) & (size < MIN_BYTES)).tolist():
            reasons[row] = f"only {size_l[row]} bytes (need {MIN_BYTES})"
        for row in np.flatnonzero(size == 0).tolist():
            reasons[row] = "no payload"
        for row in np.flatnonzero((size >= MIN_BYTES) & (plain >= 0)).tolist():
            reasons[row] = PLAIN_REASONS[plain_l[row]]
    return Judged(passed, entropy, reasons)


@dataclass(frozen=True)
class EntropyJudgement:
    """The entropy test of one direction: whether it passed and why (for the verdict detail)."""

    passed: bool
    entropy: float | None
    reason: str


def judge(payloads: tuple[bytes, ...], proto: int = 0, ports: tuple[int, int] = (0, 0)) -> (
    EntropyJudgement
):
    """:func:`judge_slots` on one direction's first payloads."""
    one = np.zeros(1, np.int64)
    got = judge_slots(
        pack([payloads], [()]), one, np.array([proto], np.int64), np.array(ports[:1], np.int64),
        np.array(ports[1:], np.int64),
    )
    entropy = float(got.entropy[0])
    return EntropyJudgement(bool(got.passed[0]), None if math.isnan(entropy) else entropy,
                            got.reason[0])


RANDOM = "originator's bytes look random: "
NOT_RANDOM = "no encrypted protocol recognised; originator's bytes: "
ALSO = "; responder's bytes too"


def detect_entropy(sample: FlowSample) -> EncryptionVerdict | None:
    """An entropy verdict when the originator's sample passes; the responder's is only reported."""
    ports = (sample.client_port, sample.server_port)
    client = judge(sample.client, sample.proto, ports)
    if not client.passed:
        return None
    also = ALSO if judge(sample.server, sample.proto, ports).passed else ""
    return EncryptionVerdict(
        kind="entropy", entropy=client.entropy, detail=f"{RANDOM}{client.reason}{also}"
    )
