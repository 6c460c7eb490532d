"""Kinds of text a rule can be limited to: UPPER CASE notes, mixed-case writing, clinical records,
ordinary prose, everyday writing. Each test is cached per text: every rule asks the same ones."""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import chain, islice

from medcurate.privacy.regex_gate import scan

_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-])*")


@lru_cache(maxsize=256)
def _capitalised_share(text: str) -> float:
    words = _WORD.findall(text[:3000])
    return sum(w[0].isupper() for w in words) / max(1, len(words))


_UPPER = re.compile(r"[A-Z]")


_LOWER = re.compile(r"[a-z]")


@lru_cache(maxsize=256)
def mostly_upper(text: str) -> bool:
    """UPPER CASE writing (many ICU notes): names and places cannot be told by their capitals."""
    head = text[:2000]
    upper, lower = len(_UPPER.findall(head)), len(_LOWER.findall(head))
    return upper > 0 and upper > 0.7 * (upper + lower)


_LETTERS = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=256)
def letter_runs(text: str) -> frozenset[str]:
    """The text's maximal runs of letters, lower case."""
    return frozenset(_LETTERS.findall(text.lower()))


def may_hold(text: str, words: frozenset[str]) -> bool:
    """Whether a case-blind `\bword\b` of `words` can match in `text`: only where the word is one of
    its runs of letters (outside ASCII always, where the regex engine's case rules differ)."""
    return not text.isascii() or bool(letter_runs(text) & words)


@lru_cache(maxsize=256)
def cased_runs(text: str) -> frozenset[str]:
    """The text's maximal runs of letters, as written."""
    return frozenset(_LETTERS.findall(text))


@lru_cache(maxsize=256)
def clinical_record(text: str) -> bool:
    """A clinical note (several lines of shorthand, UPPER CASE, or a bedside paragraph of settings
    and observations), where the i2b2 and PhysioNet conventions hold; health questions and
    everyday prose follow PII annotation instead."""
    return mostly_upper(text) or bedside_note(text) or ("\n" in text.strip() and not is_prose(text))


def bedside_note(text: str) -> bool:
    """A note written at the bedside: three words of ventilation, drips, secretions or vital signs
    ("weaned to PS 10, peep 5, suctioned thick secretions"); a health question names one or two."""
    return sum(1 for _ in islice(_BEDSIDE.finditer(text), 3)) == 3


@lru_cache(maxsize=256)
def mixed_case(text: str) -> bool:
    """Mixed-case writing, where a capital marks a name; not UPPER CASE, nor notes typed in lower case."""
    return not mostly_upper(text) and _capitalised_share(text) > 0.12


# Shorthand that marks clinical writing, where the small model's entities need the filters above.
_SHORTHAND = re.compile(
    r"(?<![\w/])(?:pt|pts|hx|h/o|s/p|c/o|w/|y/o|yo|dx|tx|rx|sx|fx|prn|bid|tid|qid|qd|q\d+h?|mg|mcg|cc|ml|"
    r"meq|iv|po|bp|hr|rr|sob|cp|abd|cxr|ekg|ecg|ngt|ogt|abg|vss|afeb|neuro|resp|gi|gu|cv|icu|md|rn|"
    r"mrn|dob|npo|ett|picc|hct|wbc|inr|cabg|chf|copd|cad|mi|afib|dm|htn|ckd|esrd|cva|tia|patients?|"
    r"diagnos[a-z]+|history|treat[a-z]*|therap[a-z]+|guidelines?|prescri[a-z]+|[\w-]*year-old|"
    r"diseases?|syndromes?|symptoms?|medications?|doses?|dosing|surgery|surgical|infections?|chronic|"
    r"acute|clinical|post-op|pre-op|admitted|discharged|hospital|clinic|physician|nurse|"
    r"management|managing|efficacy|contraindications?|side\s+effects)(?![\w/])",
    re.IGNORECASE,
)


@lru_cache(maxsize=256)
def is_prose(text: str) -> bool:
    """Ordinary prose, where the model is at home: clinical words in under one word in forty.
    Cached: several recognizers ask it of the same document in a row."""
    words = max(1, text.count(" ") + 1)
    return len(_shorthand(text)) * 40 < words


@lru_cache(maxsize=256)
def _shorthand(text: str) -> tuple[str, ...]:
    """The clinical shorthand words of a text, read once for `is_prose` and `everyday`."""
    return tuple(_SHORTHAND.findall(text))


# Words of bedside notes and symptoms that the prose test above does not need to know.
_BEDSIDE = re.compile(
    r"\b(?:vent(?:ed|ilated|ilator)?|peep|fio2|cpap|psv|sats?|intubated|extubated|trach|sedated|suction(?:ed)?|"
    r"sxn|sputum|secretions|rhonchi|gtt|oob|tidal|breath|wean(?:ed|ing)?|pressors?|propofol|morphine|"
    r"bedside|stable|tolerat(?:ed|ing)|diet|chart|notes?|chest|pain|oxygen|saturation|dyspn(?:o)?ea|nebuli[sz]ed|"
    r"fever|cough|nausea|vomiting|tablets?|mg|blood|pressure|pulse|rash|wound|hemodynamic(?:s|ally)?|transfus(?:ed|ion)|"
    r"prbc'?s?|infus(?:ed|ing|ion)|urine|stool|foley|insulin|heparin|sedation|incision|dressing|dosage|pills?|"
    r"medicines?|drugs?|vitamins?|supplements?|prescription|pharmacy|doctor|"
    # Drug names by their stems ("amoxicillin", "omeprazole", "lisinopril", "ibuprofen").
    r"\w{3,}(?:cillin|mycin|cycline|floxacin|azole|pril|sartan|olol|statin|dipine|tidine|triptan|afil|mab|tinib|"
    r"vir|azepam|zolam|codone|profen|oxetine|semide|thiazide|gliptin|glitazone|formin|parin|xaban|gatran|"
    r"lukast|olone|asone|caine))\b",
    re.IGNORECASE,
)


# "Dr. Jones", "cc 4111...", "I'm 31 y/o", "the Treaty of Rome": not only clinical.
_EVERYDAY_TOO = frozenset({"dr", "cc", "y/o", "treaty", "treaties"})


@lru_cache(maxsize=256)
def everyday(text: str) -> bool:
    """Everyday writing, not a clinical note: at most one clinical word in eighty (two capitals such
    as "MD" or "PA" name a region in an address; "Dr" and "cc" are everyday too). Cues such as
    "returned to" or "Spanish" say where a person lives in the first, nothing in the second
    ("returned to 1.1", "Spanish speaking")."""
    words = text.count(" ") + 1
    clinical = 0
    # Stop at the first clinical word over the allowance: most notes are told by their first lines.
    for word in chain((match.group() for match in scan(_BEDSIDE, text)), _shorthand(text)):
        if (len(word) == 2 and word.isupper()) or word.lower() in _EVERYDAY_TOO:
            continue
        clinical += 1
        if clinical * 80 >= words:
            return False
    return True
