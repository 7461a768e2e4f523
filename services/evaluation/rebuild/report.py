"""What a rebuild did: the messages read, the events applied and skipped, the statuses and
indicators computed, the seconds each phase took, and the most memory it held."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, field

from services.evaluation.rebuild.readers import Read


@dataclass
class Progress:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass
class RebuildReport:
    messages: int = 0  # read from the topic
    events: int = 0  # distinct events and corrections applied
    skipped: int = 0  # messages that cannot be applied (the live consumer dead-letters them)
    statuses: int = 0
    indicators: int = 0
    differences: list[tuple[str, str]] = field(default_factory=list)
    swapped: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, in order
    # Bytes resident at the peak (VmHWM): the rebuild's process, its largest reader process
    # (0 when it read the topic itself; a reader shares the pages it was forked with).
    peak_resident: int = 0
    readers_peak_resident: int = 0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = time.perf_counter() - began

    @property
    def events_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def read(self) -> Read:
        return Read(self.messages, self.events, self.skipped, self.readers_peak_resident)

    def add(self, read: Read) -> None:
        """Count what a reader process read."""
        self.messages, self.events, self.skipped, self.readers_peak_resident = astuple(
            self.read + read
        )
