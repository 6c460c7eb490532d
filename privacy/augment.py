"""Training text for the PHI tagger: gold notes with their PHI swapped for generated surrogates, and
clinical sentences generated from templates.

A tagger trained only on a corpus's own surrogates learns those names; swapping every gold value
for another of the same kind, many times over, leaves it nothing to learn but the context, the
shape of a token and whether it is a word of the language. Names are drawn from the census lists
and, as often, built from syllables that are in no list (rare, immigrant and hyphenated names are
the norm in real notes).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from medcurate.privacy.vocab import first_names, last_names, us_places

# Gold labels of the corpora and annotation schemes we read, folded into the tagger's classes.
_CLASS_OF = {
    "NAME": (
        "HCPName RelativeProxyName PTName PTNameInitial NAME PERSON PER DOCTOR PATIENT USERNAME "
        "HCP_NAME RELATIVE_NAME"
    ),
    "LOCATION": (
        "Location GEOGRAPHIC_LOCATION STREET_ADDRESS GPE ZIP_CODE ORGANIZATION ORG FACILITY LOCATION LOC "
        "HOSPITAL CITY STATE STREET ZIP COUNTRY LOCATION_OTHER NRP ADDRESS"
    ),
    "DATE": "Date DateYear DATE DATE_TIME DATETIME",
    "CONTACT": "Phone PHONE PHONE_NUMBER FAX_NUMBER FAX EMAIL EMAIL_ADDRESS URL DOMAIN_NAME IP_ADDRESS",
    "ID": (
        "MEDICAL_RECORD_NUMBER MRN HEALTH_PLAN_BENEFICIARY_NUMBER SOCIAL_SECURITY_NUMBER US_SSN SSN "
        "ACCOUNT_NUMBER CERTIFICATE_LICENSE_NUMBER UNIQUE_IDENTIFIER CREDIT_CARD IBAN_CODE "
        "US_DRIVER_LICENSE ID IDNUM DEVICE BIOID HEALTHPLAN LICENSE VEHICLE_ID US_PASSPORT US_BANK_NUMBER"
    ),
    "AGE": "Age AGE",
}
CLASS_OF_LABEL = {label: cls for cls, labels in _CLASS_OF.items() for label in labels.split()}
CLASSES = (*_CLASS_OF, "OTHER")


def phi_class(label: str | None) -> str:
    """A gold label's tagger class; labels we do not know are PHI all the same ("OTHER")."""
    return CLASS_OF_LABEL.get(label or "", "OTHER")


@dataclass(frozen=True)
class GoldDoc:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # start, end, tagger class
    group: str = ""  # patient, query or template: folds never split a group


def gold_doc(row: dict, group: str = "") -> GoldDoc:
    """A gold record as `deid train` and `learn-site` read it: {text, spans:[{start, end, type}]}
    (PhysioNet/i2b2-style lines; `label` or `entity_type` may name the type), or Presidio's
    InputSample layout ({full_text, spans:[{start_position, end_position, entity_type}]})."""
    text = row.get("text", row.get("full_text"))
    if not isinstance(text, str):
        raise ValueError("a gold record needs a string `text`")
    spans = []
    for span in row.get("spans") or []:
        start = span.get("start", span.get("start_position"))
        end = span.get("end", span.get("end_position"))
        if start is None or end is None or not 0 <= int(start) < int(end) <= len(text):
            continue
        label = span.get("type") or span.get("label") or span.get("entity_type")
        spans.append((int(start), int(end), phi_class(label)))
    if not group:
        group = str(next((row[key] for key in GROUP_KEYS if row.get(key) is not None), ""))
    return GoldDoc(text, tuple(sorted(spans)), group)


# Fields that name what documents belong together (a patient's notes): folds never split them.
GROUP_KEYS = ("patient_id", "patient", "template_id", "group", "id")


def read_gold(path: str | Path) -> list[GoldDoc]:
    """Gold documents from a JSONL file (one record a line) or a JSON array."""
    import json

    source = Path(path)
    raw = source.read_text(encoding="utf-8")
    if raw.lstrip().startswith("["):
        rows = json.loads(raw)
    else:
        rows = []
        for number, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise ValueError(f"{source}:{number}: not a JSON object") from None
    docs = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"{source}: record {number} is not a JSON object")
        try:
            docs.append(gold_doc(row))
        except ValueError as error:
            raise ValueError(f"{source}: record {number}: {error}") from None
    return docs


_CONSONANTS = "b c d f g h j k l m n p r s t v w z ch sh th kh tr br dr gr kr st zh ng"
_VOWELS = "a e i o u a e i o u ai ou ia ei"


