"""A pause of the cyclic garbage collector around bulk, short, CPU-bound work (planning, compiling).

Why: a 10,000-step plan allocates some 100,000 small containers that all stay alive. Every 700 allocations
CPython runs a young collection and, as they pile up, older ones that walk the whole heap: about 40% of the
time of planning + compiling was spent there, finding nothing to free. Pausing the collector for the few
milliseconds of work and restoring it afterwards removes that cost; nothing else changes (reference
counting still frees memory, and the next collection sees everything). Only the caller that found the
collector running turns it back on, so nested or concurrent pauses never leave it off.

Turning it back on alone would move the cost, not remove it: the first allocation afterwards runs a young
collection over all those containers (10-20 ms for a 10,000-step plan or compile). They are long-lived
(the plan lives as long as its run; the compiled canvases until they are enqueued), so the pause first
promotes every tracked object to the oldest generation: ``gc.freeze()`` then ``gc.unfreeze()`` does that
in constant time. Only full collections, which are rare, look at them again (so any cyclic garbage made
meanwhile also waits for one). Nothing is promoted while someone else holds objects frozen (a pre-fork
server, say): unfreezing would thaw theirs too.
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
            _promote_young_objects()
            gc.enable()


def _promote_young_objects() -> None:
    """Move every tracked object to the oldest generation in O(1) (``freeze`` then ``unfreeze``)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
