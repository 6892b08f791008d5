"""The fallback: call a flow encrypted when the originator's first bytes look uniformly random.

Calibration (docs/encryption.md): the originator's first payloads are joined and cut at
SAMPLE_BYTES; the sample must hold at least MIN_BYTES and its entropy deficit ratio (see
:func:`deficit_ratio`) must not exceed MAX_DEFICIT_RATIO. Samples that open with text or a
compressed-format signature are clear content, whatever their entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

from burstwatch.enrich.encryption.entropy import deficit_ratio, expected_uniform_entropy, shannon
from burstwatch.enrich.encryption.formats import plain_reason
from burstwatch.enrich.encryption.verdict import EncryptionVerdict, FlowSample

SAMPLE_BYTES = 1024
# Below 128 bytes a sample is mostly one small message (keys, nonces, short requests) and the
# spread of uniform-byte entropy overlaps with packed binary fields; see docs/encryption.md.
MIN_BYTES = 128
# Random bytes stay under this at every length from 128 to 1024 in >= 99.99 % of trials.
MAX_DEFICIT_RATIO = 1.4


@dataclass(frozen=True)
class EntropyJudgement:
    """The entropy test of one direction: whether it passed and why (for the verdict detail)."""

    passed: bool
    entropy: float | None
    reason: str


def judge(payloads: tuple[bytes, ...]) -> EntropyJudgement:
    """Run the entropy test on one direction's first payloads."""
    data = b"".join(payloads)[:SAMPLE_BYTES]
    if not data:
        return EntropyJudgement(False, None, "no payload")
    entropy = shannon(data)
    if len(data) < MIN_BYTES:
        return EntropyJudgement(False, entropy, f"only {len(data)} bytes (need {MIN_BYTES})")
    plain = plain_reason(payloads)
    if plain is not None:
        return EntropyJudgement(False, entropy, plain)
    ratio = deficit_ratio(data)
    expected = expected_uniform_entropy(len(data))
    summary = (
        f"{entropy:.2f} bits/byte over {len(data)} bytes "
        f"(uniform: {expected:.2f}, deficit ratio {ratio:.2f}, limit {MAX_DEFICIT_RATIO})"
    )
    return EntropyJudgement(ratio <= MAX_DEFICIT_RATIO, entropy, summary)


def detect_entropy(sample: FlowSample) -> EncryptionVerdict | None:
    """An entropy verdict when the originator's sample passes; the responder's is only reported."""
    client = judge(sample.client)
    if not client.passed:
        return None
    server = judge(sample.server)
    also = "; responder's bytes too" if server.passed else ""
    return EncryptionVerdict(
        kind="entropy",
        entropy=client.entropy,
        detail=f"originator's bytes look random: {client.reason}{also}",
    )
