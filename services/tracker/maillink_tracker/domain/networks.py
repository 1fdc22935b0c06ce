"""Networks: anonymising an address, and looking addresses up in operator-supplied range lists.

A list can be large (Apple's egress list holds a few hundred thousand prefixes), so a lookup is
one dict probe per prefix length present in the list: at most 33 (IPv4) or 129 (IPv6) probes and
usually a handful, whatever the list's size.
"""
import csv
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ANONYMISED_BITS = {4: 24, 6: 48}  # what anonymise() keeps


def anonymise(ip: IPAddress) -> str:
    """The /24 (IPv4) or /48 (IPv6) the address is in: what an event may carry. An IPv4-mapped IPv6
    address is treated as the IPv4 address it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 4:
        # Integer arithmetic: ip_network() costs more than the rest of the pixel request's classification.
        value = int(ip) >> 8
        return f"{value >> 16}.{(value >> 8) & 255}.{value & 255}.0/24"
    return str(ipaddress.ip_network(f"{ip}/48", strict=False))


def parse_ip(text: str | None) -> IPAddress | None:
    if text and "." in text and ":" not in text:
        # IPv4, the common case, through the C parser: ip_address() costs more than the
        # classification it feeds. inet_pton accepts exactly the four-part dotted-decimal form.
        try:
            return ipaddress.IPv4Address(int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"))
        except OSError:
            return None
    try:
        ip = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


@dataclass
class NetworkSet:
    """name of the first matching network, by (version, prefix length) -> {network int: name}."""

    _by_length: dict[tuple[int, int], dict[int, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[tuple[str, str]]) -> "NetworkSet":
        found = cls()
        for cidr, name in entries:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
            found._by_length.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = name
        # Longest prefixes first: the most specific entry names the match.
        found._by_length = dict(sorted(found._by_length.items(), key=lambda kv: -kv[0][1]))
        found._probes = {version: tuple(((32 if version == 4 else 128) - length, nets)
                                        for (v, length), nets in found._by_length.items() if v == version)
                         for version in (4, 6)}
        # The anonymised networks (/24, /48) that entries longer than them split: inside one of
        # these, two addresses of the same network may get different answers.
        found._split = {4: set(), 6: set()}
        for (version, length), nets in found._by_length.items():
            keep = ANONYMISED_BITS[version]
            if length > keep:
                shift = (32 if version == 4 else 128) - keep
                found._split[version].update(net >> shift for net in nets)
        return found

    _split: dict[int, set[int]] = field(default_factory=lambda: {4: set(), 6: set()})

    def same_for_network(self, ip: IPAddress) -> bool:
        """Whether every address of `ip`'s anonymised network (/24, /48) gets the same answer from
        `lookup`: then an answer may be kept per network, without keeping the address."""
        split = self._split[ip.version]
        return not split or (int(ip) >> (8 if ip.version == 4 else 80)) not in split

    _probes: dict[int, tuple[tuple[int, dict[int, str]], ...]] = field(default_factory=lambda: {4: (), 6: ()})

    def lookup(self, ip: IPAddress | None) -> str | None:
        if ip is None:
            return None
        # Per version, (bits to clear, networks): no ipaddress property calls in the loop (this
        # runs twice per pixel).
        value = int(ip)
        for shift, nets in self._probes[ip.version]:
            name = nets.get(value >> shift << shift)
            if name is not None:
                return name
        return None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_length.values())


def load_apple_egress(path: Path) -> NetworkSet:
    """Apple's egress-ip-ranges.csv: `prefix,country,region,city,` per line (Mail Privacy Protection
    and iCloud Private Relay share it). Blank and `#` lines are skipped."""
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r and r[0].strip() and not r[0].startswith("#")]
    return NetworkSet.of((r[0], "apple") for r in rows)


def load_named_networks(path: Path) -> NetworkSet:
    """`CIDR name` per line, `#` comments: e.g. `104.47.0.0/17 microsoft`."""
    entries = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            cidr, _, name = line.partition(" ")
            entries.append((cidr, name.strip() or "rewriter"))
    return NetworkSet.of(entries)
