"""Presidio recognizers for PHI as it appears in clinical text, where Presidio's defaults fall short.

`ClinicalRecognizer` runs every named rule of `medcurate.privacy.rules` in a single pass per
document (cheap compared with many separate recognizers), and `FilteredSpacyRecognizer` keeps
spaCy's NER but distrusts it where it is known to fail: UPPER CASE notes, medical acronyms and
eponyms. Every result names what found it: "clinical:<rule>" or "spacy:<label>".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from medcurate.privacy.rules import AFTER_DENY, BEFORE_DENY, Rule, run
from medcurate.privacy.rules.everyday import _coordinated
from medcurate.privacy.rules.kinds import (
    cased_runs,
    clinical_record,
    everyday,
    is_prose,
    letter_runs,
    may_hold,
    mixed_case,
    mostly_upper,
)
from medcurate.privacy.rules.shared import (
    _CALENDAR,
    _TITLE_AT,
    _WORD,
    DOUBT,
    FACILITY_WORDS,
    MEDIUM,
    STRONG,
    WEAK,
    Span,
    _is_eponym_use,
)
from medcurate.privacy.vocab import EPONYM_HEADS, EPONYMS, MEDICAL_TERMS, NOT_NAMES, is_name_word

SOURCE = "clinical"  # spans name their rule as "clinical:<rule>"; spaCy's as "spacy:<label>"

__all__ = [
    "DOUBT",
    "FACILITY_WORDS",
    "MEDIUM",
    "STRONG",
    "WEAK",
    "ClinicalRecognizer",
    "FilteredSpacyRecognizer",
    "cased_runs",
    "clinical_record",
    "everyday",
    "is_prose",
    "letter_runs",
    "may_hold",
    "mixed_case",
    "mostly_upper",
]


class ClinicalRecognizer(EntityRecognizer):
    """Every clinical rule (`medcurate.privacy.rules.RULES`), in one pass over the text."""

    ENTITIES = (
        "DATE",
        "AGE",
        "EMAIL_ADDRESS",
        "URL",
        "IP_ADDRESS",
        "PHONE_NUMBER",
        "US_SSN",
        "MEDICAL_RECORD_NUMBER",
        "ACCOUNT_NUMBER",
        "HEALTH_PLAN_NUMBER",
        "LICENSE_NUMBER",
        "VEHICLE_ID",
        "ID",
        "CREDIT_CARD",
        "IBAN_CODE",
        "STREET_ADDRESS",
        "LOCATION",
        "ZIP_CODE",
        "FACILITY",
        "PERSON",
        "NRP",
        "TITLE",
        "DENY_LIST",
    )

    def __init__(
        self, deny_list: list[str] | None = None, redact_years: bool = False, history_years: bool = True
    ) -> None:
        super().__init__(supported_entities=list(self.ENTITIES), name="ClinicalRecognizer")
        self.redact_years = redact_years
        self.history_years = history_years
        deny = (
            [
                Rule(
                    "deny_list",
                    "DENY_LIST",
                    1.0,
                    re.compile(r"\b(?:" + "|".join(re.escape(w) for w in deny_list) + r")\b", re.IGNORECASE),
                    checked=False,
                )
            ]
            if deny_list
            else []
        )
        self.rules = [rule for rule in BEFORE_DENY if self._enabled(rule)] + deny + AFTER_DENY

    def _enabled(self, rule: Rule) -> bool:
        return not rule.option or bool(getattr(self, rule.option))

    @property
    def patterns(self) -> list[tuple[str, str, float, re.Pattern[str], int]]:
        """(rule, entity, score, pattern, group) of every pattern rule."""
        return [
            (rule.name, rule.entity, rule.score, rule.pattern, rule.group)
            for rule in self.rules
            if isinstance(rule.pattern, re.Pattern)
        ]

    def load(self) -> None:
        """Nothing to load: the rules are compiled when their modules are imported."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        # Every result names its rules ("clinical:history_year"); rules that found the same span
        # are joined with "+", as merged spans are.
        found: dict[tuple[str, int, int, float], list[str]] = {}
        for span in self.spans(text):
            if span.type in entities:
                rules = found.setdefault((span.type, span.start, span.end, span.score), [])
                if span.rule not in rules:
                    rules.append(span.rule)
        key = RecognizerResult.RECOGNIZER_NAME_KEY
        return [
            RecognizerResult(
                *found_span,
                recognition_metadata={key: "+".join(f"{SOURCE}:{rule}" for rule in sorted(rules))},
            )
            for found_span, rules in found.items()
        ]

    def spans(self, text: str) -> Iterator[Span]:
        for rule in self.rules:
            yield from run(rule, text)


