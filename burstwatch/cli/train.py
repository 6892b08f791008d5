"""`burstwatch train BASELINE... -o MODEL`: learn an anomaly model from benign captures."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from burstwatch.cli.console import stderr_console, stdout_console
from burstwatch.cli.exit_codes import ExitCode
from burstwatch.cli.options import add_flow_options, flow_config
from burstwatch.cli.progress import progress_bar
from burstwatch.records import RunStats
from burstwatch.score import ANOMALY_THRESHOLD, RAISE_THRESHOLD, BurstScorer
from burstwatch.score.rows import read_rows


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="learn an anomaly model from benign captures",
        description="Learn what ordinary burst behaviour looks like on your network from captures "
        "of benign traffic, and write a model file for `scan --model`. Captures should span "
        "normal working days; every file is treated as benign.",
    )
    p.add_argument("files", nargs="+", metavar="BASELINE", help="capture of benign traffic")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    p.add_argument("--trees", type=int, default=200, metavar="N", help="isolation trees (default 200)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="random seed: the same captures and seed give the same model (default 0)")
    p.add_argument("--calibration-fraction", type=float, default=0.5, metavar="F",
                   help="share of baseline rows held out to calibrate scores (default 0.5)")
    add_flow_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = stdout_console()
    err = stderr_console()
    if not 0.05 <= args.calibration_fraction <= 0.95:
        err.print("burstwatch: error: --calibration-fraction must be between 0.05 and 0.95", markup=False)
        return ExitCode.ERROR
    if args.trees < 1:
        err.print("burstwatch: error: --trees must be at least 1", markup=False)
        return ExitCode.ERROR
    config = flow_config(args)
    stats = RunStats()
    with progress_bar() as progress:
        rows = read_rows(args.files, config, stats, progress)
    for w in stats.warnings:
        err.print(f"burstwatch: warning: {w}", markup=False)
    scorer = BurstScorer(n_estimators=args.trees, calibration_fraction=args.calibration_fraction,
                         random_state=args.seed)
    scorer.fit(rows.values, labels=[Path(c).name for c in rows.labels()], captures=rows.captures,
               context={"flow_config": dataclasses.asdict(config), "packets": stats.packets})
    scorer.save(args.output)
    for line in summary_lines(scorer, args.output):
        out.print(line, markup=False, highlight=False)
    return ExitCode.OK


def summary_lines(scorer: BurstScorer, output: str) -> list[str]:
    """What a person checks after training: how much baseline, and what thresholds will mean."""
    t = scorer.training_
    cal = scorer.calibration_
    lines = [
        f"wrote {output}",
        f"baseline: {len(t['captures'])} capture(s), {t['rows']:,} flow-windows, "
        f"{t['burst_rows']:,} with bursts (the rows the model scores)",
        f"trained on {t['fit_rows']:,} rows; calibrated on {t['calibration_rows']:,} held-out rows "
        f"(score resolution {cal.resolution:.4f})",
    ]
    for name, threshold in (("raise a rule hit", RAISE_THRESHOLD), ("anomaly alert", ANOMALY_THRESHOLD)):
        lines.append(f"threshold {threshold} ({name}): flags about {1 - threshold:.1%} of benign "
                     "flow-windows with bursts")
        if cal.resolution > 1 - threshold:
            needed = int(np.ceil(1 / (1 - threshold) / scorer.calibration_fraction))
            lines.append(f"  warning: {cal.rows:,} held-out rows cannot resolve {threshold}; "
                         f"give at least {needed:,} flow-windows with bursts for it to mean that rate")
    return lines
