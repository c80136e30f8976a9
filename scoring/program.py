"""A compiled ruleset as plain arrays: what the kernel runs. Rules are data, so a new ruleset never
recompiles the kernel.

Each rule is a short stack-machine program over float64 truth values: 1.0 true, 0.0 false, NaN unknown
(a missing feature). `ops[i]` is an opcode, `args[i]` its operand (a constant or a feature column).
Rule k's code is `ops[rule_start[k]:rule_start[k + 1]]`; it leaves one value on the stack, and the rule
fires only when that value is exactly 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from scoring.errors import ScoringError


class Op(IntEnum):
    CONST = 0  # push args[i]
    LOAD = 1  # push features[row, int(args[i])]
    ADD = 2
    SUB = 3
    MUL = 4
    DIV = 5  # x / 0 is unknown (NaN)
    NEG = 6
    LT = 7
    LE = 8
    GT = 9
    GE = 10
    EQ = 11
    NE = 12
    AND = 13  # Kleene: false wins, then unknown
    OR = 14  # Kleene: true wins, then unknown
    NOT = 15
    # pop a value; unless it is exactly 1.0 the rule does not fire, and the rest of its code is skipped. A rule
    # fires only when its value is 1.0, and a Kleene `and` is 1.0 only when every operand is: so the top-level
    # conjuncts of a rule are checked one by one, and most rules stop at their first condition
    REQUIRE = 16


BINARY = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ, Op.NE, Op.AND, Op.OR})
ACTIONS = ("allow", "review", "hold", "block")


@dataclass(frozen=True)
class Program:
    ops: np.ndarray  # int32 [n_ops]
    args: np.ndarray  # float64 [n_ops]
    rule_start: np.ndarray  # int32 [n_rules + 1]
    rule_score: np.ndarray  # float64 [n_rules]
    rule_floor: np.ndarray  # int32 [n_rules]: 0 none, 1 review, 2 hold, 3 block
    rule_shadow: np.ndarray  # bool [n_rules]
    thresholds: np.ndarray  # float64 [3]: lowest score for review, hold, block
    stack_depth: int
    n_features: int

    @property
    def n_rules(self) -> int:
        return int(self.rule_score.shape[0])

    @classmethod
    def build(
        cls,
        rules: list[list[tuple[Op, float]]],
        scores: list[float],
        floors: list[int],
        shadow: list[bool],
        thresholds: tuple[float, float, float],
        n_features: int,
    ) -> Program:
        """Assemble per-rule instruction lists into the flat arrays, checking each program's stack use."""
        ops: list[int] = []
        args: list[float] = []
        starts = [0]
        depth = 1
        for code in rules:
            depth = max(depth, _stack_depth(code, n_features))
            ops.extend(int(op) for op, _ in code)
            args.extend(float(arg) for _, arg in code)
            starts.append(len(ops))
        if not thresholds[0] < thresholds[1] < thresholds[2]:
            raise ScoringError(f"thresholds must rise review < hold < block, got {thresholds}")
        return cls(
            ops=np.asarray(ops, dtype=np.int32),
            args=np.asarray(args, dtype=np.float64),
            rule_start=np.asarray(starts, dtype=np.int32),
            rule_score=np.asarray(scores, dtype=np.float64),
            rule_floor=np.asarray(floors, dtype=np.int32),
            rule_shadow=np.asarray(shadow, dtype=np.bool_),
            thresholds=np.asarray(thresholds, dtype=np.float64),
            stack_depth=depth,
            n_features=n_features,
        )


def _stack_depth(code: list[tuple[Op, float]], n_features: int) -> int:
    depth = deepest = 0
    for op, arg in code:
        if op in (Op.CONST, Op.LOAD):
            if op is Op.LOAD and not 0 <= int(arg) < n_features:
                raise ScoringError(f"LOAD of column {int(arg)} outside 0..{n_features - 1}")
            depth += 1
        elif op in BINARY:
            depth -= 1
        elif op is Op.REQUIRE:
            if depth != 1:
                raise ScoringError(f"REQUIRE needs exactly one value on the stack, has {depth}")
            depth = 0
            continue
        if depth < 1:
            raise ScoringError(f"stack underflow at {op.name}")
        deepest = max(deepest, depth)
    if depth != 1:
        raise ScoringError(f"a rule program must leave exactly one value, leaves {depth}")
    return deepest
