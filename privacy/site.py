"""Site dictionaries: the staff, ward, clinic and town names of one deployment, learned as a deny list.

Rules and models generalise; a hospital's own vocabulary does not. A site dictionary is learned from
the site's annotated notes (gold spans) and from the "missed PHI" flags its physicians set in review,
and is applied beside the rules: every learned string found in a new note is a candidate span.

Matching policy (case-blind, whole words; word tokens joined only by spaces or ". , - '"):
- A learned phrase or word that is not an English word ("Zevallos", "Tinderwick Clinic") matches
  wherever it occurs.
- An entry that is also ordinary language is *guarded*: an English word ("Bell", "Mercy"), a word of
  under three letters, a phrase of English words none of which is a census name ("Good Samaritan"),
  or a word the site's own notes also use outside PHI. A guarded entry matches
  only where one of its learned neighbours (the nearest non-stop word before or after it, lower
  case) is next to it again, or where capitalisation tells (a capitalised word inside a sentence of
  mixed-case text). Lower case in mixed-case text never matches a guarded entry.
- Never learned: numbers, dates, ages, phones and identifiers (the rules handle them), stop words,
  clinical vocabulary, eponyms and facility words ("hospital", "clinic") on their own.

The dictionary holds PHI strings of the site by design: store it like the notes it came from, and
keep it out of shards, logs and reports (a run manifest names it by name, version and hash only).
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from medcurate.privacy.recognizers import FACILITY_WORDS, MEDIUM, STRONG
from medcurate.privacy.text import PhiSpan
from medcurate.privacy.vocab import EPONYMS, NOT_NAMES, STOP_WORDS, is_english, is_name_word

FORMAT = "medcurate-site-dictionary"
FORMAT_VERSION = 1
ENTRIES_FILE = "entries.jsonl"
METADATA_FILE = "metadata.json"
SOURCE_PREFIX = "site:"
# Learned neighbours kept per entry (the most frequent): enough for a staff name's usual cues.
MAX_CONTEXT = 12
# How far (in word tokens) the nearest non-stop neighbour is looked for.
CONTEXT_REACH = 3

# Words with inner apostrophes or hyphens ("O'Neill", "Smith-Jones") are one token.
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
# Characters that may separate the words of one phrase.
_JOINERS = frozenset(" .,-'")
_SENTENCE_END = frozenset(".:;!?\n")


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


_MONTHS_DAYS = _words("""
    jan january feb february mar march apr april may jun june jul july aug august sep sept september
    oct october nov november dec december mon monday tue tues tuesday wed wednesday thu thur thurs
    thursday fri friday sat saturday sun sunday
    """)
_NEVER = frozenset(STOP_WORDS) | NOT_NAMES | EPONYMS | FACILITY_WORDS | _MONTHS_DAYS

# Gold label words (split at case changes and punctuation) -> entity type. Labels naming dates,
# ages, contact details and identifiers are not site vocabulary: the rules find those by form.
_SKIP_WORDS = _words("""
    date year time age phone fax email url web ip ssn id idnum number record medicalrecord account
    card credit license zip zipcode code device bioid healthplan iban vehicle title prefix profession
    occupation nrp nationality religion
    """)
_TYPE_WORDS = (
    ("FACILITY", _words("hospital facility ward clinic fac")),
    ("ORGANIZATION", _words("organization organisation org company employer")),
    ("LOCATION", _words("location geographic city town state country street address gpe loc")),
    ("PERSON", _words("name person patient doctor hcp relative proxy staff provider username pt")),
)
GENERIC_TYPE = "DENY_LIST"


class SiteDictionaryError(ValueError):
    """A site dictionary folder that is missing, of another format, or altered since it was written."""


def entity_type(label: str | None) -> str | None:
    """The entity type a gold or review label stands for, or None for labels that are never site
    vocabulary (dates, phones, identifiers); unknown labels are kept under a generic type."""
    if not label:
        return GENERIC_TYPE
    words = {w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", label)}
    if words & _SKIP_WORDS:
        return None
    for entity, cues in _TYPE_WORDS:
        if words & cues:
            return entity
    return GENERIC_TYPE


@dataclass
class SiteEntry:
    """One learned phrase (lower case words joined by single spaces) and what was seen of it."""

    phrase: str
    type: str
    count: int = 0
    plain_count: int = 0  # occurrences in the training notes outside any PHI span
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)

    @cached_property
    def words(self) -> list[str]:
        return self.phrase.split(" ")

    @property
    def guarded(self) -> bool:
        """Needs its learned context or capitalisation to match (see the module docstring)."""
        if self.plain_count:
            return True
        words = self.words
        if len(words) == 1:
            return len(words[0]) < 3 or is_english(words[0])
        # A full name of census words ("Mary Bell") is specific; "Good Samaritan" is not.
        return all(w in _NEVER or (is_english(w) and not is_name_word(w)) for w in words)


class _Token(NamedTuple):
    start: int
    end: int
    low: str


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]


def _neighbour(tokens: list[_Token], index: int, step: int) -> str | None:
    """The nearest word before (step -1) or after (+1) that is not a stop word, within reach."""
    for offset in range(1, CONTEXT_REACH + 1):
        position = index + step * offset
        if not 0 <= position < len(tokens):
            return None
        low = tokens[position].low
        if low not in STOP_WORDS and len(low) > 1:
            return low
    return None


def _joined(text: str, tokens: list[_Token], first: int, last: int) -> bool:
    """Tokens first..last are one phrase: separated only by joiner characters, at most two."""
    for left, right in zip(tokens[first:last], tokens[first + 1 : last + 1], strict=True):
        gap = text[left.end : right.start]
        if len(gap) > 2 or not set(gap) <= _JOINERS:
            return False
    return True


def _candidates(words: list[str]) -> Iterator[str]:
    """The phrases a PHI string teaches: the whole string, and each of its words that can stand
    alone as a name (a staff name "Jane Roe" is later also "Roe" alone; "General" of "Brackenmoor
    General" is not a name on its own)."""
    if len(words) == 1:
        if len(words[0]) >= 2 and words[0] not in _NEVER:
            yield words[0]
        return
    if any(w not in _NEVER for w in words):
        yield " ".join(words)
    for word in words:
        if len(word) >= 2 and word not in _NEVER and (is_name_word(word) or not is_english(word)):
            yield word


def _doc_hash(docs: list[Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for doc in docs:
        spans = sorted(
            (int(s["start"]), int(s["end"]), str(s.get("type") or s.get("label") or ""))
            for s in doc.get("spans") or []
        )
        digest.update(json.dumps([doc["text"], spans], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def _top(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.most_common(MAX_CONTEXT)))


class SiteDictionary:
    """A learned deny list with its provenance; `find` returns candidate PHI spans in a text."""

    def __init__(self, name: str, entries: Iterable[SiteEntry], metadata: dict[str, Any] | None = None):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise SiteDictionaryError(f"site dictionary name {name!r}: use letters, digits, '.', '_', '-'")
        self.name = name
        self.entries = {entry.phrase: entry for entry in entries}
        self.metadata = dict(metadata or {})
        self.source = SOURCE_PREFIX + name
        # First word -> entries starting with it, longest first: one dict lookup per token.
        self._by_first: dict[str, list[SiteEntry]] = {}
        for entry in sorted(self.entries.values(), key=lambda e: -len(e.words)):
            self._by_first.setdefault(entry.words[0], []).append(entry)
        self._guarded = {phrase: entry.guarded for phrase, entry in self.entries.items()}

    # -- learning -------------------------------------------------------------------------------

    @classmethod
    def learn(cls, docs: Iterable[Mapping[str, Any]], name: str = "site") -> SiteDictionary:
        """Learn from gold documents ({text, spans: [{start, end, type?}]}, `label` read as `type`)."""
        docs = list(docs)
        found: dict[str, SiteEntry] = {}
        types: dict[str, Counter[str]] = {}
        before: dict[str, Counter[str]] = {}
        after: dict[str, Counter[str]] = {}
        for doc in docs:
            text = doc["text"]
            tokens = _tokens(text)
            ends = [t.end for t in tokens]
            for span in doc.get("spans") or []:
                entity = entity_type(span.get("type") or span.get("label"))
                if entity is None:
                    continue
                start, end = int(span["start"]), int(span["end"])
                inside = list(_overlapping(tokens, ends, start, end))
                if not inside:
                    continue
                words = [tokens[i].low for i in inside]
                # The span's own neighbours are the context of the whole string and of each of its
                # words: "Dr. Rosa Bell" teaches that "Bell" after "Dr." is the name.
                context = (_neighbour(tokens, inside[0], -1), _neighbour(tokens, inside[-1], 1))
                for phrase in _candidates(words):
                    entry = found.setdefault(phrase, SiteEntry(phrase, entity))
                    entry.count += 1
                    types.setdefault(phrase, Counter())[entity] += 1
                    for store, word in zip((before, after), context, strict=True):
                        if word is not None:
                            store.setdefault(phrase, Counter())[word] += 1
        for phrase, entry in found.items():
            entry.type = types[phrase].most_common(1)[0][0]
            entry.before = _top(before.get(phrase, Counter()))
            entry.after = _top(after.get(phrase, Counter()))
        dictionary = cls(name, found.values())
        dictionary._count_plain(docs)
        dictionary.metadata = {"training_sha256": _doc_hash(docs), "training_documents": len(docs)}
        return dictionary

    def _count_plain(self, docs: list[Mapping[str, Any]]) -> None:
        """How often each entry occurs in the training notes outside every PHI span: a word the
        site also writes as an ordinary word needs context to match."""
        for doc in docs:
            text = doc["text"]
            phi = sorted((int(s["start"]), int(s["end"])) for s in doc.get("spans") or [])
            tokens = _tokens(text)
            for first, last, entry in self._matches(text, tokens):
                start, end = tokens[first].start, tokens[last].end
                if not any(a < end and start < b for a, b in phi):
                    entry.plain_count += 1
        self._guarded = {phrase: entry.guarded for phrase, entry in self.entries.items()}

    def merge(self, other: SiteDictionary) -> SiteDictionary:
        """Both dictionaries' entries (counts and contexts added), under this one's name."""
        merged = {phrase: SiteEntry(**asdict(entry)) for phrase, entry in self.entries.items()}
        for phrase, entry in other.entries.items():
            mine = merged.get(phrase)
            if mine is None:
                merged[phrase] = SiteEntry(**asdict(entry))
                continue
            mine.count += entry.count
            mine.plain_count += entry.plain_count
            mine.before = _top(Counter(mine.before) + Counter(entry.before))
            mine.after = _top(Counter(mine.after) + Counter(entry.after))
        result = SiteDictionary(self.name, merged.values())
        hashes = sorted(d.metadata.get("training_sha256", "") for d in (self, other))
        result.metadata = {
            "training_sha256": hashlib.sha256("".join(hashes).encode()).hexdigest(),
            "training_documents": sum(d.metadata.get("training_documents", 0) for d in (self, other)),
        }
        return result

    # -- matching -------------------------------------------------------------------------------

    def _matches(self, text: str, tokens: list[_Token]) -> Iterator[tuple[int, int, SiteEntry]]:
        """(first token, last token, entry) of every learned phrase in the text, the longest at each
        token, not overlapping, guards not applied."""
        index = 0
        while index < len(tokens):
            for entry in self._by_first.get(tokens[index].low, ()):
                size = len(entry.words)
                last = index + size - 1
                if size == 1 or (
                    last < len(tokens)
                    and all(tokens[index + k].low == w for k, w in enumerate(entry.words))
                    and _joined(text, tokens, index, last)
                ):
                    yield index, last, entry
                    index = last
                    break
            index += 1

    def find(self, text: str) -> list[PhiSpan]:
        """Candidate PHI spans of learned strings in `text`, source `site:NAME`."""
        # Most notes hold no learned word: one findall and a set test settle them.
        if self._by_first.keys().isdisjoint(word.lower() for word in _WORD.findall(text)):
            return []
        tokens = _tokens(text)
        spans = []
        mixed: bool | None = None
        for first, last, entry in self._matches(text, tokens):
            start, end = tokens[first].start, tokens[last].end
            if not self._guarded[entry.phrase]:
                spans.append(PhiSpan(start, end, entry.type, STRONG, self.source))
                continue
            if mixed is None:
                lower = sum(c.islower() for c in text)
                mixed = lower > sum(c.isupper() for c in text)
            if mixed and text[start:end].islower():
                continue
            context = (
                _neighbour(tokens, first, -1) in entry.before or _neighbour(tokens, last, 1) in entry.after
            )
            if context or (mixed and text[start].isupper() and not _sentence_start(text, start)):
                spans.append(PhiSpan(start, end, entry.type, MEDIUM, self.source))
        return spans

    # -- artifact -------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        by_type = Counter(entry.type for entry in self.entries.values())
        guarded = sum(self._guarded.values())
        return {"entries": len(self.entries), "guarded": guarded, "by_type": dict(sorted(by_type.items()))}

    def save(self, directory: str | Path) -> dict[str, Any]:
        """Write entries.jsonl and metadata.json; re-learning into the same folder (same name)
        bumps the version. Returns the metadata."""
        from medcurate import __version__

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        version = 1
        previous = folder / METADATA_FILE
        if previous.exists():
            try:
                old = json.loads(previous.read_text())
                if old.get("format") == FORMAT and old.get("name") == self.name:
                    version = int(old.get("version", 0)) + 1
            except (ValueError, TypeError):
                pass
        lines = [
            json.dumps(asdict(entry), ensure_ascii=False, sort_keys=True)
            for entry in sorted(self.entries.values(), key=lambda e: e.phrase)
        ]
        body = ("\n".join(lines) + "\n" if lines else "").encode()
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "tool_version": __version__,
            "training_sha256": self.metadata.get("training_sha256", ""),
            "training_documents": self.metadata.get("training_documents", 0),
            "counts": self.counts(),
            "content_sha256": hashlib.sha256(body).hexdigest(),
        }
        tmp = folder / (ENTRIES_FILE + ".tmp")
        tmp.write_bytes(body)
        tmp.replace(folder / ENTRIES_FILE)
        (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        self.metadata = metadata
        return metadata

    @classmethod
    def load(cls, directory: str | Path) -> SiteDictionary:
        """Read a saved dictionary, refusing one whose entries no longer match their hash."""
        folder = Path(directory)
        meta_path, entries_path = folder / METADATA_FILE, folder / ENTRIES_FILE
        if not meta_path.is_file() or not entries_path.is_file():
            raise SiteDictionaryError(
                f"{folder} is not a site dictionary (needs {METADATA_FILE} and {ENTRIES_FILE}; "
                "make one with `medcurate deid learn-site`)"
            )
        try:
            metadata = json.loads(meta_path.read_text())
        except ValueError:
            raise SiteDictionaryError(f"{meta_path}: not JSON") from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
            raise SiteDictionaryError(f"{meta_path}: not a {FORMAT} metadata file")
        if metadata.get("format_version") != FORMAT_VERSION:
            raise SiteDictionaryError(
                f"{folder}: format version {metadata.get('format_version')!r}, this medcurate reads "
                f"{FORMAT_VERSION}; learn it again with `medcurate deid learn-site`"
            )
        body = entries_path.read_bytes()
        if hashlib.sha256(body).hexdigest() != metadata.get("content_sha256"):
            raise SiteDictionaryError(
                f"{entries_path} does not match the content_sha256 of {METADATA_FILE}: "
                "the dictionary was altered after it was written; learn it again"
            )
        try:
            entries = [SiteEntry(**json.loads(line)) for line in body.decode().splitlines() if line]
        except (ValueError, TypeError) as error:
            raise SiteDictionaryError(f"{entries_path}: unreadable entry ({type(error).__name__})") from None
        dictionary = cls(str(metadata.get("name")), entries, metadata)
        if metadata.get("counts", {}).get("entries") != len(dictionary.entries):
            raise SiteDictionaryError(f"{folder}: entry count differs from {METADATA_FILE}")
        return dictionary

    def describe(self) -> dict[str, Any]:
        """What a run manifest records: name, version and hashes, never an entry."""
        keys = ("name", "version", "created_at", "content_sha256", "training_sha256", "tool_version")
        return {key: self.metadata.get(key) for key in keys} | {"name": self.name}


def _overlapping(tokens: list[_Token], ends: list[int], start: int, end: int) -> Iterator[int]:
    """Indexes of the tokens overlapping [start, end) (`ends` is the tokens' sorted ends)."""
    index = bisect_right(ends, start)
    while index < len(tokens) and tokens[index].start < end:
        yield index
        index += 1


def _sentence_start(text: str, start: int) -> bool:
    """Capitals at a sentence or line start say nothing about a word."""
    index = start - 1
    while index >= 0 and text[index] in " \t\"'(":
        index -= 1
    return index < 0 or text[index] in _SENTENCE_END


def read_gold(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Gold JSONL files ({text, spans}) as documents; a malformed line names its file and line."""
    docs = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    raise SiteDictionaryError(f"{path}:{number}: not JSON") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise SiteDictionaryError(f"{path}:{number}: needs a string `text`")
                spans = row.get("spans") or []
                if not isinstance(spans, list) or not all(
                    isinstance(s, dict) and isinstance(s.get("start"), int) and isinstance(s.get("end"), int)
                    for s in spans
                ):
                    raise SiteDictionaryError(f"{path}:{number}: `spans` must be objects with int start/end")
                docs.append({"text": row["text"], "spans": spans})
    return docs
