"""numba kernels of the feature engine: one call featurizes and records a whole batch, in order.

State is columnar (streams/features/store.py): one row per account, a pool of transfer slots chained per
account (outflows and inflows, newest first), and a pool of "known" entries chained per account (payees the
payer paid, devices it used). The kernels follow the semantics documented in streams/features/engine.py; the
test suite checks them against a plain-Python reference on random histories (tests/unit/features).

Everything here is serial (NUMBA_NUM_THREADS=1): one worker process scores its partitions on one core.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NONE = np.iinfo(np.int64).min  # a missing time (never happened / not given)
END = -1  # end of a chain
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MINUTE_MS = 60_000

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

# account columns (int64 matrix `acc_i`, float64 vector `acc_mean`)
A_SEEN, A_OUT_COUNT, A_LAST_OUT, A_LAST_ACT, A_OPENED, A_OUT_HEAD, A_IN_HEAD, A_KNOWN_HEAD, A_KNOWN_N = range(9)
A_DEV_HEAD, A_DEV_N = 9, 10
# the largest inflow of each of the last INFLOW_PERIODS calendar periods: slot k holds the period number
# (ts // INFLOW_PERIOD_MS) at column A_IN_PERIOD + k and its largest inflow at `acc_inmax[:, k]`; a period goes
# to slot period % INFLOW_PERIODS, replacing an older one there (an inflow of a period older than the one in its
# slot is not kept)
A_IN_PERIOD = 11
INFLOW_PERIODS = 4
INFLOW_PERIOD_MS = 10 * DAY_MS
ACCOUNT_FIELDS = A_IN_PERIOD + INFLOW_PERIODS
# transfer columns (int64 matrix `tr_i`, float64 vector `tr_amount`)
T_TS, T_OTHER, T_TXN, T_NEW_PAYEE, T_NEXT = range(5)
TRANSFER_FIELDS = 5
# known-entry columns (int64 matrix `kn_i`, float64 vector `kn_largest`): a payee (key = payee account) or a
# device (key = device hash) of one account; `seq` orders them by creation (ties of the LRU eviction)
K_KEY, K_FIRST, K_LAST, K_SEQ, K_NEXT = range(5)
KNOWN_FIELDS = 5


@njit(cache=True)
def _window(tr_i, tr_amount, head, start, end):
    """The transfers of a chain with start <= ts < end, oldest first: (times, amounts, others, new-payee flags).

    The chain is newest first, so the arrays are filled back to front; sums over them then run in time order,
    like the reference's."""
    n = 0
    s = head
    while s != END:
        ts = tr_i[s, T_TS]
        if ts < start:
            break
        if ts < end:
            n += 1
        s = tr_i[s, T_NEXT]
    times = np.empty(n, np.int64)
    amounts = np.empty(n, np.float64)
    others = np.empty(n, np.int64)
    new = np.empty(n, np.int64)
    k = n
    s = head
    while s != END and k > 0:
        ts = tr_i[s, T_TS]
        if start <= ts < end:
            k -= 1
            times[k] = ts
            amounts[k] = tr_amount[s]
            others[k] = tr_i[s, T_OTHER]
            new[k] = tr_i[s, T_NEW_PAYEE]
        s = tr_i[s, T_NEXT]
    return times, amounts, others, new


@njit(cache=True)
def _opened(given, acc_i, account, seen):
    """The opening date the transaction gives, else the one the account has (a given 0 counts as none, as in
    the reference's `given or stored`)."""
    if given == NONE or given == 0:
        return acc_i[account, A_OPENED] if seen else NONE
    return given


