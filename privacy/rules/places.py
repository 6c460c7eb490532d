"""Places smaller than a state and places of care: towns, named hospitals and wards, regions,
countries and employers (Safe Harbor; the i2b2 guidelines mark hospitals and organisations)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache

from medcurate.privacy.regex_gate import scan
from medcurate.privacy.rules.base import Rule
from medcurate.privacy.rules.kinds import (
    _LETTERS,
    _WORD,
    cased_runs,
    is_prose,
    may_hold,
    mixed_case,
)
from medcurate.privacy.rules.shared import (
    _CALENDAR,
    _CAP,
    _FACILITY_HEAD,
    _STATE,
    _STATE_NAME,
    FACILITY_WORDS,
    MEDIUM,
    STRONG,
    WEAK,
    Span,
    _alternation,
    _bare,
    _generic_care,
    _is_eponym_use,
    _misspelt,
    _skip_common_words,
    _unknown,
)
from medcurate.privacy.stop_words import STOP_WORDS
from medcurate.privacy.vocab import (
    COMMON_TOWN_WORDS,
    COUNTRIES,
    EPONYM_HEADS,
    EPONYMS,
    HOSPITAL_NAME_WORDS,
    NATIONALITIES,
    NOT_NAMES,
    US_REGIONS,
    US_STATES,
    first_names,
    is_english,
    is_name_word,
    us_places,
)

# Capitalised words after these in prose name a place ("grew up in Sund", "flew to Varnholt").
_CAP_WORD = r"(?-i:[A-Z][\w'’.-]*)"


_PLACE_CUE = re.compile(
    r"\b(?:in|from|to|at|near|visit|visiting|born\s+in|lives\s+in)\s+(?:the\s+|our\s+)?"
    rf"({_CAP_WORD}(?:[ \t]+(?:&[ \t]+)?{_CAP_WORD}){{0,4}}"
    r"(?:\s+(?:downtown\s+)?(?:clinic|office|hospital|medical\s+center))?"
    rf"(?:\s+in\s+{_CAP_WORD}(?:\s+{_CAP_WORD})?)?(?:,\s*(?-i:[A-Z]{{2}})\b)?)"
)


def _cued_places(text: str) -> Iterator[Span]:
    """Capitalised words after "in/from/at" in mixed-case text ("from Chicago", "at Cedars-Sinai",
    "at Mayo Clinic in Rochester, MN"); not months, weekdays, acronyms of care or eponyms."""
    prose = is_prose(text)
    for match in scan(_PLACE_CUE, text):
        words = _WORD.findall(match.group(1))
        first = words[0].lower() if words else ""
        if not first or first in NOT_NAMES or first in EPONYMS or _CALENDAR.fullmatch(words[0]):
            continue
        if _is_eponym_use(text, match.end(1)) or words[-1].lower() in EPONYM_HEADS:
            continue  # "in Wells score"
        if not prose and (words[0].isupper() or len(first) < 3):
            continue  # clinical writing: "to PSV", "in NSR", "in L fem"
        if not prose and _shorthand_or_word(words[0], match.group(1)):
            continue
        end = match.end(1) - _trailing_dot(match.group(1))
        for stop in _SENTENCE_END.finditer(text, match.start(1), end):
            following = stop.group(1).lower()
            if following not in FACILITY_WORDS and (following in NOT_NAMES or not is_name_word(following)):
                end = stop.start()  # "Providence. This friend", "Fernbrook. Pt's daughter"
                break
        yield Span("LOCATION", match.start(1), end, WEAK)


_SENTENCE_END = re.compile(r"(?<!\bSt)(?<!\bMt)(?<!\b[A-Z])\.\s+([A-Z][\w'’]*)")


def _shorthand_or_word(word: str, value: str) -> bool:
    """In clinical writing the capitals after "in/to/from" are often shorthand or adverbs: "to
    MDs", "in SpO2", "to Pt's baseline", "to Nasally suction" (English words cannot be ruled out:
    WordNet lists Chicago and Hagerstown)."""
    low = word.lower()
    low = low[:-2] if low.endswith(("'s", "’s")) else low
    acronym = any(sum(c.isupper() for c in part) > 1 for part in word.split("-"))
    if low in NOT_NAMES or acronym or value[len(word) : len(word) + 1].isdigit():
        return True
    return low.endswith("ly") and is_english(low)


def _trailing_dot(value: str) -> int:
    return 1 if value.endswith(".") and not value.endswith(("St.", "Mt.")) else 0


# Where a patient goes, comes from or is seen: the words after are a place unless they are common.
_MOVEMENT = re.compile(
    r"\b(?:transferr?ed|transferring|transfer|trans|xfer(?:red|d)?|referred|admitted|readmitted|arrived|"
    r"taken|sent|came|come|coming|go|going|returned|called(?=\s+from)|discharged|d/c'?d|dc'?d|presented|brought|moved|seen|"
    r"treated|followed|evaluated|assessed|hospitali[sz]ed|operated|lives|living|lived|resides|residing|"
    r"visiting|visited|flew|relocated|born|admission|transport(?:ed)?|bed|placement|adm|tx|tx'?d|"
    r"med-?flight(?:ed)?|flown|screened|accepted|return|returns|returning|arrival)\s+"
    r"(?:back\s+|here\s+|over\s+|today\s+|earlier\s+|nearby\s+|with\s+[^\W\d_]+(?:\s+and\s+[^\W\d_]+)?\s+)?"
    r"(?:to|from|at|in|into|@)\s+"
    r"(?:the\s+|our\s+)?(?=((?:[^\W\d_][\w'’.&-]*[ \t]*){1,5}))|"
    r"@\s*((?-i:(?:St\.?|Saint|Mt\.?)\s+)?(?-i:[A-Z][a-z][\w'’.&-]*)(?:[ \t]+[^\W\d_][\w'’.&-]*){0,3})|"
    r"\b(?:to|from|at|in)\s+(?:the\s+)?((?:[^\W\d_][\w'’&-]*\s+){1,3}(?:hospital|hosp|memorial|medical\s+"
    r"center|rehab|nursing\s+home|clinic|infirmary|hospice))\b",
    re.IGNORECASE,
)


_SAINT_UPPER = re.compile(r"\b(?-i:ST|MT)\.?\s+(?-i:([A-Z]{3,}))(?:'S)?\b")


_NOT_A_NAMED_PLACE = STOP_WORDS | {
    "outside",
    "osh",
    "local",
    "another",
    "nearby",
    "previous",
    "prior",
    "community",
    "same",
    "this",
}


_FACILITY_TAIL = frozenset(
    [
        "hospital",
        "hosp",
        "memorial",
        "medical",
        "med",
        "center",
        "ctr",
        "centre",
        "clinic",
        "rehab",
        "health",
        "infirmary",
        "general",
        "regional",
        "hospice",
        "institute",
    ]
)


def _movement_places(text: str) -> Iterator[Span]:
    """The named place after a movement ("transferred to Wexbridge", "lives in glenhaven",
    "at UCSF"): words up to the first one that is common vocabulary; in mixed-case text they must be
    capitalised, in single-case text they must be unusual words or names."""
    mixed = mixed_case(text)
    for match in scan(_MOVEMENT, text):
        group = next(g for g in (1, 2, 3) if match.group(g))
        start = end = None
        if group == 3:
            # A facility head ("... hospital") names the place whatever the words before it are.
            words = [
                w
                for w in _WORD.finditer(text, match.start(3), match.end(3))
                if w.group().lower() not in _NOT_A_NAMED_PLACE
            ]
            named = len(words) > 1 and words[0].group().lower() not in _FACILITY_TAIL
            if named:
                start, end = _skip_common_words(text, words[0].start(), words[-1].end()), words[-1].end()
                if start < end and not _generic_care(text, start, end):
                    yield Span("FACILITY", start, end, MEDIUM)
            continue
        tokens = list(_WORD.finditer(text, match.start(group), match.end(group)))
        lows = [w.group().lower().rstrip(".") for w in tokens]
        for index, word in enumerate(tokens):
            token, low = word.group(), lows[index]
            if low in _FACILITY_TAIL:
                if start is None:
                    break  # "seen at the clinic": a kind of place, not a named one
                end = word.end()
                continue
            # Before "hospital" or "rehab" any name-like word is part of the name, whatever its
            # case ("presented to providence hospital from laurelton rehab").
            headed = any(w in _FACILITY_TAIL for w in lows[index + 1 :]) and (
                low in HOSPITAL_NAME_WORDS or is_name_word(low) or not is_english(low)
            )
            if (low in NOT_NAMES and low not in HOSPITAL_NAME_WORDS) or low in EPONYM_HEADS or len(low) < 2:
                break  # "admitted to Q7": a ward letter
            if mixed and not token[0].isupper() and not headed:
                break
            if not mixed and is_english(low) and not is_name_word(low) and not headed:
                break
            start = word.start() if start is None else start
            end = word.end()
        if start is not None:
            yield Span("LOCATION", start, end, MEDIUM)


def _saints_upper(text: str) -> Iterator[Span]:
    """ "TO GO TO ST. MARY": a saint's name after ST. in capitals names a hospital."""
    for match in scan(_SAINT_UPPER, text):
        if match.group(1).lower() in first_names():
            yield Span("FACILITY", match.start(), match.end(), MEDIUM)


