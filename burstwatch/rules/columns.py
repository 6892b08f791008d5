"""Evaluate one field test over a whole frame column at once.

String and address columns are reduced to their distinct values first (``np.unique`` with
``return_inverse``): patterns, regexes and address parsing then run once per distinct value
(hosts, endpoints, server names), never once per row, and the answer is spread back to rows.

Missing values never satisfy a test, not even ``ne`` or ``not_in``: NaN in numeric columns,
``None``/NaN in object string columns, and anything that is not an IP address in address
columns. Wrap a test in ``not`` to flag rows where it does not hold, missing ones included;
``exists`` holds exactly where the value is not missing. Strings compare without regard to
case (Sigma's default); a case-sensitive test is a regex.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from burstwatch.errors import BurstwatchError
from burstwatch.rules.model import FieldTest
from burstwatch.rules.patterns import regex_mask, wildcard_mask

Mask = npt.NDArray[np.bool_]
Frame = Mapping[str, npt.NDArray[np.generic]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FrameError(BurstwatchError):
    """The frame cannot be evaluated: a column is missing, of the wrong type, or mis-sized."""


@dataclass(frozen=True)
class Distinct:
    """A column as its distinct values plus, per row, the index of the value it holds.

    ``valid[k]`` is False for distinct values that are not text (None, NaN): rows holding
    them are missing, and ``values[k]`` is a placeholder ``""``.
    """

    values: npt.NDArray[np.str_]
    valid: Mask
    inverse: npt.NDArray[np.intp]

    def spread(self, per_value: Mask) -> Mask:
        """Per-distinct-value answers -> per-row answers (missing rows are False)."""
        return (per_value & self.valid)[self.inverse]


def factorize(col: npt.NDArray[np.generic]) -> Distinct:
    """Distinct values in first-seen order and each row's index into them.

    One dict pass (like ``np.unique(..., return_inverse=True)`` without its sort, which is
    several times slower on millions of strings).
    """
    values = col.tolist()
    # Two C-level passes (dict.fromkeys, then map) instead of a Python-level loop per row.
    seen = {v: k for k, v in enumerate(dict.fromkeys(values))}
    inverse = np.fromiter(map(seen.__getitem__, values), dtype=np.intp, count=col.shape[0])
    valid = np.fromiter((isinstance(v, str) for v in seen), dtype=bool, count=len(seen))
    text = [v if isinstance(v, str) else "" for v in seen]
    return Distinct(np.array(text, dtype=str), valid, inverse)


def parse_ip(text: str) -> IPAddress | None:
    """An address, IPv4-mapped IPv6 folded to IPv4 so one cidr covers both spellings."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class Columns:
    """Read-only view of a frame that remembers per-column work and per-test masks.

    Share one instance across all rules evaluated on the same frame.
    """

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.rows: int | None = None
        self._numbers: dict[str, npt.NDArray[np.float64]] = {}
        self._distinct: dict[str, Distinct] = {}
        self._addresses: dict[str, list[IPAddress | None]] = {}
        self._masks: dict[FieldTest, Mask] = {}

    def raw(self, name: str, who: str) -> npt.NDArray[np.generic]:
        """The column as given, after checking it exists and has as many rows as the others."""
        if name not in self.frame:
            raise FrameError(f"{who} needs column '{name}', which the frame does not have; "
                             "compute that feature before evaluating the rule")
        col = np.asarray(self.frame[name])
        if col.ndim != 1:
            raise FrameError(f"column '{name}' must be one-dimensional, not shape {col.shape}")
        if self.rows is None:
            self.rows = int(col.shape[0])
        elif col.shape[0] != self.rows:
            raise FrameError(f"column '{name}' has {col.shape[0]} rows, others have {self.rows}")
        return col

    def number(self, name: str, who: str) -> npt.NDArray[np.float64]:
        if name not in self._numbers:
            col = self.raw(name, who)
            if col.dtype.kind not in "fiub":
                raise FrameError(f"column '{name}' must be numeric for {who}, not {col.dtype}")
            self._numbers[name] = col.astype(np.float64, copy=False)
        return self._numbers[name]

    def distinct(self, name: str, who: str) -> Distinct:
        if name not in self._distinct:
            col = self.raw(name, who)
            if col.dtype.kind not in "UO":
                raise FrameError(f"column '{name}' must hold str values for {who}, not "
                                 f"{col.dtype} (decode bytes to str first)")
            self._distinct[name] = factorize(col)
        return self._distinct[name]

    def addresses(self, name: str, who: str) -> tuple[Distinct, list[IPAddress | None]]:
        """Distinct values of an address column and each one parsed once."""
        distinct = self.distinct(name, who)
        if name not in self._addresses:
            self._addresses[name] = [parse_ip(str(v)) for v in distinct.values]
        return distinct, self._addresses[name]

    def mask(self, test: FieldTest, who: str) -> Mask:
        """Rows where ``test`` holds; equal tests share one computation across rules."""
        if test not in self._masks:
            if test.op == "exists":
                self._masks[test] = self._present(test, who)
            elif test.kind == "number":
                self._masks[test] = _number_mask(self.number(test.field, who), test)
            elif test.kind == "string":
                self._masks[test] = _string_mask(self.distinct(test.field, who), test)
            else:
                self._masks[test] = _address_mask(*self.addresses(test.field, who), test)
        return self._masks[test]

    def _present(self, test: FieldTest, who: str) -> Mask:
        """Rows that have a value (Sigma's ``exists``): not NaN, not None."""
        if test.kind == "number":
            return ~np.isnan(self.number(test.field, who))
        distinct = self.distinct(test.field, who)
        return distinct.spread(np.ones(distinct.values.shape, bool))


