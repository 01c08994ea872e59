"""Keep the served runs out of the garbage collector's full passes (``gc.freeze``).

A loaded run holds Python containers over every owner and item (dictionaries of a million owners
and more). CPython's full (generation 2) collection walks every tracked object, and while it runs
no request is answered: on the benchmark's sknn run (2 M events, 108 k items) one full pass took
178 ms, and at 250 requests/s the requests queued behind those pauses made p95 457 ms while p50
was 5 ms (benchmarks/serve.py). What a load builds lives as long as it is served, so after a load
the survivors are moved to the permanent generation, which collections skip; refcounting still
frees them when they are dropped. A reload first moves them back (``gc.unfreeze``) so that the
previous run's reference cycles are collected once, then freezes the new state.
"""

from __future__ import annotations

import gc
import time

__all__ = ["release_heap", "settle_heap"]


def settle_heap(*, reloaded: bool) -> float:
    """Collect, then freeze what survives, after a run was loaded.

    Args:
        reloaded: A previous run was replaced (its frozen objects are unfrozen and collected).

    Returns:
        Seconds the collection took (the one pause this costs, at load time).
    """
    started = time.perf_counter()
    if reloaded:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started


def release_heap() -> None:
    """Give the frozen objects back to the collector (the service closed: nothing is served)."""
    gc.unfreeze()