def _unit_places(pattern: re.Pattern[str]) -> Callable[[str], Iterator[Span]]:
    """A hospital named by one of its units (`_UNIT_AT`), or a ward (`_WARD`)."""

    def find(text: str) -> Iterator[Span]:
        for match in scan(pattern, text):
            low = match.group(1).lower()
            if low in NOT_NAMES or low in EPONYMS or (is_english(low) and not is_name_word(low)):
                continue
            if pattern is _WARD and (len(low) < 5 or is_name_word(low) or _misspelt(low)):
                continue  # a ward is named after someone, but "Jones 2" may be a list
            fused = pattern is _WARD and text[match.end(1) : match.end(1) + 1].isdigit()
            yield Span("LOCATION", match.start(1), match.end(1) + fused, MEDIUM)  # "WEXBRIDGE7"

    return find


_TOWN_WORDS = r"[^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){0,3}"


# "RECORDS FROM HAGERSTOWN, MD", "this frederick maryland's clinic": a town before its state.
_BEFORE_STATE = re.compile(
    rf"(?<![\w'’.-])({_TOWN_WORDS}?)(?:,[ \t]*(?-i:{_STATE})\b|,?[ \t]+(?:{_STATE_NAME})(?:'s|’s)?\b)",
    re.IGNORECASE,
)


