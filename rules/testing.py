"""Rule unit tests, like `promtool test rules`: YAML cases next to the rules, run against the compiled ruleset.

A test file `*.test.yaml` lies in the ruleset's directory (or names it with `ruleset:`) and lists cases:

    tests:
      - name: victim on a flagged call pays a new payee
        features: {call.risky_within_30m: true, payee.new_for_payer: true, amount: 20000}
        fired: [risky_call_large_new_payee]     # these rules must fire
        not_fired: [payee_on_mule_list]         # these must not
        action: hold                            # the decision must be exactly this

A case gives either `features` (features not named are missing) or a short history: `transactions` (and
optionally `calls`) in the event contract's shape; the expectations then apply to the last transaction.

The whole file is checked before any case runs, with the rule files' strict reader (rules/loader.py): every
mistake is collected and reported at once as `file:line:col: test 'name': what was expected, what was found`,
with a suggestion where one exists. A mistake is an error, never a failing (or silently passing) test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import yaml

from rules.checker import suggest
from rules.errors import Problem, RuleError, RuleTestError
from rules.features import REGISTRY, Feature, FeatureType
from rules.loader import (
    MAX_RULESET_BYTES,
    MAX_YAML_DEPTH,
    BoundedLoader,
    NodeReader,
    YamlTooDeep,
    node_kind,
    yaml_problem,
)
from rules.positions import line_col
from rules.ruleset import CompiledRuleset, load_ruleset
from scoring.kernel import score_batch
from scoring.program import ACTIONS

CASE_KEYS = ("name", "features", "transactions", "calls", "fired", "not_fired", "action")
FILE_KEYS = ("tests", "ruleset")
# (transactions, calls, ruleset) -> the last transaction's feature row; provided by the streaming pipeline
Featurizer = Callable[[list[dict], list[dict], CompiledRuleset], np.ndarray]
_NULL, _STR, _BOOL = "tag:yaml.org,2002:null", "tag:yaml.org,2002:str", "tag:yaml.org,2002:bool"
_NUMBER = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class _Case:
    """A case that passed every check: ready to run."""

    name: str
    line: int
    row: np.ndarray | None  # from `features`; None: computed from the history
    transactions: list[dict]
    calls: list[dict]
    fired: tuple[str, ...]
    not_fired: tuple[str, ...]
    action: str | None


def find_test_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.name.endswith((".test.yaml", ".test.yml")) else []
    return sorted(p for p in path.rglob("*.test.y*ml"))


def run_test_file(path: Path, featurize: Featurizer | None = None) -> list[CaseResult]:
    """Run every case of one test file.

    Raises RuleTestError listing every mistake in the test file, one `file:line:col: ...` a line (followed by
    the ruleset's own problems if it is broken too), or RuleError when only the ruleset under test is broken.
    """
    problems: list[Problem] = []
    reader = _TestFileReader(path, problems, histories=featurize is not None)
    cases = reader.read()
    if problems:
        lines = [str(p) for p in sorted(problems, key=lambda p: (p.line, p.column))]
        if reader.ruleset_error is not None:
            lines += [str(p) for p in reader.ruleset_error.problems]
        raise RuleTestError("\n".join(lines))
    if reader.ruleset_error is not None:
        raise reader.ruleset_error
    assert reader.ruleset is not None
    return [_run_case(path, case, reader.ruleset, featurize) for case in cases]


class _TestFileReader(NodeReader):
    """The rule files' strict reader, applied to a test file: problems name the test case instead of a rule."""

    def __init__(self, path: Path, problems: list[Problem], histories: bool) -> None:
        super().__init__(str(path), problems)
        self.file = path
        self.histories = histories  # False: no feature engine to replay `transactions` with
        self.test: str | None = None  # the case being read, for the messages
        self.ruleset: CompiledRuleset | None = None
        self.ruleset_error: RuleError | None = None
        self._loader: BoundedLoader | None = None

    def problem(self, node: yaml.Node, kind: str, message: str, rule: str | None = None, hint: str | None = None):
        prefix = f"test '{self.test}': " if self.test is not None else ""
        super().problem(node, kind, prefix + message, None, hint)

    def read(self) -> list[_Case]:
        root = self._compose()
        if root is None:
            return []
        if not isinstance(root, yaml.MappingNode):
            self.problem(root, "schema", f"a test file needs a 'tests:' list, found {node_kind(root)}")
            return []
        values = dict(self.items(root, FILE_KEYS, None))
        self._load_ruleset(values.get("ruleset"))
        tests = values.get("tests")
        if tests is None:
            self.problem(root, "missing_field", "a test file needs a 'tests:' list")
            return []
        if not isinstance(tests, yaml.SequenceNode):
            self.problem(tests, "wrong_type", f"'tests' must be a list of test cases, found {node_kind(tests)}")
            return []
        ids = [r.id for r in self.ruleset.rules] if self.ruleset is not None else None
        cases = [self._case(node, ids) for node in tests.value]
        return [c for c in cases if c is not None]

    def _compose(self) -> yaml.Node | None:
        """The document's node, its values already built once so that no tag or value can fail later."""
        with self.file.open("rb") as file:
            data = file.read(MAX_RULESET_BYTES + 1)  # never more than the limit, whatever the file's size
        if len(data) > MAX_RULESET_BYTES:
            self._at(1, 1, "too_large", f"the test file is larger than {MAX_RULESET_BYTES:,} bytes; split it")
            return None
        try:
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError as exc:
            before = data[: exc.start].decode("utf-8", "replace")
            line, col = line_col(before, len(before))
            self._at(line, col, "yaml", f"not UTF-8 text: {exc.reason}")
            return None
        self._loader = BoundedLoader(text)  # the rule files' safe loader: no objects, bounded nesting
        try:
            node = self._loader.get_single_node()
            if node is not None:
                self._loader.construct_document(node)
        except (YamlTooDeep, yaml.YAMLError) as exc:
            self._at(*yaml_problem(text, exc, f"YAML nested more than {MAX_YAML_DEPTH} levels deep"))
            return None
        except (ValueError, TypeError) as exc:  # an explicit tag on a value it does not fit, e.g. `!!int abc`
            self._at(1, 1, "yaml", f"invalid YAML: a value does not fit its tag: {exc}")
            return None
        if node is None:
            self._at(1, 1, "missing_field", "a test file needs a 'tests:' list")
        return node

    def _at(self, line: int, column: int, kind: str, message: str) -> None:
        self.problems.append(Problem(self.path, line, column, kind, message))

    def _value(self, node: yaml.Node) -> object:
        assert self._loader is not None
        return self._loader.construct_object(node, deep=True)

    def _load_ruleset(self, node: yaml.Node | None) -> None:
        path = self.file.parent
        if node is not None:
            name = self.scalar(node, "ruleset", None)
            if name is None:
                return
            path = self.file.parent / name
            if not path.exists():
                near = path.parent
                hint = suggest(path.name, [p.name for p in near.iterdir()]) if near.is_dir() else None
                message = f"'ruleset' names '{name}', which does not exist (relative to the test file's folder)"
                self.problem(node, "missing_file", message, None, hint)
                return
        try:
            self.ruleset = load_ruleset(path)
        except RuleError as exc:
            self.ruleset_error = exc

    def _case(self, node: yaml.Node, ids: list[str] | None) -> _Case | None:
        self.test = None
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "wrong_type", f"a test must be a mapping with a 'name', found {node_kind(node)}")
            return None
        name_node = next((v for k, v in node.value if getattr(k, "value", None) == "name"), None)
        if isinstance(name_node, yaml.ScalarNode) and name_node.value:
            self.test = name_node.value
        values = dict(self.items(node, CASE_KEYS, None))
        ok = self.test is not None
        if "name" not in values:
            self.problem(node, "missing_field", "a test needs a 'name'")
        elif not ok:
            self.problem(values["name"], "wrong_type", f"'name' must be text, found {node_kind(values['name'])}")
        features, transactions = values.get("features"), values.get("transactions")
        if features is not None and transactions is not None:
            later = max(features, transactions, key=lambda n: n.start_mark.index)
            self.problem(later, "schema", "give either 'features' or 'transactions', not both")
            ok = False
        elif features is None and transactions is None:
            self.problem(node, "missing_field", "a test needs 'features' or 'transactions'")
            ok = False
        if "calls" in values and transactions is None:
            self.problem(values["calls"], "schema", "'calls' go with 'transactions'; 'features' do not use them")
            ok = False
        row = self._features(features) if features is not None else None
        history = self._events(transactions, "transactions") if transactions is not None else []
        calls = self._events(values["calls"], "calls") if "calls" in values else []
        fired = self._rule_ids(values.get("fired"), "fired", ids)
        not_fired = self._rule_ids(values.get("not_fired"), "not_fired", ids)
        action = self.choice(values["action"], "action", ACTIONS, None) if "action" in values else None
        ok = ok and (features is None or row is not None) and history is not None and calls is not None
        if not ok or fired is None or not_fired is None or ("action" in values and action is None):
            return None
        line = node.start_mark.line + 1
        return _Case(self.test, line, row, history, calls, fired, not_fired, action)  # type: ignore[arg-type]

    def _features(self, node: yaml.Node) -> np.ndarray | None:
        """One feature row from {name: value}; names not given are missing (NaN)."""
        row = np.full(len(REGISTRY), np.nan)
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return row
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "wrong_type", f"'features' must map feature names to values, found {node_kind(node)}")
            return None
        ok, seen = True, set()
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(self._value(key_node))
            feature = REGISTRY.get(name)
            if feature is None:
                self.problem(
                    key_node, "unknown_feature", f"unknown feature '{name}'", None, suggest(name, REGISTRY.names)
                )
                ok = False
            elif name in seen:
                self.problem(key_node, "schema", f"feature '{name}' appears twice")
                ok = False
            else:
                seen.add(name)
                value = self._feature_value(feature, value_node)
                ok = ok and value is not None
                row[REGISTRY.column(name)] = np.nan if value is None else value
        return row if ok else None

    def _feature_value(self, feature: Feature, node: yaml.Node) -> float | None:
        """The value's column entry (NaN: missing), or None after reporting a value of the wrong type."""
        tag = node.tag if isinstance(node, yaml.ScalarNode) else None
        if tag == _NULL:
            return np.nan
        if feature.type is FeatureType.BOOL:
            if tag == _BOOL:
                return float(bool(self._value(node)))
            self.problem(node, "wrong_type", f"feature '{feature.name}' is true/false, found {node_kind(node)}")
        elif feature.type is FeatureType.CATEGORY:
            if tag == _STR and node.value in feature.categories:
                return feature.encode(node.value)
            values = feature.categories
            message = f"{node_kind(node)} is not a value of category '{feature.name}' (one of: {', '.join(values)})"
            hint = suggest(node.value, values) if tag is not None else None
            self.problem(node, "unknown_value", message, None, hint)
        else:
            if tag in _NUMBER:
                return float(self._value(node))  # type: ignore[arg-type]
            self.problem(node, "wrong_type", f"feature '{feature.name}' is a number, found {node_kind(node)}")
        return None

    def _rule_ids(self, node: yaml.Node | None, key: str, ids: list[str] | None) -> tuple[str, ...] | None:
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, "wrong_type", f"'{key}' must be a list of rule ids, found {node_kind(node)}")
            return None
        found, ok = [], True
        for item in node.value:
            if not (isinstance(item, yaml.ScalarNode) and item.tag == _STR):
                self.problem(item, "wrong_type", f"'{key}' must be a list of rule ids, found {node_kind(item)}")
                ok = False
            elif ids is not None and item.value not in ids:
                message = f"'{key}' names rule '{item.value}', which the ruleset does not have"
                self.problem(item, "unknown_rule", message, None, suggest(item.value, ids))
                ok = False
            else:
                found.append(item.value)
        return tuple(found) if ok else None

    def _events(self, node: yaml.Node, key: str) -> list[dict] | None:
        """The history's events, each checked against the event contract (docs/events.md) at its place."""
        if key == "calls" and isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, yaml.SequenceNode) or (key == "transactions" and not node.value):
            wanted = "one or more transactions" if key == "transactions" else "calls"
            found = "an empty list" if isinstance(node, yaml.SequenceNode) else node_kind(node)
            self.problem(node, "wrong_type", f"'{key}' must be a list of {wanted}, found {found}")
            return None
        if key == "transactions" and not self.histories:
            self.problem(node, "schema", "transaction histories need the streaming feature engine")
            return None
        # The contract is declared once, in streams/events.py; the feature engine decodes with it too.
        from streams.errors import EventError
        from streams.events import CALLER_RISKS, CHANNELS, decode_call, decode_transaction

        decode = decode_transaction if key == "transactions" else decode_call
        choices = {"channel": sorted(CHANNELS), "caller_risk": list(CALLER_RISKS)}
        events, ok = [], True
        for i, item in enumerate(node.value):
            where = f"{key}[{i}]"
            if not isinstance(item, yaml.MappingNode):
                found = node_kind(item)
                self.problem(item, "wrong_type", f"{where} must map the event's fields to values, found {found}")
                ok = False
                continue
            event = self._value(item)
            assert isinstance(event, dict)
            try:
                decode(orjson.dumps(event))
            except EventError as exc:
                value_node = next((v for k, v in item.value if getattr(k, "value", None) == exc.field), item)
                found = event.get(exc.field)
                hint = suggest(found, choices[exc.field]) if isinstance(found, str) and exc.field in choices else None
                self.problem(value_node, "bad_event", f"{where}: {exc}", None, hint)
                ok = False
            except orjson.JSONEncodeError as exc:  # a value JSON cannot carry, e.g. an integer over 64 bits
                self.problem(item, "bad_event", f"{where}: not a JSON event: {exc}")
                ok = False
            events.append(event)
        return events if ok else None


def _run_case(path: Path, case: _Case, ruleset: CompiledRuleset, featurize: Featurizer | None) -> CaseResult:
    if case.row is not None:
        row = case.row
    else:
        assert featurize is not None  # checked when the file was read
        row = featurize(list(case.transactions), list(case.calls), ruleset)
    result = score_batch(ruleset.program, np.ascontiguousarray(row.reshape(1, -1)))
    ids = [r.id for r in ruleset.rules]
    fired = {ids[k] for k in np.flatnonzero(result.fired[0])}
    action = ACTIONS[int(result.action[0])]
    outcome = CaseResult(str(path), case.line, case.name)
    for rule in case.fired:
        if rule not in fired:
            outcome.failures.append(f"expected rule '{rule}' to fire; it did not")
    for rule in case.not_fired:
        if rule in fired:
            outcome.failures.append(f"expected rule '{rule}' not to fire; it fired")
    if case.action is not None and case.action != action:
        outcome.failures.append(f"expected action {case.action}, got {action}")
    if outcome.failures:
        score = float(result.score[0])
        outcome.failures.append(f"(score {score:g}; fired: {', '.join(sorted(fired)) or 'none'})")
    return outcome
