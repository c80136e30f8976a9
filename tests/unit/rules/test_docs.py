"""docs/rules.md stays true: its examples load and pass their own tests, and its feature table is the registry."""

from __future__ import annotations

import re
from pathlib import Path

from rules.ruleset import load_ruleset
from rules.testing import find_test_files, run_test_file
from streams.cli.rules import features_markdown
from streams.features.history import featurize_history

DOC = (Path(__file__).parents[3] / "docs" / "rules.md").read_text()


def write_examples(root: Path) -> list[Path]:
    written = []
    for block in re.findall(r"```yaml\n(.*?)```", DOC, flags=re.S):
        first, _, body = block.partition("\n")
        assert first.startswith("# file: "), f"every yaml example names its file: {first!r}"
        path = root / first.removeprefix("# file: ").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        written.append(path)
    return written


def test_the_guide_examples_are_a_valid_ruleset_whose_tests_pass(tmp_path: Path) -> None:
    files = write_examples(tmp_path)
    assert len(files) == 4
    ruleset = load_ruleset(tmp_path / "example")
    assert [r.id for r in ruleset.rules] == [
        "risky_call_new_payee",
        "night_new_device",
        "many_new_payees_trial",
        "new_payee_while_held",
    ]
    assert (ruleset.holds.minutes, ruleset.holds.on_expiry) == (30, "release")
    results = [r for f in find_test_files(tmp_path / "example") for r in run_test_file(f, featurize_history)]
    assert len(results) == 4
    assert [r.failures for r in results if not r.passed] == []


def test_the_feature_table_is_the_registry() -> None:
    table = DOC.split("<!-- features:start -->\n")[1].split("<!-- features:end -->")[0].strip()
    assert table == features_markdown()


def test_every_operator_in_the_grammar_is_documented() -> None:
    for word in ("between", "not in", " in ", " and ", " or ", "not ", "==", "!=", "<=", ">=", "+ - * /"):
        assert word in DOC, word


def test_every_error_kind_is_explained() -> None:
    from tests.unit.rules.test_errors import EXPECTED

    for _, kind, _ in EXPECTED:
        assert f"`{kind}`" in DOC, kind