# "a niece of Gaithersburg", "moved to Glen Burnie": a town after a place preposition (the words are
# read in a lookahead, so "from X to Y" still tries Y).
_AFTER_PLACE_WORD = re.compile(
    rf"\b(?:from|in|of|to|at|near|outside|visiting|@)[ \t]+(?:the[ \t]+)?(?=({_TOWN_WORDS}))",
    re.IGNORECASE,
)


@cache
def _town_heads() -> frozenset[str]:
    """The first run of letters of every town name a match can reach (its words start with a
    letter, so "‘ewa beach" never can)."""
    return frozenset(head.group().casefold() for town in us_places() if (head := _LETTERS.match(town)))


def _us_towns(text: str) -> Iterator[Span]:
    """US towns (GeoNames, 15,000 people or more) named before their state, in any case, or after
    a place preposition: there, in mixed-case text, every word of the town must be capitalised, and
    in single-case text the town needs a word that is not English or be a city of 100,000 people
    that is no ordinary word ("TO GAITHERSBURG", "FROM RICHMOND", but not "IN NORMAL" or "to mobile")."""
    towns = us_places()
    heads = _town_heads()
    mixed = mixed_case(text)
    states = cased_runs(text) & _STATE_CODES or may_hold(text, _STATE_NAME_HEADS)
    for pattern, cued in ((_BEFORE_STATE, False), (_AFTER_PLACE_WORD, True)):
        if not (cued or states):
            continue  # no state code or state name: nothing for a town to stand before
        for match in scan(pattern, text):
            head = _LETTERS.match(text, match.start(1))
            if cued and (head is None or head.group().casefold() not in heads):
                continue  # no town starts with this word: most prepositions are followed by others
            words = list(_WORD.finditer(text, match.start(1), match.end(1)))
            for size in range(len(words), 0, -1):
                town = words[:size] if cued else words[-size:]
                lows = [w.group().lower() for w in town]
                if " ".join(lows) not in towns:
                    continue
                lower = not all(w.group()[0].isupper() for w in town)
                if lows[0] in NOT_NAMES or (cued and mixed and lower):
                    break
                capitals = all(w.group().isupper() for w in town)
                word = size == 1 and is_english(lows[0])
                word = word and (towns[lows[0]] < 100_000 or lows[0] in COMMON_TOWN_WORDS)
                if cued and (capitals or not mixed) and word:
                    break
                yield Span("LOCATION", town[0].start(), town[-1].end(), MEDIUM)
                break


