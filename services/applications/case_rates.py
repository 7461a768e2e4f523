"""A unit's case rates (docs/domain.md section 11) as the cases service reports them, asked on
behalf of the bureau that submits, with its own key: they go into the unit's evidence beside
its cadence and satisfaction. A submission waits for every answer or refuses (503) with
nothing stored, so evidence never lacks rates by accident."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from shared.errors import DependencyUnavailable

CASES = "the cases service"
RATES_PATH = "/v1/reports/case-rates"
# Units of one application asked at once: a county's application names tens of units.
CONCURRENT_ASKS = 8

# (unit codes, period) -> each unit's rates; None when no cases service is configured.
CaseRatesLookup = Callable[[Sequence[str], str], Awaitable[dict[str, dict[str, Any]] | None]]


class CaseRatesSource:
    def __init__(self, base_url: str, *, timeout: float) -> None:
        """`base_url` empty: no cases service, and the evidence says its rates are not known."""
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout) if base_url else None

    def on_behalf_of(self, authorization: str) -> CaseRatesLookup | None:
        if self._client is None:
            return None

        async def lookup(codes: Sequence[str], period: str) -> dict[str, dict[str, Any]] | None:
            return await self.rates_of(codes, period=period, authorization=authorization)

        return lookup

    async def rates_of(
        self, codes: Sequence[str], *, period: str, authorization: str
    ) -> dict[str, dict[str, Any]] | None:
        if self._client is None:
            return None
        client = self._client
        gate = asyncio.Semaphore(CONCURRENT_ASKS)

        async def one(code: str) -> tuple[str, dict[str, Any]]:
            async with gate:
                return code, await _rates(client, code, period=period, authorization=authorization)

        return dict(await asyncio.gather(*(one(code) for code in codes)))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def _rates(
    client: httpx.AsyncClient, code: str, *, period: str, authorization: str
) -> dict[str, Any]:
    try:
        response = await client.get(
            RATES_PATH,
            params={"root": code, "period": period},
            headers={"Authorization": authorization},
        )
    except httpx.HTTPError as error:
        raise DependencyUnavailable(CASES, f"{type(error).__name__}: {error}") from error
    if response.status_code != 200:
        raise DependencyUnavailable(
            CASES, f"it answered {response.status_code} for unit {code}, period {period}"
        )
    rates: dict[str, Any] = response.json()["rates"]
    return rates
