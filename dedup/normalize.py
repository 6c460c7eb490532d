"""Text normalisation: exact hashes see case- and whitespace-blind text; shingles may also drop punctuation."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalize_exact(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: what counts as 'the same text'."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalize_for_shingles(text: str, strip_punctuation: bool = True) -> str:
    """What MinHash sees; punctuation and symbol noise (exports, markup) would otherwise dilute Jaccard."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if strip_punctuation:
        text = _PUNCTUATION.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def exact_text_hash(text: str) -> tuple[str, int]:
    """(hash of the normalised text, its length): the length ranks keepers without padding winning."""
    norm = normalize_exact(text)
    return hashlib.blake2b(norm.encode(), digest_size=16).hexdigest(), len(norm)
