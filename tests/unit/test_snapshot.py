"""Checkpoints written by a forked copy of the worker (streams/snapshot.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from streams.dedup import DecisionLog, Remembered
from streams.events import Transaction
from streams.features.engine import FeatureEngine
from streams.snapshot import ForkedSave, load

ROOT = Path(__file__).parents[2]

T = 1_772_330_400_000


def state() -> tuple[FeatureEngine, DecisionLog]:
    engine, log = FeatureEngine(), DecisionLog()
    engine.process([Transaction(f"t{i}", T + i * 60_000, f"p{i % 7}", f"q{i % 3}", 100.0 + i) for i in range(50)])
    for i in range(50):
        log.put(f"t{i}", Remembered(i, b'{"txn_id": "t%d"}' % i, i % 5 == 0))
    return engine, log


def test_the_checkpoint_holds_the_state_at_the_fork_not_what_came_after(tmp_path: Path) -> None:
    engine, log = state()
    before = {a: engine.store.account(a) for a in engine.store.accounts()}
    saving = ForkedSave(tmp_path / "w.checkpoint", engine, log)
    # the worker goes on deciding while the child writes
    engine.process([Transaction("later", T + 3_600_000, "p1", "q9", 5_000.0)])
    log.put("later", Remembered(1, b"{}", True))
    saving.wait()
    saving.wait()  # a second wait (a stop waiting for the background task's checkpoint) is harmless
    restored = load(tmp_path / "w.checkpoint")
    assert restored is not None
    assert {a: restored.engine.store.account(a) for a in restored.engine.store.accounts()} == before
    assert restored.decision_log.get("later") is None and restored.decision_log.get("t3") == log.get("t3")


def test_a_child_that_cannot_write_reports_why_and_leaves_the_last_checkpoint(tmp_path: Path) -> None:
    engine, log = state()
    path = tmp_path / "w.checkpoint"
    ForkedSave(path, engine, log).wait()
    good = path.read_bytes()
    (tmp_path / "w.tmp").symlink_to("/dev/full")
    saving = ForkedSave(path, engine, log)
    with pytest.raises(OSError, match="No space left on device"):
        saving.wait()
    with pytest.raises(OSError, match="No space left on device"):
        saving.wait()
    assert path.read_bytes() == good
    assert not os.path.lexists(tmp_path / "w.tmp")


def test_the_checkpoint_writer_dies_with_a_killed_worker(tmp_path: Path) -> None:
    """A writer that outlived a worker killed with SIGKILL could rename an older checkpoint over the one the
    restarted worker has just written. The kernel kills it with its worker (`die_with`)."""
    script = textwrap.dedent(
        """
        import os, sys, time
        from streams.snapshot import die_with
        worker = os.getpid()
        child = os.fork()
        if child == 0:
            die_with(worker)
            time.sleep(60)  # a long checkpoint write
            os._exit(0)
        print(child, flush=True)
        time.sleep(60)
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    with worker.stdout:
        child = int(worker.stdout.readline())
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    deadline = time.monotonic() + 30

    def alive(pid: int) -> bool:  # a zombie nobody reaps has exited too
        try:
            return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
        except (FileNotFoundError, IndexError):
            return False

    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the checkpoint writer outlived its worker"
