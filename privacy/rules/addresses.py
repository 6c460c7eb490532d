"""Street addresses: a house number and street, a PO box, an address block in prose or after an
address cue (Safe Harbor's geographic subdivisions smaller than a state)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medcurate.privacy.regex_gate import scan
from medcurate.privacy.rules.base import Rule
from medcurate.privacy.rules.kinds import (
    _WORD,
    everyday,
)
from medcurate.privacy.rules.shared import (
    _STREET_SUFFIX,
    _STREET_SUFFIX_WORDS,
    MEDIUM,
    STRONG,
    Span,
)
from medcurate.privacy.stop_words import STOP_WORDS
from medcurate.privacy.vocab import (
    MEDICAL_TERMS,
    is_english,
)

# An address block: a house number, then street words and numbers, unit, town, region, country and
# postal code, across commas and line breaks, up to the first ordinary lower-case word.
_ADDRESS_START = re.compile(
    r"(?<![\w.,-])(?:\d{1,6}[A-Za-z]?\s+(?:\d{1,4}\s+)?[^\W\d_][\w'’.-]*|(?:psc|unit|box|apt\.?|suite)\s+\d+)",
    re.IGNORECASE,
)


_ADDRESS_PART = re.compile(r"(?:[\s,>•·|]|\?{2,}){1,6}([^\s,>•·|?!\"“”]+)")


# After an address cue a full stop may also close a line of the block ("Fő u. 3.\nSzeged").
_CUED_ADDRESS_PART = re.compile(r"(?:[\s,.>•·|]|\?{2,}){1,6}([^\s,>•·|?!\"“”]+)")


_STREET_WORDS = (
    "strasse straße str str. gasse weg vej vei veien veg vegen gate gata gatan gade katu tie kuja tee põik "
    "u. ul. ulica utca tér út útja körút rkp. trg cesta ulice náměstí rue via viale piazza corso calle c/ "
    "carrer paseo plaza camino avenida av. rua rúa travessa largo praça straat laan plein platz allee "
    "boulevard chemin allée quai odos οδός λεωφόρος λ. avenue street road"
)


_ADDRESS_WORDS = frozenset(
    (
        "apt apt. suite ste unit box po p.o. psc apo fpo dpo floor fl bldg rm room de do da dos das la le "
        "van von del der den di du al el and & nan z u v na nad pod e y des dei delle della degli dels "
        + _STREET_WORDS
    ).split()
)


# A street name before its number, as most of the world writes it ("Lindenallee 12").
_STREET_FIRST = re.compile(
    r"(?<![\w.,-])(?-i:[A-Z][\w'’-]+)(?:\s+(?-i:[A-Z][\w'’-]+))?\s+(?:"
    + "|".join(re.escape(w) for w in _STREET_WORDS.split())
    + r")\s*\d{1,5}\b",
    re.IGNORECASE,
)


# One word ending in a street word of another language, then the number ("Mühlenstrasse 12").
_STREET_COMPOUND = re.compile(
    r"(?<![\w.,-])(?-i:[A-ZÀ-ÞĀ-Ž])[\w'’-]*(?:strasse|straße|gasse|weg|vej|vei|veien|vegen|gata|gatan|gade|"
    r"katu|tie|kuja|vägen|väg|straat|laan|platz|allee|stræde|gränd|plads|torget|utca)\s+\d{1,5}\b",
    re.IGNORECASE,
)


def _address_blocks(text: str) -> Iterator[Span]:
    """An address block in prose: a house number and street, or a street and its number, with
    the unit, town, region, country and postal code after it."""
    # Lower-case everyday writing: a block's town and country are lower case too.
    lenient = everyday(text) and not any(c.isupper() for c in text)
    for pattern in (_ADDRESS_START, _STREET_FIRST, _STREET_COMPOUND):
        for match in scan(pattern, text):
            end = _address_end(text, match.end(), lenient=lenient)
            stop = end or match.end()
            found = end is not None or pattern is not _ADDRESS_START or match.group()[0].isalpha()
            if found and not _settings(text[match.start() : stop]):
                yield Span("STREET_ADDRESS", match.start(), stop, MEDIUM)


_STREET_WORD_SET = frozenset(_STREET_SUFFIX_WORDS[3:-1].split("|")) | _ADDRESS_WORDS


def _settings(value: str) -> bool:
    """ "600 Rate 12 Peep 5 FiO2 50%", "3 hrs. Stable", "6 to 8": numbers with clinical words,
    not a house number and a street."""
    if "%" in value or _RANGE.match(value):
        return True
    # Region codes are no settings: "Erie, PA 16501", "Serrinha, PE".
    words = [w.lower() for w in _WORD.findall(value) if not (len(w) == 2 and w.isupper())]
    return any(w in _SETTING_WORDS and w not in _STREET_WORD_SET for w in words)


_RANGE = re.compile(r"\d+\s+to\s+\d")


_SETTING_WORDS = MEDICAL_TERMS | {
    "rate",
    "hrs",
    "hr",
    "hours",
    "hour",
    "min",
    "mins",
    "x",
    "episodes",
    "yesterday",
}


def _address_end(text: str, position: int, lenient: bool = False) -> int | None:
    """Where an address block that began before `position` ends; None when it has no second part
    (a number, a unit word or a capitalised word) and so was only "5 Things". `lenient` (after an
    address cue, or in text written all in lower case) also lets through lower-case words that are
    not English ("trg slobode", "οδός ερμού")."""
    end, parts = position, 0
    part = _CUED_ADDRESS_PART if lenient else _ADDRESS_PART
    while parts < 16:
        match = part.match(text, end)
        if match is None:
            break
        token = match.group(1).rstrip(".;:").strip("()")
        if not token:
            break
        low = token.lower()
        listed = low in _ADDRESS_WORDS or low + "." in _ADDRESS_WORDS
        region = token.isupper() and len(token) > 1  # "TAMPERE NO", "APO AE": codes, not stop words
        if not (listed or region) and low in STOP_WORDS:
            break
        foreign = lenient and not is_english(low)
        if not (token[0].isupper() or token[0].isdigit() or listed or foreign):
            break
        end = match.end(1) if low + "." in _ADDRESS_WORDS else match.start(1) + len(token)
        parts += 1
    return end if parts else None


# Phrases after which an address follows ("Address:", "sent to", "located at", "lives on").
_ADDRESS_CUE = re.compile(
    r"\b(?:address(?:es)?(?:\s+(?:of\s+[^.?!\n]{1,60}?\s+)?(?:is|was|to|with|at))?\s*:?|"
    r"(?:sent|send|mail|mailed|ship|shipped|deliver|delivered|forward|forwarded|return|returned)"
    r"(?:\s+[a-z]+){0,3}?\s+to|located\s+(?:at|on|in)|(?:live|lives|lived|living|reside|resides)\s+(?:at|on|in)|"
    r"meet\s+(?:me|you|us)\s+at|(?:is|are)\s+(?:at|on)|it'?s\s+(?:in|at|on)|(?:drop|drops|dropped)\s+\w+\s+off\s+at|"
    r"arrived\s+at|stop\s+at|(?P<corner>(?:the\s+)?corner\s+of))(?=\s)",
    re.IGNORECASE,
)


_CORNER = re.compile(r"\s+((?:the\s+)?corner\s+of)\b", re.IGNORECASE)


def _cued_addresses(text: str) -> Iterator[Span]:
    """The address after an address cue, as a whole block ("Address: Mühlgasse 4 / Suite 12 /
    LINZ / Austria 4020", "the corner of Elm Road 12 and Oak Lane"); a block without a number is
    no address ("sent to the lab")."""
    lenient = not any(c.isupper() for c in text)
    for cue in scan(_ADDRESS_CUE, text):
        start = position = cue.end()
        corner = _CORNER.match(text, position)
        if cue.group("corner") is not None:
            start = cue.start()
        elif corner is not None:
            start, position = corner.start(1), corner.end()
        end = _address_end(text, position, lenient=True)
        first = _ADDRESS_PART.match(text, position)
        if end is None or first is None or not any(c.isdigit() for c in text[position:end]):
            continue
        if start != cue.end() or lenient or first.group(1)[0].isupper() or first.group(1)[0].isdigit():
            yield Span("STREET_ADDRESS", start if start != cue.end() else first.start(1), end, MEDIUM)


PATTERN_RULES = [
    # Places: street addresses, City, ST ZIP, PO boxes, facility names.
    Rule(
        "street_address",
        "STREET_ADDRESS",
        STRONG,
        r"\b\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+|north\s+|south\s+|east\s+|west\s+)?"
        rf"(?:(?-i:[A-Z0-9])[\w'-]*[ \t]+){{1,4}}"
        rf"{_STREET_SUFFIX}\b\.?(?:,?\s*(?:apt|apartment|suite|ste|unit|#|floor|fl|room|rm|bldg)\.?\s*#?\s*"
        r"[\w-]+)?",
        examples=(("Lives at 48 Juniper Hollow Road with wife.", "48 Juniper Hollow Road"),),
        counterexamples=("Gave 5 Units of insulin.",),
    ),
    Rule(
        "po_box",
        "STREET_ADDRESS",
        STRONG,
        r"\b(?:p\.?\s*o\.?\s*box|post\s+office\s+box)\s*\d+\b",
        examples=(("Mail to PO Box 4471 please.", "PO Box 4471"),),
        counterexamples=("Box of gloves.",),
    ),
]


RULES = [
    Rule(
        "cued_address",
        "STREET_ADDRESS",
        MEDIUM,
        function=_cued_addresses,
        kinds=("cased", "everyday"),
        examples=(("Address: Lindenallee 12, Kellerbach", "Lindenallee 12, Kellerbach"),),
        counterexamples=("The address was sent to the lab.",),
    ),
    Rule(
        "address_block",
        "STREET_ADDRESS",
        MEDIUM,
        function=_address_blocks,
        kinds=("cased", "prose"),
        examples=(("Please post it to 12 Birch Lane, Saugus before Friday.", "12 Birch Lane, Saugus"),),
        counterexamples=("She walked 5 miles before Friday.",),
    ),
]
