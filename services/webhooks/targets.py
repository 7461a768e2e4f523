"""Where a delivery may go: the URL's host resolved, at subscription and before every attempt,
and refused unless every address is public or the allow-list names it
(`services.webhooks.rules.target_refusal`). The request then goes to the address that was
checked, with the host in `Host` and in TLS's server name, so a name that resolves elsewhere
the next moment (DNS rebinding) reaches nothing it was not allowed to."""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from services.webhooks.rules import AllowList, IPAddress, target_refusal

MAX_URL_LENGTH = 2000


class TargetRefused(Exception):
    """The URL may not be delivered to; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    url: httpx.URL
    address: IPAddress

    def request_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        port = self.url.port
        host = self.url.host
        shown = f"[{host}]" if ":" in host else host
        return shown if port in (None, default) else f"{shown}:{port}"

    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


def parse_url(text: str) -> httpx.URL:
    if len(text) > MAX_URL_LENGTH:
        raise TargetRefused(f"a URL has at most {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise TargetRefused(f"not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise TargetRefused("a URL is http(s)://host/...")
    if url.userinfo:
        raise TargetRefused("a URL carries no user or password")
    if url.fragment:
        raise TargetRefused("a URL has no fragment")
    return url


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def checked_target(text: str, allowed: AllowList) -> Target:
    """The target of a URL, or TargetRefused saying why it may not be delivered to."""
    url = parse_url(text)
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve(url.host, port)
    refusal = target_refusal(
        scheme=url.scheme, host=url.host, port=port, addresses=addresses, allowed=allowed
    )
    if refusal is not None:
        raise TargetRefused(refusal)
    return Target(url, addresses[0])
