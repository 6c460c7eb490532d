"""Text normalisation: exact hashes see case- and whitespace-blind text; shingles see less still."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")
# Function words only: dropping them lets shingles span the content words.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "these",
        "this",
        "to",
        "was",
        "were",
        "which",
        "with",
    ]
)


def _nfkc_casefold(text: str) -> str:
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.casefold()


# ASCII punctuation, symbols, controls and underscore to spaces: `[\W_]` restricted to ASCII.
_ASCII_NON_WORD = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def normalize_exact(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: what counts as 'the same text'."""
    # str.split() and the regex's \s both split on str.isspace() characters: same result, faster.
    return " ".join(_nfkc_casefold(text).split())


def normalize_for_shingles(text: str, strip_punctuation: bool = True, drop_stopwords: bool = False) -> str:
    """What MinHash sees: words separated by single spaces, punctuation and markup noise removed."""
    if strip_punctuation and text.isascii():
        # ASCII is its own NFKC form, casefold is lower, and [\W_] is the translation table.
        text = " ".join(text.lower().translate(_ASCII_NON_WORD).split())
    elif strip_punctuation:
        text = _NON_WORD.sub(" ", _nfkc_casefold(text)).strip()
    else:
        text = normalize_exact(text)
    if drop_stopwords:
        return " ".join(word for word in text.split(" ") if word not in STOPWORDS)
    return text


def exact_text_hash(text: str) -> tuple[str, int]:
    """(hash of the normalised text, its length): the length ranks keepers without padding winning."""
    norm = normalize_exact(text)
    return hashlib.blake2b(norm.encode(), digest_size=16).hexdigest(), len(norm)


# Bibliographic records (`dedup.citations`): what citation databases add to or change in a
# record's text between exports, undone before comparison. Annotations that MEDLINE (Ovid,
# PubMed) and Embase append to titles in square brackets: review and reference counts, links to
# errata, comments, retractions and updates, the language of the original article.
_ANNOTATION_WORDS = (
    r"review|\d+\s*refs?|erratum|errata|corrected|correction|comment|comments|see\b|published|"
    r"article in|english abstract|abstract available|retract|retraction|expression of concern|"
    r"update|updated|republished|summary for patients|author'?s? (?:transl|reply)|"
    r"arabic|chinese|croatian|czech|danish|dutch|finnish|french|german|greek|hebrew|hungarian|"
    r"italian|japanese|korean|norwegian|persian|polish|portuguese|romanian|russian|serbian|"
    r"slovak|slovenian|spanish|swedish|turkish|ukrainian"
)
_ANNOTATION = re.compile(rf"\[\s*(?:{_ANNOTATION_WORDS})[^\[\]]*\]", re.IGNORECASE)
# Markup left by exports (italic species names, superscripts): tags go, their text stays.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
# MEDLINE abbreviates page ranges ("1234-45" for 1234-1245; "S17-9" for S17-S19).
_PAGE_RANGE = re.compile(r"(?<![\w.])([A-Za-z]?)(\d+)\s*[-\u2010-\u2015]\s*[A-Za-z]?(\d+)(?![\w.])")


def _expand_range(match: re.Match[str]) -> str:
    prefix, first, last = match.groups()
    if len(last) < len(first):
        full = first[: len(first) - len(last)] + last
        if int(full) >= int(first):
            last = full
    return f"{prefix}{first}-{prefix}{last}"


def normalize_citation(text: str) -> str:
    """A bibliographic record's text as citation dedup tools compare it.

    Markup and HTML entities unescaped and stripped, database annotations in square brackets
    dropped ("[Review] [27 refs]", "[Article in German]", "[Erratum appears in ...]"), accents
    folded, "&" read as "and", abbreviated page ranges written in full. The words of a title
    wholly in brackets (a translated title) stay: only known annotations go.
    """
    if "&" in text or "<" in text:
        text = _TAG.sub("", html.unescape(text)).replace("&", " and ")
    if "[" in text:
        text = _ANNOTATION.sub(" ", text)
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    if "-" in text or not text.isascii():
        text = _PAGE_RANGE.sub(_expand_range, text)
    return text


# Articles, prepositions and conjunctions that ISO 4 drops from abbreviated journal titles.
VENUE_STOPWORDS = frozenset(
    ["a", "an", "and", "de", "der", "des", "du", "et", "for", "in", "la", "of", "on", "the", "und"]
)


def venue_initials(venue: str) -> str:
    """A journal's title as its initials, the same for its full and its abbreviated form.

    Databases give the venue of one article in full in one export and abbreviated in another.
    ISO 4 abbreviates a title word by word, mostly by truncation (List of Title Word
    Abbreviations), and drops articles, prepositions and conjunctions, so the initials of the
    remaining words agree: "Annals of Fictional Dermatology" and "Ann Fict Dermatol" are both
    "afd". Acronyms ("JFD" for the same journal) and contractions that change the first letter
    still differ.
    """
    words = [word for word in _NON_WORD.split(venue.lower()) if word and word not in VENUE_STOPWORDS]
    return "".join(word[0] for word in words)
