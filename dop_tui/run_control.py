"""Driving a job's event stream: pause, stop and a time limit, in one place that ``--batch`` and the workbench
share (the sketch pins and exclusions travel in the ``SearchControls`` it hands to the loop).

``follow(events)`` yields the loop's events; after each one it holds the loop while paused. A stop (asked for,
or the time limit running out) reaches the loop through its controls, which it reads between rounds, so the
round in flight completes and is recorded. ``cancelled()`` ends the stream at once (the workbench quitting).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dop_tui.search.loop import SearchControls


class RunControl:
    """Pause, stop and time limit of one run. Methods are safe to call from any thread."""

    def __init__(self, time_limit_s: float | None = None) -> None:
        self.time_limit_s = time_limit_s
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._controls: SearchControls | None = None
        self._paused_at: float | None = None
        self.paused_s = 0.0  # seconds spent paused so far

    @property
    def controls(self) -> SearchControls | None:
        """The loop's controls, once ``make_controls`` made them."""
        return self._controls

    def make_controls(self) -> SearchControls:
        """The ``SearchControls`` to hand the loop (made on first call: importing the loop takes a while, so the
        workbench calls this in its worker thread)."""
        from dop_tui.search.loop import SearchControls

        with self._lock:
            if self._controls is None:
                self._controls = SearchControls()
                if self._stop.is_set():
                    self._controls.stop.set()
            return self._controls

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def paused_for(self) -> float:
        """Seconds spent paused, the pause in progress included."""
        with self._lock:
            return self.paused_s + (time.monotonic() - self._paused_at if self._paused_at is not None else 0.0)

    def pause(self) -> None:
        with self._lock:
            if self._running.is_set() and not self._stop.is_set():
                self._running.clear()
                self._paused_at = time.monotonic()

    def resume(self) -> None:
        with self._lock:
            if self._paused_at is not None:
                self.paused_s += time.monotonic() - self._paused_at
                self._paused_at = None
            self._running.set()

    def stop(self) -> None:
        """End after the round in flight (a paused run resumes to finish it)."""
        with self._lock:
            self._stop.set()
            if self._controls is not None:
                self._controls.stop.set()
        self.resume()

    def follow(self, events: Iterator[Any], cancelled: Callable[[], bool] = lambda: False) -> Iterator[Any]:
        """``events`` as they come, held while paused, ended at once when ``cancelled()``; the time limit, if
        any, counts from the first call to ``next``."""
        timer = threading.Timer(self.time_limit_s, self.stop) if self.time_limit_s else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            for ev in events:
                yield ev
                while not self._running.wait(0.1):
                    if cancelled():
                        break
                if cancelled():
                    self.stop()
                    if isinstance(events, Generator):
                        events.close()
                    return
        finally:
            if timer is not None:
                timer.cancel()
