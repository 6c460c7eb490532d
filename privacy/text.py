"""De-identification of free text: Presidio with clinical recognizers, batched through spaCy.

The pipeline and recognizers load once per `TextDeidentifier` (once per Beam worker); a batch goes
through spaCy's NER in one pass (`ner_decode.GreedyNer`, skipping texts where no entity could
count) and each document then costs one regex pass plus span merging. The recognizers are
Presidio recognizers in a Presidio `AnalyzerEngine`, called directly on the hot path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from medcurate.privacy.config import DeidConfig
from medcurate.privacy.ner_decode import GreedyNer
from medcurate.privacy.operators import replacement
from medcurate.privacy.recognizers import (
    FACILITY_WORDS,
    MEDIUM,
    STRONG,
    FilteredSpacyRecognizer,
    clinical_record,
)
from medcurate.privacy.rules.kinds import everyday, mixed_case
from medcurate.privacy.rules.shared import _MONTH, TITLE_WORDS, _is_eponym_use
from medcurate.privacy.vocab import (
    EPONYMS,
    NOT_NAMES,
    RELATION_WORDS,
    US_STATES,
    coined,
    common_first_names,
    is_english,
    is_name_word,
    last_names,
    town_words,
)

if TYPE_CHECKING:
    from medcurate.privacy.site import SiteDictionary

LANGUAGE = "en"
# spaCy labels we read; everything else the model emits is dropped before analysis.
NER_LABELS = ("PERSON", "GPE", "LOC", "FAC", "ORG", "NORP", "DATE")
IGNORED_LABELS = (
    "CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "TIME",
    "LANGUAGE", "LAW", "WORK_OF_ART", "EVENT", "PRODUCT",
)  # fmt: skip
# Only the NER component runs: the tagger, parser and lemmatizer cost most of the time and the
# recognizers here do not use them.
SPACY_EXCLUDE = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
# Tagger probability above which its names are looked for elsewhere in the document too.
REPEAT_SCORE = 0.9
# Same-type spans separated only by these characters are one redaction ("EDWIN WOJCIAKOWSKI").
_JOINERS = frozenset(" .,-'")


@dataclass(frozen=True)
class PhiSpan:
    start: int
    end: int
    type: str
    score: float
    # The rule or model that found it ("clinical:history_year", "tagger:crf-0001", "site:NAME");
    # merged spans name every source, joined by "+".
    source: str = ""


@dataclass(frozen=True)
class DeidResult:
    text: str
    spans: list[PhiSpan] = field(default_factory=list)
    redactions: list[dict[str, Any]] = field(default_factory=list)
    confidence: float = 1.0


def offline_tldextract() -> None:
    """Presidio's email validation calls tldextract, which fetches the suffix list; keep it offline."""
    import tldextract
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    email_recognizer.tldextract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    email_recognizer.tldextract.extract = email_recognizer.tldextract.__call__


def spacy_engine(model: str, exclude: Sequence[str] = SPACY_EXCLUDE):
    """A Presidio spaCy engine on an installed model, never downloading anything."""
    import spacy
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    engine = SpacyNlpEngine(
        models=[{"lang_code": LANGUAGE, "model_name": model}],
        ner_model_configuration=NerModelConfiguration(
            model_to_presidio_entity_mapping={label: label for label in NER_LABELS},
            labels_to_ignore=list(IGNORED_LABELS),
        ),
    )
    nlp = spacy.load(model, exclude=list(exclude))
    numpy_matmul(nlp)
    engine.nlp = {LANGUAGE: nlp}
    return engine


def numpy_matmul(nlp: Any) -> None:
    """The models' matrix products through numpy's BLAS rather than thinc's bundled BLIS, which
    is several times slower on these shapes; the entities found are the same."""
    from thinc.api import NumpyOps

    ops = NumpyOps(use_blis=False)
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if model is not None:
            for node in model.walk():
                node.ops = ops


