"""Columnar per-account state: numpy record arrays the numba kernels (streams/features/kernels.py) read and
update (the layouts: streams/features/layout.py).

- `acc`: one record per account (seen, outgoing count and running mean, latest outgoing and latest activity
  time, opening date, the heads of its chains, how many payees and devices it knows).
- `inf`: for each account that received money, the largest inflow of each of the last four 10-day periods
  (payee.amount_ratio_to_largest_inflow_30d).
- `tr`: a pool of transfers. Each is chained into its payer's outflows and its payee's inflows (the last 24 h
  plus the allowed lateness, newest first); a transfer both chains have pruned goes back to the free list.
- `kp` / `kd`: pools of known payees (first, last time, largest amount) and devices (last time) chained per
  account, each capped with least-recently-used eviction.

Accounts are known by the 64-bit digest of their name (streams/features/digest.py) and numbered by a numba
hash table (streams/features/table.py); names are not kept. An account idle for longer than the expiry is
forgotten (`expire_idle`): its payees, devices, transfers and inflow record go back to their free lists and
its row to the table's, for new accounts; the arrays themselves do not shrink. Two accounts with the same
digest would share a row: with n accounts the chance that any two do is about n^2 / 2^65, 3e-8 for a million
accounts, 3e-6 for ten million. Arrays grow by an eighth; a checkpoint pickles them as raw buffers, trimmed to
the live rows and slots, which is what makes saving a million accounts fast.
"""

from __future__ import annotations

import numpy as np

from streams.features.compact import compact
from streams.features.digest import digest
from streams.features.kernels import sweep_idle
from streams.features.layout import (
    COUNTERS,
    DAY_MS,
    DEVICE,
    END,
    FREE,
    INF_FREE,
    INF_N,
    INFLOW_PERIODS,
    KD_FREE,
    KD_NFREE,
    KP_FREE,
    KP_NFREE,
    NEW_PAYEE,
    NONE,
    NONE32,
    PAYEE,
    TR_FREE,
    TR_NFREE,
    TRANSFER,
    new_accounts,
    new_inflows,
    new_scratch,
)
from streams.features.table import AccountTable, grown


