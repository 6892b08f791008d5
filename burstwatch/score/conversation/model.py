"""ConversationModel: how far a conversation departs from benign ones, toward exfiltration.

An isolation forest (scikit-learn's, flattened by :mod:`burstwatch.score.trees`) over the
one-sided transform of the conversation features (:mod:`.transform`), scored through the
monotone envelope of its trees (:mod:`.envelope`), calibrated against the training rows
themselves, each scored only by the trees that did not see it (out of bag):

    score = (baseline rows whose raw score is lower) / (baseline rows + 1)

so on conversations like the baseline a threshold ``t`` is reached by at most about
``1 - t`` of them, and a baseline of ``n`` rows cannot give a score above ``n / (n + 1)``: a
model needs at least 199 rows before a score can reach 0.995 at all. Only conversations with
an upload burst are scored; the others score 0 (nothing was sent to judge).
"""

from __future__ import annotations

import functools
import os
import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

import burstwatch
from burstwatch.conversations.features import ConversationFeatures
from burstwatch.score.conversation.envelope import envelope_raw, envelope_raw_oob
from burstwatch.score.conversation.explain import LEVELS, NOT_SCORED, Departures
from burstwatch.score.conversation.transform import (
    USED,
    as_values,
    fit_medians,
    floor32,
    schema,
    scored,
    transform,
)
from burstwatch.score.model_file import ModelError, read_model, write_model
from burstwatch.score.trees import TreeArrays

F64 = npt.NDArray[np.float64]
Rows = ConversationFeatures | npt.ArrayLike
KIND = "conversation"
DEFAULT_MODEL = "conversation-model.bwm"
MIN_ROWS = 20  # fewer and the forest and its calibration rest on a handful of conversations
MAX_CALIBRATION_POINTS = 4096


@dataclass
class Calibration:
    """Sorted out-of-bag raw scores of the baseline rows (or evenly spaced quantiles of them)."""

    table: F64
    rows: int

    @classmethod
    def fit(cls, raw: npt.ArrayLike) -> Calibration:
        raw = np.sort(np.asarray(raw, np.float64))
        if raw.size == 0:
            raise ValueError("calibration needs at least one row")
        table = raw if raw.size <= MAX_CALIBRATION_POINTS else np.quantile(
            raw, np.linspace(0.0, 1.0, MAX_CALIBRATION_POINTS))
        return cls(np.ascontiguousarray(table), int(raw.size))

    def __call__(self, raw: npt.ArrayLike) -> F64:
        """Share of baseline rows with a lower raw score, out of rows + 1."""
        below = np.searchsorted(self.table, np.asarray(raw, np.float64), side="left") / float(self.table.size)
        return below * self.rows / (self.rows + 1.0)

    @property
    def ceiling(self) -> float:
        """The highest score this calibration can give."""
        return self.rows / (self.rows + 1.0)