@njit(cache=True)
def _find_known(kn_i, head, key):
    e = head
    while e != END:
        if kn_i[e, K_KEY] == key:
            return e
        e = kn_i[e, K_NEXT]
    return END


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
    acc_i,
    acc_mean,
    acc_inmax,
    tr_i,
    tr_amount,
    tr_free,
    kn_i,
    kn_largest,
    kn_free,
    counters,
    mark,
    dormant_ms,
    lateness_ms,
    max_known_payees,
    max_known_devices,
):
    """Features of each transaction of the batch (it sees the ones before it), then its record in the state.

    counters: [watermark, free transfers, free known entries, next known seq, mark stamp]. The caller makes
    sure the pools have room for two transfers and two known entries per transaction."""
    n_rows = ts.shape[0]
    for i in range(n_rows):
        t = ts[i]
        a = payer[i]
        b = payee[i]
        row = rows[i]
        # --- payer ---------------------------------------------------------------------------------------
        payer_seen = acc_i[a, A_SEEN] == 1
        opened = _opened(payer_opened[i], acc_i, a, payer_seen)
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
            day_ts, day_amount, day_other, day_new = _window(tr_i, tr_amount, acc_i[a, A_OUT_HEAD], t - DAY_MS, t)
            n_day = day_ts.shape[0]
            n_hour = 0
            sum_hour = 0.0
            sum_day = 0.0
            for k in range(n_day):
                sum_day += day_amount[k]
                if day_ts[k] >= t - HOUR_MS:
                    n_hour += 1
                    sum_hour += day_amount[k]
            row[cols[C_COUNT_1H]] = n_hour
            row[cols[C_COUNT_24H]] = n_day
            row[cols[C_SUM_1H]] = sum_hour
            row[cols[C_SUM_24H]] = sum_day
            counters[4] += 1
            stamp = counters[4]
            new_payees = 0
            for k in range(n_day):
                if day_new[k] == 1:
                    o = day_other[k]
                    if mark[o] != stamp:
                        mark[o] = stamp
                        new_payees += 1
            row[cols[C_NEW_PAYEES_24H]] = new_payees
            if acc_i[a, A_OUT_COUNT] > 0:
                row[cols[C_RATIO_MEAN]] = amount[i] / acc_mean[a]
            if n_day > 0:
                # the newest transfer of the day window (the latest inserted among equal times)
                previous = NONE
                s = acc_i[a, A_OUT_HEAD]
                while s != END:
                    if tr_i[s, T_TS] < t:
                        previous = tr_i[s, T_TS]
                        break
                    s = tr_i[s, T_NEXT]
            else:
                previous = acc_i[a, A_LAST_OUT]
            if previous != NONE and previous < t:
                row[cols[C_SECONDS_SINCE]] = (t - previous) / 1000
            in_amount = _window(tr_i, tr_amount, acc_i[a, A_IN_HEAD], t - 30 * MINUTE_MS, t)[1]
            inflow = 0.0
            for k in range(in_amount.shape[0]):
                inflow += in_amount[k]
            row[cols[C_INFLOW_30M]] = inflow
            if inflow > 0:
                row[cols[C_FORWARDING]] = amount[i] / inflow
            last = acc_i[a, A_LAST_ACT]
            row[cols[C_DORMANT]] = 1.0 if last != NONE and t - last >= dormant_ms else 0.0
            if device[i] != NONE:
                found = _find_known(kn_i, acc_i[a, A_DEV_HEAD], device[i])
                row[cols[C_NEW_DEVICE]] = 1.0 if found == END else 0.0
        # --- payee -----------------------------------------------------------------------------------------
        known = _find_known(kn_i, acc_i[a, A_KNOWN_HEAD], b) if payer_seen else END
        row[cols[C_NEW_FOR_PAYER]] = 1.0 if known == END else 0.0
        if known != END:
            first = kn_i[known, K_FIRST]
            row[cols[C_DAYS_SINCE_FIRST]] = max(0, t - first) / DAY_MS
            row[cols[C_RATIO_LARGEST]] = amount[i] / kn_largest[known]
        payee_seen = acc_i[b, A_SEEN] == 1
        opened = _opened(payee_opened[i], acc_i, b, payee_seen)
        if opened != NONE:
            row[cols[C_PAYEE_AGE]] = (t - opened) / DAY_MS
        if not payee_seen:
            row[cols[C_DISTINCT_1H]] = 0.0
            row[cols[C_DISTINCT_24H]] = 0.0
            row[cols[C_INFLOW_24H]] = 0.0
        else:
            largest = _largest_inflow(acc_i, acc_inmax, b, t)
            if largest > 0:
                row[cols[C_RATIO_LARGEST_INFLOW]] = amount[i] / largest
            in_ts, in_amount, in_other, _ = _window(tr_i, tr_amount, acc_i[b, A_IN_HEAD], t - DAY_MS, t)
            n_in = in_ts.shape[0]
            counters[4] += 1
            stamp = counters[4]
            d1 = 0
            d24 = 0
            inflow = 0.0
            for k in range(n_in):
                inflow += in_amount[k]
                o = in_other[k]
                if mark[o] != stamp:
                    mark[o] = stamp
                    d24 += 1
            counters[4] += 1
            stamp = counters[4]
            for k in range(n_in):
                if in_ts[k] >= t - HOUR_MS:
                    o = in_other[k]
                    if mark[o] != stamp:
                        mark[o] = stamp
                        d1 += 1
            row[cols[C_DISTINCT_1H]] = d1
            row[cols[C_DISTINCT_24H]] = d24
            row[cols[C_INFLOW_24H]] = inflow
            if inflow > 0:
                # money sent on within 30 minutes of coming in: each outflow counts at most as much as came in
                # (within the day window) during the 30 minutes before it
                out_ts, out_amount, _, _ = _window(tr_i, tr_amount, acc_i[b, A_OUT_HEAD], in_ts[0], t)
                sent = 0.0
                for k in range(out_ts.shape[0]):
                    received = 0.0
                    lo = out_ts[k] - 30 * MINUTE_MS
                    hi = out_ts[k] + 1
                    for m in range(n_in):
                        if lo <= in_ts[m] < hi:
                            received += in_amount[m]
                    sent += min(out_amount[k], received)
                row[cols[C_PASS_THROUGH]] = min(1.0, sent / inflow)
        # --- record ------------------------------------------------------------------------------------------
        _record(
            i, t, a, b, amount, device, payer_opened, payee_opened, txn, acc_i, acc_mean, acc_inmax, tr_i,
            tr_amount, tr_free, kn_i, kn_largest, kn_free, counters, lateness_ms, max_known_payees,
            max_known_devices,
        )  # fmt: skip


