"""The webhooks' rules, without I/O: the kinds of change a subscription hears of, the Standard
Webhooks retry schedule, and which targets a delivery may reach (docs/webhooks.md)."""

import ipaddress
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Kind(StrEnum):
    """What a subscription hears of, one topic each."""

    status_changes = "status_changes"
    warnings = "warnings"
    application_steps = "application_steps"
    dispute_steps = "dispute_steps"
    case_steps = "case_steps"


# Seconds after the first attempt, the second, ...: the Standard Webhooks schedule (the first
# attempt is immediate; after the eighth fails the delivery is dead).
RETRY_SCHEDULE = (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
ATTEMPTS = len(RETRY_SCHEDULE) + 1
# Each pause is stretched by up to this fraction at random, so that deliveries that failed
# together (a receiver down) do not all come back in the same instant.
JITTER = 0.2


def retry_delay(
    attempts: int, *, scale: float = 1.0, draw: Callable[[], float] = random.random
) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None: no more (dead)."""
    if attempts >= ATTEMPTS:
        return None
    return RETRY_SCHEDULE[attempts - 1] * scale * (1 + JITTER * draw())


def is_delivered(status: int) -> bool:
    return 200 <= status < 300


# A receiver answering this says the endpoint is gone: the subscription is disabled.
GONE = 410


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class AllowList:
    """Targets allowed although not public (and over plain http): networks and host:port."""

    networks: tuple[IPNetwork, ...] = ()
    targets: tuple[HostPort, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "AllowList":
        networks: list[IPNetwork] = []
        targets: list[HostPort] = []
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"{entry!r} is not a CIDR") from None
                continue
            host, colon, port = entry.rpartition(":")
            if not colon or not port.isdigit() or not 0 < int(port) < 65536 or not host:
                raise ValueError(f"{entry!r} is neither a CIDR nor host:port")
            targets.append(HostPort(host.strip("[]").lower(), int(port)))
        return cls(tuple(networks), tuple(targets))

    def names(self, host: str, port: int) -> bool:
        """Whether a host:port entry names the URL's host and port."""
        return HostPort(host.lower(), port) in self.targets

    def allows(self, address: IPAddress, *, host: str, port: int) -> bool:
        """Whether the address may be reached although it is not public."""
        if any(address in network for network in self.networks):
            return True
        return self.names(host, port) or HostPort(str(address), port) in self.targets


def is_public(address: IPAddress) -> bool:
    """Not loopback, link-local (169.254.169.254, the cloud metadata address, among them),
    private, shared, reserved, multicast or unspecified."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def target_refusal(
    *, scheme: str, host: str, port: int, addresses: Sequence[IPAddress], allowed: AllowList
) -> str | None:
    """Why a target may not be delivered to, or None. Every address the host resolves to must
    be public or allowed (a name that resolves to one internal address is refused)."""
    if not addresses:
        return f"{host} resolves to no address"
    allowed_each = [allowed.allows(a, host=host, port=port) for a in addresses]
    for address, is_allowed in zip(addresses, allowed_each, strict=True):
        if not is_allowed and not is_public(address):
            return (
                f"{host} resolves to {address}, which is not a public address "
                "(SANWU_WEBHOOKS_ALLOWED_TARGETS may name it)"
            )
    if scheme != "https" and not all(allowed_each):
        return "deliveries go over https (unless SANWU_WEBHOOKS_ALLOWED_TARGETS names the target)"
    return None
