"""Idempotency by txn_id: a re-delivered transaction gets the decision it already got, byte for byte.

At-least-once delivery (a restart after a crash, a rebalance) hands the worker transactions it has already
decided. The log remembers the most recent decisions (bounded, oldest forgotten first) with a fingerprint of
the transaction, so a true re-delivery is answered from the log, and a different transaction reusing a
txn_id is caught.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np


class Remembered(NamedTuple):
    # None: learnt from the decisions topic (decided by another worker, whose state this one may not hold);
    # set: decided or recorded here, and the feature state holds the transaction
    fingerprint: int | None
    decision: bytes
    alerted: bool


_FINGERPRINT, _DECISION, _ALERTED = itemgetter(0), itemgetter(1), itemgetter(2)


class DecisionLog:
    def __init__(self, capacity: int = 200_000) -> None:
        self.puts = 0  # decisions remembered since this process started (the worker checkpoints by it)
        self._entries: OrderedDict[str, tuple[int | None, bytes, bool]] = OrderedDict()
        self.resize(capacity)  # checks it and sets self.capacity

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, txn_id: str) -> Remembered | None:
        entry = self._entries.get(txn_id)
        return None if entry is None else Remembered._make(entry)

    def put(self, txn_id: str, entry: Remembered) -> None:
        # kept as a plain tuple of plain values, which Python's garbage collector stops tracking: 200,000
        # tracked named tuples made every full collection pause the worker for about 0.1 s
        self._entries[txn_id] = tuple(entry)
        self.puts += 1
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def put_many(
        self, txn_ids: Sequence[str], fingerprints: Iterable[int], decisions: Iterable[bytes], alerted: Iterable[bool]
    ) -> None:
        """`put` for a batch of distinct txn_ids not yet remembered (a batch's new decisions), in order: a few C
        calls instead of a Python call per decision."""
        entries = self._entries
        entries.update(zip(txn_ids, zip(fingerprints, decisions, alerted, strict=True), strict=True))
        self.puts += len(txn_ids)
        for _ in range(len(entries) - self.capacity):
            entries.popitem(last=False)

    def resize(self, capacity: int) -> None:
        """Remember at most `capacity` decisions from now on (the oldest go first)."""
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        while len(self._entries) > capacity:
            self._entries.popitem(last=False)

    # --- pickling: as columns ------------------------------------------------------------------------------
    # A checkpoint stops the worker while it is serialized. Pickled as named tuples, 100,000 decisions took
    # 0.35 s; as a list of ids, a few arrays and one joined buffer of decisions, less than half of that.

    def __getstate__(self) -> dict[str, object]:
        entries = self._entries.values()
        n = len(entries)
        decisions = list(map(_DECISION, entries))
        return {
            "capacity": self.capacity,
            "txn_ids": list(self._entries),
            "fingerprints": np.array([f or 0 for f in map(_FINGERPRINT, entries)], np.uint64),
            "learnt": np.fromiter((f is None for f in map(_FINGERPRINT, entries)), np.bool_, n),
            "alerted": np.fromiter(map(_ALERTED, entries), np.bool_, n),
            "lengths": np.fromiter(map(len, decisions), np.int64, n),
            "decisions": b"".join(decisions),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.capacity = state["capacity"]
        self.puts = 0
        blob: bytes = state["decisions"]
        ends = np.cumsum(state["lengths"]).tolist()
        starts = [0, *ends[:-1]] if ends else []
        learnt = state["learnt"].tolist()
        fingerprints = [
            None if was_learnt else f for f, was_learnt in zip(state["fingerprints"].tolist(), learnt, strict=True)
        ]
        decisions = (blob[start:end] for start, end in zip(starts, ends, strict=True))
        remembered = zip(fingerprints, decisions, state["alerted"].tolist(), strict=True)
        self._entries = OrderedDict(zip(state["txn_ids"], remembered, strict=True))
