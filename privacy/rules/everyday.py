"""Names, firms, job titles and fields of contact cards in everyday writing, where PII annotation
counts every proper noun."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise

from medcurate.privacy.regex_gate import scan
from medcurate.privacy.rules.base import Rule
from medcurate.privacy.rules.shared import (
    _CALENDAR,
    MEDIUM,
    WEAK,
    Span,
    _bare,
    _unknown,
)
from medcurate.privacy.stop_words import STOP_WORDS
from medcurate.privacy.vocab import (
    NOT_NAMES,
    OCCUPATIONS,
    first_names,
    is_english,
    last_names,
)

# Capitals of the Latin, Greek and Cyrillic alphabets ("Ágota", "Čapek", "ΑΘΗΝΑ").
_CAPITALS = "A-Z" + "".join(chr(i) for i in range(0xC0, 0x530) if chr(i).isupper())


_PROPER = re.compile(
    rf"(?<![\w'’@/.-])(?-i:[{_CAPITALS}])(?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?"
    rf"(?:[ \t]+(?:(?-i:[{_CAPITALS}])(?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?|(?:van|von|de|der|den|ten|da|di|del|la|le)(?=[ \t]+(?-i:[{_CAPITALS}])))){{0,3}}"
)


# A lower-case word, its initial and the next word (in a lookahead, so that every word is tried as
# a first name: "follow up with greta vandermolen").
_LOWER_NAME = re.compile(
    r"(?<![\w'’@/.-])([a-zà-ÿ][^\W\d_]+)(?=((?:[ \t]+[^\W\d_]\.?)?[ \t]+([^\W\d_]{2,}))?)"
)


_OCCUPATION = re.compile(rf"\b(?:{'|'.join(sorted(OCCUPATIONS))})\b(?!['’])", re.IGNORECASE)


_FIELD_START = re.compile(r"(?:^|\n|  |\bas(?:\s+an?)?\s)[ \t]*$", re.IGNORECASE)


# Words of a job title before its head noun, on the same line: "Senior payroll and benefits".
_TITLE_WORD = re.compile(r"(?:[^\W\d_][\w'’-]*|,)[ \t]*$")


_NAME_WORD = r"[^\W\d_][\w'’-]*"


# Cues to a name in everyday writing, whatever its case: the strong ones name whatever follows
# ("she named him Will"), the others need a name that is no English word ("with tovah").
_EVERYDAY_NAME_CUE = re.compile(
    r"\b(?:(named(?:\s+(?:him|her|them))?|call(?:s|ed)?\s+me|name\s+is|name\s*:|name\?)|"
    r"i'm|i\s+am|says|said|with|add|speak\s+to|heard|starring|by|to|for|and)\s+"
    rf"({_NAME_WORD}(?:[ \t]+[^\W\d_]\.?)?(?:[ \t]+{_NAME_WORD})?)",
    re.IGNORECASE,
)


# A speaker ("Tovah: \"Who are you?\"") and a relative's or an address's owner ("Tovah's son").
_OWNER = re.compile(
    rf"(?:^|(?<=[\s\"“]))({_NAME_WORD}):\s*[\"“]|\b({_NAME_WORD})['’]s\s+(?:daughter|son|kid|child|wife|husband|"
    r"mother|father|sister|brother|partner|address|phone|email|account)\b",
    re.IGNORECASE,
)


# A contact card or signature block: fields split by two spaces, ">", "•" or runs of "?".
_FIELD_SPLIT = re.compile(r"[ \t]{2,}|\n|[ \t]*(?:>|•|\?{3,})[ \t]*")


def _card_fields(text: str) -> Iterator[Span]:
    """The short fields of a contact card that holds a street address or phone number: the name,
    job and firm written beside them ("harriet berg  payroll clerk  nordhavn traders  4 fjordgata").
    Labels ("Phone:") and fields with digits or sentence punctuation are left to the other rules."""
    splits = [(m.start(), m.end()) for m in scan(_FIELD_SPLIT, text)]
    if len(splits) < 3 or not re.search(r"\d{3}", text):
        return
    bounds = [(0, 0), *splits, (len(text), len(text))]
    fields = [(left[1], right[0]) for left, right in pairwise(bounds) if right[0] > left[1]]
    for start, end in fields:
        value = text[start:end].strip()
        words = value.split()
        if not 1 <= len(words) <= 5 or any(c.isdigit() or c in '?!:;"' for c in value):
            continue
        if value.endswith(".") and not value.lower().endswith(("inc.", "ltd.", "co.")):
            continue
        if all(_bare(w) in STOP_WORDS for w in words):
            continue
        yield Span("ORGANIZATION", start, start + len(text[start:end].rstrip()), WEAK)


def _census_name(word: str) -> bool:
    low = _bare(word)
    return low not in NOT_NAMES and (low in first_names() or low in last_names())


def _cued_everyday_names(text: str) -> Iterator[Span]:
    """Names in everyday writing found by their cue, in any case ("call me tovah", "Amos: \"Hi\"",
    "I'm Amos's daughter"): a census name or a word that is no English word."""
    for match in scan(_EVERYDAY_NAME_CUE, text):
        words = list(re.finditer(r"\S+", match.group(2)))
        first = words[0].group()
        strong = match.group(1) is not None
        if not (_unknown(first) or (_census_name(first) and (strong or not is_english(_bare(first))))):
            continue
        end = match.start(2) + words[0].end()
        for word in words[1:]:
            token = word.group()
            if not (len(token.rstrip(".")) == 1 or _unknown(token) or _census_name(token)):
                break
            end = match.start(2) + word.end()
        end -= text[match.start(2) : end].endswith(".")
        yield Span("PERSON", match.start(2), end, WEAK)


def _owners(text: str) -> Iterator[Span]:
    """A speaker ("Amos: \"Hi\"") or the owner of a relative or an address ("Amos's daughter")."""
    for match in scan(_OWNER, text):
        group = 1 if match.group(1) else 2
        if _unknown(match.group(group)) or _census_name(match.group(group)):
            yield Span("PERSON", match.start(group), match.end(group), WEAK)


def _job_titles(text: str) -> Iterator[Span]:
    """A job title in everyday writing, a quasi-identifier next to a name ("Ana Horvat, the senior
    tax adviser"): the occupation noun with the words before it on its line, back to a stop
    word other than "and" (at most five words). A bare lower-case noun ("the driver", "my manager")
    names nobody unless it fills a field or follows "as"; a plural names a group."""
    for match in scan(_OCCUPATION, text):
        start, words = match.start(), 0
        while words < 5:
            before = _TITLE_WORD.search(text, max(0, start - 40), start)
            if before is None or before.end() != start:
                break
            word = before.group().strip()
            if word != "," and (word.lower() in STOP_WORDS - {"and"} or _CALENDAR.fullmatch(word)):
                break
            if text[before.start() - 2 : before.start()] == "  ":
                start = before.start()
                break  # two spaces open the field of a card
            start, words = before.start(), words + (word != ",")
        while text[start] in ", " or text.startswith("and ", start):
            start += 4 if text.startswith("and ", start) else 1
        bare = start == match.start() and match.group().islower()
        if not bare or _FIELD_START.search(text, max(0, start - 8), start):
            yield Span("TITLE", start, match.end(), WEAK)


_FIRM = rf"(?-i:[{_CAPITALS}])[\w'’&.-]*"


# A firm: capitalised words ending in a company word ("Harbour Ltd.", "Northgate Technologies"), or
# surnames listed as a partnership ("Baxter, Lowe and Pryce", "Hughes and Sons").
_COMPANY_WORD = (
    r"(?-i:Inc|Ltd|LLC|LLP|PLC|Corp|Corporation|Co|Company|Group|Partners|Associates|Technologies|Technology|"
    r"Software|Systems|Solutions|Consulting|Agency|Markets|Holdings|Labs|Media|Movers|Insurance|Bank|Capital|"
    r"Club|Foundation|Industries|International|Enterprises|Ventures|Networks|Services|Analytics|Research|"
    r"Sons|Brothers|GmbH|AG|SA|BV|AB|AS|Oy)\b\.?"
)


_ORGANIZATION = re.compile(
    rf"(?<![\w'’])(?:{_FIRM},[ \t]+{_FIRM},?[ \t]+(?:and|&)[ \t]+{_FIRM}(?:[ \t]+{_COMPANY_WORD})?|"
    rf"(?:{_FIRM}[ \t]+(?:(?:and|&)[ \t]+)?){{1,4}}{_COMPANY_WORD})"
)


def _lowercase_full_names(text: str) -> Iterator[Span]:
    """A lower-case census first name with a surname that is no English word ("harriet halvorsen"),
    or alone where the whole text is lower case and it is no English word."""
    lower = not any(c.isupper() for c in text)
    for match in scan(_LOWER_NAME, text):
        first, last = match.group(1), match.group(3)
        surname = last is not None and _unknown(last) and (lower or last.islower())
        # In mixed-case text a lower-case name needs its surname ("with greta vandermolen").
        if first in first_names() and first not in NOT_NAMES and (surname or (lower and _unknown(first))):
            yield Span(
                "PERSON",
                match.start(1),
                match.end(2) if surname else match.end(1),
                MEDIUM,
            )


def _firms(text: str) -> Iterator[Span]:
    """Capitalised words ending in a company word, or surnames listed as a partnership."""
    if not any(c.isupper() for c in text):
        return
    for match in scan(_ORGANIZATION, text):
        yield Span("ORGANIZATION", match.start(), match.end(), MEDIUM)


def _proper_names(text: str) -> Iterator[Span]:
    """In everyday writing, proper nouns are people, organisations and places: a run of capitalised
    words holding a census name or a word that is not English ("Tamas K Veress", "Jorunn",
    "Quillbyte"), and the names listed with it."""
    if not any(c.isupper() for c in text):
        return
    for match in scan(_PROPER, text):
        words = list(re.finditer(r"\S+", match.group()))
        # Sentence openers and contractions before the name ("Hi Tomas", "I'm Harriet Berg").
        while words and (_bare(words[0].group()) in NOT_NAMES or is_english(_bare(words[0].group()))):
            if _bare(words[0].group()) in first_names() and len(words) > 1 and _unknown(words[1].group()):
                break  # "Faith Oyelaran": an English word that is also a first name, before a surname
            words.pop(0)
        # ... and common words after it ("the Quillbyte Orchestra"), which a name found once would
        # otherwise redact at every mention.
        while len(words) > 1 and is_english(_bare(words[-1].group())) and not _census_name(words[-1].group()):
            words.pop()
        if not words:
            continue
        lows = [_bare(w.group()) for w in words]
        named = any(w in first_names() and not is_english(w) for w in lows)
        unknown = [w for w in words if _unknown(w.group())]
        if named or (unknown and (len(words) > 1 or not words[0].group().isupper())):
            start, end = match.start() + words[0].start(), match.start() + words[-1].end()
            end -= text[start:end].endswith(".")
            yield Span("PERSON", start, end, MEDIUM if named else WEAK)
            # Names listed with this one are names ("Veress, Baker and Lund").
            for other_start, other_end in _coordinated(text, start, end):
                yield Span("PERSON", other_start, other_end, WEAK)


_AFTER = re.compile(
    r"(?:\s*,\s*(?:and\s+|&\s+)?|\s+and\s+|\s*&\s*)((?-i:[A-Z][\w'’-]+)(?:\s+(?-i:[A-Z][\w'’-]+))?)"
)


_BEFORE = re.compile(r"((?-i:[A-Z][\w'’-]+))(?:\s*,\s*|\s+and\s+|\s*&\s*)$")


def _coordinated(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Names listed with one the model found ("Veress, Baker and Lund"): the same kind."""
    for _ in range(4):
        match = _AFTER.match(text, end)
        if match is None or match.group(1).lower() in NOT_NAMES:
            break
        yield match.start(1), match.end(1)
        end = match.end(1)
    for _ in range(4):
        match = _BEFORE.search(text, max(0, start - 40), start)
        if match is None or match.group(1).lower() in NOT_NAMES:
            break
        yield match.start(1), match.end(1)
        start = match.start(1)


RULES = [
    Rule(
        "lowercase_full_name",
        "PERSON",
        MEDIUM,
        function=_lowercase_full_names,
        kinds=("cased", "everyday"),
        examples=(("follow up with greta vandermolen", "greta vandermolen"),),
        counterexamples=("follow up with the team",),
    ),
    Rule(
        "firm",
        "ORGANIZATION",
        MEDIUM,
        function=_firms,
        kinds=("cased", "everyday"),
        examples=(("I work for Northgate Technologies now.", "Northgate Technologies"),),
        counterexamples=("I work for the government now.",),
    ),
    Rule(
        "proper_name",
        "PERSON",
        MEDIUM,
        function=_proper_names,
        kinds=("cased", "everyday"),
        examples=(("Have you heard Radomir T Wielgosz speak yet?", "Radomir T Wielgosz"),),
        counterexamples=("Have you heard the news yet?",),
    ),
    Rule(
        "cued_everyday_name",
        "PERSON",
        WEAK,
        function=_cued_everyday_names,
        kinds=("cased", "everyday"),
        examples=(("you can call me tovah", "tovah"),),
        counterexamples=("you can call me later",),
    ),
    Rule(
        "name_owner",
        "PERSON",
        WEAK,
        function=_owners,
        kinds=("cased", "everyday"),
        examples=(("Amos's daughter called.", "Amos"),),
        counterexamples=("The doctor's daughter called.",),
    ),
    Rule(
        "card_field",
        "ORGANIZATION",
        WEAK,
        function=_card_fields,
        kinds=("cased", "everyday"),
        examples=(
            (
                "harriet berg  payroll clerk  nordhavn traders  4 fjordgata  mobile: 412 55 901",
                "harriet berg",
            ),
        ),
        counterexamples=("one two three",),
    ),
    Rule(
        "job_title",
        "TITLE",
        WEAK,
        function=_job_titles,
        kinds=("cased", "everyday"),
        literals=OCCUPATIONS,
        examples=(("I used to work as Senior payroll clerk.", "Senior payroll clerk"),),
        counterexamples=("The clerks were busy.",),
    ),
]
