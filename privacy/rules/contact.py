"""Contact details: e-mail addresses, URLs, IP addresses and phone numbers (Safe Harbor's
telephone, fax, e-mail, URL and IP identifiers)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medcurate.privacy.regex_gate import scan
from medcurate.privacy.rules.base import Rule
from medcurate.privacy.rules.shared import (
    MEDIUM,
    STRONG,
    Span,
)

# Phone numbers as written around the world ("+46 (0)8 928 571 38", "0497 31 64 08"): accepted
# with a leading + ( or 0, or a phone word nearby.
_INTL_PHONE = re.compile(
    r"(?<![\w+.])(\+\d{1,3}[\s.-]?)?(\(0?\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,4}(?:\s?x\d{1,5})?(?![\w.]\d)"
)


_PHONE_CUE = re.compile(
    r"\b(?:call|phone|mobile|cell|desk|fax|tel|telephone|office|messages?|answering|reach|number|contact)\b",
    re.IGNORECASE,
)


def _international_phones(text: str) -> Iterator[Span]:
    """Phone numbers in any grouping, with a country code, a trunk 0, or a phone word nearby."""
    for match in scan(_INTL_PHONE, text):
        digits = sum(c.isdigit() for c in match.group())
        cued = match.group(1) or match.group(2) or match.group().startswith("0")
        cued = cued or _PHONE_CUE.search(text, max(0, match.start() - 30), match.start())
        cued = cued or _PHONE_CUE.match(text, match.end() + 1)
        if 7 <= digits <= 16 and cued:
            yield Span("PHONE_NUMBER", match.start(), match.end(), MEDIUM)


PATTERN_RULES = [
    # Contact details.
    Rule(
        "email",
        "EMAIL_ADDRESS",
        STRONG,
        r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",
        examples=(("Write to j.doe@example.org today.", "j.doe@example.org"),),
        counterexamples=("Meet @ noon.",),
    ),
    Rule(
        "url",
        "URL",
        STRONG,
        r"\b(?:https?://|www\.)[^\s<>\"')\]]+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov|io|us|info)"
        r"(?:/[^\s<>\"')\]]*)?\b",
        examples=(("See www.example.org/forms for details.", "www.example.org/forms"),),
        counterexamples=("Dosage of 0.5 mg.",),
    ),
    Rule(
        "ipv4",
        "IP_ADDRESS",
        STRONG,
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
        examples=(("Logged in from 10.23.181.77 today.", "10.23.181.77"),),
        counterexamples=("Version 1.2.3 released.",),
    ),
    Rule(
        "ipv6",
        "IP_ADDRESS",
        MEDIUM,
        r"\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b",
        examples=(("Host fe80:0:0:0:202:b3ff:fe1e:8329 responded.", "fe80:0:0:0:202:b3ff:fe1e:8329"),),
        counterexamples=("Time 10:30:45 noted.",),
    ),
    Rule(
        "phone_us",
        "PHONE_NUMBER",
        STRONG,
        r"(?<![\w/])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s*|\(?\d{3}\s*[\s.-]\s*)\d{3}\s*[\s.-]?\s*\d{4}\d?\b"
        r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?",
        examples=(("Call 617-555-0142 after noon.", "617-555-0142"),),
        counterexamples=("Gave 500 mg at 1200.",),
    ),
    Rule(
        "phone_digits",
        "PHONE_NUMBER",
        STRONG,
        r"\(\d{6}-\d{4}\)|\b\d{10}\b",
        examples=(("Reached at 6175550142 yesterday.", "6175550142"),),
        counterexamples=("Count 4821 cells.",),
    ),
    Rule(
        "phone_cued",
        "PHONE_NUMBER",
        STRONG,
        r"\b(?:pager|pgr|pg|beeper|beep|cell|phone|tel|telephone|fax|mobile|ph|contact|ext|extension|"
        r"call\s+back)\s*(?:number|no\.?|num)?\s*[#:]?\s*[#:]?\s*(\d[\d\s.-]{3,13}\d)",
        group=1,
        examples=(("Reach me on pager 57319.", "57319"),),
        counterexamples=("Phone call with family.",),
    ),
]


RULES = [
    Rule(
        "phone_international",
        "PHONE_NUMBER",
        MEDIUM,
        function=_international_phones,
        kinds=("cased", "prose"),
        examples=(("Call me on +44 20 7946 0321 tonight.", "+44 20 7946 0321"),),
        counterexamples=("The scores were 12 15 18 21.",),
    ),
]
