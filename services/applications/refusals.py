"""Refusals: every unit a request is refused for, named with why. Bad input (a unit that is no
candidate at all, or a decision on no unit of the application) is 422; a unit the state does not
allow (not eligible now, already applied for, in the wrong state, flagged) is 409."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.applications.models import UnitStatusRow
from services.applications.records import Application
from services.applications.schemas import ApplicationIn
from services.applications.workflow import STAGE_FROM, Stage
from shared.errors import InvalidInput, StateConflict
from shared.levels import CAMPAIGN_LEVELS
from shared.registry.cache import UnitRegistry

Refusal = dict[str, Any]
Decision = tuple[str, str, str | None]  # (unit code, decision, reason)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where units stand for a period: their stored statuses (none: three-no) and the live
    application each is in, if any."""

    statuses: Mapping[str, UnitStatusRow]
    live: Mapping[str, UUID]


def refusal(index: int, code: str, *, kind: str, message: str, **extra: Any) -> Refusal:
    """One named unit and why, as an entry of the problem's `errors`."""
    entry = {"field": f"units[{index}].code", "message": message, "type": kind}
    return entry | {"unit_code": code, "position": index} | extra


def raise_refusals(input_errors: list[Refusal], conflicts: list[Refusal]) -> None:
    """422 when any unit was bad input, naming every refused unit; else 409 for conflicts."""
    every = sorted(input_errors + conflicts, key=lambda r: r["position"])
    names = ", ".join(f"{r['unit_code']} ({r['type']})" for r in every)
    for entry in every:
        del entry["position"]
    if input_errors:
        raise InvalidInput(f"units refused: {names}", errors=every)
    if conflicts:
        raise StateConflict(f"units refused: {names}", errors=every)


async def check_units(
    body: ApplicationIn, *, registry: UnitRegistry, county_code: str, standing: Standing
) -> None:
    """Every unit refused is named with why: 422 for units that are no candidates at all,
    409 for units not eligible now or already in a live application for the period."""
    bad: list[Refusal] = []
    seen: set[str] = set()
    for index, proposed in enumerate(body.units):
        code = proposed.code
        unit = await registry.get(code)
        if code in seen:
            bad.append(refusal(index, code, kind="duplicate", message="listed twice"))
        elif unit is None:
            bad.append(refusal(index, code, kind="unknown_unit", message="not in the registry"))
        elif not registry.is_within(code, county_code):
            bad.append(
                refusal(
                    index,
                    code,
                    kind="outside_county",
                    message=f"not a unit of county {county_code}",
                )
            )
        elif unit.level not in CAMPAIGN_LEVELS:
            bad.append(
                refusal(
                    index,
                    code,
                    kind="not_campaign_level",
                    message=f"a {unit.level.value} is not a campaign level",
                )
            )
        seen.add(code)
    candidates = [u.code for u in body.units]
    found = conflicts(standing, codes=candidates, period=body.period)
    refused = {b["unit_code"] for b in bad}
    raise_refusals(bad, [c for c in found if c["unit_code"] not in refused])


def conflicts(
    standing: Standing,
    *,
    codes: Sequence[str],
    period: str,
    application_id: UUID | None = None,
) -> list[Refusal]:
    """Units not eligible now (with their counting events) or in another live application."""
    statuses, live = standing.statuses, standing.live
    found = []
    for index, code in enumerate(codes):
        status = statuses.get(code)
        if status is not None and not status.three_no:
            found.append(
                refusal(
                    index,
                    code,
                    kind="not_eligible",
                    message=f"not three-no for {period} now",
                    counting_event_ids=status.counting_event_ids,
                )
            )
        elif code in live and live[code] != application_id:
            found.append(
                refusal(
                    index,
                    code,
                    kind="already_applied",
                    message=f"in live application {live[code]} for {period}",
                    application_id=str(live[code]),
                )
            )
    return found


def check_decisions(
    application: Application, *, stage: Stage, decisions: Sequence[Decision]
) -> None:
    """Every decision refused is named with why: 422 for a unit decided twice or not in the
    application, 409 for a unit not awaiting this stage or flagged (not to be approved or
    awarded)."""
    bad: list[Refusal] = []
    found: list[Refusal] = []
    seen: set[str] = set()
    expected = STAGE_FROM[stage]
    positive = "approve" if stage == Stage.review else "award"
    for index, (code, decision, _) in enumerate(decisions):
        unit = application.unit(code)
        entry = {"field": f"decisions[{index}].code", "unit_code": code, "position": index}
        if code in seen:
            bad.append(entry | {"type": "duplicate", "message": "decided twice"})
        elif unit is None:
            bad.append(
                entry | {"type": "not_in_application", "message": "not a unit of this application"}
            )
        elif unit.state != expected:
            found.append(
                entry
                | {
                    "type": "wrong_state",
                    "message": f"is {unit.state.value}, not {expected.value}",
                }
            )
        elif decision == positive and unit.flagged:
            found.append(
                entry
                | {
                    "type": "flagged",
                    "message": f"flagged since {unit.flag_since}: not three-no",
                    "flag_event_ids": unit.flag_event_ids or [],
                }
            )
        seen.add(code)
    raise_refusals(bad, found)
