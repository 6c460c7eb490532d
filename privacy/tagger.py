"""A learned PHI tagger: a linear-chain CRF over word tokens (CRFsuite), beside the rules.

Why a CRF: it trains on two CPU cores in minutes, so a model can be fitted per cross-validation
fold; its features are readable (context words, token shape, whether a token is a census name,
a town or a word of the language); and tagging costs a few microseconds a token, well inside the
speed budget of `deid text`. It decodes for recall: a token is PHI when the model gives the
"not PHI" label less than `1 - threshold` of the probability mass, not only when PHI wins.

The artifact is a folder: `model.crfsuite`, `metadata.json` (version, training data hash,
configuration, metrics). The default model ships in the package (privacy/models/).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from medcurate.privacy.augment import CLASSES, GoldDoc, augmented, generated
from medcurate.privacy.rules.kinds import clinical_record, mixed_case
from medcurate.privacy.vocab import (
    CLINICAL_WORDS,
    EPONYMS,
    MEDICAL_TERMS,
    RELATION_WORDS,
    US_STATES,
    _words,
    first_names,
    is_english,
    last_names,
    town_words,
)

FEATURE_VERSION = 3
DEFAULT_MODEL = Path(__file__).parent / "models" / "phi-tagger"
OUTSIDE = "O"
# Tagger classes as the entity types the operators know.
ENTITY_OF_CLASS = {
    "NAME": "PERSON",
    "LOCATION": "LOCATION",
    "DATE": "DATE",
    "CONTACT": "PHONE_NUMBER",
    "ID": "ID",
    "AGE": "AGE",
    "OTHER": "ID",
}
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")
_JOIN = frozenset(" .,-'/")


class TaggerError(ValueError):
    """A tagger artifact that is missing, unreadable or of another feature version."""


@dataclass(frozen=True)
class TaggerConfig:
    """What a model is trained with; stored in its metadata."""

    copies: int = 2  # surrogate-swapped copies of each gold document with PHI
    generated: int = 1500  # template notes
    negatives: float = 1.0  # share of gold documents without PHI kept for training
    c1: float = 0.05
    c2: float = 0.01
    max_iterations: int = 100
    threshold: float = 0.5  # a token is PHI when P(PHI) >= threshold
    # ... and a word of no language and no clinical vocabulary already at this probability: such a
    # word is a name, a place or a misspelling, and redacting a misspelling costs little.
    rare_threshold: float = 0.2
    seed: int = 13


def tokens(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _TOKEN.finditer(text)]


@cache
def _gazetteers() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    towns = town_words()
    states = frozenset(code.lower() for code in US_STATES) | frozenset(
        word.lower() for name in US_STATES.values() for word in name.split()
    )
    return first_names(), last_names(), towns, states


_MONTHS = _words(
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july august "
    "september october november december"
)
_TITLES = _words("dr dr. doctor mr mrs ms miss prof md rn np pa do")
_RELATIONS = RELATION_WORDS
_CLINICAL = CLINICAL_WORDS | MEDICAL_TERMS | EPONYMS


@cache
def _word_lists() -> tuple[tuple[str, frozenset[str]], ...]:
    firsts, lasts, towns, states = _gazetteers()
    return (
        ("first", firsts),
        ("last", lasts),
        ("town", towns),
        ("state", states),
        ("month", _MONTHS),
        ("title", _TITLES),
        ("rel", _RELATIONS),
        ("clin", _CLINICAL),
    )


def _shape(word: str) -> str:
    out = []
    for char in word[:8]:
        kind = "X" if char.isupper() else "x" if char.islower() else "d" if char.isdigit() else char
        if not out or out[-1] != kind:
            out.append(kind)
    return "".join(out)


def _identity(low: str, english: bool) -> str:
    """The token itself only where it is vocabulary: a word of the language or of the clinic, a
    short token, punctuation, a number of up to four digits. Any other token (a name, a code, an
    ID) is never stored in the model, so that a model trained on real notes holds none of their
    identifiers, and has to learn PHI from context and shape rather than memorise it."""
    if english or low in _CLINICAL or len(low) <= 2 or not low.isalnum() or (low.isdigit() and len(low) <= 4):
        return low
    return "~digits" if low.isdigit() else "~rare"


def _number_range(value: int, width: int) -> str:
    """Whether a number could be a month, a day, a year: "141/62" is a blood pressure, not a date."""
    if width == 4 and 1900 <= value <= 2099:
        return "n=year"
    if value == 0 or width > 4:
        return "n=other"
    return "n=month" if value <= 12 else "n=day" if value <= 31 else "n=small" if value < 100 else "n=large"


# The caches hold the words a corpus repeats; rare ones (record numbers, dates, typos) come and go.
# Larger caches would grow every worker by kilobytes per note until full (hundreds of MB each).
@lru_cache(maxsize=1 << 15)
def _word_features(word: str, upper_doc: bool) -> tuple[str, ...]:
    """Features of a token on its own; its neighbours see the `ctx` subset."""
    low = word.lower()
    alpha = word.isalpha()
    english = alpha and is_english(low)
    case = "U" if upper_doc else ("T" if word[:1].isupper() else "L")
    features = [
        f"w={_identity(low, english)}",
        f"s={_shape(word)}",
        f"case={case}{'u' if word.isupper() else ''}",
        f"len={min(len(word), 10)}",
        f"p3={low[:3]}",
        f"x3={low[-3:]}",
    ]
    flags = []
    if alpha:
        flags.append("eng" if english else "noeng")
        flags.extend(flag for flag, words in _word_lists() if low in words)
    elif word.isdigit():
        flags.append(f"num{min(len(word), 6)}")
        flags.append(_number_range(int(word), len(word)))
    features.extend(f"f={flag}" for flag in flags)
    features.append("g=" + "|".join(flags[:3]))
    return tuple(features)


@lru_cache(maxsize=1 << 16)
def _context_features(word: str, upper_doc: bool, offset: int) -> tuple[str, ...]:
    """What a token tells the token `offset` places away from it (word, shape, flags)."""
    return tuple(f"{offset}{f}" for f in _word_features(word, upper_doc) if f[0] in "wsfg")


_EDGES = {offset: (f"{offset}edge",) for offset in (-2, -1, 1, 2)}
_BOL = ("bol",)


def _upper_case(text: str) -> bool:
    """A note typed in capitals, where case says nothing about names."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) > 0.7 * len(letters)


