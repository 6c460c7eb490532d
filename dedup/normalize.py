"""Text normalisation: exact hashes see case- and whitespace-blind text; shingles see less still."""

from __future__ import annotations

import hashlib
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
