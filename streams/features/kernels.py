"""numba kernels of the feature engine: one call featurizes and records a whole batch, in order.

State is columnar (streams/features/store.py, record layouts in streams/features/layout.py): one record per
account, a pool of transfers chained per account (each transfer is in its payer's outflow chain and its
payee's inflow chain, newest first), and pools of known payees and devices chained per account. The kernels
follow the semantics documented in streams/features/engine.py; the test suite checks them against a
plain-Python reference on random histories (tests/unit/features).

An account idle for longer than the configured expiry is forgotten: the transaction that touches it first
resets it (`_forget`) and sees it as never seen, and `sweep_idle` forgets the others between batches and says
which rows can be released. Both compare the account's latest activity with the same horizon (newest event
time - expiry; the watermark only grows), so whether and when a sweep ran changes no feature.

Everything here is serial (NUMBA_NUM_THREADS=1): one worker process scores its partitions on one core. The
kernels stay in this one module: numba's cache does not notice a change in a function imported from another
file, so a kernel calling one from elsewhere could run stale code.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from streams.features.layout import (
    DAY_MS,
    DEVICE_CAP_MAX,
    END,
    FREE,
    GONE,
    HOUR_MS,
    INF_FREE,
    INF_N,
    INFLOW_PERIOD_MS,
    INFLOW_PERIODS,
    KD_FREE,
    KD_NFREE,
    KNOWN_CAP_MAX,
    KP_FREE,
    KP_NFREE,
    MINUTE_MS,
    NEW_PAYEE,
    NONE,
    NONE32,
    OUT_COUNT_MAX,
    STAMP,
    TR_FREE,
    TR_NFREE,
    WATERMARK,
)

# positions in the `cols` array the engine passes: the registry column of each feature the kernel writes
(
    C_PAYER_AGE,
    C_COUNT_1H,
    C_COUNT_24H,
    C_SUM_1H,
    C_SUM_24H,
    C_NEW_PAYEES_24H,
    C_DORMANT,
    C_INFLOW_30M,
    C_NEW_DEVICE,
    C_RATIO_MEAN,
    C_SECONDS_SINCE,
    C_FORWARDING,
    C_NEW_FOR_PAYER,
    C_DAYS_SINCE_FIRST,
    C_RATIO_LARGEST,
    C_PAYEE_AGE,
    C_DISTINCT_1H,
    C_DISTINCT_24H,
    C_INFLOW_24H,
    C_PASS_THROUGH,
    C_RATIO_LARGEST_INFLOW,
) = range(21)
KERNEL_FEATURES = (
    "payer.account_age_days",
    "payer.txn_count_1h",
    "payer.txn_count_24h",
    "payer.amount_sum_1h",
    "payer.amount_sum_24h",
    "payer.new_payees_24h",
    "payer.dormant_reactivated",
    "payer.inflow_30m",
    "payer.new_device",
    "payer.amount_ratio_to_mean",
    "payer.seconds_since_last_txn",
    "payer.forwarding_share_30m",
    "payee.new_for_payer",
    "payee.days_since_first_paid",
    "payee.amount_ratio_to_largest",
    "payee.account_age_days",
    "payee.distinct_payers_1h",
    "payee.distinct_payers_24h",
    "payee.inflow_24h",
    "payee.pass_through_30m",
    "payee.amount_ratio_to_largest_inflow_30d",
)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # spreads account rows over the distinct-count scratch
_NEVER = np.iinfo(np.int64).max  # a prune horizon after every transfer
W_TS, W_OTHER, W_NEW = range(3)  # rows of a window's scratch `ints`


@njit(cache=True)
def _next(tr, s, inflow):
    return tr[s].next_in if inflow else tr[s].next_out


@njit(cache=True)
def _window(tr, head, start, end, inflow, ints, amounts):
    """The transfers of a chain with start <= ts < end, oldest first, into scratch arrays: times, others and
    new-payee flags in `ints` rows W_TS, W_OTHER, W_NEW, amounts in `amounts`; `others` are the payees of an
    outflow chain, the payers of an inflow chain. Returns (ints, amounts, count): new, longer scratch arrays
    when the window does not fit.

    The chain is newest first: it is read once, newest first, and the window reversed, so sums over it run in
    time order, like the reference's."""
    n = _fill(tr, head, start, end, inflow, ints, amounts)
    if n < 0:  # the scratch is too short: count, grow, fill again
        n = 0
        s = head
        while s != END and tr[s].ts >= start:
            if tr[s].ts < end:
                n += 1
            s = _next(tr, s, inflow)
        ints = np.empty((3, 2 * n), np.int64)
        amounts = np.empty(2 * n, np.float64)
        n = _fill(tr, head, start, end, inflow, ints, amounts)
    for k in range(n // 2):
        m = n - 1 - k
        for r in range(3):
            ints[r, k], ints[r, m] = ints[r, m], ints[r, k]
        amounts[k], amounts[m] = amounts[m], amounts[k]
    return ints, amounts, n


@njit(cache=True)
def _fill(tr, head, start, end, inflow, ints, amounts):
    """The window newest first; -1 when it does not fit."""
    capacity = amounts.shape[0]
    n = 0
    s = head
    while s != END:
        ts = tr[s].ts
        if ts < start:
            break
        if ts < end:
            if n == capacity:
                return -1
            ints[W_TS, n] = ts
            ints[W_OTHER, n] = tr[s].payer if inflow else tr[s].payee
            ints[W_NEW, n] = tr[s].txn & NEW_PAYEE
            amounts[n] = tr[s].amount
            n += 1
        s = _next(tr, s, inflow)
    return n


@njit(cache=True)
def _opened(given, acc, account, seen):
    """The opening date (epoch ms) the transaction gives, else the one the account has (a given 0 counts as
    none, as in the reference's `given or stored`)."""
    if given == NONE or given == 0:
        if not seen or acc[account].opened == NONE32:
            return NONE
        return acc[account].opened * np.int64(DAY_MS)
    return given


@njit(cache=True)
def _find_known(pool, head, key):
    e = head
    while e != END:
        if pool[e].key == key:
            return e
        e = pool[e].next
    return END


@njit(cache=True)
def _distinct(ints, n, since, new_only, scratch, counters):
    """How many different accounts (`W_OTHER`) the window's first `n` transfers with a time >= `since` name
    (with `new_only`, among those flagged new payees). `scratch` is a hash set of at least 2 n slots (linear
    probing): a slot belongs to this count when its stamp is this count's, so it is never cleared."""
    counters[STAMP] += 1
    stamp = counters[STAMP]
    mask = scratch.shape[1] - 1
    count = 0
    for k in range(n):
        if ints[W_TS, k] < since or (new_only and ints[W_NEW, k] == 0):
            continue
        o = ints[W_OTHER, k]
        s = np.int64((np.uint64(o) * _GOLDEN) >> np.uint64(32)) & mask
        while scratch[1, s] == stamp and scratch[0, s] != o:
            s = (s + 1) & mask
        if scratch[1, s] != stamp:
            scratch[0, s] = o
            scratch[1, s] = stamp
            count += 1
    return count


@njit(cache=True)
def _roomy(scratch, n):
    """`scratch`, or a larger one (powers of two) when a window of `n` transfers would fill it over half."""
    slots = scratch.shape[1]
    if 2 * n <= slots:
        return scratch
    while 2 * n > slots:
        slots *= 2
    return np.zeros((2, slots), np.int64)


@njit(cache=True)
def featurize_and_record(
    rows,
    cols,
    ts,
    amount,
    payer,
    payee,
    device,
    payer_opened,
    payee_opened,
    txn,
    keys,
    acc,
    inf,
    tr,
    kp,
    kd,
    counters,
    mark,
    dormant_ms,
    lateness_ms,
    idle_ms,
    max_known_payees,
    max_known_devices,
):
    """Features of each transaction of the batch (it sees the ones before it), then its record in the state.

    `keys` are the digests of the account rows (known payees are kept by digest, so that they outlive the
    payee's row). The caller makes sure the pools have a free transfer, known payee, known device and inflow
    record per transaction. `mark` is the distinct-count scratch (layout.py, `new_scratch`). Opening dates are
    epoch ms of midnights UTC (the record keeps days)."""
    if max_known_payees > KNOWN_CAP_MAX or max_known_devices > DEVICE_CAP_MAX:
        raise ValueError("known-payee or device cap above what the account record counts (layout.py)")
    n_rows = ts.shape[0]
    for i in range(n_rows):
        for given in (payer_opened[i], payee_opened[i]):
            if given != NONE and given % DAY_MS != 0:
                raise ValueError("an opening date that is not a midnight UTC (the account record keeps days)")
    scratch = mark
    # two scratch windows (the payee's inflows and outflows are needed together), grown by _window when short
    ints_a = np.empty((3, 256), np.int64)
    amounts_a = np.empty(256, np.float64)
    ints_b = np.empty((3, 256), np.int64)
    amounts_b = np.empty(256, np.float64)
    for i in range(n_rows):
        t = ts[i]
        a = payer[i]
        b = payee[i]
        row = rows[i]
        # an account idle since before the horizon is new again (the watermark as this transaction makes it)
        horizon = max(counters[WATERMARK], t) - idle_ms
        if acc[a].seen == 1 and acc[a].last_act < horizon:
            _forget(acc, inf, tr, kp, kd, counters, a)
        if acc[b].seen == 1 and acc[b].last_act < horizon:
            _forget(acc, inf, tr, kp, kd, counters, b)
        # --- payer ---------------------------------------------------------------------------------------
        payer_seen = acc[a].seen == 1
        opened = _opened(payer_opened[i], acc, a, payer_seen)
        if opened != NONE:
            row[cols[C_PAYER_AGE]] = (t - opened) / DAY_MS
        if not payer_seen:
            row[cols[C_COUNT_1H]] = 0.0
            row[cols[C_COUNT_24H]] = 0.0
            row[cols[C_SUM_1H]] = 0.0
            row[cols[C_SUM_24H]] = 0.0
            row[cols[C_NEW_PAYEES_24H]] = 0.0
            row[cols[C_DORMANT]] = 0.0
            row[cols[C_INFLOW_30M]] = 0.0
            if device[i] != NONE:
                row[cols[C_NEW_DEVICE]] = 1.0
        else:
            ints_a, amounts_a, n_day = _window(tr, acc[a].out_head, t - DAY_MS, t, False, ints_a, amounts_a)
            n_hour = 0
            sum_hour = 0.0
            sum_day = 0.0
            for k in range(n_day):
                sum_day += amounts_a[k]
                if ints_a[W_TS, k] >= t - HOUR_MS:
                    n_hour += 1
                    sum_hour += amounts_a[k]
            row[cols[C_COUNT_1H]] = n_hour
            row[cols[C_COUNT_24H]] = n_day
            row[cols[C_SUM_1H]] = sum_hour
            row[cols[C_SUM_24H]] = sum_day
            scratch = _roomy(scratch, n_day)
            row[cols[C_NEW_PAYEES_24H]] = _distinct(ints_a, n_day, t - DAY_MS, True, scratch, counters)
            if acc[a].out_count > 0:
                row[cols[C_RATIO_MEAN]] = amount[i] / acc[a].mean
            if n_day > 0:
                # the newest transfer of the day window (the latest inserted among equal times)
                previous = NONE
                s = acc[a].out_head
                while s != END:
                    if tr[s].ts < t:
                        previous = tr[s].ts
                        break
                    s = tr[s].next_out
            else:
                previous = acc[a].last_out
            if previous != NONE and previous < t:
                row[cols[C_SECONDS_SINCE]] = (t - previous) / 1000
            ints_a, amounts_a, n_in = _window(tr, acc[a].in_head, t - 30 * MINUTE_MS, t, True, ints_a, amounts_a)
            inflow = 0.0
            for k in range(n_in):
                inflow += amounts_a[k]
            row[cols[C_INFLOW_30M]] = inflow
            if inflow > 0:
                row[cols[C_FORWARDING]] = amount[i] / inflow
            last = acc[a].last_act
            row[cols[C_DORMANT]] = 1.0 if last != NONE and t - last >= dormant_ms else 0.0
            if device[i] != NONE:
                found = _find_known(kd, acc[a].dev_head, device[i])
                row[cols[C_NEW_DEVICE]] = 1.0 if found == END else 0.0
        # --- payee -----------------------------------------------------------------------------------------
        known = _find_known(kp, acc[a].known_head, keys[b]) if payer_seen else END
        row[cols[C_NEW_FOR_PAYER]] = 1.0 if known == END else 0.0
        if known != END:
            first = kp[known].first
            row[cols[C_DAYS_SINCE_FIRST]] = max(0, t - first) / DAY_MS
            row[cols[C_RATIO_LARGEST]] = amount[i] / kp[known].largest
        payee_seen = acc[b].seen == 1
        opened = _opened(payee_opened[i], acc, b, payee_seen)
        if opened != NONE:
            row[cols[C_PAYEE_AGE]] = (t - opened) / DAY_MS
        if not payee_seen:
            row[cols[C_DISTINCT_1H]] = 0.0
            row[cols[C_DISTINCT_24H]] = 0.0
            row[cols[C_INFLOW_24H]] = 0.0
        else:
            largest = _largest_inflow(acc, inf, b, t)
            if largest > 0:
                row[cols[C_RATIO_LARGEST_INFLOW]] = amount[i] / largest
            ints_a, amounts_a, n_in = _window(tr, acc[b].in_head, t - DAY_MS, t, True, ints_a, amounts_a)
            inflow = 0.0
            for k in range(n_in):
                inflow += amounts_a[k]
            scratch = _roomy(scratch, n_in)
            row[cols[C_DISTINCT_1H]] = _distinct(ints_a, n_in, t - HOUR_MS, False, scratch, counters)
            row[cols[C_DISTINCT_24H]] = _distinct(ints_a, n_in, t - DAY_MS, False, scratch, counters)
            row[cols[C_INFLOW_24H]] = inflow
            if inflow > 0:
                # money sent on within 30 minutes of coming in: each outflow counts at most as much as came in
                # (within the day window) during the 30 minutes before it
                ints_b, amounts_b, n_out = _window(tr, acc[b].out_head, ints_a[W_TS, 0], t, False, ints_b, amounts_b)
                sent = 0.0
                for k in range(n_out):
                    received = 0.0
                    lo = ints_b[W_TS, k] - 30 * MINUTE_MS
                    hi = ints_b[W_TS, k] + 1
                    for m in range(n_in):
                        if lo <= ints_a[W_TS, m] < hi:
                            received += amounts_a[m]
                    sent += min(amounts_b[k], received)
                row[cols[C_PASS_THROUGH]] = min(1.0, sent / inflow)
        # --- record ------------------------------------------------------------------------------------------
        _record(
            t, a, b, keys[b], amount[i], device[i], payer_opened[i], payee_opened[i], txn[i], acc, inf, tr, kp,
            kd, counters, lateness_ms, max_known_payees, max_known_devices,
        )  # fmt: skip


@njit(cache=True)
def _largest_inflow(acc, inf, account, t):
    """The largest inflow kept for the period of `t` and the INFLOW_PERIODS - 1 before it; 0.0 when none."""
    j = acc[account].inflows
    if j == END:
        return 0.0
    period = t // INFLOW_PERIOD_MS
    largest = 0.0
    for k in range(INFLOW_PERIODS):
        p = inf[j].period[k]
        if p != NONE32 and p > period - INFLOW_PERIODS and p <= period and inf[j].inmax[k] > largest:
            largest = inf[j].inmax[k]
    return largest


@njit(cache=True)
def _record(
    t, a, b, payee_key, amount, device, payer_opened, payee_opened, txn, acc, inf, tr, kp, kd, counters,
    lateness_ms, max_known_payees, max_known_devices,
):  # fmt: skip
    acc[a].seen = 1
    acc[b].seen = 1
    s = acc[a].out_head
    while s != END:  # re-delivered: the state already holds it
        if (tr[s].txn | NEW_PAYEE) == txn:
            return
        s = tr[s].next_out
    known = _find_known(kp, acc[a].known_head, payee_key)
    _insert(tr, counters, acc, a, b, t, amount, txn, known == END)
    # outflow of the payer
    count = acc[a].out_count
    if count < OUT_COUNT_MAX:
        count += 1
        acc[a].out_count = count
    acc[a].mean += (amount - acc[a].mean) / count
    if acc[a].last_out == NONE or t > acc[a].last_out:
        acc[a].last_out = t
    if acc[a].last_act == NONE or t > acc[a].last_act:
        acc[a].last_act = t
    if known == END:
        e = _new_known(kp, counters, KP_FREE, KP_NFREE, acc[a].known_head, payee_key)
        acc[a].known_head = e
        acc[a].known_n += 1
        kp[e].first = t
        kp[e].last = t
        kp[e].largest = amount
        if acc[a].known_n > max_known_payees:
            acc[a].known_head = _evict_oldest(kp, counters, KP_FREE, KP_NFREE, acc[a].known_head)
            acc[a].known_n -= 1
    else:
        kp[known].first = min(kp[known].first, t)
        kp[known].last = max(kp[known].last, t)
        kp[known].largest = max(kp[known].largest, amount)
    # inflow of the payee
    j = acc[b].inflows
    if j == END:
        j = _new_inflow(inf, counters)
        acc[b].inflows = j
    period = t // INFLOW_PERIOD_MS
    k = period % INFLOW_PERIODS
    kept = inf[j].period[k]
    if kept == period:
        inf[j].inmax[k] = max(inf[j].inmax[k], amount)
    elif kept < period:  # NONE32 is below every period
        inf[j].period[k] = period
        inf[j].inmax[k] = amount
    if acc[b].last_act == NONE or t > acc[b].last_act:
        acc[b].last_act = t
    # device
    if device != NONE:
        e = _find_known(kd, acc[a].dev_head, device)
        if e == END:
            e = _new_known(kd, counters, KD_FREE, KD_NFREE, acc[a].dev_head, device)
            acc[a].dev_head = e
            acc[a].dev_n += 1
            kd[e].last = max(0, t)
            if acc[a].dev_n > max_known_devices:
                acc[a].dev_head = _evict_oldest(kd, counters, KD_FREE, KD_NFREE, acc[a].dev_head)
                acc[a].dev_n -= 1
        else:
            kd[e].last = max(kd[e].last, t)
    if payer_opened != NONE:
        acc[a].opened = payer_opened // DAY_MS
    if payee_opened != NONE:
        acc[b].opened = payee_opened // DAY_MS
    if t > counters[WATERMARK]:
        counters[WATERMARK] = t
    horizon = counters[WATERMARK] - DAY_MS - lateness_ms
    _prune(tr, counters, acc, a, horizon)
    _prune(tr, counters, acc, b, horizon)


@njit(cache=True)
def _new_inflow(inf, counters):
    """An INFLOW record with every period NONE32: a forgotten account's, else the next never used."""
    j = counters[INF_FREE]
    if j == END:
        j = counters[INF_N]
        counters[INF_N] += 1
    else:
        counters[INF_FREE] = inf[j].period[0]
    for k in range(INFLOW_PERIODS):
        inf[j].period[k] = NONE32
        inf[j].inmax[k] = 0.0
    return j


@njit(cache=True)
def _insert(tr, counters, acc, a, b, t, amount, txn, new_payee):
    """One transfer slot, put into the payer's outflow chain and the payee's inflow chain after the transfers
    with a later time, before those with an equal or earlier one (so among equal times the later arrival counts
    as newer, as bisect.insort does)."""
    s = counters[TR_FREE]
    counters[TR_FREE] = tr[s].next_in
    counters[TR_NFREE] -= 1
    tr[s].ts = t
    tr[s].txn = txn if new_payee else txn ^ NEW_PAYEE  # digests are odd: bit 0 is the flag's
    tr[s].amount = amount
    tr[s].payer = a
    tr[s].payee = b
    prev = END
    cur = acc[a].out_head
    while cur != END and tr[cur].ts > t:
        prev = cur
        cur = tr[cur].next_out
    tr[s].next_out = cur
    if prev == END:
        acc[a].out_head = s
    else:
        tr[prev].next_out = s
    prev = END
    cur = acc[b].in_head
    while cur != END and tr[cur].ts > t:
        prev = cur
        cur = tr[cur].next_in
    tr[s].next_in = cur
    if prev == END:
        acc[b].in_head = s
    else:
        tr[prev].next_in = s


@njit(cache=True)
def _prune(tr, counters, acc, account, before):
    """Drop the transfers older than `before` from both chains of an account (their link in that chain becomes
    GONE); a transfer neither chain holds any more goes back to the free list."""
    for inflow in (False, True):
        prev = END
        cur = acc[account].in_head if inflow else acc[account].out_head
        while cur != END and tr[cur].ts >= before:
            prev = cur
            cur = _next(tr, cur, inflow)
        if cur == END:
            continue
        if prev == END:
            if inflow:
                acc[account].in_head = END
            else:
                acc[account].out_head = END
        elif inflow:
            tr[prev].next_in = END
        else:
            tr[prev].next_out = END
        while cur != END:
            nxt = _next(tr, cur, inflow)
            if inflow:
                tr[cur].next_in = GONE
            else:
                tr[cur].next_out = GONE
            if tr[cur].next_out == GONE and tr[cur].next_in == GONE:
                tr[cur].next_out = FREE
                tr[cur].next_in = counters[TR_FREE]
                counters[TR_FREE] = cur
                counters[TR_NFREE] += 1
            cur = nxt


@njit(cache=True)
def _forget(acc, inf, tr, kp, kd, counters, account):
    """Reset an account to one never seen: its transfers leave its chains (a transfer its counterpart's chain
    still holds stays there, with this row as payer or payee), its known payees, devices and inflow record go
    back to their free lists."""
    _prune(tr, counters, acc, account, _NEVER)
    e = acc[account].known_head
    while e != END:
        nxt = kp[e].next
        kp[e].next = counters[KP_FREE]
        counters[KP_FREE] = e
        counters[KP_NFREE] += 1
        e = nxt
    e = acc[account].dev_head
    while e != END:
        nxt = kd[e].next
        kd[e].next = counters[KD_FREE]
        counters[KD_FREE] = e
        counters[KD_NFREE] += 1
        e = nxt
    j = acc[account].inflows
    if j != END:
        inf[j].period[0] = counters[INF_FREE]
        counters[INF_FREE] = j
    acc[account].last_out = NONE
    acc[account].last_act = NONE
    acc[account].opened = NONE32
    acc[account].out_count = 0
    acc[account].mean = 0.0
    acc[account].inflows = END
    acc[account].known_head = END
    acc[account].dev_head = END
    acc[account].known_n = 0
    acc[account].dev_n = 0
    acc[account].seen = 0


@njit(cache=True)
def sweep_idle(acc, n, keys, inf, tr, kp, kd, counters, horizon):
    """Forget every account whose latest activity is before `horizon` (what a transaction touching it would
    do, see featurize_and_record) and return (accounts forgotten, rows to release): the forgotten accounts, of
    this sweep or earlier ones, that no live transfer names any more. A transfer the counterpart's chain still
    holds keeps the row and its digest, so that it still means that account (distinct payers, the state read
    back); a later sweep releases the row once the counterpart has pruned the transfer or been forgotten.

    Rows up to `n` are the table's; a released row has an even key (streams/features/table.py)."""
    forgotten = 0
    empty = 0
    for r in range(n):
        if keys[r] & 1 == 0:  # released earlier
            continue
        if acc[r].seen == 1 and acc[r].last_act < horizon:
            _forget(acc, inf, tr, kp, kd, counters, r)
            forgotten += 1
        if acc[r].seen == 0:
            empty += 1
    if empty == 0:
        return forgotten, np.zeros(0, np.int64)
    named = np.zeros(n, np.bool_)
    for s in range(tr.shape[0]):
        if tr[s].next_out != FREE:  # a live transfer, in one chain or both
            named[tr[s].payer] = True
            named[tr[s].payee] = True
    rows = np.empty(empty, np.int64)
    k = 0
    for r in range(n):
        if keys[r] & 1 == 1 and acc[r].seen == 0 and not named[r]:
            rows[k] = r
            k += 1
    return forgotten, rows[:k]


@njit(cache=True)
def _new_known(pool, counters, free_at, nfree_at, head, key):
    """A new entry at the head of a chain (the caller stores the new head): key set, times and amount 0."""
    e = counters[free_at]
    counters[free_at] = pool[e].next
    counters[nfree_at] -= 1
    pool[e].key = key
    pool[e].last = 0
    pool[e].next = head
    return e


@njit(cache=True)
def _evict_oldest(pool, counters, free_at, nfree_at, head):
    """Forget the least recently used entry; among equal times the one created first, which is the one
    further down the chain (chains are in creation order, newest first). Returns the new head."""
    best = END
    best_prev = END
    prev = END
    e = head
    while e != END:
        if best == END or pool[e].last <= pool[best].last:
            best = e
            best_prev = prev
        prev = e
        e = pool[e].next
    if best_prev == END:
        head = pool[best].next
    else:
        pool[best_prev].next = pool[best].next
    pool[best].next = counters[free_at]
    counters[free_at] = best
    counters[nfree_at] += 1
    return head
