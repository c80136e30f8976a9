"""An enormous or pathological ruleset is a rule error with its place, never a crash or a stalled worker.

Each case used to crash or stall without the limits: 130 nested parentheses or 400 chained `and`s raised
RecursionError, a 2 KB file of nested YAML brackets crashed the YAML reader, a 1 MB condition took seconds,
and 50,000 rules took 47 s to load and made the kernel about 3,800 times slower than 16 rules.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rules.errors import RuleError
from rules.features import REGISTRY
from rules.loader import MAX_DESCRIPTION_CHARS, MAX_ID_CHARS, MAX_RULES, MAX_RULESET_BYTES, MAX_YAML_DEPTH
from rules.parser import MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH
from rules.ruleset import default_ruleset_path, load_ruleset
from scoring.kernel import score_batch
from streams.cli.main import main
from streams.reload import RulesetWatcher

HEADER = 'ruleset: {version: "big", thresholds: {review: 10, hold: 20, block: 30}}\n'
TOO_DEEP = (
    "the condition nests more than 50 levels deep (each '(', 'not' and unary '-', and each operator in a chain "
    "such as 'a and b and c', is a level); split it into several rules"
)


def one_rule(path: Path, when: str) -> Path:
    path.write_text(f"{HEADER}rules:\n  - id: big\n    description: d\n    when: {when}\n    score: 1\n")
    return path


def problems_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(RuleError) as caught:
        load_ruleset(path)
    return [(p.kind, str(p).replace(str(path), "")) for p in caught.value.problems]


def test_the_documented_limits_are_the_enforced_ones() -> None:
    assert (MAX_RULES, MAX_RULESET_BYTES, MAX_YAML_DEPTH) == (1_000, 1_048_576, 20)
    assert (MAX_ID_CHARS, MAX_DESCRIPTION_CHARS) == (64, 1_000)
    assert (MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH) == (2_000, 50)
    doc = (Path(__file__).parents[3] / "docs" / "rules.md").read_text()
    limits = doc.split("### Limits\n")[1].split("\n## ")[0]
    figures = ("1,000 rules", "1 MiB (1,048,576 bytes)", "2,000 characters", "50 levels", "20 levels", "64 characters",
               "1,000 characters")  # fmt: skip
    for figure in figures:
        assert figure in limits, figure
    for kind in ("too_large", "too_deep"):
        assert f"`{kind}`" in doc, kind


# --- just under the limits -----------------------------------------------------------------------------


def long_condition() -> str:
    """A valid condition of exactly MAX_EXPRESSION_CHARS characters."""
    items = ", ".join(str(i) for i in range(1, 400))
    while len(f"amount in [{items}]") > MAX_EXPRESSION_CHARS:
        items = items.rsplit(", ", 1)[0]
    return "amount in" + " " * (MAX_EXPRESSION_CHARS - len(f"amount in[{items}]")) + f"[{items}]"


def test_a_ruleset_just_under_every_limit_loads_and_scores(tmp_path: Path) -> None:
    limit = MAX_EXPRESSION_DEPTH
    edge = {
        "longest": long_condition(),
        "nested_parentheses": "(" * limit + "amount > 100" + ")" * limit,
        "nested_not": "not " * limit + "night",
        "long_chain": " and ".join(["payee.new_for_payer"] * (limit + 1)),  # `limit` operators
    }
    assert len(edge["longest"]) == MAX_EXPRESSION_CHARS
    lines = [HEADER, "rules:\n"]
    for rule_id, when in edge.items():
        lines.append(f"  - id: {rule_id}\n    description: at the limit\n    when: {when}\n    score: 1\n")
    for i in range(MAX_RULES - len(edge)):
        lines.append(f"  - {{id: r{i}, description: rule {i}, when: amount >= {i + 1}, score: 1}}\n")
    path = tmp_path / "r.yaml"
    path.write_text("".join(lines))
    assert path.stat().st_size <= MAX_RULESET_BYTES

    ruleset = load_ruleset(path)
    assert len(ruleset.rules) == MAX_RULES

    rows = np.full((2, len(REGISTRY)), np.nan)
    rows[:, REGISTRY.column("amount")] = [150, 0.5]
    rows[:, REGISTRY.column("night")] = [1, 0]
    rows[:, REGISTRY.column("payee.new_for_payer")] = [1, 0]
    result = score_batch(ruleset.program, rows)
    fired = [{ruleset.rules[k].id for k in np.flatnonzero(result.fired[i])} for i in range(2)]
    assert fired[0] == set(edge) | {f"r{i}" for i in range(150)}  # and `amount >= 1` ... `amount >= 150`
    assert fired[1] == set()
    assert result.action.tolist() == [3, 0]  # block, allow


# --- over the limits: the exact messages -----------------------------------------------------------------


def test_too_many_rules_points_at_the_first_rule_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    rules = "".join(f"  - {{id: r{i}, description: d, when: night, score: 1}}\n" for i in range(MAX_RULES + 5))
    path.write_text(f"{HEADER}rules:\n{rules}")
    assert problems_of(path) == [
        ("too_large", ':1003:5: rule "r1000": too many rules: this is rule 1,001 of 1,005, the limit is 1,000')
    ]


def test_rules_are_counted_across_the_files_of_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEADER)
    for name in ("b", "c"):
        rules = "".join(f"  - {{id: {name}{i}, description: d, when: night, score: 1}}\n" for i in range(600))
        (tmp_path / f"{name}.yaml").write_text(f"rules:\n{rules}")
    assert problems_of(tmp_path) == [
        ("too_large", '/c.yaml:402:5: rule "c400": too many rules: this is rule 1,001 of 1,200, the limit is 1,000')
    ]


def test_a_20_mb_rule_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    with path.open("w") as f:
        f.write(HEADER + "rules:\n  - {id: a, description: d, when: night, score: 1}\n")
        f.truncate(20 * 1024 * 1024)  # the rest reads as NUL bytes: it is never parsed
    assert problems_of(path) == [
        ("too_large", ":1:1: the file is 20,971,520 bytes, more than the 1,048,576 a ruleset may hold in all its files")
    ]


def test_the_files_of_a_folder_share_the_size_limit(tmp_path: Path) -> None:
    comment = "# " + "x" * 97 + "\n"  # 100 bytes
    (tmp_path / "a.yaml").write_text(HEADER + comment * 6_000)
    (tmp_path / "b.yaml").write_text("rules:\n" + comment * 6_000)
    (tmp_path / "c.yaml").write_text("this file is not read at all: [")
    size = (tmp_path / "a.yaml").stat().st_size + (tmp_path / "b.yaml").stat().st_size
    assert size == 1_200_080
    assert problems_of(tmp_path) == [
        (
            "too_large",
            "/b.yaml:1:1: the ruleset's files reach 1,200,080 bytes, "
            "more than the 1,048,576 a ruleset may hold in all its files",
        )
    ]


def test_a_condition_over_the_length_limit_is_reported_at_its_start(tmp_path: Path) -> None:
    path = one_rule(tmp_path / "r.yaml", long_condition().replace("amount in", "amount  in"))
    assert problems_of(path) == [
        (
            "too_large",
            ':5:11: rule "big": the condition is 2,001 characters long, the limit is 2,000; split it into several rules',
        )
    ]


def test_a_one_megabyte_condition_is_too_large_not_a_crash(tmp_path: Path) -> None:
    path = one_rule(tmp_path / "r.yaml", " and ".join(["amount > 1"] * 66_667))
    assert problems_of(path) == [
        (
            "too_large",
            ':5:11: rule "big": the condition is 1,000,000 characters long, the limit is 2,000; '
            "split it into several rules",
        )
    ]


@pytest.mark.parametrize(
    ("when", "column"),
    [
        ("(" * 130 + "night" + ")" * 130, 61),  # 130 parentheses raised RecursionError in the parser
        ("not " * 400 + "night", 211),  # 400 `not`s raised RecursionError in the type checker
        ("-" * 60 + "amount > 1", 61),
        (" and ".join(["night"] * 60), 517),  # the 51st `and`: a chain is as deep as it is long
        (" + ".join(["amount"] * 60) + " > 1", 468),  # the 51st `+`
        ("night and (" * 60 + "night" + ")" * 60, 571),  # the 51st `(`
    ],
    ids=["parentheses", "not", "minus", "and_chain", "plus_chain", "nested_and"],
)
def test_a_condition_nested_too_deep_points_at_the_level_over_the_limit(tmp_path: Path, when: str, column: int) -> None:
    path = one_rule(tmp_path / "r.yaml", when)
    assert problems_of(path) == [("too_deep", f':5:{column}: rule "big": {TOO_DEEP}')]


def test_the_depth_limit_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        f"{HEADER}rules:\n"
        f"  - {{id: deep, description: d, when: {'(' * 51}night{')' * 51}, score: 1}}\n"
        "  - {id: typo, description: d, when: amont > 1, score: 1}\n"
    )
    assert problems_of(path) == [
        ("too_deep", f':3:88: rule "deep": {TOO_DEEP}'),
        ("unknown_feature", ":4:38: rule \"typo\": unknown feature 'amont' (did you mean 'amount'?)"),
    ]


def test_a_long_id_or_description_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        f"{HEADER}rules:\n"
        f"  - {{id: {'a' * 65}, description: d, when: night, score: 1}}\n"
        f"  - {{id: {'b' * 64}, description: {'d' * 1_000}, when: night, score: 1}}\n"
        f"  - {{id: wordy, description: {'d' * 1_001}, when: night, score: 1}}\n"
    )
    assert problems_of(path) == [
        ("too_large", ":3:10: 'id' is 65 characters long, the limit is 64"),
        (
            "too_large",
            ":5:30: rule \"wordy\": 'description' is 1,001 characters long, the limit is 1,000: "
            "it is sent with every decision the rule fires on",
        ),
    ]


def test_yaml_nested_too_deep_is_a_rule_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(HEADER + "rules: " + "[" * 1000 + "]" * 1000 + "\n")  # crashed the YAML composer
    assert problems_of(path) == [("too_deep", ":2:27: the YAML nests more than 20 levels deep; a ruleset needs 5")]


# --- what a rule author and an operator see ------------------------------------------------------------------


def test_rules_check_reports_a_limit_like_any_other_problem(tmp_path: Path) -> None:
    path = one_rule(tmp_path / "r.yaml", "(" * 200 + "night" + ")" * 200)
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert result.output == f'{path}:5:61: rule "big": {TOO_DEEP}\nFAILED: 1 problem(s) in {path}\n'


def test_a_hot_reload_over_the_limits_keeps_the_running_ruleset(tmp_path: Path) -> None:
    path = tmp_path / "rules"
    shutil.copytree(default_ruleset_path(), path)
    running = load_ruleset(path)
    loaded = []
    watcher = RulesetWatcher(path, running, loaded.append)

    rules = "".join(f"  - {{id: r{i}, description: d, when: night, score: 1}}\n" for i in range(MAX_RULES + 1))
    (path / "telecom.yaml").write_text(f"rules:\n{rules}")
    result = watcher.poll()
    assert result is not None and not result.ok
    assert re.fullmatch(
        r'.*/rules/telecom\.yaml:1002:5: rule "r1000": too many rules: this is rule 1,001 of 1,001, '
        r"the limit is 1,000",
        result.error or "",
    )
    assert watcher.current is running and loaded == []

    (path / "telecom.yaml").write_text(
        f"rules:\n  - {{id: big, description: d, when: {'x > 1 and ' * 250}night, score: 1}}\n"
    )
    result = watcher.poll()
    assert result is not None and not result.ok
    assert "the condition is 2,505 characters long, the limit is 2,000" in (result.error or "")
    assert watcher.current is running and loaded == []


def test_a_test_file_nested_absurdly_deep_is_a_test_error_not_a_crash(tmp_path: Path) -> None:
    from rules.errors import RuleTestError
    from rules.testing import run_test_file

    path = tmp_path / "deep.test.yaml"
    path.write_text("tests:\n  - " + "[" * 1000 + "]" * 1000 + "\n")
    with pytest.raises(RuleTestError, match=r"deep\.test\.yaml:2:\d+: YAML nested more than 20 levels deep"):
        run_test_file(path, None)
