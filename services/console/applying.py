"""The 申报 pages' reading and acting: applications, their history and titles, through the
applications service with the signed-in user's key. Every change sends the version the page
was read at as If-Match, so a second submit of the same form acts once: the service answers
the stale version 412 and the page shows the application as it is now."""

import asyncio
import re
from typing import Any
from uuid import UUID

from services.console import labels
from services.console.audit_log import read_log
from services.console.clients.http import Refusal, refusals_of
from services.console.clients.reporting import Unit
from services.console.service import ConsoleService
from services.console.sessions import Session
from services.console.views import ApplicationPage, ApplicationsPage
from shared.campaign import ROLLING
from shared.levels import CAMPAIGN_LEVELS, Level

# What each bureau level does (docs/domain.md section 5), and the decisions of each stage.
STAGE_OF_LEVEL = {Level.county: "apply", Level.city: "review", Level.province: "award"}
DECISIONS = {"review": ("approve", "return"), "award": ("award", "reject")}
# The unit state a decision of the stage is taken on.
AWAITING = {"review": "submitted", "award": "recommended"}
REASON_NEEDED = {"review": "退回须填写理由", "award": "不予命名须填写理由"}
INDEXED = re.compile(r"^(?:units|decisions)\[(\d+)\](?:\.(\w+))?")


class Applying:
    def __init__(self, console: ConsoleService) -> None:
        self.console = console
        self.applications = console.clients.applications

    def periods(self) -> list[str]:
        """Named periods only: the rolling window is never applied for."""
        return [p for p in self.console.periods() if p != ROLLING]

    def stages(self, session: Session) -> set[str]:
        """What the key may do here: its bureau level's stage; an admin's, every stage."""
        if session.role == "admin":
            return set(DECISIONS) | {"apply"}
        if session.role != "bureau" or session.scope_code is None:
            return set()
        unit = self.console.registry.get_cached(session.scope_code)
        stage = STAGE_OF_LEVEL.get(unit.level) if unit else None
        return {stage} if stage else set()

    async def listing(self, session: Session, *, root: str, period: str) -> ApplicationsPage:
        found, titles = await self.applications.listing(session, root=root, period=period)
        newest_first = sorted(found, key=lambda a: a.updated_at, reverse=True)
        return ApplicationsPage(applications=newest_first, titles=titles)

    async def application(self, session: Session, application_id: str) -> ApplicationPage:
        found, steps = await self.applications.application(session, application_id)
        audit_log = await read_log(
            self.console.clients.audit,
            session,
            kind="application_step",
            record_ids=[str(step.step_id) for step in steps],
        )
        return ApplicationPage(application=found, steps=steps, audit_log=audit_log)

    async def candidates(self, session: Session, *, root: str, period: str) -> list[Unit]:
        """The eligible units of every campaign level under the root, the county first."""
        reporting = self.console.clients.reporting
        lists = await asyncio.gather(
            *(
                reporting.eligible(session, root=root, period=period, level=level.value)
                for level in CAMPAIGN_LEVELS
            )
        )
        return [unit for units in lists for unit in units]

    async def create(self, session: Session, *, period: str, units: list[dict[str, Any]]) -> UUID:
        """The application of the county the units lie in: a county bureau's own (the service
        refuses any other with 403, as it does through the API), an admin's named by it."""
        return await self.applications.create(
            session, period=period, units=units, county_code=self.county_of(units)
        )

    def county_of(self, units: list[dict[str, Any]]) -> str | None:
        """The county of the first unit, if the registry has it under one."""
        if not units:
            return None
        county = self.console.registry.ancestor_at(units[0]["code"], Level.county)
        return county.code if county else None


def decisions_of(form: dict[str, str], *, stage: str) -> list[dict[str, Any]]:
    """The units decided on the form (`decision-<code>`), each with its reason if given."""
    found = []
    for name, decision in form.items():
        if not name.startswith("decision-") or decision not in DECISIONS[stage]:
            continue
        code = name.removeprefix("decision-")
        reason = form.get(f"reason-{code}", "").strip()
        found.append({"code": code, "decision": decision, "reason": reason or None})
    return found


def unit_errors(
    errors: list[dict[str, Any]] | None, *, codes: list[str], stage: str = "apply"
) -> dict[str, str]:
    """The service's refusals by unit code, in Chinese; what names no unit under ''."""
    found: dict[str, str] = {}
    for error in refusals_of(errors):
        field = error.field or ""
        indexed = INDEXED.match(field)
        # A revocation's one unit is named by the path, its reason by the body.
        index = int(indexed.group(1)) if indexed else 0 if stage == "revoke" else -1
        code = error.unit_code or (codes[index] if 0 <= index < len(codes) else "")
        message = _refusal_message(error, part=indexed.group(2) if indexed else field, stage=stage)
        found[code] = f"{found[code]}；{message}" if code in found else message
    return found


def _refusal_message(error: Refusal, *, part: str | None, stage: str) -> str:
    kind = error.type or ""
    if kind in labels.REFUSALS:
        return labels.REFUSALS[kind]
    if kind == "value_error" and part is None and stage in REASON_NEEDED:
        return REASON_NEEDED[stage]
    names = {"self_evaluation": "自评", "rectifications": "整改情况", "reason": "理由"}
    prefix = f"{names[part]}：" if part in names else ""
    return prefix + labels.field_message(error)
