"""Seconds per stage of a long job, for its summary."""

from __future__ import annotations

import time


class StageClock:
    """Laps of named stages: each lap the seconds since the previous one (or since the start)."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str, since_start: bool = False) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - (self.start if since_start else self.last), 3)
        self.last = now
