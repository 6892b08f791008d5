"""Model files and the tree walk, independent of which model uses them: numbers and JSON only,
refused with one line when damaged, altered or forged, and trees that score exactly as
scikit-learn's own forest does."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from burstwatch.score import ModelError
from burstwatch.score import trees as trees_mod
from burstwatch.score.conversation import ConversationModel
from burstwatch.score.conversation.model import KIND, check_schema
from burstwatch.score.model_file import content_hash, read_model, write_model
from burstwatch.score.trees import TreeArrays
from burstwatch.score.units import format_pair, format_value
from tests.test_conversation_score import toy_rows


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "site.bwm"
    X = toy_rows(7)
    ConversationModel(n_estimators=40, random_state=1).fit(X, hosts=["h"] * len(X), source="toy").save(path)
    return path


def test_saving_twice_gives_the_same_bytes(model_file: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.bwm"
    ConversationModel.load(model_file).save(again)
    assert again.read_bytes() == model_file.read_bytes()


@pytest.mark.parametrize("where", [0.02, 0.3, 0.6, 0.97])
def test_a_changed_byte_is_refused(model_file: Path, tmp_path: Path, where: float) -> None:
    data = bytearray(model_file.read_bytes())
    k = int(len(data) * where)
    data[k] ^= 0x5A
    bad = tmp_path / "tampered.bwm"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged|altered|not a burstwatch model") as info:
        ConversationModel.load(bad)
    assert "\n" not in str(info.value)


def test_an_edited_array_with_a_valid_zip_is_refused(model_file: Path, tmp_path: Path) -> None:
    """Rewriting a member (so zip CRCs hold) still fails the content hash."""
    bad = tmp_path / "edited.bwm"
    with zipfile.ZipFile(model_file) as zin, zipfile.ZipFile(bad, "w") as zout:
        names = [i.filename for i in zin.infolist() if i.filename != "header.npy"]
        target = sorted(names)[0]
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == target:
                data = data[:-8] + bytes(8)
            zout.writestr(item, data)
    with pytest.raises(ModelError, match="integrity check"):
        ConversationModel.load(bad)


def test_a_truncated_file_is_refused(model_file: Path, tmp_path: Path) -> None:
    data = model_file.read_bytes()
    for keep in (len(data) // 2, len(data) - 30, 100):
        bad = tmp_path / f"cut{keep}.bwm"
        bad.write_bytes(data[:keep])
        with pytest.raises(ModelError, match="truncated or damaged"):
            ConversationModel.load(bad)


def test_forged_tree_arrays_are_refused(model_file: Path, tmp_path: Path) -> None:
    """A self-consistent file whose trees would walk out of bounds never reaches the compiled walk."""
    header, arrays = read_model(model_file, KIND, check_schema)
    header = {k: v for k, v in header.items() if k not in ("format", "format_version", "payload_sha256")}
    left = arrays["tree_left"].copy()
    inner = np.flatnonzero(left != -1)
    left[inner[3]] = 0  # a cycle back to the root
    bad = tmp_path / "forged.bwm"
    write_model(bad, header, {**arrays, "tree_left": left})
    with pytest.raises(ModelError, match="inconsistent"):
        ConversationModel.load(bad)


def test_files_that_are_not_models_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    other_zip = tmp_path / "other.npz"
    np.savez(other_zip, a=np.arange(3))
    for path in (text, other_zip):
        with pytest.raises(ModelError, match="not a burstwatch model"):
            ConversationModel.load(path)
    with pytest.raises(ModelError, match="cannot read model"):
        ConversationModel.load(tmp_path / "missing.bwm")


def test_flattened_trees_match_scikit_learn_with_feature_subsets() -> None:
    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(600, 8)).astype(np.float32)
    forest = IsolationForest(n_estimators=30, max_features=0.5, random_state=0).fit(X)
    trees = TreeArrays.from_sklearn(forest, 8)
    trees.validate(8)
    Y = rng.lognormal(size=(500, 8)).astype(np.float32)
    np.testing.assert_allclose(trees.raw_scores(Y), -forest.score_samples(Y), atol=1e-6)


def test_large_batches_score_in_halves_with_the_same_result() -> None:
    rng = np.random.default_rng(4)
    X = rng.lognormal(size=(2000, 6)).astype(np.float32)
    trees = TreeArrays.from_sklearn(IsolationForest(n_estimators=20, random_state=1).fit(X), 6)
    Y = rng.normal(size=(20_000, 6)).astype(np.float32) * 3
    split = trees.raw_scores(Y)
    whole = np.power(2.0, -trees_mod._path_lengths(
        Y, trees.offsets, trees.left, trees.right, trees.feature, trees.threshold, trees.leaf,
    ) / (trees.n_trees * trees.norm))
    assert Y.shape[0] >= trees_mod._SPLIT_ROWS
    assert np.array_equal(split, whole)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(9.8e6, "bytes/s", "9.80 MB/s"), (2_000_000, "bytes", "2.00 MB"), (0.095, "s", "95.0 ms"),
     (300.0, "s", "5.00 min"), (1, "bursts", "1 burst"), (1234, "packets", "1,234 packets"),
     (0.0025, "ratio", "0.00250"), (float("nan"), "s", "undefined")],
)
def test_values_read_with_units(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_close_values_get_enough_digits_to_differ() -> None:
    assert format_pair(1027.5, 1025.0, "bytes") == ("1.03 kB", "1.02 kB")
    a, b = format_pair(10_001_700.0, 10_000_000.0, "bytes/s")
    assert a != b


def _rewrite(model_file: Path, bad: Path, member: str, payload: bytes) -> None:
    """``model_file`` with ``member`` replaced by ``payload`` (zip CRCs made to hold)."""
    with zipfile.ZipFile(model_file) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, payload if item.filename == member else zin.read(item))


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - (len(text) + 10) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


@pytest.mark.parametrize("shape", [(2**40,), (2**20, 2**20), (1, 2, 3)])
def test_array_headers_are_checked_before_allocating(
    model_file: Path, tmp_path: Path, shape: tuple[int, ...]
) -> None:
    """A member whose header claims terabytes (or three dimensions) is refused from its header,
    before numpy allocates anything."""
    bad = tmp_path / "huge.bwm"
    _rewrite(model_file, bad, "medians.npy", _npy_header(shape) + bytes(64))
    with pytest.raises(ModelError, match="claims|not a plain array") as info:
        ConversationModel.load(bad)
    assert "\n" not in str(info.value)


def test_two_dimensional_tree_arrays_are_refused(model_file: Path, tmp_path: Path) -> None:
    header, arrays = read_model(model_file, KIND, check_schema)
    header = {k: v for k, v in header.items() if k not in ("format", "format_version", "payload_sha256")}
    bad = tmp_path / "flat.bwm"
    left = arrays["tree_left"]
    write_model(bad, header, {**arrays, "tree_left": np.stack([left, left])})
    with pytest.raises(ModelError, match="one-dimensional"):
        ConversationModel.load(bad)


@pytest.mark.parametrize(("field", "value"), [
    ("calibration_rows", "Infinity"), ("calibration_rows", "null"), ("path_norm", "null"),
    ("path_norm", "NaN"), ("calibration_rows", "1e999"),
])
def test_infinite_or_null_header_fields_are_refused(
    model_file: Path, tmp_path: Path, field: str, value: str
) -> None:
    """Such a header (JSON allows Infinity, NaN and 1e999) with its content hash made to match
    is refused with one line, not an OverflowError from ``int(inf)``."""
    header, arrays = read_model(model_file, KIND, check_schema)
    header = {k: v for k, v in header.items() if k not in ("format", "format_version", "payload_sha256")}
    bad = tmp_path / "header.bwm"
    write_model(bad, {**header, field: 0}, arrays)
    # Put the value in as written text, with the content hash recomputed over it.
    with zipfile.ZipFile(bad) as z:
        raw = np.lib.format.read_array(z.open("header.npy")).tobytes().decode()
    text = raw.replace(f'"{field}": 0', f'"{field}": {value}')
    data = json.loads(text)
    if isinstance(data.get(field), float) or data.get(field) is None:
        data["payload_sha256"] = content_hash(data, arrays)
        text = json.dumps(data, allow_nan=True)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(text.encode(), np.uint8))
    _rewrite(bad, tmp_path / "header2.bwm", "header.npy", buf.getvalue())
    with pytest.raises(ModelError) as info:
        ConversationModel.load(tmp_path / "header2.bwm")
    assert "\n" not in str(info.value)


def test_a_device_is_read_bounded() -> None:
    with pytest.raises(ModelError, match="too large"):
        ConversationModel.load("/dev/zero")