class FilteredSpacyRecognizer(EntityRecognizer):
    """spaCy's named entities, trusted only where the small English model is reliable.

    On mostly UPPER CASE text the model tags almost every word run as an organisation, so there its
    entities only lower the sample's confidence. Acronyms and eponym uses are never people.
    """

    LABELS: ClassVar[dict[str, str]] = {
        "PERSON": "PERSON",
        "GPE": "LOCATION",
        "LOC": "LOCATION",
        "FAC": "FACILITY",
        "ORG": "ORGANIZATION",
        "NORP": "NRP",
        "DATE": "DATE",
    }

    def __init__(self) -> None:
        super().__init__(supported_entities=sorted(set(self.LABELS.values())), name="FilteredSpacy")

    def load(self) -> None:
        """The spaCy model is owned by the NLP engine."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None:
            return []
        upper = mostly_upper(text)
        prose = not upper and is_prose(text)
        results = []
        for ent in nlp_artifacts.entities:
            entity = self.LABELS.get(ent.label_)
            if entity is None or entity not in entities:
                continue
            score = self._score(text, ent, entity, upper, prose)
            start = ent.start_char
            if entity == "PERSON" and not prose and (title := _TITLE_AT.match(text, start, ent.end_char)):
                start = title.end()  # "Dr. Murphy" in a note: the name without its title
            if score > 0 and start < ent.end_char:
                source = {RecognizerResult.RECOGNIZER_NAME_KEY: f"spacy:{ent.label_}"}
                results.append(
                    RecognizerResult(entity, start, ent.end_char, score, recognition_metadata=source)
                )
                if prose and entity in ("PERSON", "ORGANIZATION"):
                    results.extend(
                        RecognizerResult(entity, start, end, score, recognition_metadata=dict(source))
                        for start, end in _coordinated(text, ent.start_char, ent.end_char)
                    )
        return results

    @staticmethod
    def needs_model(text: str) -> bool:
        """Whether any entity the model could find in `text` would score above zero, so that texts
        where none could skip the model. `_score` gives an entity a score only for a capitalised
        word, a name particle that is not common vocabulary ("de la"), or a calendar word in a
        prose date; entities are substrings of the text, so a text with none of them gains
        nothing from the model (a test checks this against the model itself)."""
        if mostly_upper(text):
            return False
        if any(c.isupper() for c in text) or _NAME_PARTICLE.search(text):
            return True
        return bool(is_prose(text) and _CALENDAR.search(text))

    @staticmethod
    def _score(text: str, ent: Any, entity: str, upper: bool, prose: bool) -> float:
        """Clinical shorthand ("abd soft", "Fentanyl", "Cardiac") fools the model; real names are
        capitalised word by word, and a person's name has a census name in it. In ordinary prose
        (few clinical abbreviations) the model is trusted, as it was trained on such text."""
        words = _WORD.findall(ent.text)
        if upper or not words:
            return 0.0  # on UPPER CASE text the model's entities are noise
        lows = [w.lower().removesuffix("'s").removesuffix("’s") for w in words]
        if all(w in NOT_NAMES or w in EPONYMS for w in lows) or _is_eponym_use(text, ent.end_char):
            return 0.0
        drug = any(w in MEDICAL_TERMS and w not in FACILITY_WORDS for w in lows)
        if not prose and (drug or all(len(w) == 1 for w in lows)):
            return 0.0  # "Albuterol and Atrovent MDI's", "G.I.", "C.I." in a note
        if lows[-1] in EPONYM_HEADS or (entity == "NRP" and not prose):
            return 0.0  # "Framingham Risk Score"; nationality is no identifier in clinical text
        if entity == "DATE":
            # Durations and ages ("two weeks", "55-year-old") are not dates.
            return MEDIUM if prose and _CALENDAR.search(ent.text) and not _DURATION.search(ent.text) else 0.0
        acronym = len(words) == 1 and words[0].isupper()
        # A lone capitalised word opening a sentence ("Dyspnea with...", "Oxygen saturation...") is
        # capitalised by grammar, not because it names someone: it needs a census name to count.
        opener = (
            entity != "PERSON"
            and len(words) == 1
            and _opens_sentence(text, ent.start_char)
            and not is_name_word(lows[0])
        )
        if prose and not acronym and not opener and any(w[0].isupper() for w in words):
            return MEDIUM
        if "\n" in ent.text.strip() or any(c in ent.text for c in "/&+"):
            return 0.0
        titled = all(
            (w[0].isupper() and not (w.isupper() and len(w) > 1)) or w.lower() in _NAME_PARTICLES
            for w in words
        )
        if not titled:
            return 0.0
        named = any(is_name_word(w) for w in lows if w not in NOT_NAMES)
        if entity == "PERSON":
            return STRONG if named else DOUBT
        if entity == "ORGANIZATION":
            return MEDIUM if named or any(w in FACILITY_WORDS for w in lows) else DOUBT
        return MEDIUM if named or len(words) >= 2 else DOUBT


def _opens_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?:;\n"


_DURATION = re.compile(
    r"\b(?:years?|yrs?|months?|weeks?|days?|hours?|decades?)[- ]?(?:old|ago|long|later|earlier)?\b|\bage",
    re.IGNORECASE,
)


_NAME_PARTICLES = frozenset({"of", "and", "the", "de", "la", "van", "von", "del", "der", "da", "di", "st"})


# The particles that can make a lower-case entity count (the others are common words, never names).
_NAME_PARTICLE = re.compile(
    r"(?<![^\W\d_])(?:" + "|".join(sorted(_NAME_PARTICLES - NOT_NAMES - EPONYMS)) + r")(?![^\W\d_])",
    re.IGNORECASE,
)
