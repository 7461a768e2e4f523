"""The rising warnings a batch can change (`upkeep`): for each unit on the chains of the
touched visits, the span of onsets they reach, and the onsets found again in that span from the
unit's visits. A batch of a county whose visits are dated all over its history reads the
county's whole history here, so each visit is read as little as the rule needs: its id, where
it was reported and is attributed, and its moment in microseconds (`VisitMoment`), grouped by
unit in one pass, with nothing made per visit beyond its place in two lists per unit; and a
batch touching many counties reads and weighs them one at a time."""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from services.evaluation.warnings.finder import Chain, Expected, WarningFinder, expected
from services.evaluation.warnings.records import StoredVisit, VisitMoment
from services.evaluation.warnings.repository import WarningRepository

Span = tuple[datetime, datetime]
# A unit's visits, in order: their moments and their ids.
Timeline = tuple[list[int], list[UUID]]


class RisingWarnings:
    def __init__(
        self,
        *,
        finder: WarningFinder,
        chain: Chain,
        keying_unit: Callable[[str], str],
        reach: timedelta,
    ) -> None:
        self.finder = finder
        self.chain = chain
        self.keying_unit = keying_unit
        self.reach = reach  # how far a visit's moment reaches into the onsets after it

    def spans(
        self, visits: Sequence[StoredVisit], named: Mapping[UUID, set[str]]
    ) -> dict[str, Span]:
        """Per unit whose rising onsets the visits may change: the span of those onsets.
        `named`: the units of the rising warnings naming each visit (where it was before)."""
        spans: dict[str, Span] = {}
        for visit in visits:
            units = {c for c, _ in self.chain(visit.unit_code)}
            units |= {c for c, _ in self.chain(visit.attributed_code)}
            units |= named.get(visit.event_id, set())
            for unit_code in units:
                since, until = spans.get(unit_code, (visit.occurred_at, visit.occurred_at))
                spans[unit_code] = (min(since, visit.occurred_at), max(until, visit.occurred_at))
        return {code: (since, until + self.reach) for code, (since, until) in spans.items()}

    async def wanted(
        self, repository: WarningRepository, spans: Mapping[str, Span]
    ) -> dict[UUID, Expected]:
        """The rising warnings of each unit of `spans` with its onset in the unit's span, one
        county at a time: a unit's onsets depend on its county's visits only, and a batch of
        visits all over the nation would otherwise hold every touched county's history at
        once."""
        wanted: dict[UUID, Expected] = {}
        for county, (since, until), of_county in self.by_county(spans):
            moments = await repository.visit_moments_in_county(
                county, after=since - self.reach, until=until
            )
            wanted |= self.expected(moments, of_county)
        return wanted

    def by_county(self, spans: Mapping[str, Span]) -> list[tuple[str, Span, dict[str, Span]]]:
        """The spans grouped by county, each with the span of its units' spans, in the
        counties' order."""
        grouped: dict[str, dict[str, Span]] = {}
        for unit_code, span in spans.items():
            grouped.setdefault(self.keying_unit(unit_code), {})[unit_code] = span
        return [
            (
                county,
                (min(s for s, _ in of.values()), max(u for _, u in of.values())),
                of,
            )
            for county, of in sorted(grouped.items())
        ]

    def expected(
        self, moments: Sequence[VisitMoment], spans: Mapping[str, Span]
    ) -> dict[UUID, Expected]:
        """The rising warnings of each unit of `spans` with its onset in the unit's span, as
        the visits were reported and as they stand."""
        as_reported: dict[str, Timeline] = {code: ([], []) for code in spans}
        as_standing: dict[str, Timeline] = {code: ([], []) for code in spans}
        # The units of `spans` on each unit's chain, looked up once per unit.
        within: dict[str, list[Timeline]] = {}
        within_now: dict[str, list[Timeline]] = {}

        def timelines(unit_code: str, of: dict[str, Timeline]) -> list[Timeline]:
            return [of[code] for code, _ in self.chain(unit_code) if code in of]

        for event_id, unit_code, attributed_code, voided, at in moments:
            reported = within.get(unit_code)
            if reported is None:
                reported = within[unit_code] = timelines(unit_code, as_reported)
            for times, ids in reported:
                times.append(at)
                ids.append(event_id)
            if voided:
                continue
            standing = within_now.get(attributed_code)
            if standing is None:
                standing = within_now[attributed_code] = timelines(attributed_code, as_standing)
            for times, ids in standing:
                times.append(at)
                ids.append(event_id)
        wanted: dict[UUID, Expected] = {}
        rising = self.finder.rising_at
        for unit_code, (since, until) in spans.items():
            times, ids = as_standing[unit_code]
            found_now = rising(unit_code, times, ids, since=since, until=until)
            # A unit none of whose visits is corrected has the same warnings either way.
            before = as_reported[unit_code]
            found = found_now
            if before != (times, ids):
                found = rising(unit_code, *before, since=since, until=until)
            wanted |= expected(found, found_now)
        return wanted
