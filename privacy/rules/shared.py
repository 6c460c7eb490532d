"""What the rules share: scores, regular-expression pieces, word tests, and the shape checks every
pattern's match passes (`accept`) before it counts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from medcurate.privacy.rules.kinds import (
    _WORD,
    is_prose,
    mixed_case,
    mostly_upper,
)
from medcurate.privacy.stop_words import STOP_WORDS
from medcurate.privacy.vocab import (
    EPONYM_HEADS,
    HOSPITAL_NAME_WORDS,
    NOT_NAMES,
    US_STATES,
    first_names,
    is_english,
    is_name_word,
    one_edit_variants,
)

STRONG = 0.85


MEDIUM = 0.6


WEAK = 0.4


DOUBT = 0.2


_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)


_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"


_YEAR = r"(?:19\d\d|20\d\d|'\d\d)"


_STATE = "|".join(sorted(US_STATES, key=len, reverse=True))


_STATE_NAME = "|".join(sorted(US_STATES.values(), key=len, reverse=True))


_STREET_SUFFIX_WORDS = (
    r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|"
    r"ter|row|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|alley|loop|crescent|plaza|"
    r"heights|pike|turnpike|route|rte|expressway|freeway|broadway|walk|commons|crossing|run|ridge|"
    r"hill|hills|point|view|gardens|grove|green|park|landing|junction|mall|estates|manor|mews|"
    r"ramp|spur|station|summit|valley|villas?|ville|vista|way)"
)


# Capitalised or UPPER CASE only: "5 cc/hr" or "1 ct" in a note are not addresses.
_STREET_SUFFIX = (
    "(?-i:" + "|".join(f"{w.capitalize()}|{w.upper()}" for w in _STREET_SUFFIX_WORDS[3:-1].split("|")) + ")"
)


_CAP = r"(?-i:[A-Z])"


_FACILITY_HEAD = (
    r"(?:hospital|hosp|medical\s+center|med\s+ctr|medical\s+centre|health\s+center|health\s+system|"
    r"clinic|clinics|rehab|rehabilitation(?:\s+center)?|nursing\s+home|"
    r"nursing\s+facility|infirmary|institute|memorial|medical\s+group|cancer\s+center|"
    r"children'?s|gen|hospice|manor|care\s+center|surgical\s+center|urgent\s+care|"
    r"university\s+hospital|va\s+medical\s+center|pavilion|sanatorium)"
)


_ID_VALUE = r"(#?[A-Z0-9](?:[A-Z0-9]|[-/.](?=[A-Z0-9])){2,24})"


_LETTER = r"[^\W\d_]"


_NAME = rf"{_LETTER}(?:{_LETTER}|['’\-])*{_LETTER}|{_LETTER}\.?"


_NAME_RUN = rf"(?:{_NAME})(?:\s+(?:[A-Za-z]\.\s*)?(?:{_NAME})){{0,2}}"


# Courtesy and professional titles before a name.
TITLE_WORDS = ("dr", "drs", "dr's", "doctor", "mr", "mrs", "ms", "miss", "mister", "prof", "professor", "mx")
_TITLE = rf"\b(?:{'|'.join(TITLE_WORDS)})\b\.?\s*"


_TITLE_AT = re.compile(_TITLE, re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    type: str
    start: int
    end: int
    score: float
    rule: str = ""  # the name of the rule that found it


_PLACE_NAMES = frozenset({"FACILITY", "LOCATION"})


_NUMBERS = frozenset(
    {"MEDICAL_RECORD_NUMBER", "ACCOUNT_NUMBER", "HEALTH_PLAN_NUMBER", "LICENSE_NUMBER", "ID"}
)


def _skip_common_words(text: str, start: int, end: int) -> int:
    """Where a place name really starts: the case-blind patterns also sweep up "transfer from"."""
    name_start = start
    upper = mostly_upper(text)
    mixed = mixed_case(text)
    for word in _WORD.finditer(text, start, end):
        # A capitalised word belongs to the name in mixed-case text ("Sacred Heart Memorial"); a
        # lower-case word of the language there does not ("occlusion at nursing home").
        token = word.group()
        low = token.lower()
        if low in HOSPITAL_NAME_WORDS:
            continue  # "sacred heart hospital"
        lower_word = mixed and token[0].islower() and low not in FACILITY_WORDS
        lower_word = lower_word and is_english(low) and not is_name_word(low)
        if (low in _CUT_WORDS and (upper or not token[0].isupper())) or lower_word:
            name_start = word.end()
    words = list(_WORD.finditer(text, name_start, end))
    lows = [w.group().lower() for w in words]
    if all(w not in HOSPITAL_NAME_WORDS and (w in FACILITY_WORDS or w in NOT_NAMES) for w in lows):
        return end  # "the hospital", "REHAB", "ST. Stable": a kind of place, not a named one
    return words[0].start()


FACILITY_WORDS = frozenset(
    [
        "hospital",
        "hosp",
        "medical",
        "center",
        "centre",
        "med",
        "ctr",
        "health",
        "system",
        "clinic",
        "clinics",
        "rehab",
        "rehabilitation",
        "nursing",
        "home",
        "facility",
        "infirmary",
        "institute",
        "memorial",
        "group",
        "cancer",
        "children's",
        "childrens",
        "gen",
        "hospice",
        "manor",
        "care",
        "surgical",
        "urgent",
        "university",
        "va",
        "pavilion",
        "sanatorium",
        "the",
        "of",
        "and",
        "st",
        "saint",
        "mt",
        "mount",
    ]
)


# "PS 10/5", "PEEP 5/5": ventilator settings, not dates.
_VENT_SETTING = re.compile(r"(?:ps|peep|cpap|bipap|psv|ips|eps|imv|simv|/)\s*$", re.IGNORECASE)


# "PSV increased to 10/5", "on bi-pap 10/5", "flowby 6/3", "CO/CI 5/3": a setting or a pair of
# readings named earlier in the same phrase.
_VENT_NEAR = re.compile(
    r"\b(?:ps|psv|peep|c-?pap|bi-?pap|flow-?by|ips|eps|imv|simv|co/ci|mode)\b[^\n.;:]{0,30}$",
    re.IGNORECASE,
)


_FRACTION = re.compile(r"\d\d?/\d\d?")


_CARE_KINDS = re.compile(r"(?:rehab|rehabilitation|nursing\s+home|hospice|care\s+center)\W*$", re.IGNORECASE)


_STREET_NUMBER = re.compile(r"\d+[A-Za-z]?\s+")


_STATE_AFTER_COMMA = re.compile(r",\s*(?-i:[A-Z]{2})\b(?!.*,)")


def _shorthand_pair(text: str, start: int, end: int) -> bool:
    """ "CABG, MI", "NT,ND", "LASIX, CO", "Arthur Truebell, MD" in a note: shorthand or a signature,
    not a town and its state (clinical writing only; "Denver, CO" needs a town-like word)."""
    if is_prose(text):
        return False
    town, _, state = text[start:end].rpartition(",")
    words = _WORD.findall(town)
    if not words or not state.startswith(" "):
        return True
    acronym = not mostly_upper(text) and any(sum(c.isupper() for c in w) > 1 for w in words)
    signature = state.strip()[:2] == "MD" and words[0].lower() in first_names()
    return acronym or signature or words[-1].lower() in NOT_NAMES


def _generic_care(text: str, start: int, end: int) -> bool:
    """ "going to rehab", "AWAITING REHAB": a kind of care after an ordinary word, not a named place."""
    if not _CARE_KINDS.search(text, start, end):
        return False
    first = _WORD.match(text, start)
    if first is None or first.group().lower() in HOSPITAL_NAME_WORDS:
        return False  # "PROVIDENCE REHAB"
    return is_english(first.group()) and not is_name_word(first.group())


def _plausible(entity: str, score: float, text: str, start: int, end: int) -> bool:
    """Clinical shorthand that the identifier patterns catch by their shape: vitals written
    "BS-111" or "sbp-100", "FI02 WEAN THIS SHIFT", "3 WAY FOLEY IN PLACE"."""
    value = text[start:end]
    if entity == "ID" and score < STRONG:
        head = re.match(r"[A-Za-z]+", value)
        return not (head and head.group().lower() in NOT_NAMES)
    if entity == "IBAN_CODE" and score < STRONG:
        return sum(c.isdigit() for c in value) >= 10
    if entity == "STREET_ADDRESS" and value[:1].isdigit():
        number = _STREET_NUMBER.match(value)
        words = [w.lower() for w in _WORD.findall(value[number.end() if number else 0 :])][:-1]
        if any(w in NOT_NAMES or w in STOP_WORDS for w in words):
            return False
        if mostly_upper(text) and words and all(is_english(w) and not is_name_word(w) for w in words):
            return False
    return True


# Scores out of ten (pain), six (murmur grade) and five (muscle strength), told by a word nearby.
_SCORE_WORDS = {
    "/10": re.compile(
        r"\b(?:pain|cp|c/o|discomfort|rated|rates|scale|ha|headache|ache|sore|angina|pressure|"
        r"incisional)\b",
        re.IGNORECASE,
    ),
    "/6": re.compile(r"\b(?:murmur|sem|hsm|dm|systolic|diastolic)\b", re.IGNORECASE),
    "/5": re.compile(r"\b(?:strength|strong|grip|motor|power|weakness)\b", re.IGNORECASE),
}


def _pain_score(text: str, start: int, end: int) -> bool:
    """ "c/o 3/10 back pain", "3/6 SEM", "strength 4/5": a score, not the 10th of March."""
    slash = text.rfind("/", start, end)
    words = _SCORE_WORDS.get(text[slash:end])
    if words is None:
        return False
    return bool(words.search(text, max(0, start - 25), start) or words.search(text, end, end + 15))


_CUT_WORDS = NOT_NAMES - {"st", "saint", "mt", "mount", "hospital", "rehab", "home", "of", "and", "the"}


def _is_eponym_use(text: str, end: int) -> bool:
    """`Crohn's disease`, `Murphy sign`: the word just before a disease-like head noun."""
    tail = re.match(r"(?:'s|’s|s')?\s+([A-Za-z]+)", text[end : end + 30])
    return bool(tail and tail.group(1).lower() in EPONYM_HEADS)


@lru_cache(maxsize=4096)
def _misspelt(word: str) -> bool:
    """A long word one deletion, swap or changed letter away from English ("assymptomatic",
    "percautions", "decesion")."""
    return len(word) >= 7 and any(
        is_english(candidate) for candidate in one_edit_variants(word, "aeiou", insertions=False)
    )


_CALENDAR = re.compile(rf"\d|\b(?:{_MONTH}|mon|tues?|wed|thu(?:rs)?|fri|sat|sun)(?:day)?\b", re.IGNORECASE)


def _alternation(phrases: frozenset[str]) -> str:
    return "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(phrases, key=len, reverse=True))


def _bare(word: str) -> str:
    """The word without its full stop, possessive or contraction ("Meza's" -> "meza", "I'm" -> "i")."""
    return word.lower().rstrip(".").partition("'")[0].partition("’")[0]


def _unknown(word: str) -> bool:
    """Not a word of English nor of clinical shorthand: a name, a brand, a foreign place."""
    low = _bare(word)
    return len(low) > 2 and low not in NOT_NAMES and not is_english(low) and not _CALENDAR.fullmatch(low)


def accept(entity: str, score: float, text: str, start: int, end: int) -> tuple[int, int] | None:
    """The bounds of a pattern's match once its shape is checked, or None where the match is
    clinical shorthand rather than PHI (ventilator settings and pain scores written like dates,
    "transfer from" before a place, "CABG, MI" written like a town and its state)."""
    if entity in _PLACE_NAMES:
        start = _skip_common_words(text, start, end)
        if entity == "FACILITY" and _generic_care(text, start, end):
            return None
        if _STATE_AFTER_COMMA.search(text, start, end) and _shorthand_pair(text, start, end):
            return None
    elif (
        entity == "DATE"
        and (
            _VENT_SETTING.search(text, max(0, start - 8), start)
            or (_FRACTION.fullmatch(text, start, end) and _VENT_NEAR.search(text, max(0, start - 40), start))
            or _pain_score(text, start, end)
        )
    ) or not _plausible(entity, score, text, start, end):
        return None
    if entity in _NUMBERS and text[start - 1 : start] == "#":
        start -= 1  # "MRN: #SF-998871": the number as written
    return start, end
