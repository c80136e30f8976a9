"""Strict YAML reading with positions: rule files become RuleSpec/HeaderSpec records, or Problems.

Only PyYAML's safe composer is used (no tags, no objects). Unknown keys are errors, with a suggestion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from rules.checker import suggest
from rules.errors import Problem

RULE_KEYS = ("id", "description", "when", "score", "action", "mode", "tags", "hold_minutes")
RULE_REQUIRED = ("id", "description", "when", "score")
HEADER_KEYS = ("version", "thresholds", "description", "holds")
HOLD_KEYS = ("minutes", "on_expiry")
EXPIRY_ACTIONS = ("release", "block")  # what a hold becomes when nobody verified it in time
THRESHOLD_KEYS = ("review", "hold", "block")
FLOORS = ("review", "hold", "block")
MODES = ("active", "shadow")
_ID = re.compile(r"[a-z0-9_]+")


@dataclass(frozen=True, slots=True)
class Where:
    path: str
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class RuleSpec:
    id: str
    description: str
    when: str
    when_node: yaml.ScalarNode
    score: float
    action: str | None
    mode: str
    tags: tuple[str, ...]
    where: Where
    hold_minutes: float | None = None  # this rule's hold length; None: the ruleset's


@dataclass(frozen=True)
class HoldPolicy:
    minutes: float = 30.0
    on_expiry: str = "release"


@dataclass(frozen=True)
class HeaderSpec:
    version: str
    thresholds: tuple[float, float, float]
    holds: HoldPolicy
    description: str
    where: Where


@dataclass
class FileContents:
    headers: list[HeaderSpec]
    rules: list[RuleSpec]
    text: str  # the file's text, to map an offset inside a `when` to its line and column


def rule_files(path: Path) -> list[Path]:
    """The YAML files of a ruleset: the file itself, or a directory's *.yaml/*.yml except *.test.yaml."""
    if path.is_file():
        return [path]
    return sorted(
        p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.endswith((".test.yaml", ".test.yml"))
    )


def where(path: str, node: yaml.Node) -> Where:
    return Where(path, node.start_mark.line + 1, node.start_mark.column + 1)


def read_file(path: Path, problems: list[Problem]) -> FileContents:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 1, exc.start + 1, "yaml", f"not UTF-8 text: {exc.reason}"))
        return FileContents([], [], "")
    contents = FileContents([], [], text)
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(name, line, col, "yaml", f"invalid YAML: {exc.problem or exc.context}"))
        return contents
    except yaml.YAMLError as exc:  # e.g. a control character the YAML reader refuses
        line, col = _reader_position(text, exc)
        problems.append(Problem(name, line, col, "yaml", f"invalid YAML: {exc}".splitlines()[0]))
        return contents
    reader = _Reader(name, problems)
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, yaml.MappingNode):
            reader.problem(doc, "schema", "expected a mapping with 'ruleset' and/or 'rules' keys")
            continue
        for key, value in reader.items(doc, ("ruleset", "rules"), None):
            if key == "ruleset":
                header = reader.header(value)
                if header:
                    contents.headers.append(header)
            elif isinstance(value, yaml.SequenceNode):
                contents.rules.extend(r for r in (reader.rule(item) for item in value.value) if r)
            elif value.tag == "tag:yaml.org,2002:null":
                continue  # `rules:` with nothing under it: a file with no rules yet
            else:
                reader.problem(value, "schema", f"'rules' must be a list of rules, found {_kind(value)}")
    return contents


