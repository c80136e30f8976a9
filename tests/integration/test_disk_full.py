"""A full disk under the state store: the worker keeps deciding, counts and logs the failed checkpoint (and
commits no offsets for it: streams/app.py), and checkpoints again once there is space."""

from __future__ import annotations

import os
import urllib.request

import pytest

from tests.integration.conftest import Deployment, free_port
from tests.integration.kafka_io import produce_json, read_topic, wait_for

pytestmark = pytest.mark.integration

T = 1_772_330_400_000


def txns(start: int, n: int) -> list[dict]:
    return [
        {"txn_id": f"d{i}", "ts": T + i * 1000, "payer_account": f"p{i % 50}", "payee_account": f"q{i % 70}",
         "amount": 100 + i % 900}
        for i in range(start, start + n)
    ]  # fmt: skip


def failures(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    line = next(x for x in text.splitlines() if x.startswith("interceptor_checkpoint_failures_total "))
    return float(line.split()[1])


def test_a_full_disk_stops_checkpoints_not_decisions(deployment: Deployment) -> None:
    data = deployment.tmp / "state"
    data.mkdir()
    # the checkpoint's temporary file leads to /dev/full: writing it fails with "No space left on device"
    (data / f"{deployment.app_id}.tmp").symlink_to("/dev/full")
    port = free_port()
    worker = deployment.start_worker(
        INTERCEPTOR_DATA_DIR=str(data), INTERCEPTOR_CHECKPOINT_INTERVAL_S="0.2", INTERCEPTOR_METRICS_PORT=str(port)
    )
    bootstrap = deployment.broker.bootstrap
    produce_json(bootstrap, deployment.topic("transactions"), txns(0, 300), "payer_account")
    decisions = read_topic(bootstrap, deployment.topic("decisions"), 300, 120)
    assert len({r.json()["txn_id"] for r in decisions}) == 300  # every transaction decided despite the disk
    wait_for(lambda: "No space left on device" in worker.log(), 60, "the failed checkpoint to be logged")
    assert failures(port) >= 1
    # the failed write left nothing behind, so the next checkpoint finds space again
    assert not os.path.lexists(data / f"{deployment.app_id}.tmp")
    produce_json(bootstrap, deployment.topic("transactions"), txns(300, 50), "payer_account")
    read_topic(bootstrap, deployment.topic("decisions"), 350, 120)
    wait_for(lambda: (data / f"{deployment.app_id}.checkpoint").exists(), 60, "a checkpoint once there is space")


def test_checkpoints_that_keep_failing_are_retried_once_an_interval_not_on_every_batch(
    deployment: Deployment,
) -> None:
    """Each checkpoint forks the worker. A 200-decision log has three quarters of it uncommitted after 150
    decisions, which forces a checkpoint before the next batch; while checkpoints fail (here the checkpoint's
    temporary file is a directory, which no write replaces) that would be a failing fork on every batch. They
    are tried again once a checkpoint interval (10 minutes here) after the failure instead."""
    data = deployment.tmp / "state"
    data.mkdir()
    (data / f"{deployment.app_id}.tmp").mkdir()
    port = free_port()
    worker = deployment.start_worker(
        INTERCEPTOR_DATA_DIR=str(data),
        INTERCEPTOR_CHECKPOINT_INTERVAL_S="600",
        INTERCEPTOR_DECISION_LOG_SIZE="200",
        INTERCEPTOR_BATCH_MAX="50",
        INTERCEPTOR_METRICS_PORT=str(port),
    )
    bootstrap = deployment.broker.bootstrap
    produce_json(bootstrap, deployment.topic("transactions"), txns(0, 3000), "payer_account")
    decisions = read_topic(bootstrap, deployment.topic("decisions"), 3000, 120)
    assert len({r.json()["txn_id"] for r in decisions}) == 3000  # decisions go on
    wait_for(lambda: failures(port) >= 1, 60, "the failed checkpoint to be counted")
    assert "Is a directory" in worker.log()
    # the first try, and at most one forced while the first was still being written; at least 60 batches of 50
    # come after it: one failure per batch would be over 50
    assert failures(port) <= 2