# "sent to ED at WMC", "CHF team at WMC": the hospital a unit or a team belongs to.
_UNIT_AT = re.compile(
    r"\b(?:ed|er|ew|icu|ccu|micu|cath\s+lab|clinic|team|nurse|nurses)\s+(?:at|@|of|from)\s+(?:the\s+)?"
    r"([^\W\d_][\w'’-]+)\b",
    re.IGNORECASE,
)


# "transfer to Wexbridge 2", "WEXBRIDGE7": a ward, a word of no language and its floor number.
_WARD = re.compile(
    r"\b(?:to|from|per|plan:?|transfer)\s+(?:the\s+)?([^\W\d_]{5,})\s?[1-9](?!\.\d|[\d,/%:x-])(?!\s*(?:mg|mcg|g|cc|ml|l|u|units?|mm|cm|am|pm|hrs?|mins?|x|times|days?|weeks?)\b)",
    re.IGNORECASE,
)


_STATE_CODES = frozenset(US_STATES)


_STATE_NAME_HEADS = frozenset(name.split()[0].casefold() for name in US_STATES.values())


# A country, with its qualifier and the postal code that follows it at the end of an address
# ("Cyprus (Greek) 1010"); a nationality, faith or party, singular or plural.
_COUNTRY = re.compile(
    rf"\b(?:{_alternation(COUNTRIES)})\b(?:\s*\([^\W\d_]+\))?(?:\s+\d{{4,6}}\b)?", re.IGNORECASE
)


_NATIONALITY = re.compile(rf"\b(?:{_alternation(NATIONALITIES)})(?:s|es)?\b", re.IGNORECASE)
_WORLD_HEADS = frozenset(phrase.split()[0] for phrase in COUNTRIES | NATIONALITIES)


def _world_words(text: str) -> bool:
    """Whether the text holds the first word of a country or nationality (the long alternations
    cost more than this look-up)."""
    words = {w.lower() for w in _WORD.findall(text)}
    return any(w in _WORLD_HEADS or w[:-1] in _WORLD_HEADS or w[:-2] in _WORLD_HEADS for w in words)


def _countries(text: str) -> Iterator[Span]:
    """Countries in everyday prose, capitalised ("turkey", "chile" are food) unless the whole text
    is lower case."""
    if not _world_words(text):
        return
    lower = not any(c.isupper() for c in text)
    for match in scan(_COUNTRY, text):
        if lower or match.group()[0].isupper():
            yield Span("LOCATION", match.start(), match.end(), MEDIUM)


def _nationalities(text: str) -> Iterator[Span]:
    """Nationalities, faiths and parties in everyday prose, singular or plural."""
    if not _world_words(text):
        return
    for match in scan(_NATIONALITY, text):
        yield Span("NRP", match.start(), match.end(), MEDIUM)


# "rehab(good samaritan Memorial)", "MERCY HOSPITAL": hospital-name words before a facility
# word, in any case; one word alone only where it is no ordinary adjective ("a good rehab").
_HOSPITAL_NAME = re.compile(
    rf"\b((?:(?:{_alternation(HOSPITAL_NAME_WORDS)})\s+){{1,3}}){_FACILITY_HEAD}\b", re.IGNORECASE
)


_ORDINARY_NAME_WORDS = frozenset({"good", "regional", "union", "memorial", "heart", "cross", "holy"})


_REGION = re.compile(rf"\b(?:{_alternation(US_REGIONS)})\b", re.IGNORECASE)


_REGION_HEADS = frozenset(phrase.split()[0] for phrase in US_REGIONS)


# "WIFE CEO OF ZYLOTECH", "works for Acme Tools": an employer.
_EMPLOYER = re.compile(
    r"\b(?:ceo|cfo|coo|president|owner|founder|employee|works|worked|working|employed)\s+"
    r"(?:of|at|for|by)\s+(?:the\s+)?((?-i:[A-Z](?:[\w&'’-]|\.\w)*)(?:[ \t]+(?-i:[A-Z](?:[\w&'’-]|\.\w)*)){0,3})",
    re.IGNORECASE,
)


def _hospital_names(text: str) -> Iterator[Span]:
    """Hospital-name words before a facility word; one word alone only where it is no ordinary
    adjective."""
    for match in scan(_HOSPITAL_NAME, text):
        words = match.group(1).lower().split()
        if len(words) > 1 or words[0] not in _ORDINARY_NAME_WORDS:
            yield Span("FACILITY", match.start(), match.end(), MEDIUM)


