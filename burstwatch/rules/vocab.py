"""The values some rule fields can hold, so lint can say where a value can never match:
a scope or verdict name that burstwatch never writes, a country code that is not ISO 3166,
a share outside 0..1. Keyed by the names rules write (record paths).
"""

from __future__ import annotations

import numpy as np

from burstwatch.config.countries import ISO_3166_ALPHA2
from burstwatch.rules.patterns import compile_wildcard

# The names enrichment writes (burstwatch.enrich.annotate.SCOPE_NAMES and
# burstwatch.enrich.encryption.verdict.KINDS; a test keeps these equal to them: importing
# those modules here would load numba into `rules lint`).
SCOPES = ("unknown", "internal", "public", "home", "foreign")
VERDICTS = ("tls", "quic", "dtls", "ssh", "wireguard", "openvpn", "ipsec", "entropy", "none")

KEYWORDS: dict[str, tuple[str, ...]] = {
    "burstwatch.destination.scope": SCOPES,
    "burstwatch.source.scope": SCOPES,
    "burstwatch.encryption.verdict": VERDICTS,
    "burstwatch.flow.record": ("flow", "window"),
    "destination.geo.country_iso_code": tuple(sorted(ISO_3166_ALPHA2)),
    "source.geo.country_iso_code": tuple(sorted(ISO_3166_ALPHA2)),
}
_WHAT = {
    "burstwatch.destination.scope": "a scope", "burstwatch.source.scope": "a scope",
    "burstwatch.encryption.verdict": "an encryption verdict",
    "burstwatch.flow.record": "a record kind",
    "destination.geo.country_iso_code": "an ISO 3166-1 alpha-2 country code",
    "source.geo.country_iso_code": "an ISO 3166-1 alpha-2 country code",
}

# Numbers that lie in [0, 1]: shares, 0-1 scores and 0/1 flags.
_UNIT_SCORES = frozenset({
    "burstwatch.conversation.periodicity", "burstwatch.conversation.regularity",
    "burstwatch.conversation.hour_concentration", "burstwatch.anomaly_score",
    "burstwatch.conversation.party_new", "burstwatch.conversation.asn_new",
    "burstwatch.conversation.country_new",
})


def in_unit_range(field: str) -> bool:
    """True for fields whose values lie between 0 and 1."""
    return field.endswith("_share") or field in _UNIT_SCORES


def never_text(field: str, how: str, text: str) -> str | None:
    """Why a plain value or wildcard can never match ``field``, or None if it can."""
    known = KEYWORDS.get(field)
    if known is None or how == "regex":
        return None
    lowered = np.char.lower(np.array(known, dtype=str))
    if how == "plain":
        if text.lower() in lowered:
            return None
    elif compile_wildcard(text).match_lowered(lowered).any():
        return None
    shown = ", ".join(known) if len(known) <= 12 else "two-letter codes such as RU, CN, NL"
    return f"'{text}' is not {_WHAT[field]}, so it never matches; {field} is one of {shown}"


def never_number(field: str, op: str, value: float) -> tuple[bool, str] | None:
    """(is it an error, why) when a number test on ``field`` (0..1) can never hold or makes
    no sense (a negative share), or None when the test is fine."""
    if not in_unit_range(field):
        return None
    if value < 0:
        return True, f"{field} lies between 0 and 1; a negative value is never a share"
    if value > 1 or (value == 1 and op == "gt"):
        if op in ("gt", "gte", "eq"):
            return True, f"{field} lies between 0 and 1, so '{op} {value:g}' never holds"
        return False, f"{field} lies between 0 and 1, so '{op} {value:g}' always holds"
    return None
