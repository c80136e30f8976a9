"""`interceptor rules check|test|features`: what a rule author runs, locally and in a rule repo's CI.

Exit codes: 0 all good, 1 invalid rules or failing tests, 2 usage error (click's own).
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import tzinfo
from pathlib import Path
from typing import NoReturn

import click

from rules.errors import RuleError, RuleTestError
from rules.features import REGISTRY
from rules.ruleset import default_ruleset_path, load_ruleset
from streams.cli.zone import timezone_option

_PATH = click.Path(exists=True, path_type=Path)


@click.group()
def rules() -> None:
    """Check, test and explore rulesets."""


def refuse(exc: RuleError, path: Path) -> NoReturn:
    """Print every problem of an invalid ruleset with its place, and exit 1 (`rules check`, `backtest`)."""
    click.echo(str(exc), err=True)
    click.echo(f"FAILED: {len(exc.problems)} problem(s) in {path}", err=True)
    sys.exit(1)


@rules.command()
@click.argument("path", type=_PATH, required=False)
def check(path: Path | None) -> None:
    """Validate the ruleset at PATH (file or directory; default: the shipped ruleset)."""
    path = path or default_ruleset_path()
    try:
        ruleset = load_ruleset(path)
    except RuleError as exc:
        refuse(exc, path)
    shadow = sum(r.shadow for r in ruleset.rules)
    click.echo(f"OK: {len(ruleset.rules)} rules ({shadow} shadow), version {ruleset.version}, {path}")
    if shadow == len(ruleset.rules):
        what = "no rules" if not ruleset.rules else "only shadow rules"
        click.echo(f"warning: {what}: a worker with this ruleset allows every transaction", err=True)


@rules.command("test")
@click.argument("path", type=_PATH, required=False)
@timezone_option
def test_command(path: Path | None, zone: tzinfo) -> None:
    """Run the rule tests (*.test.yaml) under PATH (default: the shipped ruleset)."""
    from rules.testing import find_test_files, run_test_file
    from streams.features.history import featurize_history

    featurize = functools.partial(featurize_history, zone=zone)  # histories in the bank's time zone

    path = path or default_ruleset_path()
    files = find_test_files(path)
    if not files:
        click.echo(f"no *.test.yaml files under {path}", err=True)
        sys.exit(1)
    passed = failed = 0
    for file in files:
        try:
            results = run_test_file(file, featurize)
        except (RuleError, RuleTestError) as exc:
            click.echo(f"ERROR {file}:\n{exc}", err=True)
            failed += 1
            continue
        for result in results:
            if result.passed:
                passed += 1
                continue
            failed += 1
            click.echo(f"FAIL {result.file}:{result.line}: {result.name}")
            for failure in result.failures:
                click.echo(f"     {failure}")
    click.echo(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


@rules.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
def features(fmt: str) -> None:
    """List every feature a rule may use, with its type, unit and meaning."""
    rows = [
        {
            "name": f.name,
            "type": f.type.value,
            "unit": f.unit,
            "values": list(f.categories),
            "description": f.description,
        }
        for f in REGISTRY
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "markdown":
        click.echo(features_markdown())
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("feature", "type", "unit / values", "meaning")
        for r in rows:
            table.add_row(r["name"], r["type"], ", ".join(r["values"]) or r["unit"], r["description"])
        Console().print(table)


def features_markdown() -> str:
    lines = ["| feature | type | unit / values | meaning |", "|---|---|---|---|"]
    for f in REGISTRY:
        values = ", ".join(f"`{v}`" for v in f.categories) or f.unit
        lines.append(f"| `{f.name}` | {f.type.value} | {values} | {f.description} |")
    return "\n".join(lines)
