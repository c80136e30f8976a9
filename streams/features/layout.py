"""The record layouts of the columnar feature state (streams/features/store.py), shared by the numba kernels.

Each table is a packed numpy structured array: one account is one 65-byte record, one transfer 41 bytes, a
known payee 36, a known device 20, and an account that has received money has a 48-byte inflow record. Fields
are as narrow as their values allow without changing a feature: event times, counts that can grow without
bound, txn, account and device digests and amounts are 64 bits; pool indices (chain heads and links),
transfers' account rows and inflow period numbers (ts // 10 days) are 32 bits; the known-entry counts (at
most 257) 16.

A transfer is one slot shared by the payer's outflow chain and the payee's inflow chain (`next_out`,
`next_in`); its `flags` say which chains still hold it, and the slot is freed when neither does. Free slots
are chained through `next_out` (transfers), `next` (known entries) or `period[0]` (inflow records of
forgotten accounts), so the free lists cost no memory.
"""

from __future__ import annotations

import numpy as np

NONE = np.iinfo(np.int64).min  # a missing time (never happened / not given)
NONE32 = np.iinfo(np.int32).min  # a missing inflow period
END = -1  # end of a chain
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MINUTE_MS = 60_000

# payee.amount_ratio_to_largest_inflow_30d: the largest inflow of each of the last INFLOW_PERIODS calendar
# periods, in an INFLOW record (only accounts that received money have one: most accounts of a day only pay).
# A period p (ts // INFLOW_PERIOD_MS) goes to slot p % INFLOW_PERIODS (`period`, `inmax`), replacing an older
# one there; an inflow of a period older than the one in its slot is not kept.
INFLOW_PERIODS = 4
INFLOW_PERIOD_MS = 10 * DAY_MS

ACCOUNT = np.dtype(
    [
        ("last_out", "i8"),  # latest outgoing event time ever seen (NONE)
        ("last_act", "i8"),  # latest event time in either direction (NONE)
        ("opened", "i8"),  # opening date, epoch ms (NONE)
        ("out_count", "i8"),  # all-time outgoing transfers, for the running mean
        ("mean", "f8"),  # running mean outgoing amount
        ("inflows", "i4"),  # its INFLOW record (END: none yet)
        ("out_head", "i4"),  # newest outgoing transfer (END)
        ("in_head", "i4"),  # newest incoming transfer (END)
        ("known_head", "i4"),  # newest known payee (END); the chain is in creation order, newest first
        ("dev_head", "i4"),  # newest known device (END)
        ("known_n", "i2"),
        ("dev_n", "i2"),
        ("seen", "i1"),  # took part in a transfer
    ]
)
TRANSFER = np.dtype(
    [
        ("ts", "i8"),
        ("txn", "i8"),  # digest of the txn_id (re-deliveries are recognised by it)
        ("amount", "f8"),
        ("payer", "i4"),  # account rows
        ("payee", "i4"),
        ("next_out", "i4"),  # next older transfer in the payer's outflow chain; the free list's link
        ("next_in", "i4"),  # next older transfer in the payee's inflow chain
        ("flags", "i1"),  # NEW_PAYEE | IN_OUT | IN_IN
    ]
)
NEW_PAYEE, IN_OUT, IN_IN = 1, 2, 4  # the payee was new for the payer then; still in the out / in chain
INFLOW = np.dtype(
    [
        ("inmax", "f8", (INFLOW_PERIODS,)),  # largest inflow of the period in `period` (same slot)
        ("period", "i4", (INFLOW_PERIODS,)),  # NONE32: no inflow kept in the slot
    ]
)
# key: digest of the payee's account (not its row: a payer remembers a payee whose row was released, see
# kernels.py `sweep_idle`) or of the device id
PAYEE = np.dtype([("first", "i8"), ("last", "i8"), ("largest", "f8"), ("key", "i8"), ("next", "i4")])
DEVICE = np.dtype([("key", "i8"), ("last", "i8"), ("next", "i4")])

# the `counters` array: newest transaction event time, then the head and length of each free list, then the
# stamp of the scratch `mark` array (distinct counts), then the INFLOW records handed out so far and the head
# of the freed ones (not counted: `make_room` only needs the never-used ones)
WATERMARK, TR_FREE, TR_NFREE, KP_FREE, KP_NFREE, KD_FREE, KD_NFREE, STAMP, INF_N, INF_FREE = range(10)
COUNTERS = 10


def new_accounts(n: int) -> np.ndarray:
    acc = np.zeros(n, ACCOUNT)
    acc["last_out"] = acc["last_act"] = acc["opened"] = NONE
    acc["inflows"] = acc["out_head"] = acc["in_head"] = acc["known_head"] = acc["dev_head"] = END
    return acc


def new_inflows(n: int) -> np.ndarray:
    inf = np.zeros(n, INFLOW)
    inf["period"] = NONE32
    return inf
