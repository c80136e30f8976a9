"""Columnar per-account state: numpy arrays the numba kernels (streams/features/kernels.py) read and update.

- `acc_i` / `acc_mean`: one row per account (seen, outgoing count and running mean, latest outgoing and latest
  activity time, opening date, the heads of its chains, how many payees and devices it knows).
- `acc_inmax`: per account, the largest inflow of each of the last four 10-day periods (their period numbers
  are in `acc_i`), for payee.amount_ratio_to_largest_inflow_30d.
- `tr_i` / `tr_amount`: a pool of transfer slots. Each account chains its outgoing and incoming transfers of the
  last 24 h plus the allowed lateness, newest first; pruned slots go back to a free list.
- `kn_i` / `kn_largest`: a pool of "known" entries chained per account: payees it paid (first, last time,
  largest amount) and devices it used (last time), each capped with least-recently-used eviction.

Accounts are numbered in order of first sight (`index`). Arrays grow by doubling; a checkpoint pickles them as
raw buffers, trimmed to the rows in use, which is what makes saving a million accounts fast.
"""

from __future__ import annotations

import hashlib

import numpy as np

from streams.features.kernels import (
    A_DEV_HEAD,
    A_DEV_N,
    A_IN_HEAD,
    A_IN_PERIOD,
    A_KNOWN_HEAD,
    A_KNOWN_N,
    A_LAST_ACT,
    A_LAST_OUT,
    A_OPENED,
    A_OUT_COUNT,
    A_OUT_HEAD,
    A_SEEN,
    ACCOUNT_FIELDS,
    END,
    INFLOW_PERIODS,
    K_FIRST,
    K_KEY,
    K_LAST,
    K_NEXT,
    KNOWN_FIELDS,
    NONE,
    T_NEW_PAYEE,
    T_NEXT,
    T_OTHER,
    T_TS,
    T_TXN,
    TRANSFER_FIELDS,
    compact,
)


