"""Names of patients, relatives and staff in clinical writing, found by their cue (a title, a
relation, a role, a credential, a label) or by being census names that are no English word."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import pairwise

from medcurate.privacy.regex_gate import scan
from medcurate.privacy.rules.base import Rule
from medcurate.privacy.rules.kinds import (
    _WORD,
    _capitalised_share,
    clinical_record,
    is_prose,
    mixed_case,
    mostly_upper,
)
from medcurate.privacy.rules.shared import (
    _NAME_RUN,
    _TITLE,
    _TITLE_AT,
    DOUBT,
    FACILITY_WORDS,
    MEDIUM,
    STRONG,
    WEAK,
    Span,
    _is_eponym_use,
    _misspelt,
)
from medcurate.privacy.vocab import (
    EPONYMS,
    MEDICAL_TERMS,
    NOT_NAMES,
    coined,
    first_names,
    is_english,
    is_name_word,
    is_plain_name,
)

_RELATIVE = (
    r"(?:\b(?:sons?|daughters?|dtrs?|wife|husband|hus|spouse|sisters?|sis|brothers?|bro|mother|mom|father|dad|"
    r"nieces?|nephews?|grandsons?|grand-?daughters?|grandaughters?|grandchildren|grandmother|grandfather|grandma|grandpa|"
    r"aunt|uncle|cousin|friends?|fianc[eé]e?|partner|neighbou?r|guardian|proxy|hcp|girlfriend|boyfriend|"
    r"step(?:son|daughter|mother|father)|in-law|named|name\s+is|called|contact(?:\s+person)?|"
    r"spokesperson|caregiver|roommate)\b[\s,:;\-(]*(?:(?:and|&|or)\s+)?)+"
)


_ROLE = (
    r"(?:\b(?:np|rn|rrt|pa|md|attending|resident|fellow|intern|nurse|pharmacist|sw|social\s+worker|"
    r"case\s+manager|case\s*worker|house\s+staff|talked\s+(?:with|to)|meet|met\s+with|chaplain|surgeon|cardiologist|neurologist|physician|pcp|hospitalist|dietitian|"
    r"therapist|per|paged|page|w/|with|by|spoke\s+to|spoke\s+with|discussed\s+with|informed|notified)"
    r"\b\.?[\s,:]*)+"
)


# A staff role right before a name: "NP VUKOVICH made aware", "case worker Greta Stanowicz".
_STAFF = (
    r"\b(?:np|rn|rrt|crt|nurse|attending|resident|fellow|intern|case\s*(?:manager|worker)|"
    r"social\s+worker|chaplain|house\s+staff)\b\.?[\s,:]*"
)


_CREDENTIAL = (
    r"(?:,\s*|\s+)(?:(?-i:RN|NP|PA|SW|CM|PA-C)|rn|r\.n\.|md|m\.d\.|np|rrt|r\.r\.t\.|msw|licsw|lcsw|"
    r"phd|crna|cna|pharmd|lpn|aprn|fnp|dnp|rd|slp|crt|rrt)\b"
)


# The first run of letters of every credential above ("r.n." -> "r", "PA-C" -> "pa").
_CREDENTIAL_HEADS = frozenset(
    [
        "rn",
        "np",
        "pa",
        "sw",
        "cm",
        "r",
        "md",
        "m",
        "rrt",
        "msw",
        "licsw",
        "lcsw",
        "phd",
        "crna",
        "cna",
        "pharmd",
        "lpn",
        "aprn",
        "fnp",
        "dnp",
        "rd",
        "slp",
        "crt",
    ]
)


def _name_tokens(
    text: str, start: int, end: int, upper: bool, strong: bool, weak: bool = False, backwards: bool = False
) -> Iterator[Span]:
    """Tokens of a name found by its context, up to the first word that cannot continue a name.

    The first word after a title is a name whatever its case ("dr. mcgreavy"); later words must be
    capitalised in mixed-case text, or census names in single-case text. After a weak cue ("per",
    "with") a word must be a census name that is not also an English word ("with little").
    """
    mixed = not upper and any(c.isupper() for c in text[start:end])
    words = [w for w in _WORD.finditer(text, start, end) if w.group().lower() != "and"]
    previous = ""
    for index, word in enumerate(reversed(words) if backwards else words):
        token = word.group()
        low = token.lower()
        low = low[:-2] if low.endswith(("'s", "’s")) else low
        if len(token) == 1:
            if not text.startswith(".", word.end()):
                break  # an initial has its period; a lone letter is a grade, a side or an abbreviation
            if index > 0:
                yield Span("PERSON", word.start(), word.end() + 1, MEDIUM)
                continue
        surname_term = (strong or backwards) and index == 0 and low in MEDICAL_TERMS and is_name_word(low)
        if (low in NOT_NAMES and not surname_term) or _is_eponym_use(text, word.end()):
            break  # but "Dr. Walker" and "Dr. Early" are people
        if mixed and not strong and token.isupper() and len(token) > 1:
            break  # an acronym in mixed-case text ("with CHF")
        # A name in capitals inside mixed-case text continues in capitals ("Mr. EDWIN WOJCIAKOWSKI").
        capitalised = (token[0].isupper() and not token.isupper()) or len(token) == 1
        capitalised = capitalised or (index > 0 and token.isupper() and previous.isupper())
        previous = token
        parts = low.split("-")  # "HARTLEY-VOSS": a double-barrelled surname
        named = (is_plain_name(low) or low in first_names()) if weak else all(map(is_name_word, parts))
        # Not a word of the language (nor a misspelt one): after a relative or a title, a name
        # ("husband branimir", but not "daughter and grandaughter").
        unknown = len(low) > 2 and all(p.isalpha() and not is_english(p) for p in parts)
        unknown = unknown and (is_name_word(low) or not _misspelt(low))
        if weak and not named:
            break
        if (
            index == 0
            and not (strong or backwards or capitalised)
            and is_english(low)
            and low not in first_names()
        ):
            break  # "husband went home", "SON BROUGHT HIM": a word, though also a census surname
        if index == 0:
            if strong:
                score = STRONG if named or capitalised or upper else MEDIUM
            elif (named or unknown) and (capitalised or not mixed):
                score = MEDIUM
            else:
                score = WEAK if capitalised else DOUBT
        elif (mixed and not capitalised) or (not mixed and not (named or unknown)):
            break
        else:
            score = MEDIUM
        if low in EPONYMS and not strong:
            # But "Maria Parkinson RN": a capitalised surname right before a credential.
            score = STRONG if backwards and index == 0 and token[0].isupper() else DOUBT
        yield Span("PERSON", word.start(), word.end(), score)


_NAME_LABEL = re.compile(
    r"\b(?:name|patient(?:\s+name)?|pt\s+name|last\s+name|first\s+name|full\s+name|signed|"
    r"account\s+holder)\s*(?:is|:|=)\s*((?-i:[A-Z])[^\W\d_]*(?:[ \t]+(?-i:[A-Z])[^\W\d_'’.-]*\.?){0,3})",
    re.IGNORECASE,
)


_INITIAL_NAME = re.compile(r"(?<![\w.'’/])([A-Za-z])\.\s?([^\W\d_][\w'’-]+)")


_SPEAKS = re.compile(
    r"\b([A-Za-z][a-z]+|[A-Z]+)\s+(?i:called|visited|phoned|reports?|reported|states?|stated|said|says|spoke|"
    r"is\s+speaking|was\s+here|in\s+to\s+visit|at\s+bedside|is\s+aware|aware|updated|notified|informed|"
    r"came\s+in|arrived|left|today|will\s+call|made\s+aware)\b"
)


def _initial_names(text: str) -> Iterator[Span]:
    """An initial and a surname ("W. KOWALCZYK", "d. ferraro", "m. o'hara"); not "E. coli"."""
    mixed = mixed_case(text)
    for match in scan(_INITIAL_NAME, text):
        surname = match.group(2)
        low = surname.lower()
        low = low[2:] if low[:2] in ("o'", "o’") and low[2:] != "clock" else low  # "m. o'hara"
        if low in NOT_NAMES or low in EPONYMS or is_english(low):
            continue
        # A census surname, or in mixed-case text a capitalised word of no language ("D. Dravn").
        unknown = mixed and surname[0].isupper() and not surname.isupper() and len(low) > 2
        if not (is_name_word(low) or (unknown and match.group(1).isupper())):
            continue
        yield Span("PERSON", match.start(1), match.end(2), MEDIUM)


# "o'hara", "Dr. o malley": an Irish surname after O, in any case (after a title also with a space).
_O_SURNAME = re.compile(
    rf"(?<![\w'’])(?-i:O|o)['’]([A-Za-z]{{3,}})\b|{_TITLE}((?-i:O|o)\s([A-Za-z]{{3,}}))\b", re.IGNORECASE
)


def _o_surnames(text: str) -> Iterator[Span]:
    for match in scan(_O_SURNAME, text):
        group = 1 if match.group(1) else 3
        low = match.group(group).lower()
        if low != "clock" and is_name_word(low) and low not in NOT_NAMES:
            start = match.start() if group == 1 else match.start(2)
            yield Span("PERSON", start, match.end(group), MEDIUM)


_TITLE_CASE_WORD = re.compile(r"\b(?-i:[A-Z][a-z][a-z'’-]+)\b")


def _census_names(text: str) -> Iterator[Span]:
    """In mixed-case writing, a capitalised census name that is no word of English nor of the
    clinic ("Okafor aware", "spoke with Ferraro", "Harriet called") is a person wherever it stands."""
    if not mixed_case(text):
        return
    for match in scan(_TITLE_CASE_WORD, text):
        low = match.group().lower()
        low = low[:-2] if low.endswith(("'s", "’s")) else low
        if not is_name_word(low) or low in NOT_NAMES or low in EPONYMS:
            continue
        if not (is_english(low) or _misspelt(low)):
            yield Span("PERSON", match.start(), match.start() + len(low), WEAK)


def _first_name_subjects(text: str) -> Iterator[Span]:
    """A census first name doing what relatives and staff do ("bob visited", "MARTA IS SPEAKING")."""
    for match in scan(_SPEAKS, text):
        low = match.group(1).lower()
        if low in first_names() and low not in NOT_NAMES and low not in EPONYMS:
            yield Span("PERSON", match.start(1), match.end(1), MEDIUM)


def _list_names(text: str, upper: bool) -> Iterator[Span]:
    """A census first name followed by a surname-like word ("Anna S.", "EDWIN WOJCIAKOWSKI")."""
    firsts = first_names()
    # The surname is in a lookahead: "CASEWORKER GRETA STANOWICZ" must still try "GRETA STANOWICZ".
    for match in re.finditer(r"\b([A-Za-z][a-z'’-]+|[A-Z][A-Z'’-]+)(?=\s+([A-Z](?:\.|[A-Za-z'’-]+)))", text):
        first, last = match.group(1), match.group(2)
        if not first[0].isupper() or first.lower() not in firsts or first.lower() in NOT_NAMES:
            continue
        if last.lower().rstrip(".") in NOT_NAMES or _is_eponym_use(text, match.end()):
            continue
        if upper and not (first.isupper() and last.isupper()):
            continue
        if upper and is_english(first) and not is_name_word(last.rstrip(".")):
            continue  # "FRANK BLEEDING", "RUSTY SPUTUM"
        if not upper and not (last[0].isupper() and not first.isupper()):
            continue
        known_last = is_name_word(last.rstrip("."))
        score = MEDIUM if (known_last or last.endswith(".")) else WEAK
        if first.lower() in EPONYMS or last.lower() in EPONYMS:
            score = DOUBT
        yield Span("PERSON", match.start(), match.end(2), score)


# A contact listed with a phone label: "Jane Roe cell# 555-...", "John Doe (home): ...".
_BEFORE_PHONE = re.compile(
    r"(?-i:\b([A-Z][a-z'’-]+)\s+([A-Z][a-z'’-]+))\s*[,:-]?\s*\(?"
    r"(?:cell|home|work|phone|ph|tel|mobile|beeper|pager)\b\s*(?:#|no\b|number\b|:)",
    re.IGNORECASE,
)


_FAMILY_OF = re.compile(r"\b([^\W\d_][\w'’-]+)\s+(?:family|families|household)\b", re.IGNORECASE)


_SIGNATURE = re.compile(
    r"(?:\A|[.!?\n])\s*([^\W\d_][\w'’-]*)(?:\s+[A-Za-z]\.)?(?:\s+([^\W\d_][\w'’-]*))?[\s.,]*\Z"
)


def _signature(text: str) -> Iterator[Span]:
    """A note signed with a first name at its very end ("... 1400U/HR.  HARRIET")."""
    match = _SIGNATURE.search(text, max(0, len(text) - 60))
    if match is None:
        return
    first, last = match.group(1).lower(), (match.group(2) or "").lower()
    if first not in first_names() or first in NOT_NAMES or last in NOT_NAMES:
        return
    if last or not is_english(first):
        yield Span("PERSON", match.start(1), match.end(2) if last else match.end(1), MEDIUM)


_LOWER_WORD = re.compile(r"[a-z][a-z'’-]+")


def _lowercase_names(text: str) -> Iterator[Span]:
    """In notes typed all in lower case, a census first name (or two) before a word of no
    language ("pat brimsworth", "mary theresa petrakou"), or a first name of four letters or more
    that is no word itself ("spoke with rosalind"): capitals cannot tell the name."""
    if _capitalised_share(text) > 0.05:
        return
    firsts = first_names()
    words = list(scan(_LOWER_WORD, text))
    for index, word in enumerate(words):
        if word.group() not in firsts or word.group() in NOT_NAMES:
            continue
        low = word.group()
        if len(low) > 3 and low not in EPONYMS and not (is_english(low) or _misspelt(low)):
            yield Span("PERSON", word.start(), word.end(), MEDIUM)
        if index + 1 == len(words):
            break
        last = index + 1
        if words[last].group() in firsts and last + 1 < len(words):
            last += 1  # a middle name
        chain = words[index : last + 1]
        if any(not text[a.end() : b.start()].isspace() for a, b in pairwise(chain)):
            continue
        surname = words[last].group()
        if surname in NOT_NAMES or surname in EPONYMS or is_english(surname) or _misspelt(surname):
            continue
        if word.group() in EPONYMS or _is_eponym_use(text, words[last].end()):
            continue  # "mallory weiss tear"
        yield Span("PERSON", word.start(), words[last].end(), MEDIUM)


_TITLED = re.compile(rf"({_TITLE})((?:[A-Za-z]\.\s*)*{_NAME_RUN})", re.IGNORECASE)
_RELATED = re.compile(
    rf"{_RELATIVE}((?:{_NAME_RUN})(?:\s*(?:,|and|&)\s*(?:{_NAME_RUN})){{0,3}})", re.IGNORECASE
)
_ROLE_NAME = re.compile(rf"{_ROLE}(\b(?:[A-Za-z]\.\s*)?{_NAME_RUN})", re.IGNORECASE)
_STAFF_NAME = re.compile(rf"{_STAFF}((?:[A-Za-z]\.\s*)?{_NAME_RUN})", re.IGNORECASE)
_CREDENTIALED = re.compile(rf"(\b(?:[A-Za-z]\.\s*)?{_NAME_RUN}){_CREDENTIAL}", re.IGNORECASE)

# The opening of a history ("Marisol Quenby is a 58 yo woman", "ODALYS IS A PLEASANT 71 Y/O MAN"):
# its subject is the patient. The age phrase is found first, then the words right before it.
_AGE_STATEMENT = re.compile(
    r"[ \t]+(?:is|was)[ \t]+an?[ \t]+(?:[^\W\d_]+[ \t]+){0,2}\d{1,3}[ \t]*-?[ \t]*"
    r"(?:y/?o\b|yo\b|y\.o\.|years?[- ]old|yr[- ]old)",
    re.IGNORECASE,
)
_NAME_RUN_BEFORE = re.compile(rf"\b({_NAME_RUN})$", re.IGNORECASE)


def _age_statement_subjects(text: str) -> Iterator[Span]:
    upper = mostly_upper(text)
    for match in scan(_AGE_STATEMENT, text):
        subject = _NAME_RUN_BEFORE.search(text, max(0, match.start() - 80), match.start())
        if subject:
            yield from _name_tokens(
                text, subject.start(1), subject.end(1), upper, strong=False, backwards=True
            )


# The patient named by the word itself ("PATIENT QUORVANT SEEN", "pt yelvana braskovy c/o sob"), and
# a record's header line ("QUORVANT, Yelvana - MRN 4471"). After so common a cue only words no list
# knows count: census names there are more often words ("pt will"), shorthand is misspelt English.
_PATIENT_CUE = (
    re.compile(r"\bpatient\b\.?:?[ \t]+([^\W\d_][\w'’-]*)", re.IGNORECASE),
    # After the shorthand only a given name and a surname: a lone word there is a misspelt finding.
    re.compile(r"\bpt\b\.?:?[ \t]+([^\W\d_][\w'’-]*[ \t]+[^\W\d_][\w'’-]*)", re.IGNORECASE),
)
_HEADER_NAME = re.compile(
    r"^[ \t]*([^\W\d_][\w'’-]*,?[ \t]+[^\W\d_][\w'’-]*)[ \t]*[-–:,]?[ \t]*(?:mrn|mr#|medical record)\b",
    re.IGNORECASE | re.MULTILINE,
)


def _coined_names(*patterns: re.Pattern[str]) -> Callable[[str], Iterator[Span]]:
    """Every word of the pattern's name group, when all are coined."""

    def find(text: str) -> Iterator[Span]:
        for pattern in patterns:
            for match in scan(pattern, text):
                words = list(_WORD.finditer(text, match.start(1), match.end(1)))
                if all(coined(word.group()) for word in words):
                    yield from (Span("PERSON", word.start(), word.end(), MEDIUM) for word in words)

    return find


