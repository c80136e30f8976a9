"""The scoring kernel: one call scores a whole batch of feature rows against a compiled ruleset.

>>> result = score_batch(program, features)     # doctest: +SKIP
>>> result.action[0], result.fired_active[0]    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring._jit import jit
from scoring.errors import ScoringError
from scoring.program import Program


@dataclass(frozen=True)
class BatchResult:
    score: np.ndarray  # float64 [n]: sum of the scores of fired active rules
    action: np.ndarray  # int8 [n]: 0 allow, 1 review, 2 hold, 3 block
    fired: np.ndarray  # bool [n, n_rules]: every rule that fired, active or shadow
    shadow_mask: np.ndarray  # bool [n_rules]

    @property
    def fired_active(self) -> np.ndarray:
        return self.fired & ~self.shadow_mask

    @property
    def fired_shadow(self) -> np.ndarray:
        return self.fired & self.shadow_mask


@jit
def _eval_rule(row, ops, args, start, stop, stack):
    sp = 0
    for pc in range(start, stop):
        op = ops[pc]
        if op == 0:
            stack[sp] = args[pc]
            sp += 1
        elif op == 1:
            stack[sp] = row[np.int64(args[pc])]
            sp += 1
        elif op == 16:  # REQUIRE: a conjunct that is not true stops the rule
            sp -= 1
            if stack[sp] != 1.0:
                return 0.0
        elif op == 6:
            stack[sp - 1] = -stack[sp - 1]
        elif op == 15:
            a = stack[sp - 1]
            stack[sp - 1] = a if np.isnan(a) else 1.0 - a
        else:
            b = stack[sp - 1]
            a = stack[sp - 2]
            sp -= 1
            if op == 2:
                r = a + b
            elif op == 3:
                r = a - b
            elif op == 4:
                r = a * b
            elif op == 5:
                r = np.nan if b == 0.0 else a / b
            elif op == 13:
                if a == 0.0 or b == 0.0:
                    r = 0.0
                elif np.isnan(a) or np.isnan(b):
                    r = np.nan
                else:
                    r = 1.0
            elif op == 14:
                if a == 1.0 or b == 1.0:
                    r = 1.0
                elif np.isnan(a) or np.isnan(b):
                    r = np.nan
                else:
                    r = 0.0
            elif np.isnan(a) or np.isnan(b):
                r = np.nan  # any comparison with a missing value is unknown
            elif op == 7:
                r = 1.0 if a < b else 0.0
            elif op == 8:
                r = 1.0 if a <= b else 0.0
            elif op == 9:
                r = 1.0 if a > b else 0.0
            elif op == 10:
                r = 1.0 if a >= b else 0.0
            elif op == 11:
                r = 1.0 if a == b else 0.0
            else:
                r = 1.0 if a != b else 0.0
            stack[sp - 1] = r
    return stack[0]


@jit
def _score_rows(
    features,
    ops,
    args,
    rule_start,
    rule_score,
    rule_floor,
    rule_shadow,
    thresholds,
    stack_depth,
    score_out,
    action_out,
    fired_out,
):
    stack = np.empty(stack_depth, dtype=np.float64)
    n_rules = rule_start.shape[0] - 1
    for i in range(features.shape[0]):
        row = features[i]
        total = 0.0
        floor = 0
        for k in range(n_rules):
            fired = _eval_rule(row, ops, args, rule_start[k], rule_start[k + 1], stack) == 1.0
            fired_out[i, k] = fired
            if fired and not rule_shadow[k]:
                total += rule_score[k]
                if rule_floor[k] > floor:
                    floor = rule_floor[k]
        action = 0
        for t in range(3):
            if total >= thresholds[t]:
                action = t + 1
        score_out[i] = total
        action_out[i] = max(action, floor)


def score_batch(program: Program, features: np.ndarray) -> BatchResult:
    """Score every row of `features` (C-contiguous float64, [n, program.n_features], NaN = missing)."""
    if not isinstance(features, np.ndarray) or features.dtype != np.float64:
        found = features.dtype if isinstance(features, np.ndarray) else type(features).__name__
        raise ScoringError(f"features must be a float64 numpy array, got {found}")
    if features.ndim != 2 or features.shape[1] != program.n_features:
        raise ScoringError(f"features must have shape (n, {program.n_features}), got {features.shape}")
    if not features.flags.c_contiguous:
        raise ScoringError("features must be C-contiguous (use np.ascontiguousarray)")
    n = features.shape[0]
    score = np.zeros(n, dtype=np.float64)
    action = np.zeros(n, dtype=np.int8)
    fired = np.zeros((n, program.n_rules), dtype=np.bool_)
    _score_rows(
        features,
        program.ops,
        program.args,
        program.rule_start,
        program.rule_score,
        program.rule_floor,
        program.rule_shadow,
        program.thresholds,
        program.stack_depth,
        score,
        action,
        fired,
    )
    return BatchResult(score, action, fired, program.rule_shadow)


def warm_up(program: Program) -> None:
    """Compile (or load from the cache) before the first transaction, so it does not pay the JIT."""
    score_batch(program, np.full((1, program.n_features), np.nan))
