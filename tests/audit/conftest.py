"""The audit service on a database and topics of its own (tests/support/audit.py says why),
for the package."""

from collections.abc import AsyncIterator

import pytest

from tests.support.audit import AuditWorld, running_audit
from tests.support.stack import IsolatedStack


@pytest.fixture(scope="package")
async def world(stack: IsolatedStack) -> AsyncIterator[AuditWorld]:
    async with running_audit() as running:
        yield running