def stable_hash(text: str) -> int:
    """A 64-bit digest that is the same in every process (Python's hash() of text is not): txn ids and
    device ids are kept as these."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True) | 1


class AccountStore:
    def __init__(self, accounts: int = 1024, transfers: int = 4096, known: int = 4096) -> None:
        self.index: dict[str, int] = {}
        self.acc_i = _account_rows(accounts)
        self.acc_mean = np.zeros(accounts, np.float64)
        self.acc_inmax = np.zeros((accounts, INFLOW_PERIODS), np.float64)
        self.tr_i = np.zeros((transfers, TRANSFER_FIELDS), np.int64)
        self.tr_amount = np.zeros(transfers, np.float64)
        self.tr_free = np.arange(transfers - 1, -1, -1, dtype=np.int64)
        self.kn_i = np.zeros((known, KNOWN_FIELDS), np.int64)
        self.kn_largest = np.zeros(known, np.float64)
        self.kn_free = np.arange(known - 1, -1, -1, dtype=np.int64)
        self.mark = np.zeros(accounts, np.int64)
        # watermark, free transfer slots, free known entries, next known sequence number, mark stamp
        self.counters = np.array([0, transfers, known, 0, 0], np.int64)

    def __len__(self) -> int:
        return len(self.index)

    # --- numbering and room -------------------------------------------------------------------------------

    def numbers(self, accounts: list[str]) -> np.ndarray:
        """The row of each account, new accounts getting the next free rows."""
        index = self.index
        rows = [index.get(a, -1) for a in accounts]
        if -1 in rows:
            for k, a in enumerate(accounts):
                if rows[k] == -1:
                    rows[k] = index.setdefault(a, len(index))
            self._grow_accounts(len(index))
        return np.array(rows, np.int64)

    def make_room(self, transactions: int) -> None:
        """Enough free slots for a batch: two transfers and two known entries per transaction."""
        if self.counters[1] < 2 * transactions:
            self.tr_i, self.tr_amount, self.tr_free = _grow_pool(
                self.tr_i, self.tr_amount, self.tr_free, self.counters, 1, 2 * transactions
            )
        if self.counters[2] < 2 * transactions:
            self.kn_i, self.kn_largest, self.kn_free = _grow_pool(
                self.kn_i, self.kn_largest, self.kn_free, self.counters, 2, 2 * transactions
            )

    def _grow_accounts(self, needed: int) -> None:
        size = self.acc_i.shape[0]
        if needed <= size:
            return
        new = max(needed, 2 * size)
        acc_i = _account_rows(new)
        acc_i[:size] = self.acc_i
        self.acc_i = acc_i
        self.acc_mean = np.concatenate([self.acc_mean, np.zeros(new - size)])
        self.acc_inmax = np.concatenate([self.acc_inmax, np.zeros((new - size, INFLOW_PERIODS))])
        self.mark = np.concatenate([self.mark, np.zeros(new - size, np.int64)])

    # --- reading the state back (tests, tools) ----------------------------------------------------------

    def account(self, account: str) -> dict[str, object] | None:
        """One account's state in plain Python (for tests and debugging), None if never seen."""
        a = self.index.get(account)
        if a is None or self.acc_i[a, A_SEEN] != 1:
            return None
        names = self._names()
        row = self.acc_i[a]

        def chain(head: int) -> list[tuple[int, float, str, int, bool]]:
            out = []
            s = head
            while s != END:
                t = self.tr_i[s]
                out.append((int(t[T_TS]), float(self.tr_amount[s]), names[int(t[T_OTHER])], int(t[T_TXN]),
                            bool(t[T_NEW_PAYEE])))  # fmt: skip
                s = int(t[T_NEXT])
            return out[::-1]  # oldest first

        def known(head: int, key_name: bool) -> dict[object, tuple[int, int, float]]:
            out: dict[object, tuple[int, int, float]] = {}
            e = head
            while e != END:
                k = self.kn_i[e]
                key = names[int(k[K_KEY])] if key_name else int(k[K_KEY])
                out[key] = (int(k[K_FIRST]), int(k[K_LAST]), float(self.kn_largest[e]))
                e = int(k[K_NEXT])
            return out

        def time(col: int) -> int | None:
            return None if row[col] == NONE else int(row[col])

        return {
            "outflows": chain(int(row[A_OUT_HEAD])),
            "inflows": chain(int(row[A_IN_HEAD])),
            "out_count": int(row[A_OUT_COUNT]),
            "out_mean": float(self.acc_mean[a]),
            "last_out_ms": time(A_LAST_OUT),
            "last_activity_ms": time(A_LAST_ACT),
            "opened_ms": time(A_OPENED),
            "known_payees": known(int(row[A_KNOWN_HEAD]), True),
            "known_devices": {k: v[1] for k, v in known(int(row[A_DEV_HEAD]), False).items()},
            "largest_inflows": [
                None if row[A_IN_PERIOD + k] == NONE else (int(row[A_IN_PERIOD + k]), float(self.acc_inmax[a, k]))
                for k in range(INFLOW_PERIODS)
            ],
        }

    def _names(self) -> dict[int, str]:
        """Account of each row, kept between calls (rows are never renumbered; new ones are appended)."""
        names: dict[int, str] = getattr(self, "_names_by_row", {})
        if len(names) != len(self.index):
            names = self._names_by_row = {row: name for name, row in self.index.items()}
        return names

    def accounts(self) -> list[str]:
        """Accounts that took part in a transfer."""
        seen = self.acc_i[: len(self.index), A_SEEN] == 1
        return [name for name, row in self.index.items() if seen[row]]

    def nbytes(self) -> int:
        """Memory held by the arrays (the account index's strings come on top)."""
        return sum(
            a.nbytes
            for a in (self.acc_i, self.acc_mean, self.acc_inmax, self.tr_i, self.tr_amount, self.tr_free,
                      self.kn_i, self.kn_largest, self.kn_free, self.mark)
        )  # fmt: skip

    # --- pickling: only the rows in use -----------------------------------------------------------------

    def __getstate__(self) -> dict[str, object]:
        # live slots only, renumbered (free slots and spare capacity are not written)
        n = len(self.index)
        acc_i, tr_i, tr_amount, kn_i, kn_largest = compact(
            self.acc_i, n, self.tr_i, self.tr_amount, self.kn_i, self.kn_largest
        )
        return {
            "index": self.index,
            "acc_i": acc_i,
            "acc_mean": self.acc_mean[:n].copy(),
            "acc_inmax": self.acc_inmax[:n].copy(),
            "tr_i": tr_i,
            "tr_amount": tr_amount,
            "kn_i": kn_i,
            "kn_largest": kn_largest,
            "counters": self.counters.copy(),
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.tr_free = np.zeros(0, np.int64)  # every slot is live; make_room adds free ones
        self.kn_free = np.zeros(0, np.int64)
        self.counters[1] = self.counters[2] = 0
        self.counters[4] = 0
        self.mark = np.zeros(self.acc_i.shape[0], np.int64)
        self._grow_accounts(max(self.acc_i.shape[0], 1024))
        self.make_room(1024)


def _account_rows(n: int) -> np.ndarray:
    rows = np.zeros((n, ACCOUNT_FIELDS), np.int64)
    rows[:, [A_LAST_OUT, A_LAST_ACT, A_OPENED]] = NONE
    rows[:, A_IN_PERIOD : A_IN_PERIOD + INFLOW_PERIODS] = NONE
    rows[:, [A_OUT_HEAD, A_IN_HEAD, A_KNOWN_HEAD, A_DEV_HEAD]] = END
    rows[:, [A_SEEN, A_OUT_COUNT, A_KNOWN_N, A_DEV_N]] = 0
    return rows


def _grow_pool(
    ints: np.ndarray, floats: np.ndarray, free: np.ndarray, counters: np.ndarray, free_at: int, needed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = ints.shape[0]
    new = max(2 * size, size + needed)
    ints = np.concatenate([ints, np.zeros((new - size, ints.shape[1]), np.int64)])
    floats = np.concatenate([floats, np.zeros(new - size)])
    n_free = int(counters[free_at])
    grown = np.empty(new, np.int64)
    grown[: new - size] = np.arange(new - 1, size - 1, -1)  # new slots at the bottom of the stack
    grown[new - size : new - size + n_free] = free[:n_free]
    counters[free_at] = n_free + new - size
    return ints, floats, grown