def build_analyzer(config: DeidConfig):
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from medcurate.privacy.recognizers import ClinicalRecognizer, FilteredSpacyRecognizer

    registry = RecognizerRegistry(
        recognizers=[
            ClinicalRecognizer(
                deny_list=config.deny_list,
                redact_years=config.redact_years,
                history_years=config.history_years,
            ),
            FilteredSpacyRecognizer(),
        ],
        supported_languages=[LANGUAGE],
    )
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=spacy_engine(config.spacy_model),
        supported_languages=[LANGUAGE],
        default_score_threshold=0.0,
    )


def merge_spans(spans: list[PhiSpan], text: str) -> list[PhiSpan]:
    """Overlapping spans become one (the higher score names the type); same-type neighbours join."""
    merged: list[PhiSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged:
            last = merged[-1]
            gap = text[last.end : span.start]
            joinable = span.type == last.type and len(gap) <= 2 and set(gap) <= _JOINERS
            if span.start < last.end or joinable:
                best = last if last.score >= span.score else span
                merged[-1] = PhiSpan(
                    last.start,
                    max(last.end, span.end),
                    best.type,
                    max(last.score, span.score),
                    join_sources(last.source, span.source),
                )
                continue
        merged.append(span)
    return merged


# Never part of an identifier at its edges: list and cue punctuation, an unmatched bracket. A full
# stop stays (an initial, "St.").
_EDGE_PUNCTUATION = frozenset(" \t\r\n#-–(,;:*")
_LEADING_WORD = re.compile(r"([^\W\d_]+)\.?[\s,:]*")
_TITLE_WORDS = frozenset(TITLE_WORDS)


_PLACE_TYPES = frozenset({"LOCATION", "FACILITY", "ORGANIZATION"})
# The kind of place after its name ("Harrowgate Medical Center", "Harrowgate Hospital"): it names no
# one, and the i2b2 and PhysioNet annotations leave it outside the name. Not "rehab": a town's
# rehabilitation hospital ("<Town> Rehab") is annotated whole.
_GENERIC_HEADS = frozenset(
    {"hospital", "hosp", "medical", "center", "centre", "ctr", "clinic", "clinics", "nursing", "home"}
    | {"facility", "infirmary", "hospice", "health", "system", "care", "nh", "snf"}
)
_LAST_WORD = re.compile(r"[\s,.]*([^\W\d_]+)[\s,.]*$")


def _without_generic_head(text: str, start: int, end: int) -> int:
    while (word := _LAST_WORD.search(text, start, end)) and word.group(1).lower() in _GENERIC_HEADS:
        if not any(char.isalpha() for char in text[start : word.start()]):
            break
        end = word.start()
    return end


def tidy_bounds(text: str, spans: list[PhiSpan]) -> list[PhiSpan]:
    """Spans without what is never the identifier: a relation word before a name ("Daughter"),
    and in a clinical record edge punctuation and the title before a name, which the i2b2
    guidelines leave outside it (PII annotation of prose often keeps "Mr." with the name)."""
    clinical = clinical_record(text)
    leading = RELATION_WORDS | _TITLE_WORDS if clinical else RELATION_WORDS
    edges = _EDGE_PUNCTUATION if clinical else frozenset()
    out: list[PhiSpan] = []
    for span in spans:
        start, end = span.start, span.end
        while span.type == "PERSON" and (word := _LEADING_WORD.match(text, start, end)):
            if word.group(1).lower() not in leading or word.end() >= end:
                break
            start = word.end()
        if clinical and span.type in _PLACE_TYPES:
            end = _without_generic_head(text, start, end)
        while start < end and text[start] in edges:
            if text[start] == "(" and ")" in text[start:end]:
                break  # "(301) 555-0100" keeps its bracket pair
            start += 1
        while end > start and text[end - 1] in edges:
            end -= 1
        if any(char.isalnum() for char in text[start:end]):
            out.append(
                span if (start, end) == (span.start, span.end) else replace(span, start=start, end=end)
            )
    return out


def join_sources(*sources: str) -> str:
    return "+".join(sorted({part for source in sources for part in source.split("+") if part}))


_STATE_NAMES = frozenset(name.lower() for name in US_STATES.values()) | {"fla", "calif", "mass"}
_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-])+")


