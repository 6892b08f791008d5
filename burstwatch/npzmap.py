"""Arrays of an ``.npz`` file, those stored uncompressed mapped from the file, not read.

``np.load`` reads every member of an ``.npz`` into memory (``mmap_mode`` is ignored for
them). The bundled geography is 15 MB of sorted tables of which a run touches a few pages
per address it looks up; stored uncompressed (``np.savez``), each member is a ``.npy`` file
at a fixed place in the zip, so it can be an array over a read-only map of the file: no time
to load and no private memory, only the pages read. Compressed members are inflated as
``np.load`` would. Object arrays are refused (they would need pickle).
"""

from __future__ import annotations

import mmap
import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra length
_LOCAL_SIGNATURE = b"PK\x03\x04"


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``path`` by name; raises ``ValueError`` (or ``OSError``,
    ``zipfile.BadZipFile``) for a file that is not a sound ``.npz``."""
    arrays: dict[str, np.ndarray] = {}
    with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
        mapped: mmap.mmap | None = None
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            if mapped is None:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            arrays[name] = _mapped_member(mapped, info)
    return arrays


def _mapped_member(mapped: mmap.mmap, info: zipfile.ZipInfo) -> np.ndarray:
    """The ``.npy`` member ``info`` (stored) as an array over ``mapped``."""
    start = info.header_offset
    header = mapped[start:start + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size:
        raise ValueError(f"{info.filename}: truncated")
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != _LOCAL_SIGNATURE:
        raise ValueError(f"{info.filename}: no local file header at {start}")
    begin = start + _LOCAL_HEADER.size + name_length + extra_length
    end = begin + info.file_size
    if end > len(mapped):
        raise ValueError(f"{info.filename}: truncated")
    member = _View(mapped, begin, end)
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"{info.filename}: .npy format {version} is not supported")
    if dtype.hasobject:
        raise ValueError(f"{info.filename}: object arrays are not loaded (they need pickle)")
    count = int(np.prod(shape, dtype=np.int64))
    if member.position + count * dtype.itemsize > end:
        raise ValueError(f"{info.filename}: truncated")
    flat = np.frombuffer(mapped, dtype=dtype, count=count, offset=member.position)
    return flat.reshape(shape, order="F" if fortran else "C")


class _View:
    """A file-like reader over ``mapped[begin:end]``, for numpy's ``.npy`` header readers."""

    def __init__(self, mapped: mmap.mmap, begin: int, end: int) -> None:
        self._mapped, self.position, self._end = mapped, begin, end

    def read(self, size: int = -1) -> bytes:
        stop = self._end if size < 0 else min(self._end, self.position + size)
        data = self._mapped[self.position:stop]
        self.position = stop
        return data
