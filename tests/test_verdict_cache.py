"""The open flows' encryption verdicts (enrich.verdicts.VerdictCache): filed, looked up,
replaced and forgotten by whole arrays of flow ids, in any order, against a dict kept
beside it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from burstwatch.enrich.encryption.batch import VerdictColumns
from burstwatch.enrich.encryption.verdict import EncryptionVerdict
from burstwatch.enrich.verdicts import ENTROPY_COLUMN, STRING_COLUMNS, VerdictCache


def verdicts(kinds: list[str], sni: dict[int, str] | None = None) -> VerdictColumns:
    n = len(kinds)
    return VerdictColumns(
        kind=np.array(kinds, object), entropy=np.arange(n, dtype=np.float64),
        detail=np.array([f"d{k}" for k in range(n)], object),
        protocol={i: EncryptionVerdict("tls", version="1.3", sni=name, alpn=("h2", "http/1.1"))
                  for i, name in (sni or {}).items()})


def test_filed_looked_up_and_forgotten() -> None:
    cache = VerdictCache(capacity=2)
    cache.add(np.array([30, 10, 20], np.int64), verdicts(["none", "entropy", "tls"], {2: "a.example"}))
    assert len(cache) == 3 and 10 in cache and 11 not in cache
    assert cache.known(np.array([20, 11, 30, 10, 99], np.int64)).tolist() == [
        True, False, True, True, False]
    cols = cache.columns(np.array([20, 30, 20], np.int64))
    assert cols["burstwatch.encryption.verdict"].tolist() == ["tls", "none", "tls"]
    assert cols["tls.client.server_name"].tolist() == ["a.example", "", "a.example"]
    assert cols["burstwatch.tls.client.alpn_offered"].tolist() == ["h2,http/1.1", "", "h2,http/1.1"]
    assert cols[ENTROPY_COLUMN].tolist() == [2.0, 0.0, 2.0]
    cache.forget(np.array([30, 31], np.int64))  # 31 was never filed
    assert cache.known(np.array([10, 20, 30], np.int64)).tolist() == [True, True, False]
    with pytest.raises(KeyError):
        cache.columns(np.array([30], np.int64))


def test_a_flow_filed_again_takes_its_new_verdict() -> None:
    cache = VerdictCache()
    cache.add(np.array([5, 6], np.int64), verdicts(["none", "none"]))
    cache.add(np.array([6, 7, 7], np.int64), verdicts(["tls", "entropy", "quic"]))
    strings, entropy = cache.rows(np.array([5, 6, 7], np.int64))
    assert strings[:, 0].tolist() == ["none", "tls", "quic"]  # 7 twice: the last
    assert entropy.tolist() == [0.0, 0.0, 2.0]
    assert len(cache) == 3


def test_overwrite_export_and_load() -> None:
    cache = VerdictCache()
    cache.add(np.array([3, 1, 2], np.int64), verdicts(["none", "tls", "entropy"], {1: "b"}))
    cache.overwrite(np.array([3], np.int64), np.array([["tls", "1.2", "", "c", "", ""]], object),
                    np.array([7.5]))
    state = cache.export()
    again = VerdictCache()
    again.load(state)
    fids = np.array([1, 2, 3], np.int64)
    for name in (*STRING_COLUMNS, ENTROPY_COLUMN):
        assert again.columns(fids)[name].tolist() == cache.columns(fids)[name].tolist(), name
    assert again.columns(fids)["tls.client.server_name"].tolist() == ["b", "", "c"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "forget"]),
                          st.lists(st.integers(0, 40), min_size=0, max_size=12)),
                min_size=1, max_size=25))
def test_the_same_as_a_dict(steps: list[tuple[str, list[int]]]) -> None:
    cache = VerdictCache(capacity=4)
    reference: dict[int, str] = {}
    for k, (op, ids) in enumerate(steps):
        fids = np.array(ids, np.int64)
        if op == "add":
            kinds = [f"k{k}.{i}" for i in range(len(ids))]
            cache.add(fids, verdicts(kinds))
            reference.update(zip(ids, kinds, strict=True))
        else:
            cache.forget(fids)
            for fid in ids:
                reference.pop(fid, None)
        probe = np.arange(41, dtype=np.int64)
        assert cache.known(probe).tolist() == [fid in reference for fid in range(41)]
        held = np.array(sorted(reference), np.int64)
        assert cache.columns(held)["burstwatch.encryption.verdict"].tolist() == [
            reference[fid] for fid in sorted(reference)]