def _regions(text: str) -> Iterator[Span]:
    """Regions of a state known by a name of their own; capitalised in mixed-case text."""
    mixed = mixed_case(text)
    for match in scan(_REGION, text):
        if not mixed or match.group()[0].isupper():
            yield Span("LOCATION", match.start(), match.end(), MEDIUM)


def _employers(text: str) -> Iterator[Span]:
    """An employer after a job word; in single-case text a word of no language ("ZYLOTECH")."""
    mixed = mixed_case(text)
    for match in scan(_EMPLOYER, text):
        first = match.group(1).split()[0].lower()
        if first in NOT_NAMES or (not mixed and is_english(first)):
            continue
        yield Span("ORGANIZATION", match.start(1), match.end(1), WEAK)


_EVERYDAY_PLACE = re.compile(
    r"\b(?:in|from|to|at|near|visit|visiting|grew\s+up\s+in|city)\s+([^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){0,4})",
    re.IGNORECASE,
)


_PLACE_PARTICLES = frozenset(
    {"de", "la", "le", "les", "du", "des", "del", "della", "di", "da", "do", "dos", "das"}
    | {"pri", "nad", "pod", "na", "am", "an", "der", "den", "bei", "sur", "sous"}
)


def _everyday_places(text: str) -> Iterator[Span]:
    """The place after "in/from/to/at" in everyday writing, in any alphabet and, where the whole
    text is lower case, in lower case ("I am in ΠΑΤΡΑ", "grew up in bodø"): words that are not
    English, with the particles between them ("Bourg de Péage")."""
    lower = not any(c.isupper() for c in text)
    for match in scan(_EVERYDAY_PLACE, text):
        end = None
        for word in re.finditer(r"\S+", match.group(1)):
            token = word.group().rstrip(".,")
            if not token or not (lower or token[0].isupper()):
                break
            if _bare(token) in _PLACE_PARTICLES and end is not None:
                continue
            if not _unknown(token):
                break
            end = match.start(1) + word.start() + len(token)
        if end is not None:
            yield Span("LOCATION", match.start(1), end, WEAK)


PATTERN_RULES = [
    Rule(
        "town_state",
        "LOCATION",
        STRONG,
        rf"\b((?:{_CAP}[A-Za-z.'-]+\s+){{0,2}}{_CAP}[A-Za-z.'-]+),\s*(?-i:{_STATE}|{_STATE_NAME})\b"
        r"(?:\s+\d{5}(?:-\d{4})?)?",
        examples=(("Moved from Saugus, MA last year.", "Saugus, MA"),),
        counterexamples=("Lives in a small town.",),
    ),
    Rule(
        "zip_after_state",
        "ZIP_CODE",
        STRONG,
        rf"\b(?-i:{_STATE})\s+(\d{{5}}(?:-\d{{4}})?)\b",
        group=1,
        examples=(("Saugus, MA 01906", "01906"),),
        counterexamples=("MA 12 units given.",),
    ),
    Rule(
        "zip_cued",
        "ZIP_CODE",
        STRONG,
        r"\b(?:zip|zip\s*code|postal\s+code)\s*[#:]?\s*(\d{5}(?:-\d{4})?)\b",
        group=1,
        examples=(("zip 01906 on the card", "01906"),),
        counterexamples=("zip it up.",),
    ),
    Rule(
        "facility_named",
        "FACILITY",
        MEDIUM,
        rf"\b((?:(?:st|saint|mt|mount|the)\.?\s+)?(?:{_CAP}[\w'&-]*\s+(?:(?:of|and|&)\s+)?){{1,4}}"
        rf"{_FACILITY_HEAD}\b(?:\s+(?:of|in|at)\s+{_CAP}[\w'.-]*(?:\s+{_CAP}[\w'.-]*){{0,2}})?)",
        group=1,
        examples=(
            ("Transferred from Ravensworth Memorial Hospital today.", "Ravensworth Memorial Hospital"),
        ),
        counterexamples=("Went to the hospital.",),
    ),
    Rule(
        "residence_place",
        "LOCATION",
        MEDIUM,
        r"\b(?:lives|living|resides|residing|moved|relocated|lived|from)\s+(?:in|at|to|near)\s+"
        rf"({_CAP}[A-Za-z'-]+(?:\s+{_CAP}[A-Za-z'-]+)?)",
        group=1,
        examples=(("She lives in Saugus with her son.", "Saugus"),),
        counterexamples=("She lives in a house.",),
    ),
    Rule(
        "saint_place",
        "FACILITY",
        MEDIUM,
        r"\b(?-i:St|Saint|Mt|Mount|ST|MT)\.?\s+(?-i:[A-Z][a-z'’]+)(?:'s|’s|s)?\b",
        examples=(("Seen at St. Brigid yesterday.", "St. Brigid"),),
        counterexamples=("Pt stable overnight.",),
    ),
    # "U Maryland scale", "Univ. of Michigan": a state university names a place of care.
    Rule(
        "state_university",
        "FACILITY",
        MEDIUM,
        rf"\b(?:u|univ|university)\.?\s+(?:of\s+)?(?-i:{_STATE_NAME})\b",
        examples=(("Followed at Univ. of Michigan clinic.", "Univ. of Michigan"),),
        counterexamples=("University hospital nearby.",),
    ),
]