class AccountStore:
    def __init__(self, accounts: int = 1024, transfers: int = 2048, known: int = 1024) -> None:
        self.table = AccountTable(accounts)
        self.acc = new_accounts(accounts)
        self.inf = new_inflows(accounts)
        self.mark = new_scratch()  # the distinct counts' hash set (a few KB, not per account), not state
        self.counters = np.zeros(COUNTERS, np.int64)
        self.counters[[TR_FREE, KP_FREE, KD_FREE, INF_FREE]] = END
        self.tr = np.zeros(0, TRANSFER)
        self.kp = np.zeros(0, PAYEE)
        self.kd = np.zeros(0, DEVICE)
        self.tr = self._grow_pool(self.tr, "next_in", TR_FREE, TR_NFREE, transfers)
        self.kp = self._grow_pool(self.kp, "next", KP_FREE, KP_NFREE, known)
        self.kd = self._grow_pool(self.kd, "next", KD_FREE, KD_NFREE, known)

    def __len__(self) -> int:
        """Accounts with a row: those that took part in a transfer and are not released (a forgotten account
        keeps an empty row while a transfer or a known payee still names it)."""
        return len(self.table)

    # --- numbering and room -------------------------------------------------------------------------------

    def rows(self, digests: np.ndarray) -> np.ndarray:
        """The row of each account digest, new accounts getting the next free rows."""
        rows = self.table.rows(digests)
        self._grow_accounts(self.table.keys.shape[0])
        return rows

    def make_room(self, transactions: int) -> None:
        """Enough free slots for a batch: a transfer, a known payee, a known device and an inflow record per
        transaction."""
        c = self.counters
        used = int(c[INF_N])
        if self.inf.shape[0] - used < transactions:
            inf = new_inflows(grown(self.inf.shape[0], used + transactions))
            inf[:used] = self.inf[:used]
            self.inf = inf
        if c[TR_NFREE] < transactions:
            self.tr = self._grow_pool(self.tr, "next_in", TR_FREE, TR_NFREE, transactions)
        if c[KP_NFREE] < transactions:
            self.kp = self._grow_pool(self.kp, "next", KP_FREE, KP_NFREE, transactions)
        if c[KD_NFREE] < transactions:
            self.kd = self._grow_pool(self.kd, "next", KD_FREE, KD_NFREE, transactions)

    def expire_idle(self, before_ms: int) -> int:
        """Forget the accounts whose latest activity is before `before_ms` and release the rows of forgotten
        accounts nothing names any more (kernels.py, `sweep_idle`); returns how many accounts were forgotten."""
        forgotten, rows = sweep_idle(
            self.acc, self.table.n, self.table.keys, self.inf, self.tr, self.kp, self.kd, self.counters, before_ms
        )
        self.table.release(rows)
        return int(forgotten)

    def _grow_pool(self, pool: np.ndarray, link: str, free_at: int, nfree_at: int, needed: int) -> np.ndarray:
        size = pool.shape[0]
        new = grown(size, size + needed)
        out = np.zeros(new, pool.dtype)
        out[:size] = pool
        out[link][size : new - 1] = np.arange(size + 1, new)  # the new slots, chained, on top of the free list
        out[link][new - 1] = self.counters[free_at]
        if pool.dtype == TRANSFER:
            out["next_out"][size:] = FREE  # in neither chain
        self.counters[free_at] = size
        self.counters[nfree_at] += new - size
        return out

    def _grow_accounts(self, capacity: int) -> None:
        size = self.acc.shape[0]
        if capacity <= size:
            return
        acc = new_accounts(capacity)
        acc[:size] = self.acc
        self.acc = acc

    # --- reading the state back (tests, tools) ----------------------------------------------------------

    def account(self, account: str | int) -> dict[str, object] | None:
        """One account's state in plain Python (for tests and debugging), None if never seen. `account` is its
        name or its digest; other accounts and devices appear as digests."""
        a = self.table.find(digest(account) if isinstance(account, str) else account)
        if a is None or self.acc[a]["seen"] != 1:
            return None
        keys, tr, rec = self.table.keys, self.tr, self.acc[a]
        inflows = None if rec["inflows"] == END else self.inf[rec["inflows"]]

        def chain(head: int, inflow: bool) -> list[tuple[int, float, int, int, bool]]:
            out = []
            s = head
            while s != END:
                t = tr[s]
                other = int(keys[t["payer"] if inflow else t["payee"]])
                new = not inflow and bool(t["txn"] & NEW_PAYEE)
                out.append((int(t["ts"]), float(t["amount"]), other, int(t["txn"]) | NEW_PAYEE, new))
                s = int(t["next_in"] if inflow else t["next_out"])
            return out[::-1]  # oldest first

        def known(pool: np.ndarray, head: int) -> list[np.void]:
            out = []
            e = head
            while e != END:
                out.append(pool[e])
                e = int(pool[e]["next"])
            return out

        def time(value: int) -> int | None:
            return None if value == NONE else int(value)

        return {
            "outflows": chain(int(rec["out_head"]), False),
            "inflows": chain(int(rec["in_head"]), True),
            "out_count": int(rec["out_count"]),
            "out_mean": float(rec["mean"]),
            "last_out_ms": time(rec["last_out"]),
            "last_activity_ms": time(rec["last_act"]),
            "opened_ms": None if rec["opened"] == NONE32 else int(rec["opened"]) * DAY_MS,
            "known_payees": {
                int(e["key"]): (int(e["first"]), int(e["last"]), float(e["largest"]))
                for e in known(self.kp, int(rec["known_head"]))
            },
            "known_devices": {int(e["key"]): int(e["last"]) for e in known(self.kd, int(rec["dev_head"]))},
            "largest_inflows": [
                None
                if inflows is None or inflows["period"][k] == NONE32
                else (int(inflows["period"][k]), float(inflows["inmax"][k]))
                for k in range(INFLOW_PERIODS)
            ],
        }

    def accounts(self) -> list[int]:
        """The digests of the accounts that took part in a transfer (and are not forgotten)."""
        n = self.table.n
        return self.table.keys[:n][self.acc["seen"][:n] == 1].tolist()

    def nbytes(self) -> int:
        """Memory held by the arrays (the whole state: account names are not kept)."""
        t = self.table
        return sum(a.nbytes for a in (t.keys, t.slots, self.acc, self.inf, self.mark, self.tr, self.kp, self.kd))

    # --- pickling: only the rows in use -----------------------------------------------------------------

    def __getstate__(self) -> dict[str, object]:
        # live slots only, renumbered (free slots and spare capacity are not written)
        acc, inf, tr, kp, kd = compact(self.acc, self.table.n, self.inf, self.tr, self.kp, self.kd)
        return {
            "table": self.table,
            "acc": acc,
            "inf": inf,
            "tr": tr,
            "kp": kp,
            "kd": kd,
            "watermark": int(self.counters[0]),
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.table = state["table"]  # type: ignore[assignment]
        self.acc, self.inf = state["acc"], state["inf"]  # type: ignore[assignment]
        self.tr, self.kp, self.kd = state["tr"], state["kp"], state["kd"]  # type: ignore[assignment]
        self.mark = new_scratch()
        self.counters = np.zeros(COUNTERS, np.int64)
        self.counters[0] = state["watermark"]  # type: ignore[call-overload]
        self.counters[INF_N] = self.inf.shape[0]
        self.counters[[TR_FREE, KP_FREE, KD_FREE, INF_FREE]] = END  # every slot is live; make_room adds free ones
        self._grow_accounts(max(self.table.keys.shape[0], 1024))
        self.make_room(1024)