def features(text: str, spans: Sequence[tuple[int, int]]) -> list[list[str]]:
    upper_doc = _upper_case(text)
    words = [text[start:end] for start, end in spans]
    own = [_word_features(word, upper_doc) for word in words]
    identity = [row[0][2:] for row in own]
    # Clinical records and everyday writing mark PHI by different conventions (a title or a
    # "Hospital" head word is outside the span in one, inside in the other).
    kind = "kR|" if clinical_record(text) else "kP|"
    count = len(words)
    around = {
        offset: [
            _context_features(words[i + offset], upper_doc, offset)
            for i in range(max(0, -offset), count - max(0, offset))
        ]
        for offset in (-2, -1, 1, 2)
    }
    out: list[list[str]] = []
    for i in range(count):
        row = [*own[i], kind + identity[i]]
        if i == 0 or "\n" in text[spans[i - 1][1] : spans[i][0]]:
            row += _BOL
        for offset, rows in around.items():
            j = i + offset
            row += rows[i - max(0, -offset)] if 0 <= j < count else _EDGES[offset]
        if i > 0:
            row.append(f"bi={identity[i - 1]}|{identity[i]}")
        if i + 1 < count:
            row.append(f"bi+={identity[i]}|{identity[i + 1]}")
        out.append(row)
    return out


def token_labels(doc: GoldDoc, spans: Sequence[tuple[int, int]]) -> list[str]:
    """A token takes the class of the gold span that covers any of its characters."""
    labels = [OUTSIDE] * len(spans)
    gold = sorted(doc.spans)
    g = 0
    for i, (start, end) in enumerate(spans):
        while g < len(gold) and gold[g][1] <= start:
            g += 1
        k = g
        while k < len(gold) and gold[k][0] < end:
            if gold[k][1] > start:
                labels[i] = gold[k][2]
                break
            k += 1
    return labels


def data_hash(docs: Iterable[GoldDoc]) -> str:
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(json.dumps([doc.text, doc.spans], ensure_ascii=False).encode())
    return digest.hexdigest()


@dataclass
class TaggedSpan:
    start: int
    end: int
    entity: str
    score: float


