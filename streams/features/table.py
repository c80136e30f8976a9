"""The account index: the 64-bit digest of an account (streams/features/digest.py) -> its row, for a whole batch
in one numba call.

Open addressing with linear probing over a power-of-two array of int32 rows (-1: empty), at most 70 % full;
the digests themselves are kept per row (`keys`), so a slot costs 4 bytes and the table 6 to 12 bytes per
account on top of the digest. A new account takes a released row if there is one, else the next row; a row
never changes while its account is in the table. The table is rebuilt from `keys` when a checkpoint is
loaded (it is not written).

Rows of forgotten accounts (streams/features/kernels.py, `sweep_idle`) are released: their slot is deleted by
shifting the rest of its probe run back (no tombstones, so lookups stay as short as in a table that never had
the key), and the row goes on a free list chained through `keys`. Digests are odd, so a released row's key is
even: (next released row + 1) * 2, 0 at the end of the list.

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
        self.keys = np.zeros(capacity, np.int64)  # the digest of each row's account (even: a released row)
        self.n = 0  # rows handed out so far, released ones included: the account columns in use
        self.free = EMPTY  # the latest released row, head of the free list
        self.nfree = 0
        self.slots = np.full(MIN_SLOTS, EMPTY, np.int32)

    def __len__(self) -> int:
        """Accounts in the table."""
        return self.n - self.nfree

    def rows(self, digests: np.ndarray) -> np.ndarray:
        """The row of each digest (int64), new ones getting released rows first, then the next rows; `keys` may
        be replaced by a longer array (its length is the capacity the account columns should have)."""
        needed = len(self) + digests.shape[0]
        if needed > MAX_LOAD * self.slots.shape[0]:
            size = self.slots.shape[0]
            while needed > MAX_LOAD * size:
                size *= 2
            self.slots = _rehash(self.keys, self.n, size)
        rows_needed = self.n + max(0, digests.shape[0] - self.nfree)  # released rows are taken first
        if rows_needed > self.keys.shape[0]:
            keys = np.zeros(grown(self.keys.shape[0], rows_needed), np.int64)
            keys[: self.n] = self.keys[: self.n]
            self.keys = keys
        out = np.empty(digests.shape[0], np.int64)
        self.n, self.free, self.nfree = _rows(self.slots, self.keys, self.n, self.free, self.nfree, digests, out)
        return out

    def release(self, rows: np.ndarray) -> None:
        """Take these rows' accounts out of the table; the rows are reused by the next new accounts. The caller
        resets their columns first (a new account expects a fresh record)."""
        self.free, self.nfree = _release(self.slots, self.keys, rows, self.free, self.nfree)

    def find(self, digest: int) -> int | None:
        """The row of one digest, None if the table has no such account."""
        row = _find(self.slots, self.keys, np.int64(digest))
        return None if row == EMPTY else int(row)

    def __getstate__(self) -> dict[str, object]:
        return {"keys": self.keys[: self.n].copy(), "n": self.n}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.keys = state["keys"]  # type: ignore[assignment]
        self.n = int(state["n"])  # type: ignore[call-overload]
        self.free, self.nfree = _relink(self.keys, self.n)
        size = MIN_SLOTS
        while len(self) > MAX_LOAD * size:
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
def _rows(slots, keys, n, free, nfree, digests, out):
    mask = slots.shape[0] - 1
    for i in range(digests.shape[0]):
        d = digests[i]
        s = _slot(d, mask)
        while True:
            r = slots[s]
            if r == EMPTY:
                if free != EMPTY:
                    r = free
                    free = (keys[r] >> 1) - 1
                    nfree -= 1
                else:
                    r = n
                    n += 1
                slots[s] = r
                keys[r] = d
                out[i] = r
                break
            if keys[r] == d:
                out[i] = r
                break
            s = (s + 1) & mask
    return n, free, nfree


@njit(cache=True)
def _release(slots, keys, rows, free, nfree):
    mask = slots.shape[0] - 1
    for k in range(rows.shape[0]):
        r = rows[k]
        i = _slot(keys[r], mask)
        while slots[i] != r:
            i = (i + 1) & mask
        # backward shift: move each later entry of the probe run whose home is not in (i, j] into the hole
        j = i
        while True:
            j = (j + 1) & mask
            other = slots[j]
            if other == EMPTY:
                break
            home = _slot(keys[other], mask)
            stays = (i < home <= j) if i <= j else (i < home or home <= j)
            if not stays:
                slots[i] = other
                i = j
        slots[i] = EMPTY
        keys[r] = (free + 1) << 1
        free = r
        nfree += 1
    return free, nfree


@njit(cache=True)
def _relink(keys, n):
    """The free list of a loaded table: its released rows (even keys), chained in row order."""
    free = EMPTY
    nfree = 0
    for r in range(n - 1, -1, -1):
        if keys[r] & 1 == 0:
            keys[r] = (free + 1) << 1
            free = r
            nfree += 1
    return free, nfree


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
        if keys[r] & 1 == 0:  # released
            continue
        s = _slot(keys[r], mask)
        while slots[s] != EMPTY:
            s = (s + 1) & mask
        slots[s] = r
    return slots
