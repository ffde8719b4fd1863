"""Running an asyncio service (start/stop) on its own event loop in a thread, for tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Protocol, TypeVar


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Service)


def run_in_thread(server: S) -> Iterator[S]:
    """Run `server` on its own event loop in a thread; stop it afterwards."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)
            return
        finally:
            ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(60)
    if errors:
        raise errors[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
