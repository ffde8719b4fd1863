"""Building many records at once without the cyclic garbage collector in the way.

Loading a 10,000-node inventory allocates a few hundred thousand objects. Each
burst of allocations triggers collections that walk every live object, and the
full ones get longer as the inventory grows: half the time of a 10,000-node
`corral apply` went to them. The records form no reference cycles worth
collecting early, so bulk work pauses the collector and resumes it afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Run the body with the cyclic collector off (nests; restores the previous state)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
