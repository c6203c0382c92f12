"""Proxies and hosts: which client and which public URL a request really has.

``X-Forwarded-*`` headers are read only when the app says it sits behind proxies
(:class:`TrustedProxies`), so no client can choose the host a redirect goes to or the IP the
frontend API rate-limits; a Host is accepted only as a host name or address and an optional
port. Framework-free: the request layer calls it for the page handshake and the gateway.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlunsplit

from .errors import ConfigurationError

__all__ = ["TrustedProxies", "authority", "client_ip", "public_url"]

# RFC 3986 §3.2.2 reg-name (without percent-encoding, which no real Host uses) and a port.
_REG_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._~-]*[A-Za-z0-9_~-])?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
# RFC 3986 §3.3 pchar plus "/" and "%": anything else in a path or query is percent-encoded,
# so CR, LF, spaces or "#" can never leak into a Location header or change a URL's meaning.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address of an ``X-Forwarded-For`` entry or a socket peer (``[v6]:port`` and
    ``v4:port`` forms tolerated), or None when it is not one."""
    text = value.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """Which proxies in front of the app may speak for the client (``trusted_proxies``).

    Two ways to say it, as deployments know it:

    * ``hops`` = the number of reverse proxies every request passes (``1`` behind one load
      balancer). Each appends the address it received the request from to
      ``X-Forwarded-For``, so the client is the ``hops``-th entry from the right.
    * ``networks`` = the proxies' addresses (CIDRs or single IPs). The socket peer must be one
      of them for any forwarded header to count; ``X-Forwarded-For`` is then read from the
      right, skipping trusted addresses: the first untrusted one is the client.

    Without either (the default) no forwarded header is read: the client is the socket peer
    and the public URL is the request's own scheme and ``Host``. Build one with :meth:`parse`.
    """

    hops: int = 0
    networks: tuple[_Network, ...] = ()

    @classmethod
    def parse(cls, value: TrustedProxies | int | str | Iterable[str] | None) -> TrustedProxies:
        """Read the ``trusted_proxies`` setting: None/0/"" (none), an int or a string of
        digits (hops), or CIDRs/IPs as a list or a comma-separated string.

        Raises:
            ConfigurationError: naming ``trusted_proxies`` and the entry to fix.
        """
        if isinstance(value, TrustedProxies):
            return value
        if value is None:
            return cls()
        if isinstance(value, bool):
            raise ConfigurationError("trusted_proxies must be a number of hops or CIDRs")
        if isinstance(value, int):
            if value < 0:
                raise ConfigurationError(f"trusted_proxies must be >= 0 hops, got {value}")
            return cls(hops=value)
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                return cls(hops=int(text))
            items: Iterable[str] = text.split(",") if text else ()
        else:
            items = value
        networks: list[_Network] = []
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise ConfigurationError(f"trusted_proxies: {item!r} is not a CIDR or an IP")
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ConfigurationError(
                    f"trusted_proxies: {item!r} is not a CIDR or an IP ({exc})"
                ) from exc
        return cls(networks=tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.hops or self.networks)

    def _trusts(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> tuple[str | None, int]:
        """``(client IP, number of trusted proxies it passed)`` for a request.

        The client IP is None when the entry found is not an IP address.
        """
        if not self:
            return _normal(peer), 0
        entries = [e for e in (forwarded_for or "").split(",") if e.strip()]
        if self.hops:
            if not entries:
                return _normal(peer), 0  # not through the proxies (a health check, say)
            # Fewer entries than hops: some proxy overwrote the header rather than append;
            # whatever is left was written by a trusted one, never by the client.
            return _normal(entries[max(0, len(entries) - self.hops)]), self.hops
        peer_ip = _ip(peer) if peer else None
        if peer_ip is None or not self._trusts(peer_ip):
            return _normal(peer), 0
        hops = 1
        for entry in reversed(entries):
            address = _ip(entry)
            if address is None:
                return None, hops
            if not self._trusts(address):
                return str(address), hops
            hops += 1
        # Every address is a trusted proxy: the left-most is as close to the client as known.
        return (_normal(entries[0]) if entries else _normal(peer)), hops


def _normal(value: str | None) -> str | None:
    address = _ip(value) if value else None
    return str(address) if address is not None else None


def client_ip(
    peer: str | None,
    forwarded_for: str | None = None,
    trusted_proxies: TrustedProxies | None = None,
) -> str | None:
    """The client's IP, for ``X-Wacht-Forwarded-For``: the socket ``peer``, or with
    ``trusted_proxies`` the entry of ``X-Forwarded-For`` (RFC 7239 §5.2's de-facto predecessor)
    that the trusted proxies vouch for (:class:`TrustedProxies`). None when unknown."""
    return (trusted_proxies or _NO_PROXIES).resolve(peer, forwarded_for)[0]


_NO_PROXIES = TrustedProxies()


def _forwarded_value(header: str | None, hops: int) -> str | None:
    """The value of an ``X-Forwarded-Proto``/``-Host`` list that the outermost trusted proxy
    wrote: each proxy appends (or overwrites), so it is ``hops`` entries from the right."""
    if not header or hops <= 0:
        return None
    values = [v.strip() for v in header.split(",") if v.strip()]
    if not values:
        return None
    return values[max(0, len(values) - hops)]


def authority(host: str, scheme: str) -> str | None:
    """The one Host rule: a Host value as ``host[:port]`` (lower case, default port
    dropped), or None when it is not a host (RFC 9110 §7.2, RFC 3986 §3.2.2): no userinfo,
    path, query or spaces."""
    host = host.strip()
    if host.startswith("["):
        literal, _, rest = host[1:].partition("]")
        if "%" in literal:  # a zone id: no URI host (RFC 6874), and ipaddress takes "@" in one
            return None
        try:
            name = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            return None
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return None
    else:
        name, colon, port_text = host.partition(":")
        port = port_text if colon else None
        if not _REG_NAME.match(name):
            return None
        name = name.lower()
    if port is not None:
        if not _PORT.match(port) or not 0 < int(port) < 65536:
            return None
        if int(port) != _DEFAULT_PORTS.get(scheme):
            name += f":{int(port)}"
    return name


def public_url(
    *,
    scheme: str,
    host: str | None,
    path: str,
    query: str = "",
    peer: str | None = None,
    forwarded_for: str | None = None,
    forwarded_proto: str | None = None,
    forwarded_host: str | None = None,
    trusted_proxies: TrustedProxies | None = None,
) -> str:
    """The absolute URL the browser asked for: the ``redirect_uri`` back to this page.

    The scheme and host are the request's own (``Host`` is what the browser sent, so it may
    name whatever the browser reached; a redirect there goes nowhere the browser did not
    already go). ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` replace them only when
    ``trusted_proxies`` trusts the proxies this request passed (``peer`` and
    ``forwarded_for`` decide, see :class:`TrustedProxies`); otherwise any client could name a
    foreign host. Invalid forwarded values are ignored. ``path`` (as routed) and ``query``
    (raw) are percent-encoded where RFC 3986 requires, so the URL can go into a ``Location``
    header as it is.

    Raises:
        ValueError: ``host`` is missing or not a host name (answer 400).
    """
    scheme = {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme.lower())
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported scheme {scheme!r}")
    _, hops = (trusted_proxies or _NO_PROXIES).resolve(peer, forwarded_for)
    proto = (_forwarded_value(forwarded_proto, hops) or "").lower()
    if proto in _DEFAULT_PORTS:
        scheme = proto
    where = None
    proxied_host = _forwarded_value(forwarded_host, hops)
    if proxied_host is not None:
        where = authority(proxied_host, scheme)
    if where is None:
        where = authority(host, scheme) if host else None
    if where is None:
        raise ValueError("the request has no valid Host")
    path = "/" + quote(path, safe=_PATH_SAFE).lstrip("/")  # never "//": a path, not a host
    query = quote(query, safe=_QUERY_SAFE)
    return urlunsplit((scheme, where, path, query, ""))
