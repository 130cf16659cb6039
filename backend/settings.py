"""The server's and the CLI's settings: `Settings` (the one reader of the environment, in the core, so
the add-on's preset folders come from the same place) and the host rules that go with them.

Command-line flags override these; `Settings.from_env()` gives the defaults they override.
"""

from __future__ import annotations

from exomni_blender.core.settings import Settings, default_store  # noqa: F401 (the backend's settings)


def is_loopback(host: str) -> bool:
    """True for an exact loopback address or the name `localhost`: 127.0.0.0/8 and ::1 as parsed
    addresses (brackets allowed around IPv6), never by prefix, so `127.0.0.1.evil.com` and
    `[::1].evil.com` (names anyone can point at any address) are not loopback."""
    import ipaddress

    host = (host or "").strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    if "%" in host:  # a zone id ("::1%eth0") names an interface, not this machine
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)
