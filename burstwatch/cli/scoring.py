"""Command-line wiring of the conversation anomaly score, shared by scan and live."""

from __future__ import annotations

import argparse
from typing import Any


def add_score_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("anomaly score")
    g.add_argument("--model", metavar="PATH", help="conversation model from `burstwatch train` "
                   "(default: the model shipped with burstwatch)")
    g.add_argument("--no-score", action="store_true", help="rules only: do not compute anomaly scores")


def conversation_scorer_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """(conversation scorer or None, a header line saying what the model was trained on)."""
    if getattr(args, "no_score", False):
        return None, "anomaly score: off (--no-score)"
    from burstwatch.score.conversation import ConversationModel

    model = ConversationModel.load(args.model) if args.model else ConversationModel.default()
    return model, f"anomaly score: {model.describe()}"
