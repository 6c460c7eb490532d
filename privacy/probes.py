"""PHI probes: invented identifiers placed into many clinical phrasings, to measure leaks.

A probe is a text with the identifiers it holds. The identifiers are made here and nowhere else:
names built from a syllable inventory of their own (so they are in no name list, and are not the
names the tagger's training generator makes), random record numbers, phones, dates, e-mail
addresses, towns. The phrasings cover cue words, separators, parentheses, case, line layouts and
sentence-initial names. A value leaks when any of its words survives de-identification.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from medcurate.privacy.vocab import first_names, is_english, last_names

PHRASINGS = (
    "Note for patient {FIRST} {LAST} MRN: {MRN}",
    "Pt {FIRST} {LAST} ({MRN}) admitted overnight with chest pain.",
    "{FIRST} {LAST} is a 67 year old man with COPD on home O2.",
    "{LAST_UP}, {FIRST} - MRN {MRN}",
    "{FIRST_UP} {LAST_UP} TOLERATING PO, AMBULATING IN HALL.",
    "Patient: {LAST}, {FIRST}\nDOB: {DATE}\nMRN: {MRN}",
    "Name: {FIRST} {LAST}    Phone: {PHONE}",
    "Seen with her daughter {FIRST} today; daughter reachable at {PHONE}.",
    "Mr. {LAST} reports improved sleep on trazodone.",
    "Mrs. {LAST} declined the flu vaccine again.",
    "Dr. {LAST} was paged at 0200 for hypotension.",
    "Attending: {FIRST} {LAST}, MD",
    "Discussed plan with patient's husband, {FIRST}.",
    "{FIRST} {LAST} called from {TOWN} asking about discharge.",
    "PATIENT {LAST_UP} SEEN AND EXAMINED, AGREE WITH PLAN.",
    "Family meeting: son {FIRST} {LAST}, wife {FIRST2}.",
    "Transferred from {TOWN} Community Hospital on {DATE}.",
    "Lives at home in {TOWN} with spouse, independent in ADLs.",
    "Contact {FIRST} {LAST} at {PHONE} or {EMAIL}.",
    "Signed: {FIRST} {LAST}, RN",
    "cc: {FIRST} {LAST} (primary care)",
    "{FIRST} is a pleasant 54 yo F who presents with fever.",
    "Reviewed with {FIRST} {LAST} NP; agree with assessment.",
    "Per {FIRST}'s mother, the child has had diarrhea for 3 days.",
    "Labs drawn {DATE}; results called to {FIRST} {LAST}.",
    "- {FIRST} {LAST} (patient) consents to procedure",
    "Pt's neighbor {FIRST} {LAST} found him on the floor.",
    "Accompanied by partner {FIRST}, who drove down from {TOWN}.",
    "{LAST_UP} {FIRST_UP}\n{MRN}\n{DATE}",
    "Hello, my name is {FIRST} {LAST} and I have a question about my meds.",
    "MRN#{MRN}, acct no. {ACCOUNT}, seen {DATE}.",
    "Follow-up appointment {DATE} with Dr. {FIRST} {LAST}.",
    "ID: {MRN} / {FIRST} {LAST} / {DATE}",
    "{FIRST} {LAST}-{LAST2} was readmitted for cellulitis.",
    "pt {first} {last} c/o sob x2d, mrn {MRN}",
    "SSN on file {SSN}; insurance verified.",
    "Case reviewed with {FIRST} {LAST} from the {TOWN} clinic.",
    "{FIRST} {LAST}, 81M, POD#2 s/p CABG, afebrile.",
)

_ONSETS = "b bl br d dr f g gl k kl kr l m n p pl r s sk sl sn sv t tv v vr w y z zv"
_NUCLEI = "a e i o u y aa ae ie oe uo"
_CODAS = "b d g k l m n r s t x rn ld nd rk st"


def invented_name(rng: random.Random) -> str:
    """A name no list holds and no English word is: onset, vowel, optional coda, 2-3 times."""
    while True:
        parts = [
            rng.choice(_ONSETS.split())
            + rng.choice(_NUCLEI.split())
            + (rng.choice(_CODAS.split()) if rng.random() < 0.5 else "")
            for _ in range(rng.randint(2, 3))
        ]
        name = "".join(parts).capitalize()
        low = name.lower()
        if (
            4 <= len(name) <= 12
            and not is_english(low)
            and low not in first_names()
            and low not in last_names()
        ):
            return name


@dataclass(frozen=True)
class Probe:
    phrasing: int
    text: str
    values: tuple[str, ...]  # the identifiers placed into it, as written


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(count))


def _values(rng: random.Random) -> dict[str, str]:
    first, last, first2, last2 = (invented_name(rng) for _ in range(4))
    month, day, year = rng.randint(1, 12), rng.randint(1, 28), rng.randint(1935, 2024)
    return {
        "FIRST": first,
        "LAST": last,
        "FIRST2": first2,
        "LAST2": last2,
        "FIRST_UP": first.upper(),
        "LAST_UP": last.upper(),
        "first": first.lower(),
        "last": last.lower(),
        "MRN": _digits(rng, rng.randint(6, 9)),
        "ACCOUNT": f"{_digits(rng, 3)}-{_digits(rng, 5)}",
        "SSN": f"{_digits(rng, 3)}-{_digits(rng, 2)}-{_digits(rng, 4)}",
        "PHONE": rng.choice(
            (
                f"({_digits(rng, 3)}) {_digits(rng, 3)}-{_digits(rng, 4)}",
                f"{_digits(rng, 3)}-{_digits(rng, 3)}-{_digits(rng, 4)}",
                f"{_digits(rng, 3)}.{_digits(rng, 3)}.{_digits(rng, 4)}",
            )
        ),
        "DATE": rng.choice(
            (f"{month}/{day}/{year}", f"{month}/{day}/{year % 100:02d}", f"{year}-{month:02d}-{day:02d}")
        ),
        "EMAIL": f"{first.lower()}.{last.lower()}@{invented_name(rng).lower()}.org",
        "TOWN": invented_name(rng),
    }


_SLOT = re.compile(r"\{(\w+)\}")


def probes(count: int, seed: int = 0) -> Iterator[Probe]:
    """`count` probes, the phrasings taken in turn, each with fresh values."""
    rng = random.Random(seed)
    for index in range(count):
        phrasing = index % len(PHRASINGS)
        values = _values(rng)
        used: list[str] = []

        def fill(match: re.Match[str], values: dict[str, str] = values, used: list[str] = used) -> str:
            used.append(values[match.group(1)])
            return values[match.group(1)]

        text = _SLOT.sub(fill, PHRASINGS[phrasing])
        yield Probe(phrasing, text, tuple(used))


def leaked(value: str, output: str) -> list[str]:
    """The parts of a value that survive in the output (case-blind, whole tokens): each word of two
    letters or more; a value with digits as written, and its digits run together when there are
    seven or more (a phone or record number written another way). A group of a number alone is no
    leak: "1070" of a phone number is also a record count. An address leaks whole or by its local
    part."""
    if "@" in value:
        parts = [value, value.split("@")[0]]
    else:
        parts = re.findall(r"[^\W\d_]{2,}", value)
        digits = re.sub(r"\D", "", value)
        if digits:
            parts.append(value)
        if len(digits) >= 7:
            parts.append(digits)
    low = output.lower()
    return [p for p in parts if re.search(rf"(?<![^\W_]){re.escape(p.lower())}(?![^\W_])", low)]
