"""Fork safety for numba: no other thread may be compiling (or loading cached) kernels at the instant of a fork.

Why: numba compiles kernels, and loads them from its on-disk cache, under one process-wide lock
(``numba.core.compiler_lock.global_compiler_lock``). A process forked while another thread holds it
(a RAW stream's first blocks decoding in one thread while a DataLoader forks its workers in another)
gives a child whose copy of the lock belongs to a thread that does not exist there: the child's
first kernel call waits forever (``tests/test_io_parallel_decode.py`` reproduces it). So a fork
first takes the lock itself, which waits until no kernel is being compiled, and releases it again
on both sides. The decode pool and the RAW output cache have at-fork resets of their own
(:mod:`eventclip.io.prophesee_raw`). ``subprocess`` does not run these handlers (it execs at once).

The lock is numba's internal object; should a numba version not have it, nothing is registered and
the ``spawn`` start method is the safe choice for processes that decode in threads (docs/io.md).
"""

from __future__ import annotations

import os

_installed = False


def install() -> bool:
    """Register the at-fork handlers once per process; True when numba's lock was found (and held across forks)."""
    global _installed
    if _installed:
        return True
    try:
        from numba.core.compiler_lock import global_compiler_lock
    except ImportError:
        return False
    lock = getattr(global_compiler_lock, "_lock", None)
    if lock is None or not hasattr(os, "register_at_fork"):
        return False
    os.register_at_fork(before=lock.acquire, after_in_parent=lock.release, after_in_child=lock.release)
    _installed = True
    return True
