"""Hot reload of the ruleset: watch the rules path, compile a changed ruleset, swap it in only if valid.

A broken or deleted ruleset never replaces the running one: the error is logged and counted, and the
worker keeps deciding with the ruleset it has.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rules.errors import RuleError
from rules.loader import rule_files
from rules.ruleset import CompiledRuleset, load_ruleset

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    version: str | None
    error: str | None = None


def fingerprint(path: Path) -> str:
    """A digest of the ruleset's files (names and contents); '' when the path is gone."""
    if not path.exists():
        return ""
    digest = hashlib.sha256()
    for file in rule_files(path) if path.is_dir() else [path]:
        digest.update(file.name.encode())
        try:
            digest.update(file.read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


class RulesetWatcher:
    def __init__(self, path: Path, current: CompiledRuleset, on_load: Callable[[CompiledRuleset], None]) -> None:
        self.path = path
        self.current = current
        self.on_load = on_load
        self._seen = fingerprint(path)

    def poll(self) -> ReloadResult | None:
        """Reload if the files changed since the last poll; None when nothing changed."""
        now = fingerprint(self.path)
        if now == self._seen:
            return None
        self._seen = now
        try:
            ruleset = load_ruleset(self.path)
        except RuleError as exc:
            log.error("ruleset at %s rejected; keeping version %s:\n%s", self.path, self.current.version, exc)
            return ReloadResult(False, self.current.version, str(exc))
        except OSError as exc:  # files vanishing mid-read
            log.error("ruleset at %s unreadable; keeping version %s: %s", self.path, self.current.version, exc)
            return ReloadResult(False, self.current.version, str(exc))
        self.current = ruleset
        self.on_load(ruleset)
        log.info("ruleset %s loaded from %s", ruleset.version, self.path)
        return ReloadResult(True, ruleset.version)