def _titled_names(text: str) -> Iterator[Span]:
    """A title is strong evidence: everything up to the first common word is a name. In clinical
    notes the title itself stays, as the i2b2 and PhysioNet guidelines have it ("Dr." names
    no one), and "MS" is also mental status ("MS changes"): there the name after it needs a
    census name that is no English word. In prose the title goes with the name, as PII
    annotation has it ("Mr. Okafor flew to ...")."""
    upper = mostly_upper(text)
    prose = not upper and is_prose(text)
    record = clinical_record(text)
    for match in scan(_TITLED, text):
        ms = not prose and match.group(1).rstrip(". \t\n").lower() == "ms"
        tokens = list(_name_tokens(text, match.start(2), match.end(2), upper, strong=not ms, weak=ms))
        if not record and tokens:
            title_end = match.start(1) + len(match.group(1).rstrip())
            yield Span("PERSON", match.start(1), title_end, tokens[0].score)
        yield from tokens


def _staff_names(text: str) -> Iterator[Span]:
    """After a staff role ("NP VUKOVICH made aware"), only a name-like word: a first name or a
    word of no language."""
    upper = mostly_upper(text)
    for match in scan(_STAFF_NAME, text):
        for span in _name_tokens(text, match.start(1), match.end(1), upper, strong=False):
            low = text[span.start : span.end].lower()
            plain = not (is_english(low) or _misspelt(low) or "-" in low or _TITLE_AT.fullmatch(low))
            if low in first_names() or (plain and len(low) > 2):
                yield span


