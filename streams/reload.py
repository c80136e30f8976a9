"""Hot reload of the ruleset: watch the rules path, compile a changed ruleset, swap it in only if valid.

A broken or deleted ruleset never replaces the running one: the error is logged and counted, and the
worker keeps deciding with the ruleset it has. A valid ruleset that would change the decisions on too much
of the recent traffic is refused the same way (the canary guard, streams/canary.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rules.errors import RuleError
from rules.loader import MAX_RULESET_BYTES, rule_files
from rules.ruleset import CompiledRuleset, load_ruleset
from streams.canary import RecentTraffic, compare, switched_to_shadow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    version: str | None
    error: str | None = None
    refused: bool = False  # valid, but the canary guard kept the running ruleset

    @property
    def label(self) -> str:
        """The `result` label of interceptor_ruleset_reloads_total."""
        return "success" if self.ok else "refused" if self.refused else "failure"


@dataclass(frozen=True, slots=True)
class ReloadGuard:
    """Refuse (or only warn about) a ruleset that changes the action of more than `max_changed_share` of the
    recent transactions. With fewer than `min_rows` recent transactions there is nothing to judge by. A ruleset
    that only switches rules to shadow (an operator stopping a runaway rule) is let through."""

    recent: RecentTraffic
    mode: str = "refuse"  # refuse, warn or off
    max_changed_share: float = 0.01
    min_rows: int = 500

    def judge(self, running: CompiledRuleset, candidate: CompiledRuleset) -> str | None:
        """Why the candidate is refused, or None to load it."""
        if self.mode == "off":
            return None
        if len(self.recent) < self.min_rows:
            log.info("reload guard: only %d recent transactions, not judging %s", len(self.recent), candidate.version)
            return None
        silenced = switched_to_shadow(running, candidate)
        if silenced:
            log.warning(
                "reload guard: %s only switches %s to shadow: loaded without comparing decisions",
                candidate.version,
                ", ".join(silenced),
            )
            return None
        report = compare(running, candidate, self.recent.rows())
        if report.changed_share <= self.max_changed_share:
            log.info("reload guard: %s: %s", candidate.version, report.describe())
            return None
        why = (
            f"ruleset {candidate.version}: {report.describe()}, more than the allowed "
            f"{100 * self.max_changed_share:.2f} % (INTERCEPTOR_RELOAD_MAX_CHANGED_SHARE)"
        )
        if self.mode == "warn":
            log.warning("reload guard (warn only): %s", why)
            return None
        return why


def fingerprint(path: Path) -> str:
    """A digest of the ruleset's files (names and contents); '' when the path is gone.

    Files are streamed, and when they are larger than a ruleset may be (the loader will reject them anyway)
    only their names, sizes and modification times are hashed: a huge file is never read every poll.
    """
    if not path.exists():
        return ""
    digest = hashlib.sha256()
    try:
        files = rule_files(path) if path.is_dir() else [path]
        stats = [(file, file.stat()) for file in files]
    except OSError:
        return "<unreadable>"
    too_big = sum(st.st_size for _, st in stats) > MAX_RULESET_BYTES
    for file, st in stats:
        digest.update(file.name.encode())
        if too_big:
            digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            continue
        try:
            with file.open("rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


class RulesetWatcher:
    def __init__(
        self,
        path: Path,
        current: CompiledRuleset,
        on_load: Callable[[CompiledRuleset], None],
        guard: ReloadGuard | None = None,
    ) -> None:
        self.path = path
        self.current = current
        self.on_load = on_load
        self.guard = guard
        self._seen = fingerprint(path)

    def poll(self) -> ReloadResult | None:
        """Reload if the files changed since the last poll; None when nothing changed."""
        found = self.load_changed()
        return found if found is None or isinstance(found, ReloadResult) else self.apply(found)

    def load_changed(self) -> CompiledRuleset | ReloadResult | None:
        """The slow half, safe in another thread: read and compile the ruleset if its files changed (a ruleset
        near the size limit takes seconds). A compiled ruleset still has to go through `apply`."""
        now = fingerprint(self.path)
        if now == self._seen:
            return None
        self._seen = now
        try:
            return load_ruleset(self.path)
        except RuleError as exc:
            log.error("ruleset at %s rejected; keeping version %s:\n%s", self.path, self.current.version, exc)
            return ReloadResult(False, self.current.version, str(exc))
        except OSError as exc:  # files vanishing mid-read
            log.error("ruleset at %s unreadable; keeping version %s: %s", self.path, self.current.version, exc)
            return ReloadResult(False, self.current.version, str(exc))

    def apply(self, ruleset: CompiledRuleset) -> ReloadResult:
        """The quick half, between two batches: the reload guard, then the swap."""
        refusal = self.guard.judge(self.current, ruleset) if self.guard else None
        if refusal is not None:
            log.error("%s refused; keeping version %s: %s", self.path, self.current.version, refusal)
            return ReloadResult(False, self.current.version, refusal, refused=True)
        self.current = ruleset
        self.on_load(ruleset)
        log.info("ruleset %s loaded from %s", ruleset.version, self.path)
        return ReloadResult(True, ruleset.version)
