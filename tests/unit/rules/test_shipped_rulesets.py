"""One check suite for every shipped ruleset: it compiles, its tests pass, and every rule is tested both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rules.ruleset import default_ruleset_path, load_ruleset
from rules.testing import find_test_files, run_test_file
from streams.features.history import featurize_history

SHIPPED = [default_ruleset_path()]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_case_passes(path: Path) -> None:
    failures = [
        f"{r.file}:{r.line}: {r.name}: {r.failures}"
        for f in find_test_files(path)
        for r in run_test_file(f, featurize_history)
        if not r.passed
    ]
    assert failures == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_rule_has_a_case_where_it_fires_and_one_where_it_must_not(path: Path) -> None:
    ruleset = load_ruleset(path)
    cases = [c for f in find_test_files(path) for c in yaml.safe_load(f.read_text())["tests"]]
    fired = {r for c in cases for r in c.get("fired", [])}
    not_fired = {r for c in cases for r in c.get("not_fired", [])}
    active = {r.id for r in ruleset.rules if not r.shadow}
    assert {r.id for r in ruleset.rules} - fired == set()
    assert active - not_fired == set()
