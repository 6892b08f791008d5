"""Command-line wiring of the anomaly scorer, shared by scan and live."""

from __future__ import annotations

import argparse
from typing import Any

from burstwatch.alerts.detect import Detector, Policy, Scorer, rules_only_policy
from burstwatch.rules import Rule


def add_score_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("anomaly score")
    g.add_argument("--model", metavar="PATH", help="isolation-forest model from `burstwatch train` "
                   "(default: the model shipped with burstwatch)")
    g.add_argument("--no-score", action="store_true", help="rules only: do not compute anomaly scores")


def scorer_from_args(args: argparse.Namespace) -> tuple[Scorer | None, Policy, str]:
    """(batch scorer or None, level policy, a header line describing the model)."""
    if getattr(args, "no_score", False):
        return None, rules_only_policy, "anomaly score: off (--no-score)"
    from burstwatch.score import BurstScorer, combine
    from burstwatch.score.batch import batch_scorer

    scorer = BurstScorer.load(args.model) if args.model else BurstScorer.default()
    training: dict[str, Any] = getattr(scorer, "training_", {}) or {}
    rows = training.get("rows") or training.get("train_rows")
    built = training.get("built") or training.get("date") or training.get("created")
    what = f"model {args.model}" if args.model else "shipped model"
    trained_with = training.get("flow_config")
    if isinstance(trained_with, dict) and hasattr(args, "idle_timeout"):
        import dataclasses

        from burstwatch.cli.options import flow_config

        now = dataclasses.asdict(flow_config(args))
        differ = sorted(k for k, v in trained_with.items() if k in now and now[k] != v)
        if differ:
            from burstwatch.cli.console import stderr_console

            stderr_console().print(
                f"burstwatch: warning: the model was trained with other flow settings "
                f"({', '.join(f'{k}={trained_with[k]}' for k in differ)}); scores may mislead",
                markup=False,
            )
    desc = f"anomaly score: {what}" + (f", trained on {rows:,} rows" if isinstance(rows, int) else "") + (
        f" ({built})" if built else "")
    return batch_scorer(scorer), combine, desc


def make_detector(rules: list[Rule], args: argparse.Namespace) -> tuple[Detector, str]:
    scorer, policy, desc = scorer_from_args(args)
    return Detector(rules, scorer=scorer, policy=policy), desc


def conversation_scorer_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """(conversation scorer or None, a header line saying what the model was trained on)."""
    if getattr(args, "no_score", False):
        return None, "anomaly score: off (--no-score)"
    from burstwatch.score.conversation import ConversationModel

    model = ConversationModel.load(args.model) if args.model else ConversationModel.default()
    return model, f"anomaly score: {model.describe()}"
