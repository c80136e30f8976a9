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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from rules.errors import RuleTestError
from rules.features import REGISTRY, FeatureType
from rules.loader import MAX_RULESET_BYTES, MAX_YAML_DEPTH, BoundedLoader, YamlTooDeep
from rules.ruleset import CompiledRuleset, load_ruleset
from scoring.kernel import score_batch
from scoring.program import ACTIONS

CASE_KEYS = ("name", "features", "transactions", "calls", "fired", "not_fired", "action")
# (transactions, calls, ruleset) -> the last transaction's feature row; provided by the streaming pipeline
Featurizer = Callable[[list[dict], list[dict], CompiledRuleset], np.ndarray]


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def find_test_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.name.endswith((".test.yaml", ".test.yml")) else []
    return sorted(p for p in path.rglob("*.test.y*ml"))


def run_test_file(path: Path, featurize: Featurizer | None = None) -> list[CaseResult]:
    """Run every case of one test file. Raises RuleError (bad ruleset) or RuleTestError (bad test file)."""
    doc = _load(path)
    ruleset_path = (path.parent / doc["ruleset"]) if "ruleset" in doc else path.parent
    ruleset = load_ruleset(ruleset_path)
    return [_run_case(path, case, line, ruleset, featurize) for case, line in doc["cases"]]


def _load(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if len(text.encode()) > MAX_RULESET_BYTES:
        raise RuleTestError(f"{path}: the test file is larger than {MAX_RULESET_BYTES:,} bytes; split it")
    try:
        # the rule files' own safe loader, which refuses absurdly nested YAML before it recurses too far
        node = yaml.compose(text, Loader=BoundedLoader)
        data = yaml.load(text, Loader=BoundedLoader)  # BoundedLoader is a SafeLoader: no tags, no objects
    except YamlTooDeep as exc:
        where = f"{path}:{exc.mark.line + 1}:{exc.mark.column + 1}"
        raise RuleTestError(f"{where}: YAML nested more than {MAX_YAML_DEPTH} levels deep") from None
    except yaml.YAMLError as exc:
        raise RuleTestError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise RuleTestError(f"{path}:1:1: a test file needs a 'tests:' list")
    unknown = set(data) - {"tests", "ruleset"}
    if unknown:
        raise RuleTestError(f"{path}:1:1: unknown key(s) {', '.join(sorted(unknown))} (allowed: tests, ruleset)")
    tests_node = next(v for k, v in node.value if k.value == "tests")
    lines = [item.start_mark.line + 1 for item in tests_node.value]
    cases = []
    for case, line in zip(data["tests"], lines, strict=True):
        if not isinstance(case, dict) or "name" not in case:
            raise RuleTestError(f"{path}:{line}: each test needs a 'name'")
        bad = set(case) - set(CASE_KEYS)
        if bad:
            raise RuleTestError(f"{path}:{line}: test '{case['name']}': unknown key(s) {', '.join(sorted(bad))}")
        where = f"{path}:{line}: test '{case['name']}'"
        if ("features" in case) == ("transactions" in case):
            raise RuleTestError(f"{where}: give either 'features' or 'transactions'")
        if "features" in case and not isinstance(case["features"] or {}, dict):
            raise RuleTestError(f"{where}: 'features' must map feature names to values")
        for key in ("fired", "not_fired"):
            if not all(isinstance(r, str) for r in _as_list(case.get(key))):
                raise RuleTestError(f"{where}: '{key}' must be a list of rule ids, found {case[key]!r}")
        if "action" in case and case["action"] not in ACTIONS:
            raise RuleTestError(f"{where}: 'action' must be one of {', '.join(ACTIONS)}, found {case['action']!r}")
        cases.append((case, line))
    return {**data, "cases": cases}


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [None] if value is not None else []


def features_row(values: dict, where: str) -> np.ndarray:
    """One feature row from {name: value}; names not given are missing (NaN)."""
    row = np.full(len(REGISTRY), np.nan)
    for name, value in values.items():
        feature = REGISTRY.get(name)
        if feature is None:
            raise RuleTestError(f"{where}: unknown feature '{name}'")
        if value is None:
            continue
        if feature.type is FeatureType.BOOL:
            if not isinstance(value, bool):
                raise RuleTestError(f"{where}: feature '{name}' is true/false, found {value!r}")
            row[REGISTRY.column(name)] = float(value)
        elif feature.type is FeatureType.CATEGORY:
            if value not in feature.categories:
                raise RuleTestError(f"{where}: '{value}' is not a value of '{name}' ({', '.join(feature.categories)})")
            row[REGISTRY.column(name)] = feature.encode(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RuleTestError(f"{where}: feature '{name}' is a number, found {value!r}")
            row[REGISTRY.column(name)] = float(value)
    return row


def _run_case(path: Path, case: dict, line: int, ruleset: CompiledRuleset, featurize: Featurizer | None) -> CaseResult:
    where = f"{path}:{line}: test '{case['name']}'"
    if "features" in case:
        row = features_row(case["features"] or {}, where)
    else:
        if featurize is None:
            raise RuleTestError(f"{where}: transaction histories need the streaming feature engine")
        row = featurize(list(case["transactions"]), list(case.get("calls") or []), ruleset)
    result = score_batch(ruleset.program, np.ascontiguousarray(row.reshape(1, -1)))
    ids = [r.id for r in ruleset.rules]
    fired = {ids[k] for k in np.flatnonzero(result.fired[0])}
    action = ACTIONS[int(result.action[0])]
    outcome = CaseResult(str(path), line, case["name"])
    for rule in case.get("fired") or []:
        if rule not in ids:
            outcome.failures.append(f"'fired' names unknown rule '{rule}'")
        elif rule not in fired:
            outcome.failures.append(f"expected rule '{rule}' to fire; it did not")
    for rule in case.get("not_fired") or []:
        if rule not in ids:
            outcome.failures.append(f"'not_fired' names unknown rule '{rule}'")
        elif rule in fired:
            outcome.failures.append(f"expected rule '{rule}' not to fire; it fired")
    if "action" in case and case["action"] != action:
        outcome.failures.append(f"expected action {case['action']}, got {action}")
    if outcome.failures:
        score = float(result.score[0])
        outcome.failures.append(f"(score {score:g}; fired: {', '.join(sorted(fired)) or 'none'})")
    return outcome