@njit(cache=True)
def _largest_inflow(acc_i, acc_inmax, account, t):
    """The largest inflow kept for the period of `t` and the INFLOW_PERIODS - 1 before it; 0.0 when none."""
    period = t // INFLOW_PERIOD_MS
    largest = 0.0
    for k in range(INFLOW_PERIODS):
        p = acc_i[account, A_IN_PERIOD + k]
        if p != NONE and p > period - INFLOW_PERIODS and p <= period and acc_inmax[account, k] > largest:
            largest = acc_inmax[account, k]
    return largest


@njit(cache=True)
def _record(
    i, t, a, b, amount, device, payer_opened, payee_opened, txn, acc_i, acc_mean, acc_inmax, tr_i, tr_amount,
    tr_free, kn_i, kn_largest, kn_free, counters, lateness_ms, max_known_payees, max_known_devices,
):  # fmt: skip
    acc_i[a, A_SEEN] = 1
    acc_i[b, A_SEEN] = 1
    s = acc_i[a, A_OUT_HEAD]
    while s != END:  # re-delivered: the state already holds it
        if tr_i[s, T_TXN] == txn[i]:
            return
        s = tr_i[s, T_NEXT]
    known = _find_known(kn_i, acc_i[a, A_KNOWN_HEAD], b)
    # outflow of the payer
    _insert(tr_i, tr_amount, tr_free, counters, acc_i, a, A_OUT_HEAD, t, amount[i], b, txn[i], known == END)
    count = acc_i[a, A_OUT_COUNT] + 1
    acc_i[a, A_OUT_COUNT] = count
    acc_mean[a] += (amount[i] - acc_mean[a]) / count
    if acc_i[a, A_LAST_OUT] == NONE or t > acc_i[a, A_LAST_OUT]:
        acc_i[a, A_LAST_OUT] = t
    if acc_i[a, A_LAST_ACT] == NONE or t > acc_i[a, A_LAST_ACT]:
        acc_i[a, A_LAST_ACT] = t
    if known == END:
        e = _new_known(kn_i, kn_largest, kn_free, counters, acc_i, a, A_KNOWN_HEAD, A_KNOWN_N, b)
        kn_i[e, K_FIRST] = t
        kn_i[e, K_LAST] = t
        kn_largest[e] = amount[i]
        if acc_i[a, A_KNOWN_N] > max_known_payees:
            _evict_oldest(kn_i, kn_free, counters, acc_i, a, A_KNOWN_HEAD, A_KNOWN_N)
    else:
        kn_i[known, K_FIRST] = min(kn_i[known, K_FIRST], t)
        kn_i[known, K_LAST] = max(kn_i[known, K_LAST], t)
        kn_largest[known] = max(kn_largest[known], amount[i])
    # inflow of the payee
    _insert(tr_i, tr_amount, tr_free, counters, acc_i, b, A_IN_HEAD, t, amount[i], a, txn[i], False)
    period = t // INFLOW_PERIOD_MS
    k = period % INFLOW_PERIODS
    kept = acc_i[b, A_IN_PERIOD + k]
    if kept == period:
        acc_inmax[b, k] = max(acc_inmax[b, k], amount[i])
    elif kept < period:  # NONE is below every period
        acc_i[b, A_IN_PERIOD + k] = period
        acc_inmax[b, k] = amount[i]
    if acc_i[b, A_LAST_ACT] == NONE or t > acc_i[b, A_LAST_ACT]:
        acc_i[b, A_LAST_ACT] = t
    # device
    if device[i] != NONE:
        e = _find_known(kn_i, acc_i[a, A_DEV_HEAD], device[i])
        if e == END:
            e = _new_known(kn_i, kn_largest, kn_free, counters, acc_i, a, A_DEV_HEAD, A_DEV_N, device[i])
            kn_i[e, K_LAST] = max(0, t)
            if acc_i[a, A_DEV_N] > max_known_devices:
                _evict_oldest(kn_i, kn_free, counters, acc_i, a, A_DEV_HEAD, A_DEV_N)
        else:
            kn_i[e, K_LAST] = max(kn_i[e, K_LAST], t)
    if payer_opened[i] != NONE:
        acc_i[a, A_OPENED] = payer_opened[i]
    if payee_opened[i] != NONE:
        acc_i[b, A_OPENED] = payee_opened[i]
    if t > counters[0]:
        counters[0] = t
    horizon = counters[0] - DAY_MS - lateness_ms
    _prune(tr_i, tr_free, counters, acc_i, a, horizon)
    _prune(tr_i, tr_free, counters, acc_i, b, horizon)


