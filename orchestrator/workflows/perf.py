"""A pause of the cyclic garbage collector around bulk, short, CPU-bound work (planning, compiling).

Why: a 10,000-step plan allocates some 100,000 small containers that all stay alive. Every 700 allocations
CPython runs a young collection and, as they pile up, older ones that walk the whole heap: about 40% of the
time of planning + compiling was spent there, finding nothing to free. Pausing the collector for the few
milliseconds of work and restoring it afterwards removes that cost; nothing else changes (reference
counting still frees memory, and the next collection sees everything). Only the caller that found the
collector running turns it back on, so nested or concurrent pauses never leave it off.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