def repeated_names(text: str, spans: list[PhiSpan]) -> list[PhiSpan]:
    """A name found once is a name everywhere in the document ("Mr. Halloran" ... "Halloran
    will go", "transferred to WMC" ... "seen at WMC"), whatever the context of its other mentions."""
    out: list[PhiSpan] = []
    capitals_mark_names = mixed_case(text)
    for entity, shortest in (("PERSON", 3), ("LOCATION", 2), ("FACILITY", 2)):
        words = {
            word.group().lower()
            for span in spans
            if span.type == entity
            for word in _TOKEN.finditer(text, span.start, span.end)
            if len(word.group()) >= shortest
        }
        words -= NOT_NAMES | EPONYMS | FACILITY_WORDS
        # A word of the language that is no name was caught beside one ("Daughter", "Laboratory"):
        # it is not a name elsewhere.
        words = {word for word in words if not is_english(word) or _name_or_town(word)}
        if words:
            out.extend(
                PhiSpan(start, end, entity, MEDIUM, "repeated_name")
                for start, end in _mentions(text, words)
                # ... but where capitals mark names, a mention in lower case is a word, not the
                # name ("june", "graft").
                if not (capitals_mark_names and text[start].islower())
            )
    return out


_NAMED = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "FACILITY"})


def _plain_words(text: str, start: int, end: int) -> bool:
    words = _WORD.findall(text, start, end)
    return bool(words) and all(
        word.islower() and is_english(word) and not _name_or_town(word) for word in words
    )


def _name_or_town(word: str) -> bool:
    return is_name_word(word) or word in town_words()


def _mentions(text: str, words: set[str]) -> list[tuple[int, int]]:
    """Where `\b(?:word|...)\b` matches case-blind. Plain string search where that is the same
    (ASCII text, no two occurrences overlapping): a pattern compiled for every document cost more
    than the search itself."""
    if text.isascii():
        lower = text.lower()
        found = []
        for word in words:
            start = lower.find(word)
            while start != -1:
                end = start + len(word)
                if _boundary(text, start) and _boundary(text, end):
                    found.append((start, end))
                start = lower.find(word, start + 1)
        found.sort()
        if all(before[1] <= after[0] for before, after in pairwise(found)):
            return found
    pattern = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, words))) + r")\b", re.IGNORECASE)
    return [match.span() for match in pattern.finditer(text)]


def _is_word_char(text: str, index: int) -> bool:
    return 0 <= index < len(text) and (text[index].isalnum() or text[index] == "_")


def _boundary(text: str, index: int) -> bool:
    """`\b` at `index` (ASCII text)."""
    return _is_word_char(text, index - 1) != _is_word_char(text, index)


def _word_like(text: str, start: int, end: int) -> bool:
    """A span the tagger alone must be sure of: nothing in it but numbers, punctuation, words in
    lower case in a note that capitalises its names, and words of the language that are not
    common first names. A capitalised word in mixed-case writing may still be a surname or a town
    ("Graft"); in a note typed in capitals it is the word ("SEVERAL"). Identifiers in number shapes
    are the rules' to find (dates, phones and record numbers have set forms), except a year
    alone in a clinical record, where the year of a past event is redacted (an apostrophe beside
    the span counts: the tagger may leave it out); Safe Harbor keeps years elsewhere."""
    if _YEAR_SHAPED.search(text[max(0, start - 1) : end + 1]) and clinical_record(text):
        return False
    capitals_mark_names = mixed_case(text)
    for word in _WORD.findall(text, start, end):
        low = word.lower()
        if capitals_mark_names and word == low:
            continue
        if not is_english(word) or low in common_first_names():
            return False
        if capitals_mark_names and (low in last_names() or low in town_words()):
            return False
    return True


