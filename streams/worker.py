"""Wiring of one worker process: settings -> ruleset -> pipeline -> metrics -> Faust app."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from rules.features import REGISTRY
from rules.ruleset import CompiledRuleset, default_ruleset_path, load_ruleset
from streams.app import build_app
from streams.canary import RecentTraffic
from streams.datadir import DataDirLock
from streams.dedup import DecisionLog
from streams.errors import SettingsError
from streams.features.engine import FeatureConfig, FeatureEngine
from streams.features.engine import warm_up as warm_up_features
from streams.features.localtime import parse_zone
from streams.health import Health, serve
from streams.kafka_security import check_connection
from streams.metrics import Metrics
from streams.pipeline import TransactionPipeline
from streams.reload import ReloadGuard, RulesetWatcher
from streams.scorer import RulesetScorer
from streams.settings import Settings
from streams.snapshot import checkpoint_path
from streams.snapshot import load as load_checkpoint
from streams.topics import check_partition_counts, ensure_topics

RECENT_ROWS = 10_000  # recent transactions a changed ruleset is replayed on before it is loaded


def run_worker(settings: Settings) -> None:
    """Start the worker and block until it stops. Raises RuleError if the ruleset is invalid at start."""
    from faust.worker import Worker

    DataDirLock(settings.data_dir, settings.app_id)  # held until the process ends (its descriptor stays open)
    rules_path = Path(settings.rules_path) if settings.rules_path else default_ruleset_path()
    ruleset = load_ruleset(rules_path)
    # logging is not set up until Faust's worker starts, so say it on stderr (a reload logs the same words)
    print(f"ruleset {ruleset.version} loaded from {rules_path}", file=sys.stderr)
    metrics = Metrics(CollectorRegistry())
    metrics.up_since.set_to_current_time()
    features = FeatureConfig(zone=parse_zone(settings.timezone))
    warm_up_features()  # before /readyz turns 200: the first transactions do not wait for the JIT
    pipeline = TransactionPipeline(
        RulesetScorer(ruleset), decision_log=DecisionLog(settings.decision_log_size), engine=FeatureEngine(features)
    )
    restored = load_checkpoint(checkpoint_path(settings.data_dir, settings.app_id))
    state_positions = None
    if restored is not None:
        state_positions = restored.state_feed
        pipeline.engine = restored.engine
        pipeline.engine.config = features  # the settings of this start, not those the checkpoint was taken with
        pipeline.decision_log = restored.decision_log
        pipeline.decision_log.resize(settings.decision_log_size)
        taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(restored.taken_at))
        print(
            f"state restored from the checkpoint of {taken}: {len(restored.engine.store)} accounts, "
            f"{len(restored.decision_log)} remembered decisions",
            file=sys.stderr,
        )

    def use(new: CompiledRuleset) -> None:
        pipeline.scorer = RulesetScorer(new)
        metrics.ruleset_loaded(new)

    use(ruleset)
    pipeline.recent = RecentTraffic(RECENT_ROWS, len(REGISTRY))
    guard = ReloadGuard(pipeline.recent, settings.reload_guard, settings.reload_max_changed_share)
    watcher = RulesetWatcher(rules_path, ruleset, use, guard)
    check_connection(settings)  # a refused login or a wrong listener is named now, not after 30 s of retries
    ensure_topics(settings)
    check_partition_counts(settings)  # before anything is decided into a partition that is not there
    health = Health()
    if settings.metrics_port:
        try:
            serve(settings.metrics_port, metrics.registry, health)
        except OSError as exc:  # another worker on this host with the same environment, most often
            raise SettingsError(
                f"INTERCEPTOR_METRICS_PORT={settings.metrics_port}: cannot serve /metrics on port "
                f"{settings.metrics_port}: {exc.strerror or exc} (another worker on this host? give each worker "
                "its own port, or 0 for none)"
            ) from None
    app = build_app(settings, pipeline, metrics, watcher, state_positions, health)
    Worker(app, loglevel=settings.log_level, redirect_stdouts=False).execute_from_commandline()
