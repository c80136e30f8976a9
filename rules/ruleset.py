"""Load, check and compile a ruleset: YAML -> schema -> parse -> type check -> fold -> kernel program.

Every problem in every file is collected before failing; a ruleset with any problem is rejected whole.
Only a ruleset over the size limits (rules.loader.MAX_RULESET_BYTES, MAX_RULES) is rejected as soon as that
is known, before the rest is read or compiled.

>>> ruleset = load_ruleset(default_ruleset_path())
>>> ruleset.version                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rules import ast
from rules.checker import Checker
from rules.codegen import fold, generate
from rules.errors import Problem, RuleError
from rules.features import REGISTRY, FeatureRegistry
from rules.loader import (
    FLOORS,
    MAX_RULES,
    MAX_RULESET_BYTES,
    BlockPolicy,
    FileContents,
    HeaderSpec,
    HoldPolicy,
    RuleSpec,
    read_file,
    rule_files,
)
from rules.parser import ParseError, parse
from rules.positions import line_col, source_offsets
from scoring.program import Program

DEFAULT_RULESET = Path(__file__).parent / "default"


def default_ruleset_path() -> Path:
    return DEFAULT_RULESET


@dataclass(frozen=True)
class RuleInfo:
    id: str
    description: str
    score: float
    action: str | None  # the floor: the decision is at least this when the rule fires
    mode: str  # active or shadow
    tags: tuple[str, ...]
    features: tuple[str, ...]  # what the rule reads; decisions report these values as the reason
    source: str  # path:line
    hold_minutes: float | None = None  # how long a hold this rule causes lasts; None: the ruleset's default

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"


@dataclass(frozen=True)
class CompiledRuleset:
    version: str
    thresholds: tuple[float, float, float]  # lowest score for review, hold, block
    holds: HoldPolicy  # default hold length and what an unverified hold becomes
    rules: tuple[RuleInfo, ...]
    program: Program
    source: str
    blocks: BlockPolicy = field(default_factory=BlockPolicy)  # whether a block makes its payee a mule candidate

    def rule_index(self, rule_id: str) -> int:
        return next(i for i, r in enumerate(self.rules) if r.id == rule_id)

    @property
    def longest_hold_minutes(self) -> float:
        """The longest a hold of this ruleset can last (the default or a rule's own `hold_minutes`)."""
        return max([self.holds.minutes, *(r.hold_minutes for r in self.rules if r.hold_minutes is not None)])

    def hold_minutes(self, fired: Iterable[str]) -> float:
        """How long a hold lasts when these active rules fired: the longest a fired rule asks for, else the default."""
        by_id = {r.id: r.hold_minutes for r in self.rules}
        asked = [m for m in (by_id.get(rule) for rule in fired) if m is not None]
        return max(asked) if asked else self.holds.minutes


def load_ruleset(path: Path | str, registry: FeatureRegistry = REGISTRY) -> CompiledRuleset:
    """Compile the ruleset at `path` (a file or a directory). Raises RuleError listing every problem."""
    path = Path(path)
    problems: list[Problem] = []
    if not path.exists():
        raise RuleError([Problem(str(path), 1, 1, "missing_file", "no such file or directory")])
    files = rule_files(path)
    if not files:
        raise RuleError([Problem(str(path), 1, 1, "missing_file", "no *.yaml rule files in this directory")])
    contents: list[FileContents] = []
    read = 0
    for file in files:
        contents.append(read_file(file, problems, read))
        read += contents[-1].size
        if read > MAX_RULESET_BYTES:
            raise RuleError(_in_file_order(problems))  # the rest is not read: the ruleset is refused anyway
    entries = [entry for c in contents for entry in c.entries]
    if len(entries) > MAX_RULES:
        first, rule_id = entries[MAX_RULES]
        message = f"too many rules: this is rule {MAX_RULES + 1:,} of {len(entries):,}, the limit is {MAX_RULES:,}"
        problems.append(Problem(first.path, first.line, first.column, "too_large", message, rule_id))
        raise RuleError(_in_file_order(problems))  # not compiled: the ruleset is refused anyway
    headers = [h for c in contents for h in c.headers]
    unread = any(p.kind in ("yaml", "too_deep") for p in problems)  # a file that could not be read
    header = _one_header(headers, str(path), problems, unread)

    seen: dict[str, RuleSpec] = {}
    compiled: list[tuple[RuleSpec, ast.Node]] = []
    for content in contents:
        for spec in content.rules:
            if spec.id in seen:
                first = seen[spec.id].where
                problems.append(
                    Problem(
                        spec.where.path,
                        spec.where.line,
                        spec.where.column,
                        "duplicate_id",
                        f"duplicate id, first defined at {first.path}:{first.line}",
                        spec.id,
                    )
                )
                continue
            seen[spec.id] = spec
            node = _compile_expression(spec, content, registry, problems)
            if node is not None:
                compiled.append((spec, node))
    if problems or header is None:
        raise RuleError(_in_file_order(problems))

    infos = tuple(
        RuleInfo(
            s.id,
            s.description,
            s.score,
            s.action,
            s.mode,
            s.tags,
            tuple(ast.features_used(n)),
            f"{s.where.path}:{s.where.line}",
            s.hold_minutes,
        )
        for s, n in compiled
    )
    program = Program.build(
        rules=[generate(fold(n), registry) for _, n in compiled],
        scores=[s.score for s, _ in compiled],
        floors=[0 if s.action is None else FLOORS.index(s.action) + 1 for s, _ in compiled],
        shadow=[s.mode == "shadow" for s, _ in compiled],
        thresholds=header.thresholds,
        n_features=len(registry),
    )
    return CompiledRuleset(header.version, header.thresholds, header.holds, infos, program, str(path), header.blocks)


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.path, p.line, p.column))


def _one_header(headers: list[HeaderSpec], path: str, problems: list[Problem], broken: bool) -> HeaderSpec | None:
    if len(headers) > 1:
        first = headers[0].where
        for h in headers[1:]:
            problems.append(
                Problem(
                    h.where.path,
                    h.where.line,
                    h.where.column,
                    "two_headers",
                    f"a second 'ruleset' header; the first is at {first.path}:{first.line}",
                )
            )
        return None
    if not headers:
        if not broken and not any(
            p.kind in ("schema", "missing_field", "threshold_order", "wrong_type", "unknown_key") and p.rule is None
            for p in problems
        ):
            problems.append(
                Problem(path, 1, 1, "missing_header", "no 'ruleset:' header with version and thresholds in any file")
            )
        return None
    return headers[0]


def _compile_expression(
    spec: RuleSpec, content: FileContents, registry: FeatureRegistry, problems: list[Problem]
) -> ast.Node | None:
    try:
        node = parse(spec.when)
    except ParseError as exc:
        line, col = expression_position(spec.when_node, exc.pos, content.text)
        problems.append(Problem(spec.where.path, line, col, exc.kind, exc.message, spec.id))
        return None
    found = Checker(registry).check_condition(node)
    for p in found:
        line, col = expression_position(spec.when_node, p.pos, content.text)
        problems.append(Problem(spec.where.path, line, col, p.kind, p.message, spec.id, p.suggestion))
    return None if found else node


def expression_position(node: yaml.ScalarNode, offset: int, text: str) -> tuple[int, int]:
    """1-based file line and column of character `offset` of a `when` scalar's value (see rules.positions)."""
    offsets = source_offsets(text, node)
    return line_col(text, offsets[min(offset, len(offsets) - 1)])