class ConversationModel:
    """Anomaly score for conversations (``judge.ConversationScorer``), higher = further toward
    exfiltration. ``site_trained`` is False only for the model shipped with burstwatch.

    Parameters are keyword-only; ``fit`` or ``load`` sets ``trees_``, ``medians_``,
    ``calibration_``, ``departures_`` and ``training_``.
    """

    def __init__(self, *, n_estimators: int = 200, max_samples: int = 256, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.site_trained = True

    # ---- fitting ----

    def fit(
        self,
        X: Rows,
        *,
        hosts: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        source: str = "",
        horizon_ns: int | None = None,
        shipped: bool = False,
        context: Mapping[str, Any] | None = None,
    ) -> ConversationModel:
        """Learn the baseline from benign conversation rows (those without upload bursts are skipped).

        ``hosts`` (the local host of each row) are counted; ``labels`` (e.g. the traffic
        class) are counted in the training record; ``source`` says where the rows came
        from; ``shipped`` marks the model built for burstwatch itself (``site_trained`` False).
        """
        from sklearn.ensemble import IsolationForest  # only training needs scikit-learn

        values = as_values(X)
        for name, seq in (("hosts", hosts), ("labels", labels)):
            if seq is not None and len(seq) != values.shape[0]:
                raise ValueError(f"{name} must have one entry per row")
        keep = scored(values)
        rows = values[keep]
        n = rows.shape[0]
        if n < MIN_ROWS:
            raise ModelError(f"only {n} conversation(s) with upload bursts to learn from; at least "
                             f"{MIN_ROWS} are needed: give a longer history or more captures")
        medians = fit_medians(rows)
        fit_X = transform(rows, medians)
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=max(2, min(self.max_samples, n // 2)),
            random_state=self.random_state,
        ).fit(fit_X)
        trees = TreeArrays.from_sklearn(forest, USED.size)
        probe = fit_X[: min(n, 1000)]
        if not np.allclose(trees.raw_scores(probe), -forest.score_samples(probe), rtol=0, atol=1e-5):
            raise RuntimeError("flattened trees disagree with scikit-learn's IsolationForest")
        inbag = np.zeros((self.n_estimators, n), np.bool_)
        for k, idx in enumerate(forest.estimators_samples_):
            inbag[k, idx] = True
        oob = envelope_raw_oob(trees, fit_X, floor32(medians), inbag)
        self.trees_ = trees
        self.medians_ = medians
        self.calibration_ = Calibration.fit(oob[~np.isnan(oob)])
        self.departures_ = Departures.fit(rows)
        self.site_trained = not shipped
        host_list = np.asarray(hosts, object)[keep] if hosts is not None else None
        classes = None
        if labels is not None:
            classes = dict(sorted(Counter(str(v) for v in np.asarray(labels, object)[keep]).items()))
        self.training_: dict[str, Any] = {
            "source": source,
            "shipped": bool(shipped),
            "rows": int(n),
            "conversations": int(values.shape[0]),
            "hosts": None if host_list is None else len(set(host_list.tolist())),
            "calibration_rows": self.calibration_.rows,
            "horizon_hours": None if horizon_ns is None else horizon_ns / 3.6e12,
            "classes": classes,
            "created": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            **(dict(context) if context else {}),
        }
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "trees_"):
            raise RuntimeError("this ConversationModel is not fitted; call fit() or load a model")

    # ---- scoring ----

    def raw_score(self, X: Rows) -> F64:
        """Uncalibrated monotone isolation score in (0, 1]; 0 for rows without an upload burst."""
        self._check_fitted()
        values = as_values(X)
        out = np.zeros(values.shape[0])
        mask = scored(values)
        if mask.any():
            out[mask] = envelope_raw(self.trees_, transform(values[mask], self.medians_), floor32(self.medians_))
        return out

    def score(self, features: Rows) -> tuple[F64, Sequence[list[dict[str, Any]]]]:
        """(calibrated scores in [0, 1], per row the reasons: up to three departures as dicts
        with a ``text``). Rows without an upload burst score 0. The reasons are worked out
        for a row when it is first read (a judge reads them for its few cases only)."""
        self._check_fitted()
        values = as_values(features)
        scores = np.zeros(values.shape[0])
        mask = scored(values)
        if mask.any():
            raw = envelope_raw(self.trees_, transform(values[mask], self.medians_), floor32(self.medians_))
            scores[mask] = self.calibration_(raw)
        return scores, _LazyReasons(self, values, mask)

    # ---- persistence ----    # ---- persistence ----

    def save(self, path: str | Path) -> None:
        """Write the fitted model (numbers and JSON only: :mod:`burstwatch.score.model_file`)."""
        self._check_fitted()
        versions = {"burstwatch": burstwatch.__version__, "numpy": np.__version__,
                    "python": platform.python_version()}
        try:
            import sklearn

            versions["scikit-learn"] = sklearn.__version__
        except ImportError:  # pragma: no cover - a loaded model saved again without sklearn
            pass
        header = {
            "kind": KIND,
            "schema": {"features": schema()},
            "versions": versions,
            "params": {"n_estimators": self.n_estimators, "max_samples": self.max_samples,
                       "random_state": self.random_state},
            "path_norm": self.trees_.norm,
            "calibration_rows": self.calibration_.rows,
            "training": self.training_,
        }
        arrays = {
            **self.trees_.arrays(),
            "medians": self.medians_,
            "calibration": self.calibration_.table,
            "departure_levels": LEVELS,
            "departure_quantiles": self.departures_.quantiles,
            "departure_defined": self.departures_.defined,
        }
        write_model(path, header, arrays)

    @classmethod
    def load(cls, path: str | Path) -> ConversationModel:
        """Read a model file; raises :class:`ModelError` on any file it cannot trust or use."""
        header, arrays = read_model(path, KIND, check_schema)
        try:
            model = cls(**header["params"])
            trees = TreeArrays.from_arrays(arrays, float(header["path_norm"]))
            trees.validate(USED.size)
            medians = np.asarray(arrays["medians"], np.float64)
            quantiles = np.asarray(arrays["departure_quantiles"], np.float64)
            defined = np.asarray(arrays["departure_defined"], np.float64)
            if medians.shape != (USED.size,) or defined.shape != (USED.size,) \
                    or quantiles.shape != (LEVELS.size, USED.size):
                raise ValueError("baseline arrays have the wrong shape")
            if not np.array_equal(arrays["departure_levels"], LEVELS):
                raise ValueError("baseline quantile levels differ")
            table = np.asarray(arrays["calibration"], np.float64)
            if table.ndim != 1 or table.size == 0 or np.any(np.diff(table) < 0):
                raise ValueError("calibration table is not sorted")
            model.trees_ = trees
            model.medians_ = medians
            model.calibration_ = Calibration(table, int(header["calibration_rows"]))
            model.departures_ = Departures(quantiles, defined)
            model.training_ = dict(header["training"])
            model.site_trained = not bool(model.training_.get("shipped", False))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ModelError(f"model {path} is inconsistent ({exc}); rebuild it") from exc
        return model

    @classmethod
    def default(cls) -> ConversationModel:
        """The model shipped with burstwatch (``python -m burstwatch.builders.conversation_model``)."""
        return _load_default()

    def describe(self) -> str:
        """One line: what the model learned from."""
        t = self.training_
        hosts = t.get("hosts")
        return (f"{'site' if self.site_trained else 'shipped'} conversation model: {t.get('rows', 0):,} "
                f"conversations with upload bursts" + (f" from {hosts:,} hosts" if hosts is not None else "")
                + (f", {t['source']}" if t.get("source") else "") + f" ({t.get('created', '?')})")


def check_schema(name: str, header: dict[str, Any]) -> None:
    """Refuse a model trained on other conversation features, directions or scaling."""
    stored = header.get("schema", {}).get("features")
    current = schema()
    if stored == current:
        return
    if not isinstance(stored, list) or not all(isinstance(f, dict) and "name" in f for f in stored):
        raise ModelError(f"model {name} has no readable feature schema; retrain it with `burstwatch train`")
    have = [f["name"] for f in stored]
    want = [f["name"] for f in current]
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    changed = [f["name"] for f in stored if f["name"] in want and f != current[want.index(f["name"])]]
    parts = ([f"lacks {', '.join(missing)}"] if missing else []) + \
            ([f"has unknown {', '.join(extra)}"] if extra else []) + \
            ([f"treats {', '.join(changed)} differently"] if changed else [])
    raise ModelError(f"model {name} was trained on other conversation features than this burstwatch's "
                     f"({'; '.join(parts) or 'in another order'}): retrain it with `burstwatch train`")


def _now() -> datetime:
    """Build time, or SOURCE_DATE_EPOCH when set, so a rebuild can give byte-identical files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)


def default_model_path() -> Path:
    return Path(str(resources.files("burstwatch.score.data").joinpath(DEFAULT_MODEL)))


@functools.lru_cache(maxsize=1)
def _load_default() -> ConversationModel:
    return ConversationModel.load(default_model_path())


if TYPE_CHECKING:  # mypy checks that the model is what the judge takes
    from burstwatch.conversations.judge import ConversationScorer

    _AS_SCORER: ConversationScorer = ConversationModel()


class _LazyReasons(Sequence[list[dict[str, Any]]]):
    """Per-row reasons, each worked out the first time it is read."""

    def __init__(self, model: ConversationModel, values: F64, mask: npt.NDArray[np.bool_]) -> None:
        self._model = model
        self._values = values
        self._mask = mask
        self._done: dict[int, list[dict[str, Any]]] = {}

    def __len__(self) -> int:
        return int(self._values.shape[0])

    def prefetch(self, rows: npt.NDArray[np.intp]) -> None:
        """Work out the reasons of ``rows`` in one pass (a judge's cases, before it reads them)."""
        todo = np.array([i for i in rows.tolist() if i not in self._done and self._mask[i]], np.intp)
        if todo.shape[0]:
            model = self._model
            for i, got in zip(todo.tolist(), model.departures_.reasons(self._values[todo], model.medians_),
                              strict=True):
                self._done[i] = got

    @overload
    def __getitem__(self, index: int) -> list[dict[str, Any]]: ...

    @overload
    def __getitem__(self, index: slice) -> list[list[dict[str, Any]]]: ...

    def __getitem__(self, index: int | slice) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]
        got = self._done.get(i)
        if got is None:
            if not self._mask[i]:
                got = [{"text": NOT_SCORED}]
            else:
                model = self._model
                got = model.departures_.reasons(self._values[i : i + 1], model.medians_)[0]
            self._done[i] = got
        return got
