"""Idempotency by txn_id: a re-delivered transaction gets the decision it already got, byte for byte.

At-least-once delivery (a restart after a crash, a rebalance) hands the worker transactions it has already
decided. The log remembers the most recent decisions (bounded, oldest forgotten first) with a fingerprint of
the transaction, so a true re-delivery is answered from the log, and a different transaction reusing a
txn_id is caught.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple


class Remembered(NamedTuple):  # a tuple: a checkpoint pickles 200,000 of them in C, not field by field
    fingerprint: int | None  # None: learnt from the decisions topic (decided by another worker)
    decision: bytes
    alerted: bool


class DecisionLog:
    def __init__(self, capacity: int = 200_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[str, Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, txn_id: str) -> Remembered | None:
        return self._entries.get(txn_id)

    def put(self, txn_id: str, entry: Remembered) -> None:
        self._entries[txn_id] = entry
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
