"""Stable 64-bit digests of id strings (accounts, txn ids, device ids), a whole batch in one numba call.

The batch's ids are joined into one string and encoded as UTF-32 (one uint32 per code point; the only Python
per id is `len`), and a kernel hashes each id: FNV-1a over its code points, with a 64-bit odd multiplier and a
rotation after each step (so every code point reaches every bit), then its length, then murmur3's finalizer. The
digest depends only on the text: the same in every process and on every machine (Python's hash() of a str is
salted per process), so digests in a checkpoint stay valid. Bit 0 is always set, so a digest is never 0 (an
empty slot of the account table) nor NONE (a missing device).

>>> digests(["6222000000000001", "t-17"])  # doctest: +SKIP
array([ 2954180327536443357, -6210322474498722843])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

_OFFSET = np.uint64(0xCBF29CE484222325)  # FNV-1a 64-bit offset basis
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd, with its bits spread (2^64 / golden ratio)


def digests(ids: Sequence[str]) -> np.ndarray:
    """The int64 digest of each id, in order."""
    if len(ids) == 0:
        return np.zeros(0, np.int64)
    codes = np.frombuffer("".join(ids).encode("utf-32-le", "surrogatepass"), np.uint32)
    return _digest_all(codes, np.fromiter(map(len, ids), np.int64, len(ids))).view(np.int64)


def digest(text: str) -> int:
    """The digest of one id (tests, tools; the engine hashes whole batches with `digests`)."""
    return int(digests([text])[0])


@njit(cache=True)
def _digest_all(codes, lengths):
    out = np.empty(lengths.shape[0], np.uint64)
    start = 0
    for i in range(lengths.shape[0]):
        length = lengths[i]
        h = _OFFSET
        for k in range(start, start + length):
            h = (h ^ np.uint64(codes[k])) * _MULTIPLIER
            h = (h << np.uint64(27)) | (h >> np.uint64(37))
        h ^= np.uint64(length)
        # murmur3 fmix64
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
        out[i] = h | np.uint64(1)
        start += length
    return out
