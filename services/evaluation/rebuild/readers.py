"""A rebuild's read phase shared out among processes.

Turning messages into rows (decoding, attributing, encoding them for COPY) is most of a
rebuild's time, and in one process it runs on one core while the database takes the rows on
another with little to do. So the topic's partitions are shared out among
`rebuild_readers` processes, forked once the rebuild has the campaign and the registry (they
share its memory), each reading its partitions with a consumer and a database connection of
its own.

An event's repeats are on its own partition (intake publishes a journal row under the same
key every time), so a process that drops the repeats among its partitions drops them all.
"""

import asyncio
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import astuple, dataclass, fields, replace
from multiprocessing.connection import Connection
from typing import Any

from aiokafka import TopicPartition

from services.evaluation.rebuild.memory import peak_resident

POLL_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Read:
    """What a reader read: messages, distinct events and corrections applied, skipped; and
    the most memory it held (bytes resident at its peak; of readers, the largest)."""

    messages: int = 0
    events: int = 0
    skipped: int = 0
    peak_resident: int = 0

    def __add__(self, other: "Read") -> "Read":
        return Read(
            self.messages + other.messages,
            self.events + other.events,
            self.skipped + other.skipped,
            max(self.peak_resident, other.peak_resident),
        )


FIELDS = len(fields(Read))  # a reader's slots in the shared counts
Ends = dict[TopicPartition, int]
# Reads one share up to its ends, telling its counts as it goes; runs in a reader process.
ShareReader = Callable[[Ends, Callable[[Read], None]], Coroutine[Any, Any, Read]]


class ReaderFailed(Exception):
    pass


def shares_of(ends: Ends, readers: int) -> list[Ends]:
    """The partitions in at most `readers` shares of about the same number of messages (the
    largest partition first to the share with the fewest)."""
    count = max(1, min(readers, len(ends)))
    shares: list[Ends] = [{} for _ in range(count)]
    sizes = [0] * count
    for tp in sorted(ends, key=lambda tp: (-ends[tp], tp.partition)):
        least = sizes.index(min(sizes))
        shares[least][tp] = ends[tp]
        sizes[least] += ends[tp]
    return [share for share in shares if share]


async def read_in_processes(
    shares: Sequence[Ends], read: ShareReader, *, on_read: Callable[[Read], None]
) -> Read:
    """Each share read by `read` in a process of its own; `on_read` gets the counts so far
    of all of them, a few times a second. Raises `ReaderFailed` as soon as one fails (the
    others are stopped)."""
    context = multiprocessing.get_context("fork")  # the registry is shared, not loaded again
    counts = context.Array("q", FIELDS * len(shares), lock=False)
    readers = []
    try:
        for index, share in enumerate(shares):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_read_share,
                args=(read, share, counts, index, sender, os.getpid()),
                name=f"rebuild-reader-{index}",
                daemon=True,
            )
            process.start()
            sender.close()
            readers.append((process, receiver, share))
        while any(process.exitcode is None for process, _, _ in readers):
            _raise_if_failed(readers)
            on_read(_total(counts, len(shares)))
            await asyncio.sleep(POLL_SECONDS)
        _raise_if_failed(readers)
        total = _total(counts, len(shares))
        on_read(total)
        return total
    finally:
        for process, receiver, _ in readers:
            if process.exitcode is None:
                process.kill()
            process.join()
            receiver.close()


def _total(counts: Any, shares: int) -> Read:
    return sum((Read(*counts[FIELDS * i : FIELDS * (i + 1)]) for i in range(shares)), Read())


def _raise_if_failed(readers: list[tuple[Any, Connection, Ends]]) -> None:
    for process, receiver, share in readers:
        if process.exitcode not in (None, 0):
            reason = _reason(receiver) or f"exit code {process.exitcode}"
            partitions = ", ".join(str(tp.partition) for tp in sorted(share))
            raise ReaderFailed(f"the reader of partitions {partitions} failed: {reason}")


def _reason(receiver: Connection) -> str | None:
    """What the reader said before it ended; none if it was ended without a word."""
    try:
        return str(receiver.recv()) if receiver.poll() else None
    except EOFError:
        return None


def _read_share(
    read: ShareReader, share: Ends, counts: Any, index: int, errors: Connection, rebuild: int
) -> None:
    """A reader process: its own event loop, its counts in its slots of `counts`."""

    def tell(read: Read) -> None:
        counts[FIELDS * index : FIELDS * (index + 1)] = list(astuple(read))

    _end_with(rebuild)
    try:
        tell(replace(asyncio.run(read(share, tell)), peak_resident=peak_resident()))
    except BaseException as exc:  # said to the rebuild, which fails with it
        errors.send(f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _end_with(rebuild: int) -> None:
    """Be killed when the rebuild process `rebuild` ends, however it ends: a reader left
    behind would go on COPying into staging tables that the next rebuild creates again."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != rebuild:  # it ended before the line above
        raise SystemExit(1)
