"""The reload guard: before a changed ruleset replaces the running one, replay recent traffic through both.

A rule that fires on everything (a typo such as `amount > 0`, a threshold off by a factor of 1,000) would
otherwise hold or block every customer from the next batch on. The worker keeps the feature rows of its
most recent transactions; a new ruleset whose decisions differ from the running one's on more than a
configured share of them is refused (or, in `warn` mode, loaded with a warning).

>>> recent = RecentTraffic(capacity=4, n_features=2)
>>> recent.add(np.ones((3, 2)))
>>> len(recent)
3
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rules.ruleset import CompiledRuleset, RuleInfo
from scoring.kernel import score_batch
from scoring.program import ACTIONS


class RecentTraffic:
    """A ring buffer of the last `capacity` feature rows the worker scored."""

    def __init__(self, capacity: int, n_features: int) -> None:
        self._rows = np.full((capacity, n_features), np.nan)
        self._next = 0
        self._filled = 0

    def __len__(self) -> int:
        return self._filled

    def add(self, rows: np.ndarray) -> None:
        capacity = len(self._rows)
        rows = rows[-capacity:]
        n = len(rows)
        end = self._next + n
        if end <= capacity:
            self._rows[self._next : end] = rows
        else:
            split = capacity - self._next
            self._rows[self._next :] = rows[:split]
            self._rows[: n - split] = rows[split:]
        self._next = end % capacity
        self._filled = min(capacity, self._filled + n)

    def rows(self) -> np.ndarray:
        return np.ascontiguousarray(self._rows[: self._filled])


@dataclass(frozen=True, slots=True)
class CanaryReport:
    rows: int
    changed: int  # rows whose action differs between the rulesets
    escalated: int  # of those, rows the new ruleset would hold or block and the running one did not
    transitions: dict[str, int]  # "allow->block" -> rows

    @property
    def changed_share(self) -> float:
        return self.changed / self.rows if self.rows else 0.0

    def describe(self) -> str:
        top = ", ".join(f"{k} {n}" for k, n in sorted(self.transitions.items(), key=lambda kv: -kv[1])[:4])
        return (
            f"it would change the action of {self.changed} of the last {self.rows} transactions "
            f"({100 * self.changed_share:.2f} %; {self.escalated} newly held or blocked; {top or 'none'})"
        )


def compare(running: CompiledRuleset, candidate: CompiledRuleset, rows: np.ndarray) -> CanaryReport:
    """Score `rows` with both rulesets (one kernel call each) and count the decisions that differ."""
    if len(rows) == 0:
        return CanaryReport(0, 0, 0, {})
    before = score_batch(running.program, rows).action
    after = score_batch(candidate.program, rows).action
    differ = before != after
    hold = ACTIONS.index("hold")
    escalated = int(np.count_nonzero(differ & (after >= hold) & (before < hold)))
    transitions: dict[str, int] = {}
    for b, a in zip(before[differ].tolist(), after[differ].tolist(), strict=True):
        key = f"{ACTIONS[b]}->{ACTIONS[a]}"
        transitions[key] = transitions.get(key, 0) + 1
    return CanaryReport(len(rows), int(np.count_nonzero(differ)), escalated, transitions)


def switched_to_shadow(running: CompiledRuleset, candidate: CompiledRuleset) -> tuple[str, ...]:
    """The rules `candidate` switches from active to shadow, when that is all it changes (its version aside);
    else (). A shadow rule adds nothing to a decision, so on the same features each decision can only go down
    (later ones can still rise: a block that becomes a hold opens a hold, which `payer.open_holds` rules see),
    and it is what an operator does to stop a runaway rule: the guard lets it through however many decisions
    it changes."""
    if (running.thresholds, running.holds, running.blocks) != (candidate.thresholds, candidate.holds, candidate.blocks):
        return ()
    if [_apart_from_mode(r) for r in running.rules] != [_apart_from_mode(r) for r in candidate.rules]:
        return ()
    before, after = running.program, candidate.program
    same_code = all(
        np.array_equal(getattr(before, name), getattr(after, name), equal_nan=name == "args")
        for name in ("ops", "args", "rule_start", "rule_score", "rule_floor")
    )
    if not same_code or np.any(before.rule_shadow & ~after.rule_shadow):  # a shadow rule made active
        return ()
    switched = after.rule_shadow & ~before.rule_shadow
    return tuple(rule.id for rule, now in zip(running.rules, switched.tolist(), strict=True) if now)


def _apart_from_mode(rule: RuleInfo) -> RuleInfo:
    # `source` (path:line) moves when a `mode:` line is added above a later rule
    return dataclasses.replace(rule, mode="", source="")