class _Reader:
    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems

    def problem(self, node: yaml.Node, kind: str, message: str, rule: str | None = None, hint: str | None = None):
        w = where(self.path, node)
        self.problems.append(Problem(self.path, w.line, w.column, kind, message, rule, hint))

    def items(self, node: yaml.MappingNode, allowed: tuple[str, ...], rule: str | None):
        seen: set[str] = set()
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                hint = suggest(str(key), allowed)
                self.problem(
                    key_node, "unknown_key", f"unknown key '{key}' (allowed: {', '.join(allowed)})", rule, hint
                )
                continue
            if key in seen:
                self.problem(key_node, "schema", f"key '{key}' appears twice", rule)
                continue
            seen.add(key)
            yield key, value

    def scalar(self, node: yaml.Node, key: str, rule: str | None) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, "wrong_type", f"'{key}' must be text, found {_kind(node)}", rule)
            return None
        return node.value

    def number(self, node: yaml.Node, key: str, rule: str | None) -> float | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            try:
                return float(node.value.replace("_", ""))
            except ValueError:
                pass
        found = f"'{node.value}'" if isinstance(node, yaml.ScalarNode) else _kind(node)
        self.problem(node, "wrong_type", f"'{key}' must be a number, found {found}", rule)
        return None

    def choice(self, node: yaml.Node, key: str, allowed: tuple[str, ...], rule: str | None) -> str | None:
        value = self.scalar(node, key, rule)
        if value is not None and value not in allowed:
            self.problem(
                node,
                f"bad_{key}",
                f"'{key}' must be one of {', '.join(allowed)}, found '{value}'",
                rule,
                suggest(value, allowed),
            )
            return None
        return value

    def header(self, node: yaml.Node) -> HeaderSpec | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "wrong_type", f"'ruleset' must be a mapping, found {_kind(node)}")
            return None
        values = dict(self.items(node, HEADER_KEYS, None))
        for key in ("version", "thresholds"):
            if key not in values:
                self.problem(node, "missing_field", f"the ruleset header needs '{key}'")
        version = self.scalar(values["version"], "version", None) if "version" in values else None
        thresholds = self.thresholds(values["thresholds"]) if "thresholds" in values else None
        holds = self.holds(values["holds"]) if "holds" in values else HoldPolicy()
        description = self.scalar(values["description"], "description", None) if "description" in values else ""
        if version is None or thresholds is None or holds is None:
            return None
        return HeaderSpec(version, thresholds, holds, description or "", where(self.path, node))

    def holds(self, node: yaml.Node) -> HoldPolicy | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "wrong_type", f"'holds' must map minutes/on_expiry to values, found {_kind(node)}")
            return None
        values = dict(self.items(node, HOLD_KEYS, None))
        default = HoldPolicy()
        minutes = self.minutes(values["minutes"], "holds.minutes", None) if "minutes" in values else default.minutes
        on_expiry = (
            self.choice(values["on_expiry"], "on_expiry", EXPIRY_ACTIONS, None)
            if "on_expiry" in values
            else default.on_expiry
        )
        if minutes is None or on_expiry is None:
            return None
        return HoldPolicy(minutes, on_expiry)

    def minutes(self, node: yaml.Node, key: str, rule: str | None) -> float | None:
        value = self.number(node, key, rule)
        if value is not None and value <= 0:
            self.problem(node, "wrong_type", f"'{key}' must be > 0 minutes, found {value:g}", rule)
            return None
        return value

    def thresholds(self, node: yaml.Node) -> tuple[float, float, float] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "wrong_type", f"'thresholds' must map review/hold/block to scores, found {_kind(node)}")
            return None
        values = {k: self.number(v, f"thresholds.{k}", None) for k, v in self.items(node, THRESHOLD_KEYS, None)}
        missing = [k for k in THRESHOLD_KEYS if k not in values]
        if missing:
            self.problem(node, "missing_field", f"'thresholds' needs {', '.join(missing)}")
            return None
        if any(v is None for v in values.values()):
            return None
        review, hold, block = (float(values[k]) for k in THRESHOLD_KEYS)  # type: ignore[arg-type]
        if not 0 < review < hold < block:
            self.problem(
                node,
                "threshold_order",
                "thresholds must rise 0 < review < hold < block, "
                f"found review {review:g}, hold {hold:g}, block {block:g}",
            )
            return None
        return review, hold, block

    def rule(self, node: yaml.Node) -> RuleSpec | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "wrong_type", f"a rule must be a mapping, found {_kind(node)}")
            return None
        id_node = next((v for k, v in node.value if getattr(k, "value", None) == "id"), None)
        rule_id = id_node.value if isinstance(id_node, yaml.ScalarNode) else None
        values = dict(self.items(node, RULE_KEYS, rule_id))
        missing = [k for k in RULE_REQUIRED if k not in values]
        for key in missing:
            self.problem(node, "missing_field", f"missing required field '{key}'", rule_id)
        ok = not missing
        if rule_id is not None and not _ID.fullmatch(rule_id):
            self.problem(id_node, "bad_id", f"'id' must use a-z, 0-9 and _, found '{rule_id}'", rule_id)  # type: ignore[arg-type]
            ok = False
        description = self.scalar(values["description"], "description", rule_id) if "description" in values else None
        when = self.scalar(values["when"], "when", rule_id) if "when" in values else None
        score = self.number(values["score"], "score", rule_id) if "score" in values else None
        if score is not None and score < 0:
            self.problem(values["score"], "wrong_type", f"'score' must be >= 0, found {score:g}", rule_id)
            score = None
        action = self.choice(values["action"], "action", FLOORS, rule_id) if "action" in values else None
        mode = self.choice(values["mode"], "mode", MODES, rule_id) if "mode" in values else "active"
        tags = self.tags(values["tags"], rule_id) if "tags" in values else ()
        hold_minutes = None
        if "hold_minutes" in values:
            hold_minutes = self.minutes(values["hold_minutes"], "hold_minutes", rule_id)
        bad_choice = ("action" in values and action is None) or mode is None or tags is None
        bad_minutes = "hold_minutes" in values and hold_minutes is None
        if not ok or None in (rule_id, description, when, score) or bad_choice or bad_minutes:
            return None
        return RuleSpec(
            rule_id,  # type: ignore[arg-type]
            description,  # type: ignore[arg-type]
            when,  # type: ignore[arg-type]
            values["when"],  # type: ignore[arg-type]
            score,  # type: ignore[arg-type]
            action,
            mode,
            tags,
            where(self.path, node),
            hold_minutes,
        )

    def tags(self, node: yaml.Node, rule: str | None) -> tuple[str, ...] | None:
        if not isinstance(node, yaml.SequenceNode) or not all(isinstance(t, yaml.ScalarNode) for t in node.value):
            self.problem(node, "wrong_type", f"'tags' must be a list of words, found {_kind(node)}", rule)
            return None
        return tuple(t.value for t in node.value)


def _reader_position(text: str, exc: yaml.YAMLError) -> tuple[int, int]:
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return 1, 1
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "nothing"
    return f"'{node.value}'"
