"""Hand freed heap memory back to the operating system between training iterations.

Every iteration allocates and frees a rollout's worth of arrays (tens of MB, of sizes that vary
with the number of agents that had something to decide). glibc's ``malloc`` raises its mmap
threshold after such frees, so later large blocks come from the heap, whose freed holes stay
resident: the process's RSS creeps up over a long run although nothing is kept
(``benchmarks/train_memory.py`` measures it). :func:`release_free_memory` asks glibc to return
free pages (``malloc_trim(0)``); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return free heap pages to the OS (glibc); whether anything could be asked."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