@dataclass
class PhiTagger:
    """A trained model and what it was trained on."""

    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import pycrfsuite

        self._tagger = pycrfsuite.Tagger()
        self._tagger.open(str(self.path / "model.crfsuite"))
        self.labels = [label for label in self._tagger.labels() if label != OUTSIDE]
        config = self.metadata.get("config", {})
        self.threshold = float(config.get("threshold", TaggerConfig.threshold))
        self.rare_threshold = float(config.get("rare_threshold", TaggerConfig.rare_threshold))

    @property
    def name(self) -> str:
        return f"{self.metadata.get('name', 'phi-tagger')}-{self.metadata.get('version', '?')}"

    @classmethod
    def load(cls, path: str | Path) -> PhiTagger:
        folder = Path(path)
        try:
            metadata = json.loads((folder / "metadata.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise TaggerError(f"{folder}: not a PHI tagger folder ({type(error).__name__})") from None
        if metadata.get("feature_version") != FEATURE_VERSION:
            raise TaggerError(
                f"{folder}: features v{metadata.get('feature_version')}, this release reads "
                f"v{FEATURE_VERSION}: retrain with `medcurate deid train`"
            )
        if not (folder / "model.crfsuite").is_file():
            raise TaggerError(f"{folder}: model.crfsuite is missing")
        return cls(folder, metadata)

    def find(self, text: str) -> list[TaggedSpan]:
        spans = tokens(text)
        if not spans:
            return []
        tagger = self._tagger
        rows = features(text, spans)
        tagger.set(rows)
        best = tagger.tag()
        found: list[TaggedSpan] = []
        rare = min(self.threshold, self.rare_threshold)
        capitals_mark_names = mixed_case(text)
        for i, (start, end) in enumerate(spans):
            outside = tagger.marginal(OUTSIDE, i)
            if 1.0 - outside < self.threshold and not (
                1.0 - outside >= rare
                and rows[i][0] == "w=~rare"
                and text[start:end].isalpha()
                and not (capitals_mark_names and text[start].islower())
            ):
                continue
            label = (
                best[i] if best[i] != OUTSIDE else max(self.labels, key=lambda lab: tagger.marginal(lab, i))
            )
            entity = ENTITY_OF_CLASS.get(label, "ID")
            score = round(1.0 - outside, 4)
            gap = text[found[-1].end : start] if found else ""
            if found and found[-1].entity == entity and len(gap) <= 2 and set(gap) <= _JOIN:
                found[-1].end = end
                found[-1].score = max(found[-1].score, score)
                continue
            found.append(TaggedSpan(start, end, entity, score))
        return found


def train(
    docs: Sequence[GoldDoc],
    output: str | Path,
    config: TaggerConfig | None = None,
    name: str = "phi-tagger",
    version: str = "0001",
    sources: Sequence[str] = (),
    log: Any = None,
) -> PhiTagger:
    """Fits a model on gold documents (+ their surrogate copies + template notes) and writes the
    artifact. Deterministic for the same documents and config."""
    import pycrfsuite

    config = config or TaggerConfig()
    started = time.perf_counter()
    rng = random.Random(config.seed)
    kept = [doc for doc in docs if doc.spans or rng.random() < config.negatives]
    training = list(augmented(kept, config.copies, config.seed))
    training.extend(generated(config.generated, random.Random(config.seed + 1)))
    trainer = pycrfsuite.Trainer(verbose=False)
    trainer.set_params(
        {
            "c1": config.c1,
            "c2": config.c2,
            "max_iterations": config.max_iterations,
            "feature.possible_transitions": True,
        }
    )
    token_count = 0
    for doc in training:
        spans = tokens(doc.text)
        if spans:
            trainer.append(features(doc.text, spans), token_labels(doc, spans))
            token_count += len(spans)
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        model = Path(scratch) / "model.crfsuite"
        trainer.train(str(model))
        model.replace(folder / "model.crfsuite")
    metadata = {
        "name": name,
        "version": version,
        "kind": "crfsuite linear-chain CRF",
        "feature_version": FEATURE_VERSION,
        "classes": list(CLASSES),
        "config": asdict(config),
        "training_data_sha256": data_hash(docs),
        "training_documents": len(docs),
        "training_sources": list(sources),
        "training_tokens": token_count,
        "model_sha256": hashlib.sha256((folder / "model.crfsuite").read_bytes()).hexdigest(),
        "seconds": round(time.perf_counter() - started, 1),
        "metrics": {},
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    if log:
        log(f"trained on {len(training)} documents, {token_count} tokens, in {metadata['seconds']} s")
    return PhiTagger.load(folder)


def char_scores(docs: Sequence[GoldDoc], predicted: Sequence[Sequence[tuple[int, int]]]) -> dict[str, float]:
    """Character recall and precision of predicted spans against gold."""
    gold_chars = caught = returned = 0
    for doc, spans in zip(docs, predicted, strict=True):
        gold = bytearray(len(doc.text))
        for start, end, _ in doc.spans:
            gold[start:end] = b"\x01" * (end - start)
        covered = bytearray(len(doc.text))
        for start, end in spans:
            covered[start:end] = b"\x01" * (end - start)
        gold_chars += sum(gold)
        returned += sum(covered)
        caught += sum(g & c for g, c in zip(gold, covered, strict=True))
    return {
        "char_recall": round(caught / max(gold_chars, 1), 4),
        "char_precision": round(caught / max(returned, 1), 4),
    }


def record_metrics(tagger: PhiTagger, metrics: dict[str, Any]) -> None:
    tagger.metadata["metrics"] = metrics
    (tagger.path / "metadata.json").write_text(json.dumps(tagger.metadata, indent=2) + "\n")