@njit(cache=True)
def _insert(tr_i, tr_amount, tr_free, counters, acc_i, account, head_col, t, amount, other, txn, new_payee):
    """Put a transfer into a newest-first chain after the ones with a later time, before those with an equal
    or earlier one (so among equal times the later arrival counts as newer, as bisect.insort does)."""
    counters[1] -= 1
    s = tr_free[counters[1]]
    tr_i[s, T_TS] = t
    tr_i[s, T_OTHER] = other
    tr_i[s, T_TXN] = txn
    tr_i[s, T_NEW_PAYEE] = 1 if new_payee else 0
    tr_amount[s] = amount
    prev = END
    cur = acc_i[account, head_col]
    while cur != END and tr_i[cur, T_TS] > t:
        prev = cur
        cur = tr_i[cur, T_NEXT]
    tr_i[s, T_NEXT] = cur
    if prev == END:
        acc_i[account, head_col] = s
    else:
        tr_i[prev, T_NEXT] = s


@njit(cache=True)
def _prune(tr_i, tr_free, counters, acc_i, account, before):
    """Free the transfers older than `before` in both chains of an account."""
    for head_col in (A_OUT_HEAD, A_IN_HEAD):
        prev = END
        cur = acc_i[account, head_col]
        while cur != END and tr_i[cur, T_TS] >= before:
            prev = cur
            cur = tr_i[cur, T_NEXT]
        if cur == END:
            continue
        if prev == END:
            acc_i[account, head_col] = END
        else:
            tr_i[prev, T_NEXT] = END
        while cur != END:
            nxt = tr_i[cur, T_NEXT]
            tr_free[counters[1]] = cur
            counters[1] += 1
            cur = nxt