def _number_mask(col: npt.NDArray[np.float64], test: FieldTest) -> Mask:
    v = test.value
    with np.errstate(invalid="ignore"):
        if test.op in ("in", "not_in"):
            hit = np.isin(col, np.asarray(v, dtype=np.float64))
            return hit if test.op == "in" else ~hit & ~np.isnan(col)
        x = float(v)  # type: ignore[arg-type]  # scalar ops hold one number
        compare: dict[str, Callable[[], Mask]] = {
            "eq": lambda: col == x,
            "ne": lambda: (col != x) & ~np.isnan(col),
            "gt": lambda: col > x,
            "gte": lambda: col >= x,
            "lt": lambda: col < x,
            "lte": lambda: col <= x,
        }
        return np.asarray(compare[test.op](), dtype=bool)


def _string_mask(col: Distinct, test: FieldTest) -> Mask:
    v = test.value
    if test.op in ("eq", "ne", "in", "not_in"):
        values = np.char.lower(col.values)
        wanted = [str(x).lower() for x in (v if isinstance(v, tuple) else (v,))]
        hit = np.isin(values, np.asarray(wanted, dtype=str))
        return col.spread(hit if test.op in ("eq", "in") else ~hit)
    values = col.values
    assert isinstance(v, tuple)
    match = wildcard_mask if test.op == "wildcard" else regex_mask
    return col.spread(match(tuple(str(p) for p in v), values))


def _address_mask(col: Distinct, parsed: list[IPAddress | None], test: FieldTest) -> Mask:
    v = test.value
    valid = np.array([a is not None for a in parsed], dtype=bool)
    if test.op == "cidr":
        assert isinstance(v, tuple)
        nets = [ipaddress.ip_network(str(n)) for n in v]
        hit = [a is not None and any(a in n for n in nets) for a in parsed]
    else:
        wanted = {parse_ip(str(x)) for x in (v if isinstance(v, tuple) else (v,))}
        hit = [a in wanted for a in parsed]
    per_value = np.array(hit, dtype=bool)
    if test.op in ("ne", "not_in"):
        per_value = ~per_value & valid
    return col.spread(per_value)
