"""Encryption verdicts for a flow, from the first payload packets of each direction.

Enrichment classifies the new flows of a batch together (:mod:`.batch`); ``classify_flow``
judges one flow the same way, and is the reference the tests hold the batch to. Each detector
module holds one protocol's parser and can be used on its own.
"""

from burstwatch.enrich.encryption.classify import DETECTORS, classify_flow, classify_sample
from burstwatch.enrich.encryption.entropy_detector import MAX_DEFICIT_RATIO, MIN_BYTES, SAMPLE_BYTES
from burstwatch.enrich.encryption.hello import ClientHello, parse_client_hello
from burstwatch.enrich.encryption.ja4 import ja4
from burstwatch.enrich.encryption.verdict import KINDS, EncryptionVerdict, FlowSample, Kind

__all__ = [
    "DETECTORS",
    "KINDS",
    "MAX_DEFICIT_RATIO",
    "MIN_BYTES",
    "SAMPLE_BYTES",
    "ClientHello",
    "EncryptionVerdict",
    "FlowSample",
    "Kind",
    "classify_flow",
    "classify_sample",
    "ja4",
    "parse_client_hello",
]
