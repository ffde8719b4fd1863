"""`corral serve` prunes old events in the background.

Every `PRUNE_EVERY` seconds (and shortly after start) the events table is
cut to the cluster settings `events_max_age_days` and `events_max_rows`,
in short batches on a worker thread, so neither the loop nor the database
is held while it runs. Several servers on one database may prune at once:
each batch deletes rows by id, so the worst case is a batch deleting less.
"""

from __future__ import annotations

import asyncio
import logging
import time

from corral.app import Corral
from corral.store.events import Pruned, prune_events

log = logging.getLogger("corral.events")
PRUNE_EVERY = 3600.0
FIRST_AFTER = 60.0


def prune_once(corral: Corral, now: float | None = None) -> Pruned:
    """One pass with the current settings (read each time: `corral apply` may change them)."""
    settings = corral.read().settings
    return prune_events(
        corral.store,
        time.time() if now is None else now,
        settings.events_max_age_days,
        settings.events_max_rows,
    )


async def prune_forever(
    corral: Corral, every: float = PRUNE_EVERY, first: float = FIRST_AFTER
) -> None:
    """Until cancelled; a failure is logged and retried at the next interval."""
    await asyncio.sleep(first)
    while True:
        try:
            pruned = await asyncio.to_thread(prune_once, corral)
            if pruned.by_age or pruned.by_count:
                log.info("pruned %d events by age and %d by count", pruned.by_age, pruned.by_count)
        except Exception:
            log.exception("could not prune events")
        await asyncio.sleep(every)
