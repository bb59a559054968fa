"""A serving bot's heap: what its start allocated, kept out of the garbage collector's walks.

CPython's collector walks every tracked object of the generation it collects, and the oldest
one holds all that lives long: the modules, the forms, the channels' libraries, the caches
filled at start. In a webhook process those are walked in 90 to 170 ms (bench.whatsapp_webhook)
each time the messages' leftovers grow the oldest generation by a quarter, with the GIL held:
every chat's answer waits. `frozen_start` moves what exists once the process is ready into
the permanent generation (gc.freeze) while it serves: the collections walk only what came
after. A frozen object that becomes garbage in a cycle waits for the end of the serving (then
everything is unfrozen: a test process serves many times).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_start() -> Iterator[None]:
    """What lives when the block starts stays out of the collections until it ends."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
