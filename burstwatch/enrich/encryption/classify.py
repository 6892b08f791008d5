"""The per-flow classifier: run the detectors in precedence order and keep the first match.

Enrichment classifies many flows at once (:mod:`burstwatch.enrich.encryption.batch`); this
one-flow form is the reference the tests hold the batch to, and a handy tool for one flow.
Protocol-specific detectors come first because they give version and name evidence; the
entropy test only speaks for flows no parser recognised. Ports never decide on their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from burstwatch.enrich.encryption.dtls import detect_dtls
from burstwatch.enrich.encryption.entropy_detector import NOT_RANDOM, detect_entropy, judge
from burstwatch.enrich.encryption.ipsec import detect_ipsec
from burstwatch.enrich.encryption.openvpn import detect_openvpn
from burstwatch.enrich.encryption.quic import detect_quic
from burstwatch.enrich.encryption.ssh import detect_ssh
from burstwatch.enrich.encryption.tls import detect_tls
from burstwatch.enrich.encryption.verdict import EncryptionVerdict, FlowSample
from burstwatch.enrich.encryption.wireguard import detect_wireguard

Detector = Callable[[FlowSample], EncryptionVerdict | None]

DETECTORS: tuple[Detector, ...] = (
    detect_tls,
    detect_quic,
    detect_dtls,
    detect_ssh,
    detect_wireguard,
    detect_openvpn,
    detect_ipsec,
    detect_entropy,
)


def classify_sample(sample: FlowSample, protocols: bool = True) -> EncryptionVerdict:
    """The verdict for an already built sample (see :func:`classify_flow`); with ``protocols``
    False, the entropy test only (a sample cut short because nothing in it opens a protocol)."""
    for detector in DETECTORS if protocols else DETECTORS[-1:]:
        verdict = detector(sample)
        if verdict is not None:
            if verdict.entropy is None and sample.client:
                verdict = dataclasses.replace(verdict, entropy=judge(sample.client).entropy)
            return verdict
    client = judge(sample.client, sample.proto, (sample.client_port, sample.server_port))
    return EncryptionVerdict(kind="none", entropy=client.entropy, detail=f"{NOT_RANDOM}{client.reason}")


def classify_flow(
    proto: int,
    client_port: int,
    server_port: int,
    client_payloads: Sequence[bytes],
    server_payloads: Sequence[bytes],
    protocols: bool = True,
) -> EncryptionVerdict:
    """Classify one flow from the first (up to 4) payloads of each direction.

    ``proto`` is the IP protocol number (6 TCP, 17 UDP, 50 ESP); the client is the originator.
    Never raises on malformed or truncated payloads: they simply match nothing.
    """
    sample = FlowSample.of(proto, client_port, server_port, client_payloads, server_payloads)
    return classify_sample(sample, protocols)
