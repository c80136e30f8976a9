"""Checkpoints of the worker's state: features state and the decision log, taken between two batches.

The agent writes a checkpoint and only then commits the offsets it has processed, so the committed offsets
never run ahead of the newest checkpoint. After a crash the worker loads the checkpoint and Kafka re-delivers
what came after the commit: the decision log answers what was already decided (identical records) and the
feature state records each txn_id once, so the state ends as if the run had not been interrupted.

The worker takes a checkpoint with `ForkedSave`: a forked copy of the process serializes the state as it was
at the fork and writes it atomically (temporary file, fsync, rename) while the worker goes on deciding. The
file is a pickle whose bulk is the numpy arrays
of the columnar state (streams/features/store.py), written as raw buffers: load checkpoints only from the
worker's own data directory, never from elsewhere.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.dedup import DecisionLog
from streams.features.engine import FeatureEngine

log = logging.getLogger(__name__)
# 2: open holds and mule candidates; 3: first/last/largest payment per known payee; 4: columnar feature state;
# 5: the decision log as columns, fingerprints of the transaction's fields; 6: largest inflow per 10-day period;
# 7: accounts by 64-bit digest (no names), record arrays, one transfer slot for both chains, new id digests;
# 8: the offsets of `transactions` the state holds, per partition (streams/state_feed.py); 9: known payees by
# digest, released account rows and inflow records (idle accounts forgotten); 10: 56-byte account records
# (opening date in days, 32-bit outgoing count, 8-bit device count), 40-byte transfers (no flags byte)
FORMAT = 10


@dataclass
class Checkpoint:
    engine: FeatureEngine
    decision_log: DecisionLog
    taken_at: float
    format: int = FORMAT
    # partition of `transactions` -> the offset up to which the state holds its transactions
    state_feed: dict[int, int] = field(default_factory=dict)


def checkpoint_path(data_dir: str, app_id: str) -> Path:
    return Path(data_dir) / f"{app_id}.checkpoint"


def serialize(engine: FeatureEngine, decision_log: DecisionLog, state_feed: dict[int, int] | None = None) -> bytes:
    """The checkpoint of this state, as the bytes `write` puts on disk."""
    checkpoint = Checkpoint(engine, decision_log, time.time(), state_feed=dict(state_feed or {}))
    return pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)


def write(path: Path, data: bytes) -> None:
    """Replace the checkpoint at `path` with `data` atomically; OSError (full disk...) leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk keeps the last good checkpoint and gets its space back
        raise


_PR_SET_PDEATHSIG = 1  # prctl(2)


def die_with(parent: int) -> None:
    """Have the kernel kill this (forked) process when `parent` dies (Linux; elsewhere nothing happens): a
    checkpoint writer that outlived a killed worker could rename an older checkpoint over the one the restarted
    worker has just written, or write the same temporary file at the same time."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl here
        return
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


class ForkedSave:
    """A checkpoint written by a forked copy of the worker, while the worker goes on deciding.

    `fork()` gives the child the state as it is at this instant (copy-on-write: pages are copied only when the
    worker changes them), so the worker pauses only for the fork itself, whatever the size of the state; the
    child serializes, writes, and exits. This is how Redis saves in the background. Peak memory can approach
    twice the state's while a child runs. `wait` blocks until the child is done and raises OSError with the
    child's error (a full disk...); it can be called more than once, from any thread."""

    def __init__(
        self, path: Path, engine: FeatureEngine, decision_log: DecisionLog, state_feed: dict[int, int] | None = None
    ) -> None:
        self.path = path
        read_end, write_end = os.pipe()
        worker = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the child: no logging, no event loop, no exit handlers
            code = 0
            try:
                die_with(worker)
                signal.set_wakeup_fd(-1)  # the parent's event loop is not ours to wake
                os.nice(19)  # the worker deciding payments comes first; the file can wait (BENCHMARKS.md)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                os.close(read_end)
                write(path, serialize(engine, decision_log, state_feed))
            except BaseException as exc:  # whatever it is, the parent hears of it through the pipe
                os.write(write_end, str(exc).encode(errors="replace")[:4000])
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        self._errors = read_end
        self._lock = threading.Lock()
        self._error: str | None = None
        self._done = False

    def wait(self) -> None:
        with self._lock:
            if not self._done:
                message = b""
                while chunk := os.read(self._errors, 4096):
                    message += chunk
                os.close(self._errors)
                _, status = os.waitpid(self.pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    self._error = message.decode(errors="replace") or f"checkpoint writer exited ({status})"
                self._done = True
        if self._error is not None:
            raise OSError(self._error)


def save(
    path: Path, engine: FeatureEngine, decision_log: DecisionLog, state_feed: dict[int, int] | None = None
) -> float:
    """Serialize and write a checkpoint in one go; returns the seconds it took."""
    started = time.perf_counter()
    write(path, serialize(engine, decision_log, state_feed))
    return time.perf_counter() - started


def load(path: Path) -> Checkpoint | None:
    """The checkpoint at `path`, or None when there is none or it cannot be read (logged: state starts empty)."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as f:
            checkpoint = pickle.load(f)  # our own file, in our own data directory
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        log.error("checkpoint %s unreadable (%s); starting with empty state", path, exc)
        return None
    if not isinstance(checkpoint, Checkpoint) or checkpoint.format != FORMAT:
        log.error("checkpoint %s has an unknown format; starting with empty state", path)
        return None
    return checkpoint