def _unconfirmed_allowed(text: str, span: PhiSpan, tagger_threshold: float) -> bool:
    """Whether a tagger span no rule confirms may stand. Below the sure score, in clinical writing
    (notes, and questions about health) the rules read the cues of names, places and dates, and
    what they leave to a doubtful tagger span is misspelt shorthand ("vancomyicn", "AMBULATD") far
    more often than a name: there only a year alone in a clinical record (the rules' weakest date)
    and coined words keep the lower bar. Everyday writing keeps it for words that may be names. A
    number that identifies someone (phone, record, account) has digits: a span of words the model
    typed as one is a name if its words are coined, else a word. Coined words must reach the
    tagger's own threshold: its rare-word band, below it, is too weak without a rule's cue."""
    value = text[span.start : span.end]
    if span.type in ("ID", "PHONE_NUMBER") and not any(char.isdigit() for char in value):
        return _coined_words(text, span.start, span.end)
    if _BARE_FRACTION.fullmatch(value):
        return False
    if span.score >= REPEAT_SCORE:
        return True
    if everyday(text):
        return not _word_like(text, span.start, span.end)
    if clinical_record(text) and _YEAR_SHAPED.search(text[max(0, span.start - 1) : span.end + 1]):
        return True
    return (
        span.type in ("PERSON", "LOCATION")
        and span.score >= tagger_threshold
        and _coined_words(text, span.start, span.end)
    )


def _coined_words(text: str, start: int, end: int) -> bool:
    """Words of no language list, one of them coined (a name from outside the census lists).
    Known names and towns alone are the rules' to weigh with their cues."""
    words = _WORD.findall(text, start, end)
    return bool(words) and not any(is_english(word) for word in words) and any(map(coined, words))


# A month and a day with no year ("12/6", "7/10") also reads as a ventilator setting or a pain
# score; the rules decide it from the words around it.
_BARE_FRACTION = re.compile(r"\d{1,2}/\d{1,2}")
_WORD = re.compile(r"[^\W\d_]+")
# A year alone ("'88", "99'", "1994"): the rules' weakest kind of date, so the tagger's own cue.
_YEAR_SHAPED = re.compile(r"(?<!\d)(?:['’]\d{2}|\d{2}['’]|(?:19|20)\d{2})(?!\d)")


def _plausible_tag(text: str, start: int, end: int, entity: str) -> bool:
    """What a tagger span must be besides likely, by Safe Harbor and the i2b2 guidelines: a name
    right before a disease-like head noun is an eponym (`Ferriman-Gallwey score`); a number that
    identifies someone (phone, record, account) has no digit or at least four (`DAS28` is a score); a
    date is a date element, with a digit or a month's name (`last month` names no day); an age is
    PHI over 89 only."""
    value = text[start:end]
    if entity == "PERSON":
        return not _is_eponym_use(text, end)
    if entity in ("ID", "PHONE_NUMBER"):  # no digit at all: a word the model typed wrongly, kept
        return sum(c.isdigit() for c in value) not in (1, 2, 3)
    if entity == "DATE":
        return any(c.isdigit() for c in value) or bool(_MONTH_NAME.search(value))
    if entity == "AGE":
        return any(int(number) > 89 for number in re.findall(r"\d+", value)) or not any(
            c.isdigit() for c in value
        )
    return True


# A word beginning as a month's name does (the rules' month pattern, as a prefix).
_MONTH_NAME = re.compile(rf"\b{_MONTH}", re.IGNORECASE)


def _source(result: Any) -> str:
    from presidio_analyzer import RecognizerResult

    return (result.recognition_metadata or {}).get(RecognizerResult.RECOGNIZER_NAME_KEY, "")


def load_tagger(config: DeidConfig) -> Any:
    """The configured PHI tagger, or None when it is off."""
    from medcurate.privacy.tagger import DEFAULT_MODEL, PhiTagger

    if config.tagger == "off":
        return None
    # One tagger per deidentifier: a CRFsuite tagger holds the sequence it is decoding.
    tagger = PhiTagger.load(DEFAULT_MODEL if config.tagger == "default" else config.tagger)
    if config.tagger_threshold is not None:
        tagger.threshold = config.tagger_threshold
    return tagger


