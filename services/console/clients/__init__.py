"""The services behind the pages, one typed client each, all called with the signed-in user's
key. Each answer is read into the console's own models of the fields its pages use."""

from dataclasses import dataclass

from services.console.clients.applications import ApplicationsClient
from services.console.clients.audit import AuditClient
from services.console.clients.cases import CasesClient
from services.console.clients.evaluation import EvaluationClient
from services.console.clients.http import ServiceClient
from services.console.clients.intake import IntakeClient
from services.console.clients.reporting import ReportingClient
from services.console.config import ConsoleSettings


@dataclass(frozen=True)
class Clients:
    intake: IntakeClient
    evaluation: EvaluationClient
    reporting: ReportingClient
    applications: ApplicationsClient
    cases: CasesClient
    audit: AuditClient

    @classmethod
    def of(cls, settings: ConsoleSettings) -> "Clients":
        timeout = settings.console_api_timeout_seconds
        urls = settings.service_urls
        audit_timeout = settings.console_audit_timeout_seconds

        def http(service: str, *, timeout: float = timeout) -> ServiceClient:
            return ServiceClient(service, base_url=urls[service], timeout=timeout)

        return cls(
            intake=IntakeClient(http("intake")),
            evaluation=EvaluationClient(http("evaluation")),
            reporting=ReportingClient(http("reporting")),
            applications=ApplicationsClient(http("applications")),
            cases=CasesClient(http("cases")),
            audit=AuditClient(http("audit", timeout=audit_timeout), deadline=audit_timeout),
        )

    async def close(self) -> None:
        for client in (
            self.intake,
            self.evaluation,
            self.reporting,
            self.applications,
            self.cases,
            self.audit,
        ):
            await client.http.close()
