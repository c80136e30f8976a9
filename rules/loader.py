"""Strict YAML reading with positions: rule files become RuleSpec/HeaderSpec records, or Problems.

Only PyYAML's safe composer is used (no tags, no objects). Unknown keys are errors, with a suggestion.
A ruleset too large or nested too deeply to load safely is an error too (`too_large`, `too_deep`): see the limits.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rules.checker import suggest
from rules.errors import Problem

RULE_KEYS = ("id", "description", "when", "score", "action", "mode", "tags", "hold_minutes")
RULE_REQUIRED = ("id", "description", "when", "score")
HEADER_KEYS = ("version", "thresholds", "description", "holds", "blocks")
HOLD_KEYS = ("minutes", "on_expiry")
BLOCK_KEYS = ("report_payee",)
EXPIRY_ACTIONS = ("release", "block")  # what a hold becomes when nobody verified it in time
THRESHOLD_KEYS = ("review", "hold", "block")
FLOORS = ("review", "hold", "block")
MODES = ("active", "shadow")
_ID = re.compile(r"[a-z0-9_]+")

# Limits that keep a worker safe. A worker compiles a changed ruleset inside its event loop, and every rule
# runs for every payment. Measured on one shared 2.8 GHz core with rules like the shipped ones (~200 bytes and
# ~8 kernel steps each): reading YAML costs ~3.7 s per MB (2,000 rules: 1.7 s to load; 10,000: 8 s; 50,000:
# 47 s and 490 MB), and the kernel's time grows with the rules (16 rules: 1.3M tx/s; 2,000: 9,700 tx/s;
# 10,000: 1,800-2,300 tx/s, below the ~2,500 tx/s a worker decides end to end; 50,000: 360 tx/s).
#
# 1,000 rules keep the kernel at ~16,000 tx/s, several times what the rest of the worker does, and a reload
# under a second (0.8 s): 60 times the shipped ruleset, more than a bank's rule team maintains by hand.
MAX_RULES = 1_000
# All rule files of a ruleset together (comments included): about 1 KB a rule at the rule limit, and at most
# ~4 s of YAML reading. Checked before anything is parsed, so a 20 MB file costs nothing (it took 13 s to load).
MAX_RULESET_BYTES = 1024 * 1024
# YAML nesting: a ruleset needs 5 levels (document, rules, rule, tags, tag); PyYAML's composer recurses once
# per level and hit Python's recursion limit at ~1,000 (a 2 KB file of brackets crashed `rules check`).
MAX_YAML_DEPTH = 20
# A rule's id and description are copied into every decision it fires on, and its id is a metric label: a
# pasted paragraph would swell decisions towards Kafka's 1 MB message limit. Shipped: at most 33 and 274.
MAX_ID_CHARS = 64
MAX_DESCRIPTION_CHARS = 1_000


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
class BlockPolicy:
    # An outright block makes the blocked transfer's payee a mule candidate (a `suspected` label with source
    # `block` on `labels`, for FeatureConfig.mule_candidate_days), as a victim's report on a hold does.
    report_payee: bool = False


@dataclass(frozen=True)
class HeaderSpec:
    version: str
    thresholds: tuple[float, float, float]
    holds: HoldPolicy
    description: str
    where: Where
    blocks: BlockPolicy = BlockPolicy()


@dataclass
class FileContents:
    headers: list[HeaderSpec]
    rules: list[RuleSpec]
    text: str  # the file's text, to map an offset inside a `when` to its line and column
    size: int = 0  # bytes read
    entries: list[tuple[Where, str | None]] = field(default_factory=list)  # every rule item, valid or not: id


class YamlTooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing YAML nested deeper than MAX_YAML_DEPTH before its composer recurses too far."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self._depth >= MAX_YAML_DEPTH:
            raise YamlTooDeep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def rule_files(path: Path) -> list[Path]:
    """The YAML files of a ruleset: the file itself, or a directory's *.yaml/*.yml except *.test.yaml."""
    if path.is_file():
        return [path]
    return sorted(
        p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.endswith((".test.yaml", ".test.yml"))
    )


def where(path: str, node: yaml.Node) -> Where:
    return Where(path, node.start_mark.line + 1, node.start_mark.column + 1)


def read_file(path: Path, problems: list[Problem], read_before: int = 0) -> FileContents:
    """Read one rule file. `read_before`: bytes of the ruleset's earlier files, which count to MAX_RULESET_BYTES."""
    name = str(path)
    room = max(0, MAX_RULESET_BYTES - read_before)
    with path.open("rb") as file:
        data = file.read(room + 1)  # never more than the limit allows, whatever the file's size
        size = max(len(data), os.fstat(file.fileno()).st_size)
    if len(data) > room:
        total = read_before + size
        found = f"the file is {size:,} bytes" if read_before == 0 else f"the ruleset's files reach {total:,} bytes"
        limit = f"more than the {MAX_RULESET_BYTES:,} a ruleset may hold in all its files"
        problems.append(Problem(name, 1, 1, "too_large", f"{found}, {limit}"))
        return FileContents([], [], "", size)
    try:
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 1, exc.start + 1, "yaml", f"not UTF-8 text: {exc.reason}"))
        return FileContents([], [], "", size)
    contents = FileContents([], [], text, size)
    try:
        documents = list(yaml.compose_all(text, Loader=BoundedLoader))
    except (YamlTooDeep, yaml.YAMLError) as exc:
        too_deep = f"the YAML nests more than {MAX_YAML_DEPTH} levels deep; a ruleset needs 5"
        problems.append(Problem(name, *yaml_problem(text, exc, too_deep)))
        return contents
    reader = NodeReader(name, problems)
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
                contents.entries.extend((where(name, item), _rule_id(item)) for item in value.value)
                contents.rules.extend(r for r in (reader.rule(item) for item in value.value) if r)
            elif value.tag == "tag:yaml.org,2002:null":
                continue  # `rules:` with nothing under it: a file with no rules yet
            else:
                reader.problem(value, "schema", f"'rules' must be a list of rules, found {node_kind(value)}")
    return contents