RULES = [
    Rule(
        "cued_place",
        "LOCATION",
        WEAK,
        function=_cued_places,
        kinds=("cased",),
        examples=(("She flew in from Kellerbach last week.", "Kellerbach"),),
        counterexamples=("She flew in from the coast last week.",),
    ),
    Rule(
        "country",
        "LOCATION",
        MEDIUM,
        function=_countries,
        kinds=("cased", "everyday"),
        examples=(("I grew up in Latvia.", "Latvia"),),
        counterexamples=("I ate turkey for dinner.",),
    ),
    Rule(
        "nationality",
        "NRP",
        MEDIUM,
        function=_nationalities,
        kinds=("cased", "everyday"),
        examples=(("We are proud Latvians.", "Latvians"),),
        counterexamples=("We are proud parents.",),
    ),
    Rule(
        "everyday_place",
        "LOCATION",
        WEAK,
        function=_everyday_places,
        kinds=("cased", "everyday"),
        examples=(("I am in Kellerbach this week.", "Kellerbach"),),
        counterexamples=("I am in town this week.",),
    ),
    Rule(
        "movement_place",
        "LOCATION",
        MEDIUM,
        function=_movement_places,
        examples=(("Transferred to Wexbridge for rehab.", "Wexbridge"),),
        counterexamples=("Transferred to the floor.",),
    ),
    Rule(
        "saint_upper",
        "FACILITY",
        MEDIUM,
        function=_saints_upper,
        examples=(("TO GO TO ST. MARY TOMORROW", "ST. MARY"),),
        counterexamples=("TO GO TO ST. STABLE TOMORROW",),
    ),
    Rule(
        "unit_at_place",
        "LOCATION",
        MEDIUM,
        function=_unit_places(_UNIT_AT),
        examples=(("sent to ED at Wexbridge today", "Wexbridge"),),
        counterexamples=("sent to ED at noon today",),
    ),
    Rule(
        "ward",
        "LOCATION",
        MEDIUM,
        function=_unit_places(_WARD),
        examples=(("transfer to Wexbridge 2 today", "Wexbridge"),),
        counterexamples=("transfer to floor 2 today",),
    ),
    Rule(
        "us_town",
        "LOCATION",
        MEDIUM,
        function=_us_towns,
        examples=(("Records from Gaithersburg, MD arrived.", "Gaithersburg"),),
        counterexamples=("In normal sinus rhythm.",),
    ),
    Rule(
        "hospital_name",
        "FACILITY",
        MEDIUM,
        function=_hospital_names,
        literals=HOSPITAL_NAME_WORDS,
        examples=(("Admitted to Providence Hospital.", "Providence Hospital"),),
        counterexamples=("A good rehab program.",),
    ),
    # "W/U BY HCMC": a medical centre's initials.
    Rule(
        "medical_center_initials",
        "FACILITY",
        MEDIUM,
        pattern=re.compile(r"\b(?-i:[A-Z]{2,4}MC)\b"),
        checked=False,
        examples=(("W/U BY HCMC", "HCMC"),),
        counterexamples=("W/U BY TEAM",),
    ),
    Rule(
        "us_region",
        "LOCATION",
        MEDIUM,
        function=_regions,
        literals=_REGION_HEADS,
        examples=(("They live on Cape Cod now.", "Cape Cod"),),
        counterexamples=("They live on a cape now.",),
    ),
    Rule(
        "employer",
        "ORGANIZATION",
        WEAK,
        function=_employers,
        examples=(("Wife is CEO of Zylotech.", "Zylotech"),),
        counterexamples=("Wife is CEO of the company.",),
    ),
]
