"""Build the conversation model shipped in ``burstwatch/score/data``:
``python -m burstwatch.builders.conversation_model [--measure]``.

Training data is generated benign traffic (:mod:`burstwatch.builders.conversation_corpus`):
``TRAIN_SITES`` sites per seed in ``TRAIN_SEEDS``, each eight hosts over three days with
their own mixes of both benign scenario families, read into one ledger per site and cut
into one-day horizons. Everything is seeded, so the same code gives the same model
(byte-identical with ``SOURCE_DATE_EPOCH`` set, and with any ``--jobs``). ``--measure`` then
scores benign sites generated with other seeds, sites with exfiltration, and the real
captures of a catalogued folder, and prints the tables in docs/scoring.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from burstwatch.builders import conversation_corpus as corpus
from burstwatch.builders.conversation_measure import (
    capture_table,
    detections,
    false_alarms,
    must_stay_low,
    real_captures,
)
from burstwatch.ledger import DAY_NS
from burstwatch.score.conversation.model import ConversationModel, default_model_path

TRAIN_SEEDS = (1, 2, 3, 4, 5, 6)
TRAIN_SITES = 7
N_TREES = 200
RANDOM_STATE = 0

EVAL_SEEDS = (101, 102)
EVAL_SITES = 8
EXFIL_SEEDS = (201, 202, 203)
EXFIL_DEFAULT_SEEDS = (301,)
DEFAULT_PCAPS = Path(os.environ.get("BURSTWATCH_SHARED_PCAPS")
                     or Path(__file__).resolve().parents[2].parent / "shared" / "pcaps")


def build(output: Path, jobs: int = 2, workdir: Path | None = None) -> ConversationModel:
    """Generate the training sites, fit, and write the model to ``output``."""
    plans = corpus.benign_plans(TRAIN_SEEDS, TRAIN_SITES)
    rows = corpus.corpus(plans, jobs, workdir)
    hosts = [f"{s}/{h}" for s, h in zip(rows.site.tolist(), rows.local_ip.tolist(), strict=True)]
    model = ConversationModel(n_estimators=N_TREES, random_state=RANDOM_STATE)
    model.fit(rows.values, hosts=hosts, labels=list(rows.label), source="generated benign traffic",
              horizon_ns=DAY_NS, shipped=True, context={"corpus": {
                  "generator": "burstwatch.builders.conversation_corpus (burstwatch.synth scenarios)",
                  "seeds": list(TRAIN_SEEDS), "sites_per_seed": TRAIN_SITES, "hosts_per_site": corpus.HOSTS,
                  "days_per_site": corpus.DAYS, "horizons": rows.horizons,
              }})
    model.save(output)
    return model


def measure(model: ConversationModel, jobs: int = 2, workdir: Path | None = None,
            pcaps: Path | None = None) -> str:
    """The markdown tables of docs/scoring.md."""
    parts = []
    benign = corpus.corpus(corpus.benign_plans(EVAL_SEEDS, EVAL_SITES), jobs, workdir)
    parts.append(f"False alarms: benign conversations with upload bursts, {len(EVAL_SEEDS) * EVAL_SITES} sites "
                 f"(seeds {list(EVAL_SEEDS)})\n\n{false_alarms(model, benign)}")
    names = list(corpus.CONVERSATION_EXFIL_NAMES)
    varied = corpus.corpus(corpus.exfil_plans(EXFIL_SEEDS, names), jobs, workdir)
    parts.append(f"Detection on the score alone: exfiltration over hours, parameters drawn per session, "
                 f"seeds {list(EXFIL_SEEDS)}, {corpus.EXFIL_HOSTS} hosts per site\n\n{detections(model, varied, names)}")
    defaults = corpus.corpus(corpus.exfil_plans(EXFIL_DEFAULT_SEEDS, names, vary=False), jobs, workdir)
    parts.append(f"Detection on the score alone: the same scenarios with their default parameters, "
                 f"seeds {list(EXFIL_DEFAULT_SEEDS)}\n\n{detections(model, defaults, names)}")
    short = list(corpus.SHORT_EXFIL)
    minutes = corpus.corpus(corpus.exfil_plans(EXFIL_SEEDS, short), jobs, workdir)
    parts.append(f"Detection on the score alone: single-session exfiltration over minutes, "
                 f"seeds {list(EXFIL_SEEDS)}\n\n{detections(model, minutes, short)}")
    if pcaps is not None and (pcaps / "CATALOG.md").is_file():
        results = real_captures(model, pcaps)
        bad = [r.file for r in results if must_stay_low(r.label) and r.best >= 0.995]
        parts.append(f"Real captures in {pcaps.name}/ (each file alone)\n\n{capture_table(results)}"
                     + (f"\n\nNEG/POS* files reaching 0.995: {', '.join(bad)}" if bad else ""))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m burstwatch.builders.conversation_model", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", type=Path, default=default_model_path(), help="model file to write")
    p.add_argument("--jobs", type=int, default=2, help="sites generated at once (default 2)")
    p.add_argument("--workdir", type=Path, help="folder for the captures being generated (default: system temp)")
    p.add_argument("--measure", action="store_true", help="also measure false-alarm and detection rates")
    p.add_argument("--pcaps", type=Path, default=DEFAULT_PCAPS,
                   help="catalogued real captures to measure too (default ../shared/pcaps)")
    p.add_argument("--model", type=Path, help="measure this model instead of building one")
    args = p.parse_args(argv)
    started = time.monotonic()
    if args.model:
        model = ConversationModel.load(args.model)
    else:
        model = build(args.output, args.jobs, args.workdir)
        t = model.training_
        print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes) in {time.monotonic() - started:.0f} s: "
              f"{t['rows']:,} conversations with upload bursts from {t['hosts']:,} hosts "
              f"({t['conversations']:,} conversations in all); classes {t['classes']}", file=sys.stderr)
    if args.measure:
        started = time.monotonic()
        print(measure(model, args.jobs, args.workdir, args.pcaps.resolve() if args.pcaps else None))
        print(f"measured in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