def _cued_names(
    pattern: re.Pattern[str], weak: bool, backwards: bool = False
) -> Callable[[str], Iterator[Span]]:
    """Name tokens after (or, `backwards`, before) a cue: a relative, a role, a credential."""

    def find(text: str) -> Iterator[Span]:
        upper = mostly_upper(text)
        for match in scan(pattern, text):
            yield from _name_tokens(
                text, match.start(1), match.end(1), upper, strong=False, weak=weak, backwards=backwards
            )

    return find


def _listed_names(text: str) -> Iterator[Span]:
    return _list_names(text, mostly_upper(text))


def _names_before_phone(text: str) -> Iterator[Span]:
    """ "Jane Roe cell# ...": a contact listed with a phone label."""
    for match in scan(_BEFORE_PHONE, text):
        lows = [match.group(1).lower(), match.group(2).lower()]
        named = any(is_name_word(w) or not is_english(w) for w in lows)
        if named and not any(w in NOT_NAMES or w in FACILITY_WORDS for w in lows):
            yield Span("PERSON", match.start(1), match.end(2), MEDIUM)


def _family_names(text: str) -> Iterator[Span]:
    """ "KEEP FIGUEROA FAMILY AWARE": a surname before "family"."""
    for match in scan(_FAMILY_OF, text):
        low = match.group(1).lower()
        if low not in NOT_NAMES and is_name_word(low) and not is_english(low):
            yield Span("PERSON", match.start(1), match.end(1), MEDIUM)