class NodeReader:
    """Reads a YAML node tree into typed values, collecting every problem with its position (rule files,
    rule test files: rules/testing.py)."""

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
            self.problem(node, "wrong_type", f"'{key}' must be text, found {node_kind(node)}", rule)
            return None
        return node.value

    def number(self, node: yaml.Node, key: str, rule: str | None) -> float | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            try:
                return float(node.value.replace("_", ""))
            except ValueError:
                pass
        found = f"'{node.value}'" if isinstance(node, yaml.ScalarNode) else node_kind(node)
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
            self.problem(node, "wrong_type", f"'ruleset' must be a mapping, found {node_kind(node)}")
            return None
        values = dict(self.items(node, HEADER_KEYS, None))
        for key in ("version", "thresholds"):
            if key not in values:
                self.problem(node, "missing_field", f"the ruleset header needs '{key}'")
        version = self.scalar(values["version"], "version", None) if "version" in values else None
        thresholds = self.thresholds(values["thresholds"]) if "thresholds" in values else None
        holds = self.holds(values["holds"]) if "holds" in values else HoldPolicy()
        blocks = self.blocks(values["blocks"]) if "blocks" in values else BlockPolicy()
        description = self.scalar(values["description"], "description", None) if "description" in values else ""
        if version is None or thresholds is None or holds is None or blocks is None:
            return None
        return HeaderSpec(version, thresholds, holds, description or "", where(self.path, node), blocks)

    def blocks(self, node: yaml.Node) -> BlockPolicy | None:
        if not isinstance(node, yaml.MappingNode):
            found = node_kind(node)
            self.problem(node, "wrong_type", f"'blocks' must map report_payee to true or false, found {found}")
            return None
        values = dict(self.items(node, BLOCK_KEYS, None))
        if "report_payee" not in values:
            return BlockPolicy()
        value = values["report_payee"]
        if not (isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:bool"):
            found = f"'{value.value}'" if isinstance(value, yaml.ScalarNode) else node_kind(value)
            self.problem(value, "wrong_type", f"'blocks.report_payee' must be true or false, found {found}")
            return None
        return BlockPolicy(value.value.lower() in ("true", "yes", "on"))

    def holds(self, node: yaml.Node) -> HoldPolicy | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "wrong_type", f"'holds' must map minutes/on_expiry to values, found {node_kind(node)}")
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
            found = node_kind(node)
            self.problem(node, "wrong_type", f"'thresholds' must map review/hold/block to scores, found {found}")
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
            self.problem(node, "wrong_type", f"a rule must be a mapping, found {node_kind(node)}")
            return None
        id_node = next((v for k, v in node.value if getattr(k, "value", None) == "id"), None)
        rule_id = id_node.value if isinstance(id_node, yaml.ScalarNode) else None
        values = dict(self.items(node, RULE_KEYS, rule_id))
        missing = [k for k in RULE_REQUIRED if k not in values]
        for key in missing:
            self.problem(node, "missing_field", f"missing required field '{key}'", rule_id)
        ok = not missing
        if rule_id is not None and len(rule_id) > MAX_ID_CHARS:
            message = f"'id' is {len(rule_id):,} characters long, the limit is {MAX_ID_CHARS}"
            self.problem(id_node, "too_large", message)  # type: ignore[arg-type]
            ok = False
        elif rule_id is not None and not _ID.fullmatch(rule_id):
            self.problem(id_node, "bad_id", f"'id' must use a-z, 0-9 and _, found '{rule_id}'", rule_id)  # type: ignore[arg-type]
            ok = False
        description = self.scalar(values["description"], "description", rule_id) if "description" in values else None
        if description is not None and len(description) > MAX_DESCRIPTION_CHARS:
            message = (
                f"'description' is {len(description):,} characters long, the limit is {MAX_DESCRIPTION_CHARS:,}: "
                "it is sent with every decision the rule fires on"
            )
            self.problem(values["description"], "too_large", message, rule_id)
            description = None
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
            self.problem(node, "wrong_type", f"'tags' must be a list of words, found {node_kind(node)}", rule)
            return None
        return tuple(t.value for t in node.value)


def _rule_id(node: yaml.Node) -> str | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    id_node = next((v for k, v in node.value if getattr(k, "value", None) == "id"), None)
    return id_node.value if isinstance(id_node, yaml.ScalarNode) else None


def yaml_problem(text: str, exc: YamlTooDeep | yaml.YAMLError, too_deep: str) -> tuple[int, int, str, str]:
    """Where a YAML file (`text`) failed to parse, and why: (line, column, kind, message). `too_deep` is the
    message for nesting beyond MAX_YAML_DEPTH (rule files and rule test files say it their own way)."""
    if isinstance(exc, YamlTooDeep):
        return exc.mark.line + 1, exc.mark.column + 1, "too_deep", too_deep
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return line, col, "yaml", f"invalid YAML: {exc.problem or exc.context}"
    # e.g. a control character the YAML reader refuses
    return *reader_position(text, exc), "yaml", f"invalid YAML: {exc}".splitlines()[0]


def reader_position(text: str, exc: yaml.YAMLError) -> tuple[int, int]:
    position = getattr(exc, "position", None)
    if not isinstance(position, int):
        return 1, 1
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "nothing"
    return f"'{node.value}'"
