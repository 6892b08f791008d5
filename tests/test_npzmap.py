"""``burstwatch.npzmap.load_npz``: the arrays ``np.load`` gives (its reader is the oracle),
stored members as read-only views of a map of the file, compressed ones inflated, and a
damaged file refused with ``ValueError`` rather than read past its end."""

from __future__ import annotations

import io
import mmap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from burstwatch.npzmap import load_npz

ARRAYS = {
    "scalar": np.array(7, dtype=np.uint32),
    "empty": np.zeros(0, dtype=np.int64),
    "bytes": np.frombuffer(b"\x00\x01\xfe\xff" * 5, dtype=np.uint8),
    "wide": np.arange(-5, 5, dtype=">i8"),
    "floats": np.linspace(0, 1, 7),
    "codes": np.array([b"", b"DE", b"US"], dtype="S2"),
    "text": np.array(["a", "ßé", "日本語"]),
    "flags": np.array([True, False, True]),
    "grid": np.arange(12, dtype=np.uint16).reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
}


def _mapped(array: np.ndarray) -> bool:
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base.obj if isinstance(base, memoryview) else base, mmap.mmap)


@pytest.mark.parametrize("compressed", [False, True])
def test_the_arrays_are_np_loads(tmp_path: Path, compressed: bool) -> None:
    path = tmp_path / "t.npz"
    (np.savez_compressed if compressed else np.savez)(path, **ARRAYS)  # type: ignore[operator]
    got = load_npz(path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(got) == sorted(npz.files) == sorted(ARRAYS)
        for name in ARRAYS:
            want = npz[name]
            assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
            assert np.array_equal(got[name], want), name
            assert got[name].flags.f_contiguous == want.flags.f_contiguous
    stored = [a for name, a in got.items() if a.size]
    if compressed:
        assert not any(_mapped(a) for a in stored)
    else:
        assert all(_mapped(a) and not a.flags.writeable for a in stored)


def test_a_version_2_header_is_read(tmp_path: Path) -> None:
    member = io.BytesIO()
    np.lib.format.write_array(member, np.arange(5, dtype=np.int16), version=(2, 0))
    path = tmp_path / "v2.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.npy", member.getvalue())
    assert load_npz(path)["a"].tolist() == [0, 1, 2, 3, 4]


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_npz(path)


def test_a_header_promising_more_than_the_member_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.npz"
    np.savez(path, a=np.arange(3, dtype=np.uint8))
    data = path.read_bytes()
    assert data.count(b"(3,)") == 1
    path.write_bytes(data.replace(b"(3,)", b"(9,)"))  # same length: the zip stays readable
    with pytest.raises(ValueError, match="truncated"):
        load_npz(path)


def test_a_member_without_its_local_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.npz"
    np.savez(path, a=np.arange(3, dtype=np.uint8))
    data = bytearray(path.read_bytes())
    assert data[:4] == b"PK\x03\x04"
    data[:4] = b"XXXX"  # the central directory still points here
    path.write_bytes(bytes(data))
    with pytest.raises((ValueError, zipfile.BadZipFile)):
        load_npz(path)
