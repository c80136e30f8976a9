"""Scorers the pipeline can use: the compiled ruleset on the numba kernel, or allow-all."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rules.features import REGISTRY, FeatureType
from rules.ruleset import CompiledRuleset, default_ruleset_path, load_ruleset
from scoring.kernel import score_batch, warm_up
from scoring.program import ACTIONS
from streams.events import Transaction
from streams.outputs import Reason, Verdict


class AllowAllScorer:
    """Allows everything; for tests of the plumbing."""

    version = "none"
    tags: dict[str, tuple[str, ...]] = {}  # noqa: RUF012 - read-only

    def score(self, transactions: Sequence[Transaction], features: np.ndarray) -> list[Verdict]:
        return [Verdict(action="allow", score=0.0) for _ in transactions]


class RulesetScorer:
    """Scores a batch in one kernel call and explains each fired active rule with the values it read."""

    def __init__(self, ruleset: CompiledRuleset) -> None:
        warm_up(ruleset.program)
        self.ruleset = ruleset
        self.tags = {rule.id: rule.tags for rule in ruleset.rules}
        self.kernel_seconds = 0.0  # time of the last kernel call, for the metrics
        self._columns = [[REGISTRY.column(f) for f in rule.features] for rule in ruleset.rules]
        # verdicts without reasons, one object per (action, score): most transactions share one, and a verdict
        # is immutable
        self._plain: dict[tuple[int, float], Verdict] = {}

    @property
    def version(self) -> str:
        return self.ruleset.version

    def hold_terms(self, fired: Sequence[str]) -> tuple[float, str]:
        """Minutes a hold lasts when these rules fired, and what it becomes if nobody verifies it."""
        return self.ruleset.hold_minutes(fired), self.ruleset.holds.on_expiry

    def score(self, transactions: Sequence[Transaction], features: np.ndarray) -> list[Verdict]:
        started = time.perf_counter()
        result = score_batch(self.ruleset.program, features)
        self.kernel_seconds = time.perf_counter() - started
        plain = self._plain
        verdicts = [
            plain.get(key) or plain.setdefault(key, Verdict(ACTIONS[key[0]], key[1]))
            for key in zip(result.action.tolist(), result.score.tolist(), strict=True)
        ]
        rules = self.ruleset.rules
        for i in np.flatnonzero(result.fired.any(axis=1)).tolist():
            fired = np.flatnonzero(result.fired[i]).tolist()
            reasons = tuple(
                Reason(rules[k].id, rules[k].score, rules[k].description, self._values(features[i], k))
                for k in fired
                if not rules[k].shadow
            )
            shadow = tuple(rules[k].id for k in fired if rules[k].shadow)
            verdicts[i] = Verdict(verdicts[i].action, verdicts[i].score, reasons, shadow)
        return verdicts

    def _values(self, row: np.ndarray, rule: int) -> dict[str, float | str | bool | None]:
        return {
            name: _readable(name, float(row[col]))
            for name, col in zip(self.ruleset.rules[rule].features, self._columns[rule], strict=True)
        }


def _readable(name: str, value: float) -> float | str | bool | None:
    if math.isnan(value):
        return None
    feature = REGISTRY.get(name)
    assert feature is not None
    if feature.type is FeatureType.BOOL:
        return value == 1.0
    if feature.type is FeatureType.CATEGORY:
        return feature.categories[int(value)]
    return value


def load_scorer(rules_path: Path | None) -> RulesetScorer:
    """The scorer for a ruleset path (None = the shipped default ruleset). Raises RuleError if invalid."""
    return RulesetScorer(load_ruleset(rules_path or default_ruleset_path()))
