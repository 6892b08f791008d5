"""A hypothesis strategy that mutates seed inputs the way byte-level fuzzers do: flips,
overwrites with boundary values, insertions, deletions, truncation, splices of two seeds."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.fuzz.targets import MAX_INPUT

_INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff",
                b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00")


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.integers(0, 6))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == 0 and data:  # flip bits
            data[at] ^= draw(st.integers(1, 255))
        elif kind == 1:  # a boundary value over what is there
            v = draw(st.sampled_from(_INTERESTING))
            data[at : at + len(v)] = v
        elif kind == 2:  # insert bytes
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == 3 and data:  # delete a run
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == 4:  # cut short
            del data[at:]
        elif kind == 5:  # splice in part of another seed
            other = draw(st.sampled_from(seeds))
            a = draw(st.integers(0, max(len(other) - 1, 0)))
            data[at:at] = other[a : a + draw(st.integers(1, 256))]
        else:  # repeat a run (length fields that now lie)
            data[at:at] = data[at : at + draw(st.integers(1, 32))] * draw(st.integers(2, 8))
    return bytes(data[:MAX_INPUT])
