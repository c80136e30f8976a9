"""The record layouts of the columnar feature state (streams/features/store.py), shared by the numba kernels.

Each table is a packed numpy structured array: one account is one 56-byte record, one transfer 40 bytes, a
known payee 36, a known device 20, and an account that has received money has a 48-byte inflow record. Fields
are as narrow as their values allow without changing a feature: event times, txn, account and device digests
and amounts are 64 bits (times are read to the millisecond, and a known entry's times can be any event time of
the last 400 days and more); pool indices (chain heads and links), transfers' account rows and inflow period
numbers (ts // 10 days) are 32 bits; so are the opening date, kept in days since the epoch (the engine gives
midnights UTC, so days are exact and reach far beyond any date), and the all-time outgoing count, which stops
at OUT_COUNT_MAX (2^31 - 1 transfers: after that the running mean moves by 1/OUT_COUNT_MAX of the difference,
an account no bank has). The known-payee count (at most 257: the cap of 256 plus the one added before the
least recently used is evicted) is 16 bits, the known-device count (at most 17) 8. Account and transfer
records are multiples of 8 bytes, so their 64-bit fields stay aligned in every record.

A transfer is one slot shared by the payer's outflow chain and the payee's inflow chain (`next_out`,
`next_in`). A link is GONE once the transfer has left that chain (pruned), and the slot is freed when it has
left both. Free slots are chained through `next_in` for transfers (their `next_out` is FREE), `next` for known
entries and `period[0]` for the inflow records of forgotten accounts, so the free lists cost no memory. Whether
the payee was new for the payer then is bit 0 of `txn`: digests are odd (streams/features/digest.py), so the
bit carries nothing of the txn_id, and `txn | 1` is its digest.
"""

from __future__ import annotations

import numpy as np

NONE = np.iinfo(np.int64).min  # a missing time (never happened / not given)
NONE32 = np.iinfo(np.int32).min  # a missing inflow period or opening date
OUT_COUNT_MAX = np.iinfo(np.int32).max  # where an account's outgoing count stops
KNOWN_CAP_MAX = np.iinfo(np.int16).max - 1  # the largest known-payee cap `known_n` holds (with the one over)
DEVICE_CAP_MAX = np.iinfo(np.int8).max - 1  # likewise for the device cap and `dev_n`
END = -1  # end of a chain
GONE = -2  # a transfer's link once it has left that chain
FREE = -3  # `next_out` of a free transfer slot
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
        ("mean", "f8"),  # running mean outgoing amount
        ("opened", "i4"),  # opening date, days since the epoch (NONE32)
        ("out_count", "i4"),  # all-time outgoing transfers, for the running mean (stops at OUT_COUNT_MAX)
        ("inflows", "i4"),  # its INFLOW record (END: none yet)
        ("out_head", "i4"),  # newest outgoing transfer (END)
        ("in_head", "i4"),  # newest incoming transfer (END)
        ("known_head", "i4"),  # newest known payee (END); the chain is in creation order, newest first
        ("dev_head", "i4"),  # newest known device (END)
        ("known_n", "i2"),
        ("dev_n", "i1"),
        ("seen", "i1"),  # took part in a transfer
    ]
)
TRANSFER = np.dtype(
    [
        ("ts", "i8"),
        ("txn", "i8"),  # digest of the txn_id (re-deliveries are recognised by it), bit 0: NEW_PAYEE
        ("amount", "f8"),
        ("payer", "i4"),  # account rows
        ("payee", "i4"),
        ("next_out", "i4"),  # next older transfer in the payer's outflow chain (GONE: left it; FREE)
        ("next_in", "i4"),  # next older transfer in the payee's inflow chain (GONE: left it); the free list's link
    ]
)
NEW_PAYEE = 1  # bit 0 of a transfer's `txn`: the payee was new for the payer then
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
# latest stamp of the distinct-count scratch (`new_scratch`), then the INFLOW records handed out so far and the head
# of the freed ones (not counted: `make_room` only needs the never-used ones)
WATERMARK, TR_FREE, TR_NFREE, KP_FREE, KP_NFREE, KD_FREE, KD_NFREE, STAMP, INF_N, INF_FREE = range(10)
COUNTERS = 10


def new_accounts(n: int) -> np.ndarray:
    acc = np.zeros(n, ACCOUNT)
    acc["last_out"] = acc["last_act"] = NONE
    acc["opened"] = NONE32
    acc["inflows"] = acc["out_head"] = acc["in_head"] = acc["known_head"] = acc["dev_head"] = END
    return acc


def new_inflows(n: int) -> np.ndarray:
    inf = np.zeros(n, INFLOW)
    inf["period"] = NONE32
    return inf


# The distinct counts (payer.new_payees_24h, payee.distinct_payers_*) put a window's accounts in a small hash set
# (kernels.py, `_distinct`): row 0 the account rows, row 1 the stamp of the count that put each there (int64: a
# stamp is never reused). The store keeps one of SCRATCH_SLOTS slots; a window of more than half as many
# transfers gets a larger one for the rest of its batch. It replaced a 4-byte mark per account.
SCRATCH_SLOTS = 1024


def new_scratch(slots: int = SCRATCH_SLOTS) -> np.ndarray:
    return np.zeros((2, slots), np.int64)
