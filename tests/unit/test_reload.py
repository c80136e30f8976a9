"""Hot reload: a good change is swapped in, a broken or deleted ruleset leaves the running one in force."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from rules.ruleset import default_ruleset_path, load_ruleset
from streams.reload import RulesetWatcher


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