def _labelled_names(text: str) -> Iterator[Span]:
    """ "Name: ...", "patient is ...": a capitalised name after a name label."""
    upper = mostly_upper(text)
    for match in scan(_NAME_LABEL, text):
        first = match.group(1).split()[0].lower()
        if upper and is_english(first) and first not in first_names():
            continue  # "PATIENT IS TOLERATING": in capitals, every word looks like a name
        if first not in NOT_NAMES:
            yield Span("PERSON", match.start(1), match.end(1), MEDIUM)


RULES = [
    Rule(
        "titled_name",
        "PERSON",
        STRONG,
        function=_titled_names,
        examples=(("Seen by Dr. Elena Kowalczyk today.", "Elena"),),
        counterexamples=("Seen by the doctor today.",),
    ),
    Rule(
        "staff_name",
        "PERSON",
        MEDIUM,
        function=_staff_names,
        examples=(("RN Ottoline aware of plan.\nStable.", "Ottoline"),),
        counterexamples=("RN aware of plan.\nStable.",),
    ),
    Rule(
        "relative_name",
        "PERSON",
        MEDIUM,
        function=_cued_names(_RELATED, weak=False),
        examples=(("Daughter Winifred at bedside.", "Winifred"),),
        counterexamples=("Daughter at bedside.",),
    ),
    Rule(
        "age_statement_subject",
        "PERSON",
        MEDIUM,
        function=_age_statement_subjects,
        examples=(
            ("Marisol Quenby is a 58 yo woman with asthma.", "Quenby"),
            ("ODALYS IS A PLEASANT 71 Y/O MAN.", "ODALYS"),
        ),
        counterexamples=("Patient is a 58 yo woman.", "She is a pleasant 71 year old."),
    ),
    Rule(
        "patient_cue_name",
        "PERSON",
        MEDIUM,
        function=_coined_names(*_PATIENT_CUE),
        examples=(
            ("PATIENT QUORVANT SEEN AND EXAMINED.", "QUORVANT"),
            ("pt yelvana braskovy c/o sob", "braskovy"),
        ),
        counterexamples=("pt tolerating diet", "PT USED CALL LIGHT", "pt anxiuos overnight", "pt perrlax"),
    ),
    Rule(
        "header_name",
        "PERSON",
        MEDIUM,
        function=_coined_names(_HEADER_NAME),
        examples=(("QUORVANT, Yelvana - MRN 4471", "Yelvana"),),
        counterexamples=("Medical record - MRN 4471",),
    ),
    Rule(
        "credentialed_name",
        "PERSON",
        MEDIUM,
        function=_cued_names(_CREDENTIALED, weak=False, backwards=True),
        literals=_CREDENTIAL_HEADS,
        examples=(("Note by Winifred Ashcombe, RN", "Ashcombe"),),
        counterexamples=("Dressing changed by RN",),
    ),
    Rule(
        "role_name",
        "PERSON",
        MEDIUM,
        function=_cued_names(_ROLE_NAME, weak=True),
        examples=(("Discussed with Winifred.", "Winifred"),),
        counterexamples=("Discussed with the team.",),
    ),
    Rule(
        "listed_name",
        "PERSON",
        MEDIUM,
        function=_listed_names,
        examples=(("Winifred Ashcombe visited.", "Winifred Ashcombe"),),
        counterexamples=("Frank bleeding noted.",),
    ),
    Rule(
        "lowercase_name",
        "PERSON",
        MEDIUM,
        function=_lowercase_names,
        examples=(("spoke with rosalind about the plan", "rosalind"),),
        counterexamples=("spoke with the team about the plan",),
    ),
    Rule(
        "signature",
        "PERSON",
        MEDIUM,
        function=_signature,
        examples=(("Pt resting comfortably.  WINIFRED", "WINIFRED"),),
        counterexamples=("Pt resting comfortably.  STABLE",),
    ),
    Rule(
        "name_before_phone",
        "PERSON",
        MEDIUM,
        function=_names_before_phone,
        examples=(("Jane Roe cell# 617-555-0142", "Jane Roe"),),
        counterexamples=("Home phone: 617-555-0142",),
    ),
    Rule(
        "family_name",
        "PERSON",
        MEDIUM,
        function=_family_names,
        examples=(("KEEP KOWALSKI FAMILY AWARE", "KOWALSKI"),),
        counterexamples=("KEEP FAMILY AWARE",),
    ),
    Rule(
        "initial_name",
        "PERSON",
        MEDIUM,
        function=_initial_names,
        examples=(("Seen by W. Kowalski today.", "W. Kowalski"),),
        counterexamples=("Grew E. coli in culture.",),
    ),
    Rule(
        "o_surname",
        "PERSON",
        MEDIUM,
        function=_o_surnames,
        examples=(("Spoke with o'hara this morning.", "o'hara"),),
        counterexamples=("At six o'clock this morning.",),
    ),
    Rule(
        "name_label",
        "PERSON",
        MEDIUM,
        function=_labelled_names,
        examples=(("Name: Winifred Ashcombe", "Winifred Ashcombe"),),
        counterexamples=("Name: pending",),
    ),
    Rule(
        "first_name_subject",
        "PERSON",
        MEDIUM,
        function=_first_name_subjects,
        examples=(("bob visited this afternoon", "bob"),),
        counterexamples=("pain visited this afternoon",),
    ),
    Rule(
        "census_name",
        "PERSON",
        WEAK,
        function=_census_names,
        examples=(("Spoke with Kowalski about it.", "Kowalski"),),
        counterexamples=("Spoke with Nurse about it.",),
    ),
]
