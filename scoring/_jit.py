"""Numba options in one place.

`cache=True` writes the compiled kernel next to the module so a worker restart does not pay the JIT again;
`nogil=True` lets a thread score while the event loop runs; `fastmath` stays off because the kernel relies
on NaN comparisons (missing features) behaving exactly as IEEE 754 says. Kernels are serial: the worker
scales with partitions and processes, and NUMBA_NUM_THREADS=1 keeps numba from starting a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(fn)  # type: ignore[return-value]
