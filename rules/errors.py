"""Errors of the rule language: every problem found in a ruleset, each with its place and a suggestion."""

from __future__ import annotations

from dataclasses import dataclass

from scoring.errors import InterceptorError


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a ruleset. `kind` is a stable word tests and tools can match on."""

    path: str
    line: int  # 1-based
    column: int  # 1-based
    kind: str
    message: str
    rule: str | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}: "
        rule = f'rule "{self.rule}": ' if self.rule else ""
        hint = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
        return f"{where}{rule}{self.message}{hint}"


class RuleError(InterceptorError):
    """A ruleset could not be loaded; `problems` lists every mistake found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RuleTestError(InterceptorError):
    """A rule test file is malformed (as opposed to a test that fails)."""
