"""The account index: the 64-bit digest of an account (streams/features/digest.py) -> its row, for a whole batch
in one numba call.

Open addressing with linear probing over a power-of-two array of int32 rows (-1: empty), at most 70 % full;
the digests themselves are kept per row (`keys`), so a slot costs 4 bytes and the table 6 to 12 bytes per
account on top of the digest. Rows are numbered in order of first sight and never change. The table is
rebuilt from `keys` when a checkpoint is loaded (it is not written).

Two different accounts with the same digest would share a row. With 64-bit digests of n accounts the chance
of any such pair is about n^2 / 2^65: 3e-8 for a million accounts, 3e-6 for ten million.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EMPTY = -1
MIN_SLOTS = 1024
MAX_LOAD = 0.7  # linear probing stays short up to about this load (2.2 probes for a hit, 6 for a miss)


class AccountTable:
    def __init__(self, capacity: int = 1024) -> None:
        self.keys = np.zeros(capacity, np.int64)  # the digest of each row's account
        self.n = 0
        self.slots = np.full(MIN_SLOTS, EMPTY, np.int32)

    def __len__(self) -> int:
        return self.n

    def rows(self, digests: np.ndarray) -> np.ndarray:
        """The row of each digest (int64), new ones getting the next rows; `keys` may be replaced by a longer
        array (its length is the capacity the account columns should have)."""
        needed = self.n + digests.shape[0]
        if needed > MAX_LOAD * self.slots.shape[0]:
            size = self.slots.shape[0]
            while needed > MAX_LOAD * size:
                size *= 2
            self.slots = _rehash(self.keys, self.n, size)
        if needed > self.keys.shape[0]:
            keys = np.zeros(grown(self.keys.shape[0], needed), np.int64)
            keys[: self.n] = self.keys[: self.n]
            self.keys = keys
        out = np.empty(digests.shape[0], np.int64)
        self.n = _rows(self.slots, self.keys, self.n, digests, out)
        return out

    def find(self, digest: int) -> int | None:
        """The row of one digest, None if the table has no such account."""
        row = _find(self.slots, self.keys, np.int64(digest))
        return None if row == EMPTY else int(row)

    def __getstate__(self) -> dict[str, object]:
        return {"keys": self.keys[: self.n].copy(), "n": self.n}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.keys = state["keys"]  # type: ignore[assignment]
        self.n = int(state["n"])  # type: ignore[call-overload]
        size = MIN_SLOTS
        while self.n > MAX_LOAD * size:
            size *= 2
        self.slots = _rehash(self.keys, self.n, size)


def grown(size: int, needed: int) -> int:
    """The new capacity of an array that must hold `needed` rows: an eighth more than needed, so the spare
    capacity stays small (growing copies the array, a cost spread over the rows added since)."""
    return max(needed, size + size // 8 + 1024, needed + needed // 8)


@njit(cache=True)
def _slot(digest, mask):
    return (digest >> 1) & mask  # bit 0 of a digest is always set


@njit(cache=True)
def _rows(slots, keys, n, digests, out):
    mask = slots.shape[0] - 1
    for i in range(digests.shape[0]):
        d = digests[i]
        s = _slot(d, mask)
        while True:
            r = slots[s]
            if r == EMPTY:
                slots[s] = n
                keys[n] = d
                out[i] = n
                n += 1
                break
            if keys[r] == d:
                out[i] = r
                break
            s = (s + 1) & mask
    return n


@njit(cache=True)
def _find(slots, keys, digest):
    mask = slots.shape[0] - 1
    s = _slot(digest, mask)
    while slots[s] != EMPTY:
        if keys[slots[s]] == digest:
            return slots[s]
        s = (s + 1) & mask
    return EMPTY


@njit(cache=True)
def _rehash(keys, n, size):
    slots = np.full(size, EMPTY, np.int32)
    mask = size - 1
    for r in range(n):
        s = _slot(keys[r], mask)
        while slots[s] != EMPTY:
            s = (s + 1) & mask
        slots[s] = r
    return slots