@njit(cache=True)
def _new_known(kn_i, kn_largest, kn_free, counters, acc_i, account, head_col, count_col, key):
    counters[2] -= 1
    e = kn_free[counters[2]]
    kn_i[e, K_KEY] = key
    kn_i[e, K_FIRST] = 0
    kn_i[e, K_LAST] = 0
    kn_i[e, K_SEQ] = counters[3]
    counters[3] += 1
    kn_largest[e] = 0.0
    kn_i[e, K_NEXT] = acc_i[account, head_col]
    acc_i[account, head_col] = e
    acc_i[account, count_col] += 1
    return e


@njit(cache=True)
def _evict_oldest(kn_i, kn_free, counters, acc_i, account, head_col, count_col):
    """Forget the least recently used entry (ties: the one created first)."""
    best = END
    best_prev = END
    prev = END
    e = acc_i[account, head_col]
    while e != END:
        if (
            best == END
            or kn_i[e, K_LAST] < kn_i[best, K_LAST]
            or (kn_i[e, K_LAST] == kn_i[best, K_LAST] and kn_i[e, K_SEQ] < kn_i[best, K_SEQ])
        ):
            best = e
            best_prev = prev
        prev = e
        e = kn_i[e, K_NEXT]
    if best_prev == END:
        acc_i[account, head_col] = kn_i[best, K_NEXT]
    else:
        kn_i[best_prev, K_NEXT] = kn_i[best, K_NEXT]
    kn_free[counters[2]] = best
    counters[2] += 1
    acc_i[account, count_col] -= 1


@njit(cache=True)
def compact(acc_i, n_accounts, tr_i, tr_amount, kn_i, kn_largest):
    """Renumber the live transfer slots and known entries to 0..n-1, in chain order, so the pools can be cut
    to the part in use (a checkpoint writes only that). Returns (live transfers, live known entries)."""
    tr_new = np.full(tr_i.shape[0], END, np.int64)
    kn_new = np.full(kn_i.shape[0], END, np.int64)
    n_tr = 0
    n_kn = 0
    for a in range(n_accounts):
        for col in (A_OUT_HEAD, A_IN_HEAD):
            s = acc_i[a, col]
            while s != END:
                tr_new[s] = n_tr
                n_tr += 1
                s = tr_i[s, T_NEXT]
        for col in (A_KNOWN_HEAD, A_DEV_HEAD):
            e = acc_i[a, col]
            while e != END:
                kn_new[e] = n_kn
                n_kn += 1
                e = kn_i[e, K_NEXT]
    tr_i2 = np.zeros((n_tr, tr_i.shape[1]), np.int64)
    tr_amount2 = np.zeros(n_tr, np.float64)
    for s in range(tr_i.shape[0]):
        d = tr_new[s]
        if d != END:
            tr_i2[d] = tr_i[s]
            nxt = tr_i[s, T_NEXT]
            tr_i2[d, T_NEXT] = END if nxt == END else tr_new[nxt]
            tr_amount2[d] = tr_amount[s]
    kn_i2 = np.zeros((n_kn, kn_i.shape[1]), np.int64)
    kn_largest2 = np.zeros(n_kn, np.float64)
    for e in range(kn_i.shape[0]):
        d = kn_new[e]
        if d != END:
            kn_i2[d] = kn_i[e]
            nxt = kn_i[e, K_NEXT]
            kn_i2[d, K_NEXT] = END if nxt == END else kn_new[nxt]
            kn_largest2[d] = kn_largest[e]
    heads = acc_i[:n_accounts].copy()
    for a in range(n_accounts):
        for col in (A_OUT_HEAD, A_IN_HEAD):
            if heads[a, col] != END:
                heads[a, col] = tr_new[heads[a, col]]
        for col in (A_KNOWN_HEAD, A_DEV_HEAD):
            if heads[a, col] != END:
                heads[a, col] = kn_new[heads[a, col]]
    return heads, tr_i2, tr_amount2, kn_i2, kn_largest2
