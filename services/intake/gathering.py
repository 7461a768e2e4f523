"""Single events posted at the same moment go to the journal together: the events that arrive
while the previous statements run are journalled by the next one, in one statement and one
commit. No request waits for a timer: a statement starts as soon as one is free, so an event
alone goes in at once, and many at once share the round trip and the commit.

Each request is answered only when its own event is durable (or refused). A statement that
fails for a reason of its own data is tried again for each event alone, so that a bad row
answers its own request only; the database being unreachable answers every event of the
statement, as it would have answered each."""

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.intake import metrics
from services.intake.payloads import Pending
from shared.errors import DomainError


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: UUID
    accepted_at: datetime
    duplicate: bool


Outcome = Receipt | DomainError
# Journals events with distinct ids in one statement; an outcome for each id.
Store = Callable[[list[Pending]], Awaitable[dict[UUID, Outcome]]]
Waiting = tuple[Pending, "asyncio.Future[Outcome]"]


class Gathering:
    def __init__(self, store: Store, *, statements: int, max_events: int) -> None:
        """At most `statements` statements run at once, each of at most `max_events`."""
        self._store = store
        self._statements = statements
        self._max_events = max_events
        self._waiting: deque[Waiting] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def store(self, pending: Pending) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((pending, future))
        if self._running < self._statements:
            self._running += 1
            # A task of its own: a request that goes away does not cancel the others' statement.
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group = self._next_group()
                metrics.gathered.observe(len(group))
                await self._write(group)
        finally:
            self._running -= 1

    def _next_group(self) -> list[Waiting]:
        """The longest waiting events, one per event id: a repeat waits for the next statement,
        which finds the first in the journal and answers as for any repeat."""
        group: list[Waiting] = []
        ids: set[UUID] = set()
        repeats: list[Waiting] = []
        while self._waiting and len(group) < self._max_events:
            waiting = self._waiting.popleft()
            if waiting[0].event_id in ids:
                repeats.append(waiting)
            else:
                ids.add(waiting[0].event_id)
                group.append(waiting)
        self._waiting.extendleft(reversed(repeats))
        return group

    async def _write(self, group: list[Waiting]) -> None:
        try:
            outcome = await self._store([pending for pending, _ in group])
        except DomainError as exc:  # unreachable, outcome unknown: the same for every event
            for _, future in group:
                _settle(future, exc)
            return
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc)
                return
            for waiting in group:
                await self._write([waiting])
            return
        except BaseException as exc:  # cancelled while shutting down
            for _, future in group:
                _settle(future, exc)
            raise
        for pending, future in group:
            _settle(future, outcome[pending.event_id])


def _settle(future: "asyncio.Future[Outcome]", result: Outcome | BaseException) -> None:
    if future.done():  # its request went away
        return
    if isinstance(result, BaseException) and not isinstance(result, DomainError):
        future.set_exception(result)
    else:
        future.set_result(result)
