"""Build the default model shipped in ``burstwatch/score/data``: ``python -m burstwatch.score.build_default``.

Training data is generated benign traffic (:mod:`burstwatch.score.corpus`): every benign
scenario, ``TRAIN_SEEDS`` seeds, each session with its own parameter draw. Rows with bursts
are balanced to at most ``CAP_PER_CLASS`` per scenario before fitting: browsing makes far more
rows than backups, and an unbalanced baseline would make every backup look rare.
Everything is seeded, so the same code gives the same model (byte-identical with
``SOURCE_DATE_EPOCH`` set). ``--measure`` then scores traffic generated with other seeds and
prints the tables in docs/scoring.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from burstwatch.flows import FlowConfig
from burstwatch.score.corpus import BENIGN_CLASSES, EXFIL_CLASSES, corpus_rows
from burstwatch.score.iforest import BurstScorer, default_model_path, has_burst
from burstwatch.score.measure import detections, false_alarms, markdown

TRAIN_SEEDS = tuple(range(1, 13))
BENIGN_PLAN = {label: 16 for label in BENIGN_CLASSES} | {"browsing": 3, "dns_lookups": 2}
CAP_PER_CLASS = 400
RANDOM_STATE = 0
N_TREES = 200
CALIBRATION_FRACTION = 0.6  # about a thousand held-out rows, so 0.999 is a resolvable threshold

EVAL_SEEDS = (101, 102, 103, 104)
EXFIL_SEEDS = (201, 202, 203)
EXFIL_SESSIONS = 10
EXFIL_DEFAULT_SEEDS = (301, 302, 303, 304, 305)
THRESHOLDS = (0.95, 0.99, 0.999)


def balanced(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of at most ``cap`` rows per label, drawn at random, in their original order."""
    rng = np.random.default_rng(seed)
    parts = [rng.permutation(np.flatnonzero(labels == label))[:cap] for label in sorted(set(labels.tolist()))]
    return np.sort(np.concatenate(parts))


def build(output: Path, workdir: Path | None = None) -> BurstScorer:
    """Generate the training corpus, fit, and write the model to ``output``."""
    rows, captures = corpus_rows(BENIGN_PLAN, TRAIN_SEEDS, workdir=workdir)
    labels = np.asarray(rows.labels([c.label for c in captures]), object)
    judged = np.flatnonzero(has_burst(rows.values))
    keep = judged[balanced(labels[judged], CAP_PER_CLASS, RANDOM_STATE)]
    scorer = BurstScorer(n_estimators=N_TREES, calibration_fraction=CALIBRATION_FRACTION,
                         random_state=RANDOM_STATE)
    scorer.fit(
        rows.values[keep],
        labels=list(labels[keep]),
        captures=[c.path for c in captures],
        context={"corpus": {
            "generator": "burstwatch.score.corpus (burstwatch.synth scenarios)",
            "seeds": list(TRAIN_SEEDS),
            "sessions_per_capture": BENIGN_PLAN,
            "packets": sum(c.packets for c in captures),
            "rows": len(rows),
            "rows_with_bursts": int(judged.size),
            "cap_per_class": CAP_PER_CLASS,
        }, "flow_config": dataclasses.asdict(FlowConfig())},
    )
    scorer.save(output)
    return scorer


def measure(scorer: BurstScorer, workdir: Path | None = None) -> str:
    """Markdown tables: false alarms on benign traffic and detections of exfiltration, other seeds."""
    exfil_plan = {label: EXFIL_SESSIONS for label in EXFIL_CLASSES}
    parts = []
    for title, (rows, caps), fn, unit in (
        (f"False alarms: benign flow-windows with bursts, seeds {list(EVAL_SEEDS)}",
         corpus_rows(BENIGN_PLAN, EVAL_SEEDS, workdir=workdir), false_alarms, "rows"),
        (f"Detection: varied exfiltration sessions, seeds {list(EXFIL_SEEDS)}",
         corpus_rows(exfil_plan, EXFIL_SEEDS, workdir=workdir), detections, "sessions"),
        (f"Detection: exfiltration with scenario defaults, seeds {list(EXFIL_DEFAULT_SEEDS)}",
         corpus_rows({label: 1 for label in EXFIL_CLASSES}, EXFIL_DEFAULT_SEEDS, vary=False, workdir=workdir),
         detections, "sessions"),
    ):
        table = markdown(fn(scorer, rows, [c.label for c in caps], THRESHOLDS), THRESHOLDS, unit)
        parts.append(f"{title}\n\n{table}")
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m burstwatch.score.build_default", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", type=Path, default=default_model_path(), help="model file to write")
    p.add_argument("--workdir", type=Path,
                   help="folder for the capture being generated (one at a time; default: the system's temp)")
    p.add_argument("--measure", action="store_true", help="also measure false-alarm and detection rates")
    args = p.parse_args(argv)
    started = time.monotonic()
    scorer = build(args.output, args.workdir)
    t = scorer.training_
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes) in {time.monotonic() - started:.0f} s: "
          f"{t['fit_rows']} rows fitted, {t['calibration_rows']} held out for calibration; "
          f"classes {t['classes']}", file=sys.stderr)
    if args.measure:
        print(measure(scorer, args.workdir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
