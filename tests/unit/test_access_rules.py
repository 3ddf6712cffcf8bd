"""vmflow.access_rules: Manila's access rule validation, good and bad values of each type."""

from __future__ import annotations

import pytest

from vmflow.access_rules import validate


@pytest.mark.parametrize("given,normalized", [
    ("10.254.0.4", "10.254.0.4"),
    ("10.254.0.4/32", "10.254.0.4"),  # a single address stays bare
    ("10.254.0.0/24", "10.254.0.0/24"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("192.168.1.128/25", "192.168.1.128/25"),
    ("2001:db8::1", "2001:db8::1"),
    ("2001:DB8:0:0::1", "2001:db8::1"),  # ipaddress's compressed lower-case form
    ("2001:db8::1/128", "2001:db8::1"),
    ("2001:db8::/32", "2001:db8::/32"),
    ("::/0", "::/0"),
])
def test_good_ip(given: str, normalized: str) -> None:
    assert validate("ip", given, "rw") == ("ip", normalized, "rw")


@pytest.mark.parametrize("bad,says", [
    ("10.0.0.1/24", "the network would be 10.0.0.0/24"),
    ("2001:db8::1/64", "the network would be 2001:db8::/64"),
    ("10.0.0.1(rw,no_root_squash)", "no spaces, options"),
    ("10.0.0.1 ", "no spaces"),
    (" 10.0.0.1", "no spaces"),
    ("10.0.0.1\n", "no spaces"),
    ("10.0.0.1,10.0.0.2", "no spaces"),
    ("*", "no spaces"),
    ("example.com", "no spaces"),  # host names are not addresses
    ("fe80::1%eth0", "no spaces"),
    ("garbage", "no spaces"),
    ("10.0.0.256", "invalid ip access_to"),
    ("10.0.0", "invalid ip access_to"),
    ("010.0.0.1", "invalid ip access_to"),  # leading zeros are ambiguous (octal)
    ("10.0.0.0/33", "invalid ip access_to"),
    ("2001:db8:::1", "invalid ip access_to"),
    ("/24", "invalid ip access_to"),
    ("", "must not be empty"),
])
def test_bad_ip(bad: str, says: str) -> None:
    with pytest.raises(ValueError) as e:
        validate("ip", bad, "rw")
    assert says in str(e.value)


@pytest.mark.parametrize("user", ["alice", "a.b-c_d", "dom\\user", "x$`;'{}[]", "üser",
                                  "a" * 4, "a" * 255])
def test_good_user(user: str) -> None:
    assert validate("user", user, "ro") == ("user", user, "ro")


@pytest.mark.parametrize("user", ["bob", "a" * 256, "has space", "semi:colon", "a/b/c",
                                  "x(rw)", "al\nice", "alice\n", ""])
def test_bad_user(user: str) -> None:
    with pytest.raises(ValueError) as e:
        validate("user", user)
    assert "user access_to" in str(e.value) or "empty" in str(e.value)


@pytest.mark.parametrize("cn", ["c", "client.example.com", "John Smith", "x" * 64])
def test_good_cert(cn: str) -> None:
    assert validate("cert", cn) == ("cert", cn, "rw")


@pytest.mark.parametrize("cn,says", [("x" * 65, "not 65"), ("", "must not be empty"),
                                     ("a\nb", "control characters"),
                                     ("a\x00b", "control characters"),
                                     ("tab\there", "control characters")])
def test_bad_cert(cn: str, says: str) -> None:
    with pytest.raises(ValueError) as e:
        validate("cert", cn)
    assert says in str(e.value)


@pytest.mark.parametrize("access_type,level", [("IP", "rw"), ("cephx", "rw"), ("", "rw"),
                                               ("ip", "RW"), ("ip", "rx"), ("ip", "")])
def test_type_and_level_are_exact(access_type: str, level: str) -> None:
    with pytest.raises(ValueError, match="access_type|access_level"):
        validate(access_type, "10.0.0.1", level)


def test_level_defaults_to_rw() -> None:
    assert validate("ip", "10.0.0.1") == ("ip", "10.0.0.1", "rw")
