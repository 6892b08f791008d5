"""BurstScorer: how unusual a flow-window's burst behaviour is, against a benign baseline.

An isolation forest (scikit-learn's, flattened to arrays by :mod:`burstwatch.score.trees`)
learns the baseline's burst shapes; the raw score is calibrated on held-out baseline rows so
a threshold reads as a false-alarm rate. Only rows with at least one burst are scored: a row
without a burst has no burst transmission to judge, is most of any capture, and would teach
the forest that "has a burst" is itself rare. Those rows score 0.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import burstwatch
from burstwatch.features import FEATURE_INDEX, FEATURE_NAMES, FeatureMatrix
from burstwatch.score.calibration import Calibration
from burstwatch.score.explain import LEVELS, Baseline, Explanation
from burstwatch.score.model_file import ModelError, read_model, write_model
from burstwatch.score.transform import USED, as_values, schema, transform
from burstwatch.score.trees import TreeArrays

F64 = npt.NDArray[np.float64]
Rows = FeatureMatrix | npt.ArrayLike
DEFAULT_MODEL = "default_model.npz"
MIN_BURST_ROWS = 200  # fewer and the 99th-percentile calibration rests on a couple of rows
_BURST_COUNT = FEATURE_INDEX["burst_count"]


def has_burst(values: F64) -> npt.NDArray[np.bool_]:
    """Rows the scorer judges: those with at least one burst."""
    return np.nan_to_num(values[:, _BURST_COUNT]) > 0


class BurstScorer:
    """Anomaly score for flow-windows with bursts, calibrated on benign traffic.

    ``score`` returns values in [0, 1]; **higher means more anomalous**. A row's score is the
    share of held-out benign baseline rows whose raw isolation score was lower, so on traffic
    like the baseline a threshold ``t`` flags about ``1 - t`` of the rows with bursts. Rows
    without a burst score 0.

    Parameters are keyword-only and stored as given; ``fit`` sets the trailing-underscore
    attributes (``trees_``, ``calibration_``, ``baseline_``, ``training_``).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        max_samples: int = 256,
        calibration_fraction: float = 0.5,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state

    # ---- fitting ----

    def fit(
        self,
        X: Rows,
        *,
        labels: Sequence[str] | None = None,
        captures: Sequence[str] = (),
        context: Mapping[str, Any] | None = None,
    ) -> BurstScorer:
        """Learn the baseline from benign rows ``X`` (all rows; those without bursts are skipped).

        ``labels`` (one per row, e.g. the traffic class or capture) stratify the calibration
        hold-out and are counted in the training summary; ``captures`` are recorded by name,
        and ``context`` (e.g. the flow settings the features were computed with) as given.
        """
        from sklearn.ensemble import IsolationForest  # only training needs scikit-learn

        values = as_values(X)
        if labels is not None and len(labels) != values.shape[0]:
            raise ValueError("labels must have one entry per row")
        keep = has_burst(values)
        rows = values[keep]
        row_labels = np.asarray(labels if labels is not None else [""] * values.shape[0], object)[keep]
        if rows.shape[0] < MIN_BURST_ROWS:
            raise ModelError(f"the baseline has {rows.shape[0]} flow-windows with bursts; at least "
                             f"{MIN_BURST_ROWS} are needed: add longer or more captures")
        fit_idx, cal_idx = self._split(row_labels)
        if not (fit_idx.size and cal_idx.size):
            raise ModelError("calibration_fraction leaves no rows to fit or none to calibrate on")
        fit_X = transform(rows[fit_idx])
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, fit_idx.size),
            random_state=self.random_state,
        ).fit(fit_X)
        trees = TreeArrays.from_sklearn(forest, len(USED))
        probe = fit_X[: min(fit_X.shape[0], 1000)]
        if not np.allclose(trees.raw_scores(probe), -forest.score_samples(probe), rtol=0, atol=1e-5):
            raise RuntimeError("flattened trees disagree with scikit-learn's IsolationForest")
        self.trees_ = trees
        self.calibration_ = Calibration.fit(trees.raw_scores(transform(rows[cal_idx])))
        self.baseline_ = Baseline.fit(rows)
        classes: dict[str, int] | None = None
        if labels is not None:
            names, counts = np.unique(row_labels.astype(str), return_counts=True)
            classes = {str(k): int(c) for k, c in zip(names, counts, strict=True)}
        self.training_: dict[str, Any] = {
            "rows": int(values.shape[0]),
            "burst_rows": int(rows.shape[0]),
            "fit_rows": int(fit_idx.size),
            "calibration_rows": int(cal_idx.size),
            "classes": classes,
            "captures": [Path(c).name for c in captures],
            "created": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            **(dict(context) if context else {}),
        }
        return self

    def _split(self, labels: npt.NDArray[Any]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Stratified hold-out: ``calibration_fraction`` of each label's rows for calibration.

        The count is rounded up or down at random, so many small labels still add up to the
        requested share.
        """
        rng = np.random.default_rng(self.random_state)
        fit_parts, cal_parts = [], []
        for label in sorted(set(labels.tolist())):
            idx = rng.permutation(np.flatnonzero(labels == label))
            k = int(np.floor(idx.size * self.calibration_fraction + rng.random()))
            cal_parts.append(idx[:k])
            fit_parts.append(idx[k:])
        return np.sort(np.concatenate(fit_parts)), np.sort(np.concatenate(cal_parts))

    def _check_fitted(self) -> None:
        if not hasattr(self, "trees_"):
            raise RuntimeError("this BurstScorer is not fitted; call fit() or load a model")

    # ---- scoring ----

    def raw_score(self, X: Rows) -> F64:
        """Uncalibrated isolation score in (0, 1] (sklearn's ``-score_samples``); 0 without bursts."""
        self._check_fitted()
        values = as_values(X)
        out = np.zeros(values.shape[0])
        mask = has_burst(values)
        if mask.any():
            out[mask] = self.trees_.raw_scores(transform(values[mask]))
        return out

    def score(self, X: Rows) -> F64:
        """Calibrated anomaly score in [0, 1], higher = more anomalous; 0 for rows without bursts."""
        self._check_fitted()
        values = as_values(X)
        out = np.zeros(values.shape[0])
        mask = has_burst(values)
        if mask.any():
            out[mask] = self.calibration_(self.trees_.raw_scores(transform(values[mask])))
        return out

    def explain(self, X: Rows, top: int = 3) -> list[Explanation]:
        """Per row, up to ``top`` features that set it apart from the baseline, rarest first.

        Rows without a burst get no reasons (``judged`` False), as they get no score.
        """
        self._check_fitted()
        values = as_values(X)
        mask = has_burst(values)
        out = [Explanation((), judged=False)] * values.shape[0]
        for i, ex in zip(np.flatnonzero(mask).tolist(), self.baseline_.explain(values[mask], top), strict=True):
            out[i] = ex
        return out

    # ---- persistence ----

    def save(self, path: str | Path) -> None:
        """Write the fitted model (see :mod:`burstwatch.score.model_file`)."""
        self._check_fitted()
        import sklearn

        header = {
            "schema": {"features": schema()},
            "versions": {
                "burstwatch": burstwatch.__version__,
                "numpy": np.__version__,
                "scikit-learn": sklearn.__version__,
                "python": platform.python_version(),
            },
            "params": {
                "n_estimators": self.n_estimators,
                "max_samples": self.max_samples,
                "calibration_fraction": self.calibration_fraction,
                "random_state": self.random_state,
            },
            "path_norm": self.trees_.norm,
            "calibration_rows": self.calibration_.rows,
            "training": self.training_,
        }
        arrays = {
            **self.trees_.arrays(),
            "calibration": self.calibration_.table,
            "baseline_levels": LEVELS,
            "baseline_quantiles": self.baseline_.quantiles,
            "baseline_nan_share": self.baseline_.nan_share,
        }
        write_model(path, header, arrays)

    @classmethod
    def load(cls, path: str | Path) -> BurstScorer:
        """Read a model file; raises :class:`ModelError` on any file it cannot trust or use."""
        header, arrays = read_model(path)
        try:
            scorer = cls(**header["params"])
            trees = TreeArrays.from_arrays(arrays, float(header["path_norm"]))
            trees.validate(len(USED))
            if not np.array_equal(arrays["baseline_levels"], LEVELS):
                raise ValueError("baseline quantile levels differ")
            quantiles = np.asarray(arrays["baseline_quantiles"], np.float64)
            nan_share = np.asarray(arrays["baseline_nan_share"], np.float64)
            if quantiles.shape != (LEVELS.size, len(FEATURE_NAMES)) or nan_share.shape != (len(FEATURE_NAMES),):
                raise ValueError("baseline arrays have the wrong shape")
            table = np.asarray(arrays["calibration"], np.float64)
            if table.ndim != 1 or table.size == 0 or np.any(np.diff(table) < 0):
                raise ValueError("calibration table is not sorted")
            scorer.trees_ = trees
            scorer.calibration_ = Calibration(table, int(header["calibration_rows"]))
            scorer.baseline_ = Baseline(quantiles, nan_share)
            scorer.training_ = dict(header["training"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model {path} is inconsistent ({exc}); rebuild it") from exc
        return scorer

    @classmethod
    def default(cls) -> BurstScorer:
        """The model shipped with burstwatch (built by ``python -m burstwatch.score.build_default``)."""
        return _load_default()


def _now() -> datetime:
    """Build time, or SOURCE_DATE_EPOCH when set, so a rebuild can give byte-identical files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)


def default_model_path() -> Path:
    return Path(str(resources.files("burstwatch.score.data").joinpath(DEFAULT_MODEL)))


@functools.lru_cache(maxsize=1)
def _load_default() -> BurstScorer:
    return BurstScorer.load(default_model_path())