def tagger_artifacts(tagger: Any) -> dict[str, Any]:
    """The learned artifacts de-identification applies, for manifests: names and hashes, no content."""
    if tagger is None:
        return {}
    meta = tagger.metadata
    return {
        "deid_tagger": {
            "name": tagger.name,
            "model_sha256": meta.get("model_sha256"),
            "training_data_sha256": meta.get("training_data_sha256"),
            "threshold": tagger.threshold,
            "metrics": meta.get("metrics", {}),
        }
    }


def deid_artifacts(config: DeidConfig) -> dict[str, Any]:
    return tagger_artifacts(load_tagger(config))


def _load_site(folder: str | None) -> SiteDictionary | None:
    """The site dictionary named by `deid.site`, if any (see privacy/site.py)."""
    if not folder:
        return None
    from medcurate.privacy.site import SiteDictionary

    return SiteDictionary.load(folder)


class TextDeidentifier:
    """Finds PHI in texts and replaces it; one instance holds the loaded models."""

    def __init__(self, config: DeidConfig | None = None, site: SiteDictionary | None = None) -> None:
        self.config = config or DeidConfig()
        self.site = site if site is not None else _load_site(self.config.site)
        self.analyzer = build_analyzer(self.config)
        self.recognizers = self.analyzer.registry.get_recognizers(language=LANGUAGE, all_fields=True)
        self.entities = self.analyzer.get_supported_entities(language=LANGUAGE)
        self.allow = {word.lower() for word in self.config.allow_list}
        self.nlp = nlp = self.analyzer.nlp_engine.nlp[LANGUAGE]
        self.pipe = getattr(GreedyNer.create(nlp), "pipe", None) or (
            lambda texts, batch_size: nlp.pipe(texts, batch_size=batch_size)
        )
        self.tagger = load_tagger(self.config)

    def artifacts(self) -> dict[str, Any]:
        return tagger_artifacts(self.tagger)

    def _tagged(self, text: str) -> list[PhiSpan]:
        if self.tagger is None:
            return []
        source = f"tagger:{self.tagger.name}"
        return self._admissible(
            text,
            [
                PhiSpan(t.start, t.end, t.entity, t.score, source)
                for t in self.tagger.find(text)
                if _plausible_tag(text, t.start, t.end, t.entity)
            ],
        )

    def deidentify_batch(self, texts: Sequence[str], scopes: Sequence[str] | None = None) -> list[DeidResult]:
        """`scopes` (e.g. patient ids) make surrogates and date shifts consistent across documents."""
        texts = list(texts)
        if scopes is None:
            scopes = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        # spaCy adds every new token (record numbers, dates, misspellings) to the model's vocabulary
        # for good: a long-running worker would grow by about a kilobyte per note. What the zone
        # added is freed on leaving it; no spaCy object outlives the batch.
        with self.nlp.memory_zone():
            return [
                self._deidentify(text, nlp_artifacts, scope)
                for text, nlp_artifacts, scope in zip(texts, self._artifacts(texts), scopes, strict=True)
            ]

    def _artifacts(self, texts: list[str]) -> list[Any]:
        """Named entities only, batch by batch (`GreedyNer`, or `nlp.pipe` for another model);
        texts where no entity could count (UPPER CASE notes, text without capitals) skip the model.
        Presidio's own conversion (tokens, lemmas, keywords for context words) is skipped: no
        recognizer here reads it."""
        from presidio_analyzer.nlp_engine import NlpArtifacts

        wanted = [i for i, text in enumerate(texts) if FilteredSpacyRecognizer.needs_model(text)]
        entities: list[list[Any]] = [[] for _ in texts]
        docs = self.pipe([texts[i] for i in wanted], self.config.batch_size)
        for index, doc in zip(wanted, docs, strict=True):
            entities[index] = [ent for ent in doc.ents if ent.label_ in NER_LABELS]
        return [
            NlpArtifacts(ents, tokens=None, tokens_indices=[], lemmas=[], nlp_engine=None, language=LANGUAGE)
            for ents in entities
        ]

    def analyze(self, text: str, nlp_artifacts: Any) -> list[Any]:
        """What `AnalyzerEngine.analyze` returns for these recognizers, without its per-call work
        that does nothing here (registry lookup, context enhancement of recognizers that have no
        context words, a deep copy of every result): at a few spans per short text, that work cost
        as much as the recognizers themselves."""
        from presidio_analyzer import EntityRecognizer, RecognizerResult

        floor = self.config.review_floor
        results = []
        for recognizer in self.recognizers:
            for result in recognizer.analyze(text, self.entities, nlp_artifacts):
                if result.score >= floor:
                    if not result.recognition_metadata:
                        result.recognition_metadata = {RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name}
                    results.append(result)
        return EntityRecognizer.remove_duplicates(results)

    def _candidates(self, text: str, nlp_artifacts: Any) -> list[PhiSpan]:
        results = self.analyze(text, nlp_artifacts)
        found = [PhiSpan(r.start, r.end, r.entity_type, float(r.score), _source(r)) for r in results]
        if self.site is not None:
            found.extend(self.site.find(text))
        return self._admissible(text, found)

    def _admissible(self, text: str, spans: list[PhiSpan]) -> list[PhiSpan]:
        """What the allow list, the eponyms and Safe Harbor's states leave of rule and tagger spans."""
        # Safe Harbor lets a state stay; clinical notes follow it ("sister in California"), while
        # PII annotation of questions and prose counts every place.
        states = _STATE_NAMES if clinical_record(text) else frozenset()
        capitals_mark_names = mixed_case(text)
        return [
            span
            for span in spans
            if (value := text[span.start : span.end].strip().lower()) not in self.allow
            # An eponym alone ("Parkinson") survives unless its context made it strong ("Dr. Murphy").
            and not (value in EPONYMS and span.score < STRONG)
            and not (span.type == "LOCATION" and value in states)
            # Where capitals mark names, words of the language in lower case that are no name nor
            # town are the words ("paged the laboratory", "transfer note").
            and not (capitals_mark_names and span.type in _NAMED and _plain_words(text, span.start, span.end))
        ]

    def _deidentify(self, text: str, nlp_artifacts: Any, scope: str) -> DeidResult:
        candidates = self._candidates(text, nlp_artifacts)
        threshold = self.config.score_threshold
        # The tagger decodes for recall with its own threshold: its spans are kept as found.
        ruled = [c for c in candidates if c.score >= threshold]
        tagged = [
            t
            for t in self._tagged(text)
            if any(r.start < t.end and t.start < r.end for r in ruled)
            or _unconfirmed_allowed(text, t, self.tagger.threshold)
        ]
        # A name the tagger is sure of is a name everywhere too; a doubtful one only where found.
        sure = [t for t in tagged if t.score >= REPEAT_SCORE]
        kept = tidy_bounds(text, merge_spans(ruled + tagged + repeated_names(text, ruled + sure), text))
        doubtful = [
            c.score
            for c in candidates
            if c.score < threshold and not any(k.start <= c.start and c.end <= k.end for k in kept)
        ]
        confidence = round(1.0 - max(doubtful), 4) if doubtful else 1.0
        pieces: list[str] = []
        redactions: list[dict[str, Any]] = []
        cursor = 0
        out_length = 0
        for span in kept:
            pieces.append(text[cursor : span.start])
            out_length += span.start - cursor
            value = replacement(self.config, span.type, text[span.start : span.end], scope)
            redactions.append(
                {"start": out_length, "end": out_length + len(value), "type": span.type, "score": span.score}
            )
            pieces.append(value)
            out_length += len(value)
            cursor = span.end
        pieces.append(text[cursor:])
        return DeidResult("".join(pieces), kept, redactions, confidence)
