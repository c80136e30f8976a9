"""Scorers the pipeline can use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streams.events import Transaction
from streams.outputs import Verdict


class AllowAllScorer:
    """Allows everything; used where no ruleset is loaded yet."""

    version = "none"

    def score(self, transactions: Sequence[Transaction], features: np.ndarray) -> list[Verdict]:
        return [Verdict(action="allow", score=0.0) for _ in transactions]


def load_scorer(rules_path: Path | None) -> AllowAllScorer:
    """The scorer for a ruleset path (None = the shipped default ruleset)."""
    return AllowAllScorer()
