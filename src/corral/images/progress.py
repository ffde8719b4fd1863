"""Progress reporting for long image operations, without tying the API to a UI.

The API calls a `Reporter`; the CLI passes one drawing rich progress bars,
tests and other callers pass nothing and get `QUIET`.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def start(self, task: str, total: int | None = None) -> None:
        """Begin a step; `total` in bytes when known."""

    def advance(self, amount: int) -> None:
        """`amount` more bytes of the current step are done."""

    def note(self, text: str) -> None:
        """A status line (e.g. the latest line of a tool's output)."""


class Quiet:
    """A reporter that reports nothing."""

    def start(self, task: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass


QUIET = Quiet()
