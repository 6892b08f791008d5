"""Numbers in JSON lines written by numpy where it can decide the text (``_number_texts``)
are the texts Python's ``round`` and ``repr`` give (``num`` then ``_number_text``): checked
on random values over many magnitudes, on values a hair from a rounding half, and on every
kind of float hypothesis draws."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.outputs.columns import _number_text, _number_texts, num
from burstwatch.schema import field

RATE = field("burstwatch.burst.rate")  # a double


def python_texts(values: np.ndarray) -> list[str | None]:
    return [_number_text(num(x)) for x in values.tolist()]


def test_random_magnitudes_and_near_halves_are_written_as_python_writes_them() -> None:
    rng = np.random.default_rng(7)
    n = 100_000
    spread = rng.normal(0, 1, n) * 10.0 ** rng.integers(-8, 14, n)
    ticks = rng.integers(-10**15, 10**15, n) / 1e6  # six decimals exactly
    near_half = ticks + 0.5e-6  # a hair from a rounding half after the product
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-4, 0.99999951, -0.5,
                        2.0**53, 2.0**53 + 2, 1e16, 5e-05, 123456.0000005])
    values = np.concatenate([spread, ticks, near_half, special])
    assert _number_texts(RATE, values) == python_texts(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_any_floats_are_written_as_python_writes_them(values: list[float]) -> None:
    arr = np.array(values, np.float64)
    assert _number_texts(RATE, arr) == python_texts(arr)
