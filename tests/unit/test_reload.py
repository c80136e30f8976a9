"""Hot reload: a good change is swapped in, a broken or deleted ruleset leaves the running one in force."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import orjson

from rules.features import REGISTRY
from rules.ruleset import default_ruleset_path, load_ruleset
from streams.canary import RecentTraffic
from streams.outputs import RawRecord
from streams.pipeline import TransactionPipeline
from streams.reload import ReloadGuard, RulesetWatcher
from streams.scorer import RulesetScorer
from streams.simulator import SimConfig, simulate


def copy_default(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(default_ruleset_path(), target)
    return target


def test_changed_ruleset_is_loaded_and_broken_or_deleted_ones_are_not(tmp_path: Path) -> None:
    path = copy_default(tmp_path)
    loaded = []
    watcher = RulesetWatcher(path, load_ruleset(path), loaded.append)
    assert watcher.poll() is None  # nothing changed

    header = path / "ruleset.yaml"
    header.write_text(re.sub(r'version: ".*"', 'version: "v2"', header.read_text()))
    result = watcher.poll()
    assert result is not None and result.ok and result.version == "v2"
    assert [r.version for r in loaded] == ["v2"]

    (path / "telecom.yaml").write_text("rules:\n  - {id: x, description: d, when: amont > 1, score: 1}\n")
    result = watcher.poll()
    assert result is not None and not result.ok
    assert "unknown feature 'amont'" in (result.error or "")
    assert watcher.current.version == "v2" and len(loaded) == 1

    shutil.rmtree(path)
    result = watcher.poll()
    assert result is not None and not result.ok and "no such file or directory" in (result.error or "")
    assert watcher.current.version == "v2" and len(loaded) == 1


# --- the reload guard (canary) ---------------------------------------------------------------------------


def recent_traffic_of(path: Path) -> RecentTraffic:
    """Feature rows of a small simulated day, scored by the ruleset at `path`, as a worker would keep them."""
    feed = simulate(SimConfig(customers=300, days=2, seed=4))
    pipeline = TransactionPipeline(RulesetScorer(load_ruleset(path)))
    pipeline.recent = RecentTraffic(5_000, len(REGISTRY))
    records = [RawRecord(orjson.dumps(t), "transactions", 0, i, 0) for i, t in enumerate(feed.transactions)]
    for i in range(0, len(records), 500):
        pipeline.process(records[i : i + 500], now_ms=0)
    assert len(pipeline.recent) == min(5_000, len(records))
    return pipeline.recent


def add_rule(path: Path, version: str, rule: str) -> None:
    header = path / "ruleset.yaml"
    header.write_text(re.sub(r'version: ".*"', f'version: "{version}"', header.read_text()))
    (path / "extra.yaml").write_text(f"rules:\n  - {rule}\n")


def test_a_ruleset_that_would_block_everyone_is_refused_and_the_running_one_stays(tmp_path: Path, caplog) -> None:
    path = copy_default(tmp_path)
    loaded: list = []
    running = load_ruleset(path)
    watcher = RulesetWatcher(path, running, loaded.append, ReloadGuard(recent_traffic_of(path)))

    add_rule(path, "oops", "{id: typo, description: d, when: amount > 0, score: 100, action: block}")
    result = watcher.poll()
    assert result is not None and not result.ok and result.refused and result.label == "refused"
    assert "it would change the action of" in (result.error or "") and "allow->block" in (result.error or "")
    assert "INTERCEPTOR_RELOAD_MAX_CHANGED_SHARE" in (result.error or "")
    assert watcher.current is running and loaded == []

    # a careful change (a new rule for a narrow case) goes through
    add_rule(path, "careful", "{id: narrow, description: d, when: amount > 900000 and night, score: 30}")
    result = watcher.poll()
    assert result is not None and result.ok and [r.version for r in loaded] == ["careful"]


def test_switching_a_runaway_rule_to_shadow_goes_through_the_guard_and_nothing_else_with_it(
    tmp_path: Path, caplog
) -> None:
    # the runbook's answer to a rule blocking honest customers: it changes most decisions, all of them downwards
    path = copy_default(tmp_path)
    runaway = "{id: typo, description: d, when: amount > 0, score: 100, action: block"
    narrow = "{id: narrow, description: d, when: amount > 900000 and night, score: 30}"
    add_rule(path, "runaway", f"{runaway}}}\n  - {narrow}")
    running = load_ruleset(path)
    loaded: list = []
    watcher = RulesetWatcher(path, running, loaded.append, ReloadGuard(recent_traffic_of(path)))

    # removing the rule, or switching it to shadow and changing another rule too, is judged as any change
    add_rule(path, "removed", narrow)
    assert watcher.poll().refused  # type: ignore[union-attr]
    add_rule(path, "and-more", f"{runaway}, mode: shadow}}\n  - {narrow.replace('900000', '90000')}")
    assert watcher.poll().refused  # type: ignore[union-attr]
    assert loaded == []

    add_rule(path, "silenced", f"{runaway}, mode: shadow}}\n  - {narrow}")
    with caplog.at_level("WARNING"):
        result = watcher.poll()
    assert result is not None and result.ok and [r.version for r in loaded] == ["silenced"]
    assert "only switches typo to shadow" in caplog.text
    assert watcher.current.rules[watcher.current.rule_index("typo")].shadow


def test_warn_mode_loads_the_change_and_says_why_it_is_risky(tmp_path: Path, caplog) -> None:
    path = copy_default(tmp_path)
    loaded: list = []
    guard = ReloadGuard(recent_traffic_of(path), mode="warn")
    watcher = RulesetWatcher(path, load_ruleset(path), loaded.append, guard)
    add_rule(path, "oops", "{id: typo, description: d, when: amount > 0, score: 100, action: block}")
    with caplog.at_level("WARNING"):
        result = watcher.poll()
    assert result is not None and result.ok and [r.version for r in loaded] == ["oops"]
    assert "reload guard (warn only)" in caplog.text


def test_with_too_little_recent_traffic_the_guard_does_not_judge(tmp_path: Path) -> None:
    path = copy_default(tmp_path)
    loaded: list = []
    guard = ReloadGuard(RecentTraffic(5_000, len(REGISTRY)))
    watcher = RulesetWatcher(path, load_ruleset(path), loaded.append, guard)
    add_rule(path, "oops", "{id: typo, description: d, when: amount > 0, score: 100, action: block}")
    result = watcher.poll()
    assert result is not None and result.ok


def test_recent_traffic_keeps_the_newest_rows_across_wrap_around() -> None:
    recent = RecentTraffic(capacity=5, n_features=1)
    for start in range(0, 12, 3):
        recent.add(np.arange(start, start + 3, dtype=float).reshape(-1, 1))
    assert len(recent) == 5
    assert sorted(recent.rows()[:, 0].tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0]
    recent.add(np.arange(100, 108, dtype=float).reshape(-1, 1))  # more than the capacity at once
    assert sorted(recent.rows()[:, 0].tolist()) == [103.0, 104.0, 105.0, 106.0, 107.0]
