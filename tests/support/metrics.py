"""Reading a service's /metrics: the value of a sample, to compare before and after."""

import httpx
from prometheus_client.parser import text_string_to_metric_families


def value_of(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`; 0 when there are none
    (a labelled counter shows no sample before its first increment)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def sample(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """`value_of` one sample of an in-process app's /metrics."""
    return value_of((await client.get("/metrics")).text, name, **labels)