def syllable_name(rng: random.Random) -> str:
    """A name made of syllables: in no name list and (almost always) no word of the language."""
    consonants, vowels = _CONSONANTS.split(), _VOWELS.split()
    parts = [rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 3))]
    if rng.random() < 0.5:
        parts.append(rng.choice("nrsklmtdz"))
    return "".join(parts).capitalize()


@cache
def _pools() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    towns = tuple(sorted(name.title() for name in us_places()))
    return tuple(sorted(first_names())), tuple(sorted(last_names())), towns


class Surrogates:
    """Random values of each PHI class, shaped like the value they replace."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.firsts, self.lasts, self.towns = _pools()

    def first(self) -> str:
        return (
            self.rng.choice(self.firsts).capitalize() if self.rng.random() < 0.75 else syllable_name(self.rng)
        )

    def last(self) -> str:
        roll = self.rng.random()
        if roll < 0.65:
            return self.rng.choice(self.lasts).capitalize()
        if roll < 0.93:
            return syllable_name(self.rng)
        return f"{self.last_plain()}-{self.last_plain()}"

    def last_plain(self) -> str:
        return (
            self.rng.choice(self.lasts).capitalize() if self.rng.random() < 0.5 else syllable_name(self.rng)
        )

    def name(self, words: int = 2) -> str:
        if words <= 1:
            return self.last() if self.rng.random() < 0.6 else self.first()
        shapes = (
            lambda: f"{self.first()} {self.last()}",
            lambda: f"{self.first()[0]}. {self.last()}",
            lambda: f"{self.last()}, {self.first()}",
            lambda: f"{self.first()} {self.first()[0]}. {self.last()}",
        )
        return self.rng.choice(shapes)()

    def town(self) -> str:
        return self.rng.choice(self.towns) if self.rng.random() < 0.7 else syllable_name(self.rng)

    def place(self, words: int = 1) -> str:
        if words <= 1:
            return self.town()
        kinds = (
            lambda: f"{self.town()} {self.rng.choice(('General', 'Memorial', 'Regional', 'Community'))}",
            lambda: (
                f"{self.last_plain()} {self.rng.choice(('Medical Center', 'Hospital', 'Clinic', 'Rehab'))}"
            ),
            lambda: f"St. {self.first()}'s",
            lambda: (
                f"{self.rng.randint(1, 9999)} {self.last_plain()} {self.rng.choice(('St', 'Ave', 'Road', 'Lane'))}"
            ),
            lambda: f"{self.town()}, {self.rng.choice(('MA', 'NH', 'CA', 'TX', 'NY', 'FL', 'OH'))}",
            lambda: f"{self.town()} {self.town()}",
        )
        return self.rng.choice(kinds)()

    def date(self, like: str = "") -> str:
        if like and any(c.isdigit() for c in like):
            return self.date_like(like)
        month = self.rng.choice(
            (
                "January",
                "Feb",
                "March",
                "Apr",
                "May",
                "June",
                "Jul",
                "August",
                "Sept",
                "Oct",
                "Nov",
                "December",
            )
        )
        day = self.rng.randint(1, 28)
        year = self.rng.randint(1930, 2030)
        forms = (
            f"{self.rng.randint(1, 12)}/{day}",
            f"{self.rng.randint(1, 12)}/{day}/{year % 100:02d}",
            f"{self.rng.randint(1, 12)}-{day}-{year}",
            f"{month} {day}",
            f"{month} {day}, {year}",
            f"{day} {month} {year}",
            f"{year}",
            f"'{year % 100:02d}",
            f"{year}-{self.rng.randint(1, 12):02d}-{day:02d}",
        )
        return self.rng.choice(forms)

    def date_like(self, like: str) -> str:
        """Another valid date written the same way: month, day and year groups keep their roles
        and widths, so that the tagger does not learn that any "59/44" is a date."""
        groups = list(re.finditer(r"\d+", like))
        roles = ["day"] * len(groups)
        if groups and len(groups[0].group()) == 4:
            roles = ["year", "month", "day"][: len(groups)]
        elif len(groups) >= 2 and re.fullmatch(
            r"\d+\s*[/.-]\s*\d+(?:\s*[/.-]\s*\d+)?", like[groups[0].start() : groups[-1].end()]
        ):
            roles = ["month", "day", "year"][: len(groups)]
        elif groups and len(groups[-1].group()) in (2, 4) and len(groups) > 1:
            roles[-1] = "year"
        elif len(groups) == 1 and len(groups[0].group()) == 4:
            roles = ["year"]
        pieces, cursor = [], 0
        for match, role in zip(groups, roles, strict=False):
            width = len(match.group())
            if role == "year":
                year = self.rng.randint(1930, 2030)
                value = str(year) if width == 4 else f"{year % 100:02d}"
            else:
                number = self.rng.randint(1, 12 if role == "month" else 28)
                value = f"{number:0{width}d}" if match.group().startswith("0") else str(number)
            pieces.append(like[cursor : match.start()] + value)
            cursor = match.end()
        pieces.append(like[cursor:])
        return "".join(pieces)

    def phone(self) -> str:
        digits = [str(self.rng.randint(0, 9)) for _ in range(10)]
        a, b, c = "".join(digits[:3]), "".join(digits[3:6]), "".join(digits[6:])
        return self.rng.choice(
            (f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{b}-{c}", f"{a} {b} {c}", f"x{c}", f"{b}{c}")
        )

    def ident(self) -> str:
        length = self.rng.randint(5, 10)
        digits = "".join(str(self.rng.randint(0, 9)) for _ in range(length))
        prefix = self.rng.choice(("", "", "", "MRN", "A", "X-", "#"))
        return prefix + digits

    def age(self) -> str:
        return str(self.rng.randint(90, 107))

    def value(self, cls: str, original: str) -> str:
        words = len(original.split())
        if cls == "NAME":
            value = self.name(words)
        elif cls == "LOCATION":
            value = (
                self.place(words) if not any(c.isdigit() for c in original) else shaped(original, self.rng)
            )
        elif cls == "DATE":
            value = self.date(original)
        elif cls == "AGE":
            value = self.age()
        else:  # CONTACT, ID, OTHER: the same shape with other characters
            value = shaped(original, self.rng)
        return matched_case(value, original)


def shaped(value: str, rng: random.Random) -> str:
    """Digits become other digits and letters other letters; punctuation and spacing stay."""
    out = []
    for char in value:
        if char.isdigit():
            out.append(str(rng.randint(0, 9)))
        elif char.isalpha():
            letter = chr(ord("a") + rng.randint(0, 25))
            out.append(letter.upper() if char.isupper() else letter)
        else:
            out.append(char)
    return "".join(out)


def matched_case(value: str, original: str) -> str:
    letters = [c for c in original if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) > 1:
        return value.upper()
    if letters and all(c.islower() for c in letters):
        return value.lower()
    return value


def swapped(doc: GoldDoc, rng: random.Random) -> GoldDoc:
    """The document with every gold value replaced by a surrogate of its class."""
    surrogates = Surrogates(rng)
    pieces: list[str] = []
    spans: list[tuple[int, int, str]] = []
    cursor = length = 0
    for start, end, cls in doc.spans:
        if start < cursor:
            continue  # overlapping gold: keep the first
        pieces.append(doc.text[cursor:start])
        length += start - cursor
        value = surrogates.value(cls, doc.text[start:end])
        pieces.append(value)
        spans.append((length, length + len(value), cls))
        length += len(value)
        cursor = end
    pieces.append(doc.text[cursor:])
    return GoldDoc("".join(pieces), tuple(spans), doc.group)


# Invented clinical phrasings with PHI slots ({NAME}, {NAME1} one word, {PLACE}, {PLACE1}, {DATE},
# {PHONE}, {ID}, {AGE}): the ways notes name patients, staff, relatives, places and times.
TEMPLATES = (
    "Note for patient {NAME} MRN: {ID}",
    "Pt {NAME} ({ID}) admitted to {PLACE} on {DATE}.",
    "{NAME} is a 67 year old man with CHF, seen in clinic {DATE}.",
    "{NAME}, {NAME1} - MRN {ID}",
    "{NAME} tolerating po, ambulating with PT.",
    "Wife {NAME1} at bedside, updated on plan. Call her at {PHONE}.",
    "Son {NAME} called, will visit tomorrow.",
    "Daughter ({NAME1}) is HCP, cell {PHONE}.",
    "Discussed with Dr. {NAME1}, who agrees with plan.",
    "Seen by {NAME}, MD, cardiology fellow.",
    "Transferred from {PLACE} on {DATE} for further care.",
    "Lives in {PLACE1} with her husband {NAME1}.",
    "Pt's sister {NAME1} from {PLACE1} notified of transfer.",
    "Hx: MI {DATE}, CABG {DATE}, lives alone in {PLACE1}.",
    "Plan to d/c to {PLACE} rehab when bed available.",
    "Dr {NAME1} paged re: hypotension at 0300, aware.",
    "PCP: {NAME}, {PLACE}, phone {PHONE}.",
    "Admitted {DATE} via ED. Family ({NAME1}, {NAME1}) at bedside.",
    "{NAME1} family meeting held {DATE} with Dr. {NAME1}.",
    "Contact: {NAME} (brother) {PHONE}",
    "RN {NAME1} gave report to {NAME1} at 1900.",
    "Follow up with {NAME} in {PLACE1} clinic on {DATE}.",
    "Pt states she was born {DATE} in {PLACE1}.",
    "Patient is a {AGE} yo woman from {PLACE1}, DOB {DATE}.",
    "Chart #{ID}, acct {ID}, seen {DATE}.",
    "Per {NAME1}, pt was confused at home in {PLACE1} since {DATE}.",
    "Case discussed with {NAME1} from {PLACE} team.",
    "CXR {DATE}: no change. Spoke with {NAME1} (wife) by phone.",
    "{NAME1} visited this afternoon, pt more alert.",
    "Pt came to {PLACE} ED from home; wife {NAME} drove him.",
    "Sched for cath at {PLACE} {DATE}, Dr. {NAME1} to perform.",
    "Lab called with K 6.1 at 0430, {NAME1} notified.",
    "Last seen by {NAME} on {DATE} at {PLACE}.",
    "Niece {NAME} ({PHONE}) requests updates.",
    "Pt's friend {NAME1} brought clothes.",
    "Emergency contact {NAME}, {PHONE}, address {PLACE}.",
    "Patient {NAME} seen and examined this morning.",
    "pt {NAME} s/p fall at home, c/o hip pain.",
    "PATIENT {NAME1} REFUSED AM MEDS.",
    "{NAME}\n{ID}\nDOB {DATE}",
    "Patient: {NAME}\nMRN: {ID}",
    "Re: {NAME1}, {NAME1} (DOB {DATE})",
)
_SLOT = re.compile(r"\{(NAME1?|PLACE1?|DATE|PHONE|ID|AGE)\}")
_SLOT_CLASS = {
    "NAME": "NAME",
    "PLACE": "LOCATION",
    "DATE": "DATE",
    "PHONE": "CONTACT",
    "ID": "ID",
    "AGE": "AGE",
}


def generated(count: int, rng: random.Random) -> Iterator[GoldDoc]:
    """Template sentences filled with surrogates, joined into short notes of 1-4 lines, in the
    cases notes are written in (UPPER CASE, sentence case, lower case)."""
    surrogates = Surrogates(rng)
    for index in range(count):
        lines = [rng.choice(TEMPLATES) for _ in range(rng.randint(1, 4))]
        case = rng.choices(("upper", "mixed", "lower"), weights=(3, 5, 2))[0]
        text_parts: list[str] = []
        spans: list[tuple[int, int, str]] = []
        length = 0
        for line_index, line in enumerate(lines):
            if line_index:
                text_parts.append("\n" if rng.random() < 0.5 else " ")
                length += 1
            cursor = 0
            for match in _SLOT.finditer(line):
                literal = line[cursor : match.start()]
                text_parts.append(literal)
                length += len(literal)
                slot = match.group(1)
                one = slot.endswith("1")
                kind = slot.rstrip("1")
                if kind == "NAME":
                    value = surrogates.name(1 if one else rng.choice((1, 2, 2)))
                elif kind == "PLACE":
                    value = surrogates.place(1 if one else rng.choice((1, 2)))
                elif kind == "DATE":
                    value = surrogates.date()
                elif kind == "PHONE":
                    value = surrogates.phone()
                elif kind == "ID":
                    value = surrogates.ident()
                else:
                    value = surrogates.age()
                text_parts.append(value)
                spans.append((length, length + len(value), _SLOT_CLASS[kind]))
                length += len(value)
                cursor = match.end()
            text_parts.append(line[cursor:])
            length += len(line) - cursor
        text = "".join(text_parts)
        if case == "upper":
            text = text.upper()
        elif case == "lower":
            text = text.lower()
        yield GoldDoc(text, tuple(spans), f"generated-{index}")


def recased(doc: GoldDoc, rng: random.Random) -> GoldDoc:
    """Notes come in every case (dictated UPPER CASE, typed lower case): a copy in one of them, so
    that the tagger does not need capitals to find a name. Offsets hold (one-to-one case mapping)."""
    roll = rng.random()
    if roll < 0.2 and all(len(c.lower()) == 1 for c in doc.text):
        return GoldDoc(doc.text.lower(), doc.spans, doc.group)
    if roll < 0.4 and all(len(c.upper()) == 1 for c in doc.text):
        return GoldDoc(doc.text.upper(), doc.spans, doc.group)
    return doc


def augmented(docs: Iterable[GoldDoc], copies: int, seed: int) -> Iterator[GoldDoc]:
    """Each document as it is, then `copies` times with its PHI swapped and, one time in five each,
    lower- or upper-cased (documents without PHI once, as they are)."""
    rng = random.Random(seed)
    for doc in docs:
        yield doc
        if doc.spans:
            for _ in range(copies):
                yield recased(swapped(doc, rng), rng)


def fold_of(group: str, folds: int, seed: int = 0) -> int:
    """The cross-validation fold of a group (patient, query, template): stable across runs and
    machines, so that everything learned for fold k never saw fold k's groups."""
    import hashlib

    digest = hashlib.sha256(f"{seed}\x00{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds
