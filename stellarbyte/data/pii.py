"""PII scrubbing: e-mail addresses, phone numbers and IPv4/IPv6 addresses become placeholder tags.

References: the placeholder style of BigCode's StarCoder PII pipeline (<EMAIL>, <IP_ADDRESS>); address validity is
decided by the stdlib `ipaddress` module (a regex proposes candidates, `ipaddress.ip_address` must accept them), so
"999.1.1.1" and times such as "12:30:45" are left alone.

Contract: `PiiScrubber(text) -> (scrubbed_text, None)`; it never removes a document. Counts of what it replaced,
per kind, accumulate in `PiiScrubber.found`. Order matters: e-mails first (they may hold digits), then IPv6 (which
can embed an IPv4 tail), then IPv4, then phone numbers.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
                  r"(?:%[A-Za-z0-9_.]+)?(?![\w:]|\.\d)")
PHONE = re.compile(r"""
    (?<![\w+.-])                      # not glued to a word, a number, a decimal point or a dash
    (?:\+\d{1,3}[ .-]?)?              # country code: +1, +44, +353
    (?:\(\d{1,4}\)[ .-]?)?            # area code in parentheses: (555)
    \d{1,4}(?:[ .-]?\d{2,4}){1,5}     # digit groups with optional single separators
    (?![\w-]|\.\d)
""", re.VERBOSE)
_DATE = re.compile(r"^(\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4})$")

PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "ipv4": "<IP_ADDRESS>", "ipv6": "<IP_ADDRESS>"}


def _is_ip(candidate: str, version: int) -> bool:
    if version == 6 and sum(c in "0123456789abcdefABCDEF" for c in candidate.split("%")[0]) < 4:
        return False  # "a::b", "::1": valid addresses, but in prose they are C++ scopes or loopback, not PII
    try:
        return ipaddress.ip_address(candidate).version == version
    except ValueError:
        return False


def _is_phone(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if not 7 <= digits <= 15 or _DATE.match(candidate):
        return False
    separators = sum(c in " .-" for c in candidate)
    # a bare run of digits is more often an id or a quantity than a phone: ask for a +, a (...) or two separators
    return candidate.startswith("+") or "(" in candidate or separators >= 2


@dataclass(slots=True)
class PiiScrubber:
    """Replace e-mails, phone numbers and IP addresses with placeholders; `found` counts them by kind."""

    emails: bool = True
    phones: bool = True
    ips: bool = True
    name: str = "pii"
    found: Counter = field(default_factory=Counter)

    def scrub(self, text: str) -> str:
        def sub(pattern: re.Pattern, kind: str, ok, s: str) -> str:
            def repl(m: re.Match) -> str:
                if not ok(m.group(0)):
                    return m.group(0)
                self.found[kind] += 1
                return PLACEHOLDERS[kind]
            return pattern.sub(repl, s)

        if self.emails:
            text = sub(EMAIL, "email", lambda s: True, text)
        if self.ips:
            text = sub(IPV6, "ipv6", lambda s: _is_ip(s, 6), text)
            text = sub(IPV4, "ipv4", lambda s: _is_ip(s, 4), text)
        if self.phones:
            text = sub(PHONE, "phone", _is_phone, text)
        return text

    def __call__(self, text: str) -> tuple[str | None, str | None]:
        return self.scrub(text), None
