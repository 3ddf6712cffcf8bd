"""Manila's access rule validation, strictly: what passes here is written into the
exporter's configuration, so anything that is not exactly an address, a user name or
a certificate common name is refused (standard library only).

validate() returns the normalized (access_type, access_to, access_level) or raises
ValueError with the message the API answers as 400.
"""

from __future__ import annotations

import ipaddress
import re

ACCESS_TYPES = ("ip", "user", "cert")
ACCESS_LEVELS = ("rw", "ro")

# an address or CIDR may only hold these; ipaddress does the real parsing
_IP_CHARS = re.compile(r"[0-9A-Fa-f.:/]+")
# Manila's user regex (manila/api/v2/shares.py): \w plus $ . - _ ` ; ' { } [ ] \
_USER = re.compile(r"[\w$.\-_`;'{}\[\]\\]{4,255}")
CERT_MAX = 64


def validate(access_type: str, access_to: str, access_level: str = "rw"
             ) -> tuple[str, str, str]:
    """The rule in its normalized form, or ValueError saying what is wrong."""
    if not isinstance(access_type, str) or access_type not in ACCESS_TYPES:
        raise ValueError(f"access_type must be one of {', '.join(ACCESS_TYPES)}, "
                         f"not {access_type!r}")
    if not isinstance(access_level, str) or access_level not in ACCESS_LEVELS:
        raise ValueError(f"access_level must be one of {', '.join(ACCESS_LEVELS)}, "
                         f"not {access_level!r}")
    if not isinstance(access_to, str) or not access_to:
        raise ValueError("access_to must not be empty")
    if access_type == "ip":
        return access_type, normalize_ip(access_to), access_level
    if access_type == "user":
        return access_type, check_user(access_to), access_level
    return access_type, check_cert(access_to), access_level


def normalize_ip(value: str) -> str:
    """An IPv4/IPv6 address or network in ipaddress's form; a single address (/32 or
    /128) as a bare address. Host bits set are an error naming the network meant."""
    if not _IP_CHARS.fullmatch(value):
        raise ValueError(f"invalid ip access_to {value!r}: only an IPv4 or IPv6 address or "
                         "CIDR is allowed (no spaces, options or other characters)")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"invalid ip access_to {value!r}: {e}") from None
        raise ValueError(f"invalid ip access_to {value!r}: host bits are set; the network "
                         f"would be {loose}") from None
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def check_user(value: str) -> str:
    if not _USER.fullmatch(value):
        raise ValueError(f"invalid user access_to {value!r}: 4 to 255 characters from "
                         "letters, digits and $ . - _ ` ; ' { } [ ] \\")
    return value


def check_cert(value: str) -> str:
    if not 1 <= len(value) <= CERT_MAX:
        raise ValueError(f"invalid cert access_to: a common name has 1 to {CERT_MAX} "
                         f"characters, not {len(value)}")
    if not value.isprintable():
        raise ValueError("invalid cert access_to: control characters are not allowed")
    return value
