"""Renumbering the live part of the feature state, so that a checkpoint writes only that (numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

from streams.features.layout import END


@njit(cache=True)
def compact(acc, n_accounts, inf, tr, kp, kd):
    """The first `n_accounts` accounts (released rows included: their row numbers are kept) and the live
    inflow records, transfers, known payees and devices, renumbered 0..n-1 in account or chain order (free
    ones dropped): (accounts, inflow records, transfers, payees, devices), all new arrays."""
    n_inf = 0
    for a in range(n_accounts):
        if acc[a].inflows != END:
            n_inf += 1
    inf2 = np.empty(n_inf, inf.dtype)
    tr_new = np.full(tr.shape[0], END, np.int64)
    kp_new = np.full(kp.shape[0], END, np.int64)
    kd_new = np.full(kd.shape[0], END, np.int64)
    n_tr = 0
    n_kp = 0
    n_kd = 0
    for a in range(n_accounts):
        s = acc[a].out_head
        while s != END:
            if tr_new[s] == END:
                tr_new[s] = n_tr
                n_tr += 1
            s = tr[s].next_out
        s = acc[a].in_head
        while s != END:
            if tr_new[s] == END:
                tr_new[s] = n_tr
                n_tr += 1
            s = tr[s].next_in
        e = acc[a].known_head
        while e != END:
            kp_new[e] = n_kp
            n_kp += 1
            e = kp[e].next
        e = acc[a].dev_head
        while e != END:
            kd_new[e] = n_kd
            n_kd += 1
            e = kd[e].next
    tr2 = np.empty(n_tr, tr.dtype)
    for s in range(tr.shape[0]):
        d = tr_new[s]
        if d != END:
            tr2[d] = tr[s]
            nxt = tr[s].next_out  # END, GONE (left the chain) or a live transfer of the chain
            tr2[d].next_out = nxt if nxt < 0 else tr_new[nxt]
            nxt = tr[s].next_in
            tr2[d].next_in = nxt if nxt < 0 else tr_new[nxt]
    kp2 = np.empty(n_kp, kp.dtype)
    for e in range(kp.shape[0]):
        d = kp_new[e]
        if d != END:
            kp2[d] = kp[e]
            kp2[d].next = END if kp[e].next == END else kp_new[kp[e].next]
    kd2 = np.empty(n_kd, kd.dtype)
    for e in range(kd.shape[0]):
        d = kd_new[e]
        if d != END:
            kd2[d] = kd[e]
            kd2[d].next = END if kd[e].next == END else kd_new[kd[e].next]
    acc2 = acc[:n_accounts].copy()
    n_inf = 0
    for a in range(n_accounts):
        if acc2[a].inflows != END:
            inf2[n_inf] = inf[acc2[a].inflows]
            acc2[a].inflows = n_inf
            n_inf += 1
        if acc2[a].out_head != END:
            acc2[a].out_head = tr_new[acc2[a].out_head]
        if acc2[a].in_head != END:
            acc2[a].in_head = tr_new[acc2[a].in_head]
        if acc2[a].known_head != END:
            acc2[a].known_head = kp_new[acc2[a].known_head]
        if acc2[a].dev_head != END:
            acc2[a].dev_head = kd_new[acc2[a].dev_head]
    return acc2, inf2, tr2, kp2, kd2
