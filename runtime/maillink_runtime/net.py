"""Network facts every service needs the same answer to."""
import ipaddress


def is_loopback(host: str) -> bool:
    """True for a host on this machine: the only place plain-text protocols are ever allowed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
