"""The AsyncAPI 3.0 document of every topic, built from what the code uses: the message models
of `shared.messages` (their JSON Schema, `$defs` as `components/schemas`), the keys and headers
of `shared.asyncapi.topics`, who writes and reads what from `shared.kafka_rights.RIGHTS` (an
operation per right), partitions and topic configuration from `shared.kafka.topic_specs`, and
the servers and topic names from the settings. One document describes the whole system; every
service that writes to Kafka serves it at `/asyncapi.json`, and `sanwu topics asyncapi` prints
it."""

import copy
from functools import cache
from importlib import metadata
from typing import Any

from aiokafka.admin import NewTopic
from pydantic.json_schema import models_json_schema

from shared import kafka, kafka_rights
from shared.asyncapi.topics import CONTRACTS, Contract, Schema
from shared.config import Settings

ASYNCAPI = "3.0.0"
KAFKA_BINDING = "0.5.0"
SCHEMAS = "#/components/schemas/{model}"
# Topic settings that the Kafka channel binding states as numbers.
NUMERIC_CONFIGS = frozenset(
    {"retention.ms", "retention.bytes", "min.insync.replicas", "min.compaction.lag.ms"}
)


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    schemas, payloads = copy.deepcopy(message_schemas())  # the caller's to change
    specs = {spec.name: spec for spec in kafka.topic_specs(settings)}
    return {
        "asyncapi": ASYNCAPI,
        "info": {
            "title": "sanwu topics",
            "version": metadata.version("sanwu"),
            "description": "Every Kafka topic of sanwu: what each message carries, how it is "
            "keyed, which headers it has, and which service writes and reads it. Producers "
            "write through an outbox in the transaction of the change (idempotent, acks=all); "
            "consumers apply a message only above the version they hold.",
        },
        "defaultContentType": "application/json",
        "servers": servers(settings),
        "channels": {
            c.channel: channel(c, settings, specs[getattr(settings, c.topic)]) for c in CONTRACTS
        },
        "operations": operations(),
        "components": {
            "schemas": schemas,
            "messages": {c.message: message(c, payloads) for c in CONTRACTS},
            **security_schemes(settings),
        },
    }


@cache
def message_schemas() -> tuple[dict[str, Schema], dict[str, Schema]]:
    """Every schema the message models use, by name, and each message's payload (a reference
    to its model's schema, or any bytes)."""
    models = [c.model for c in CONTRACTS if c.model is not None]
    refs, top = models_json_schema([(m, "validation") for m in models], ref_template=SCHEMAS)
    payloads: dict[str, Schema] = {
        c.message: (
            refs[(c.model, "validation")]
            if c.model is not None
            else {"description": "The refused record's value, unchanged (any bytes)."}
        )
        for c in CONTRACTS
    }
    return without_discriminators(top.get("$defs", {})), payloads


def without_discriminators(schema: Any) -> Any:
    """The schema without pydantic's OpenAPI-style `discriminator` objects, which AsyncAPI
    reads differently (a property name that subschemas inherit); each member of such a union
    already states its `type` as a constant."""
    if isinstance(schema, dict):
        return {
            key: without_discriminators(value)
            for key, value in schema.items()
            if not (key == "discriminator" and isinstance(value, dict))
        }
    if isinstance(schema, list):
        return [without_discriminators(value) for value in schema]
    return schema


def servers(settings: Settings) -> dict[str, Schema]:
    hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    protocol = settings.kafka_security_protocol
    server: Schema = {
        "protocol": "kafka-secure" if protocol.endswith("SSL") else "kafka",
        "description": f"A bootstrap broker ({protocol}).",
    }
    if protocol.startswith("SASL_"):
        server["security"] = [{"$ref": "#/components/securitySchemes/scram"}]
    names = ["kafka"] if len(hosts) == 1 else [f"kafka-{n}" for n in range(1, len(hosts) + 1)]
    return {name: server | {"host": host} for name, host in zip(names, hosts, strict=True)}


def security_schemes(settings: Settings) -> dict[str, Schema]:
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return {}
    mechanism = settings.kafka_sasl_mechanism.lower().replace("-", "")  # scramsha512
    scheme = {
        "type": mechanism.replace("scramsha", "scramSha"),
        "description": "A SCRAM user per service (shared/kafka_rights.py says what each may do).",
    }
    return {"securitySchemes": {"scram": scheme}}


def channel(contract: Contract, settings: Settings, spec: NewTopic) -> Schema:
    return {
        "address": getattr(settings, contract.topic),
        "title": contract.title,
        "description": contract.description,
        "messages": {contract.message: {"$ref": f"#/components/messages/{contract.message}"}},
        "bindings": {
            "kafka": {
                "partitions": spec.num_partitions,
                "replicas": spec.replication_factor,
                "topicConfiguration": topic_configuration(spec.topic_configs),
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def topic_configuration(configs: dict[str, str]) -> dict[str, Any]:
    stated: dict[str, Any] = {}
    for name, value in configs.items():
        if name == "cleanup.policy":
            stated[name] = value.split(",")
        else:
            stated[name] = int(value) if name in NUMERIC_CONFIGS else value
    return stated


def operations() -> dict[str, Schema]:
    """An operation per topic each service writes (send) and reads (receive), named
    `<service>.<action>.<channel>`."""
    contracts = {c.topic: c for c in CONTRACTS}
    found: dict[str, Schema] = {}
    for principal, rights in kafka_rights.RIGHTS.items():
        service = principal.removeprefix("sanwu-")
        for action, topics in (("send", rights.writes), ("receive", rights.reads)):
            for topic in topics:
                contract = contracts[topic]
                found[f"{service}.{action}.{contract.channel}"] = operation(
                    contract, action=action, service=service
                )
    return found


def operation(contract: Contract, *, action: str, service: str) -> Schema:
    channel_ref = f"#/channels/{contract.channel}"
    verb = "publishes" if action == "send" else "reads"
    return {
        "action": action,
        "channel": {"$ref": channel_ref},
        "summary": f"The {service} service {verb} {contract.channel}.",
        "messages": [{"$ref": f"{channel_ref}/messages/{contract.message}"}],
    }


def message(contract: Contract, payloads: dict[str, Schema]) -> Schema:
    example: Schema = {"name": f"{contract.channel}-example", "payload": contract.example()}
    if contract.example_headers:
        example["headers"] = contract.example_headers
    found: Schema = {
        "name": contract.message,
        "title": contract.title,
        "contentType": contract.content_type,
        "payload": payloads[contract.message],
        "headers": contract.headers,
        "bindings": {"kafka": {"key": contract.key, "bindingVersion": KAFKA_BINDING}},
        "examples": [example],
    }
    if "correlation_id" in contract.headers.get("properties", {}):
        found["correlationId"] = {
            "location": "$message.header#/correlation_id",
            "description": "The request that caused the message.",
        }
    return found
