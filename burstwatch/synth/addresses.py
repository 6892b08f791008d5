"""Address book for generated traffic: which hosts are home, which abroad, and their MACs.

Scenarios and tests name hosts from here so a reader can tell at a glance which traffic
crosses a border. The home country is the US; internal hosts sit in private ranges.
"""

from __future__ import annotations

import hashlib
import ipaddress

HOME_COUNTRY = "US"

INTERNAL_V4_NET = "192.168.1.0/24"
INTERNAL_V6_NET = "fd00::/64"

# Foreign endpoints (country code in the comment) used as exfiltration destinations.
FOREIGN_RU = "77.88.8.8"  # Yandex DNS, RU
FOREIGN_CN = "114.114.114.114"  # 114DNS, CN
FOREIGN_NL = "193.0.6.139"  # RIPE NCC, NL
FOREIGN_V6_RU = "2a02:6b8::feed:0ff"  # Yandex, RU
FOREIGN_EXFIL: tuple[str, ...] = (FOREIGN_RU, FOREIGN_CN, FOREIGN_NL)

# Foreign endpoints that carry ordinary traffic (false-positive bait).
FOREIGN_VIDEO_GB = "212.58.244.20"  # BBC, GB
FOREIGN_DOWNLOAD_SE = "194.71.11.173"  # ftp.acc.umu.se mirror, SE
FOREIGN_CALL_DE = "85.214.132.117"  # Strato hosting, DE
FOREIGN_FILES_LU = "31.216.144.5"  # Datacenter Luxembourg (file hosting), LU
FOREIGN_SSH_FI = "95.216.195.133"  # Hetzner Online, FI
FOREIGN_MIRROR_GB = "91.189.91.38"  # Canonical (archive.ubuntu.com), GB
FOREIGN_WEB: tuple[str, ...] = (
    "212.58.233.254",  # BBC, GB
    "87.250.250.242",  # Yandex, RU
    "185.15.59.224",  # Wikimedia, NL
    "141.30.66.1",  # DFN (German research network), DE
    "130.239.18.159",  # Umea University, SE
    "133.242.0.3",  # SAKURA Internet, JP
)

# Domestic (US) endpoints.
US_DNS = "8.8.8.8"  # Google Public DNS
US_DNS_V6 = "2001:4860:4860::8888"  # Google Public DNS
US_WEB: tuple[str, ...] = (
    "142.250.72.14",  # Google
    "142.250.190.78",  # Google
    "13.107.42.14",  # Microsoft
    "13.32.99.77",  # AWS CloudFront
    "52.84.150.39",  # AWS CloudFront
    "151.101.1.69",  # Fastly
    "23.215.0.136",  # Akamai
    "104.244.42.65",  # Twitter
)
US_VIDEO = "198.38.120.10"  # Netflix Open Connect
US_BACKUP = "52.216.8.19"  # AWS S3 us-east-1
US_PHOTOS = "17.248.185.40"  # Apple (iCloud), US
US_UPDATE = "13.107.4.50"  # Windows Update CDN
US_V6_WEB = "2607:f8b0:4004:c07::64"  # Google

GATEWAY_MAC = bytes.fromhex("001a2b3c4d5e")


def is_internal(ip: str) -> bool:
    """True for addresses on the monitored side (private, link-local or unique-local)."""
    addr = ipaddress.ip_address(ip)
    return bool(addr.is_private or addr.is_link_local)


def host_mac(ip: str) -> bytes:
    """A stable, locally administered MAC for an internal host, derived from its address."""
    digest = hashlib.blake2s(ipaddress.ip_address(ip).packed, digest_size=5).digest()
    return b"\x02" + digest


def mac_for(ip: str) -> bytes:
    """The MAC a capture on the office LAN would show for ``ip``: remote hosts sit behind the gateway."""
    return host_mac(ip) if is_internal(ip) else GATEWAY_MAC


def internal_v4(host: int) -> str:
    """The ``host``-th address in the internal IPv4 network."""
    return str(ipaddress.ip_network(INTERNAL_V4_NET)[host])


def internal_v6(host: int) -> str:
    """The ``host``-th address in the internal IPv6 network."""
    return str(ipaddress.ip_network(INTERNAL_V6_NET)[host])
