"""Model files: numbers and JSON only, so loading one can never run code.

A model file is a zip of ``.npy`` arrays (read with ``allow_pickle=False``) plus ``header``,
a JSON document: format and version, the model's kind, its feature schema (names, order,
directions, scaling), the library versions it was built with, the training-set summary, and a
SHA-256 over everything else in the file. Loading refuses, with a one-line
:class:`ModelError`, a file that is not a model, is truncated or altered (zip CRC or content
hash), comes from a newer format, is of another kind, or fails the caller's schema check
(trained on a feature set other than this burstwatch's). The hash detects damage and careless
edits; it is not a signature (anyone can recompute it), so keep model files where only you
can write them.

Files are written deterministically (fixed zip timestamps, sorted members), so the same model
always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from burstwatch.errors import BurstwatchError
from burstwatch.inputfiles import InputFileError, read_bounded

FORMAT = "burstwatch-model"
FORMAT_VERSION = 1
HEADER = "header"
MAX_FILE_BYTES = 256 << 20
MAX_UNPACKED_BYTES = 1 << 30  # a zip can claim far more than it occupies
MAX_MEMBERS = 64
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


class ModelError(BurstwatchError):
    """A model file that cannot be used: missing, damaged, foreign, or for other features."""


def content_hash(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the header (without its hash) and every array's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "payload_sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_model(path: str | Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and ``header`` (hash added) to ``path``, replacing it atomically."""
    if HEADER in arrays:
        raise ValueError(f"array name {HEADER!r} is reserved")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **header}
    header["payload_sha256"] = content_hash(header, arrays)
    members = {HEADER: np.frombuffer(json.dumps(header, indent=1, sort_keys=True).encode(), np.uint8)}
    members.update(arrays)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(members):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(members[name]), allow_pickle=False)
                info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue(), compresslevel=9)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write model {path}: {exc.strerror or exc}") from exc


def read_model(
    path: str | Path, kind: str, check: Callable[[str, dict[str, Any]], None],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a model file, after every check in the module docstring.

    ``kind`` is the model the caller can use ("conversation"); a file of another kind (a flow
    model of earlier versions has no ``kind`` and reads as "flow") is refused by name.
    ``check`` validates the feature schema.
    """
    name = str(path)
    try:
        data = read_bounded(path, MAX_FILE_BYTES, "a model file")
    except InputFileError as exc:
        raise ModelError(f"cannot read model {name}: {exc.problem}") from None
    if not data.startswith(b"PK\x03\x04"):
        raise ModelError(f"{name} is not a burstwatch model file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {info.filename.removesuffix(".npy"): info for info in zf.infolist()}
            unpacked = sum(info.file_size for info in members.values())
            if unpacked > MAX_UNPACKED_BYTES or len(members) > MAX_MEMBERS:
                raise ModelError(f"{name} is not a burstwatch model ({len(members)} members, "
                                 f"{unpacked:,} bytes unpacked is far too large)")
            if HEADER not in members:
                raise ModelError(f"{name} is not a burstwatch model file (no model header)")
            # The header first: a file that is not a model of this kind is refused before
            # any array is read.
            header = _header(name, _read_array(zf, members[HEADER], name))
            arrays = {k: _read_array(zf, info, name) for k, info in members.items() if k != HEADER}
    except ModelError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelError(f"model {name} is truncated or damaged ({exc}); rebuild or copy it again") from exc
    if header.get("payload_sha256") != content_hash(header, arrays):
        raise ModelError(f"model {name} failed its integrity check (content hash mismatch): "
                         "it was altered or damaged; rebuild or copy it again")
    found = header.get("kind", "flow")
    if found != kind:
        raise ModelError(f"{name} is a {found} model, not a {kind} model: "
                         f"give a {kind} model (`burstwatch train` writes conversation models)")
    check(name, header)
    return header, arrays


def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    """One ``.npy`` member, its header checked before anything is allocated: numbers only,
    at most two dimensions, and no more bytes than the member holds (a header may claim
    terabytes that the file does not have)."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fh)
        if dtype.hasobject or dtype.itemsize == 0 or len(shape) > 2 or any(d < 0 for d in shape):
            raise ModelError(f"model {name}: array {info.filename} is not a plain array of numbers")
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise ModelError(f"model {name}: array {info.filename} claims {shape} of {dtype}, "
                             f"more than its {info.file_size:,} bytes; rebuild or copy it again")
    with zf.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _no_constant(value: str) -> None:
    raise ValueError(f"{value} is not a number a model holds")


def _header(name: str, raw: np.ndarray) -> dict[str, Any]:
    try:
        header = json.loads(raw.astype(np.uint8).tobytes().decode(), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"model {name} has an unreadable header; rebuild or copy it again") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelError(f"{name} is not a burstwatch model file (unknown header)")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(f"model {name} has format version {version}; this burstwatch reads version "
                         f"{FORMAT_VERSION}: retrain it with `burstwatch train`")
    return header


