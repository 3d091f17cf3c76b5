"""The memory allocator's settings for a batch run, set before Polars is imported.

Polars allocates with jemalloc and, when it is imported, sets it to give freed memory back to the
system after 500 ms (``dirty_decay_ms:500``). A batch run frees and reallocates the same few hundred
megabytes for every chunk of claim lines: given back that soon, most pages are faulted in again for
the next chunk (page faults were about a fifth of the CPU time of ``medcodes check --batch``).
:func:`for_batch` keeps freed pages for 2 s in one arena (``dirty_decay_ms:2000,narenas:1``, passed
through ``_RJEM_MALLOC_CONF``, which Polars appends to its own settings): they are reused by the next
chunks. Not "never give back" (``-1``): pages kept in several arenas and size classes then add up, 1.2 GB
peak at 10M lines (1.0 GB in one arena) against 0.9 GB. Long-running processes (the HTTP server) keep
Polars' setting.
"""

from __future__ import annotations

import os
import sys

BATCH_CONF = "dirty_decay_ms:2000,narenas:1"


def for_batch() -> bool:
    """Use :data:`BATCH_CONF` in this process when Polars is not imported yet (True) -- a user's own
    ``_RJEM_MALLOC_CONF`` is kept; else nothing can change and nothing is done (False)."""
    if "polars" in sys.modules or "_RJEM_MALLOC_CONF" in os.environ:
        return False
    os.environ["_RJEM_MALLOC_CONF"] = BATCH_CONF
    return True
