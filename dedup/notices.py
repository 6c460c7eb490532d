"""Notices: errata, comments, replies, retractions are records of their own, never duplicates.

A published erratum, a comment on an article, the authors' reply and a retraction notice repeat
the title (and often the authors, year and volume) of the article they refer to, so text
similarity alone merges them into it. Bibliographic practice keeps them apart: MEDLINE/PubMed
index each as its own citation with its own publication type (NLM publication types "Published
Erratum", "Comment", "Letter", "Retraction of Publication", "Expression of Concern").

A text's notice kind is the kind of the first notice phrase among its leading words (the
title's opening words in a bibliographic record: "Erratum: ...", "Comment on ...",
"Authors' reply", "Notice of retraction"), or of the whole text; 0 when none. Verification
only lets texts of the same kind be near-duplicates, so a notice never joins the article it names.
Pure Python and numpy: both dedup paths compute it the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from medcurate.dedup.config import NOTICE_KINDS
from medcurate.dedup.normalize import normalize_for_shingles

__all__ = ["NOTICE_KINDS", "NoticeFinder"]


class NoticeFinder:
    """Text -> notice kind (1-based index of the kind in sorted order; 0: not a notice)."""

    def __init__(self, kinds: Mapping[str, Sequence[str]], scope: int | None) -> None:
        self.scope = scope
        self.phrases: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        longest = 1
        for number, kind in enumerate(sorted(kinds), start=1):
            for phrase in kinds[kind]:
                words = tuple(normalize_for_shingles(phrase).split())
                if words:
                    self.phrases.setdefault(words[0], []).append((words, number))
                    longest = max(longest, len(words))
        for candidates in self.phrases.values():
            candidates.sort(key=lambda entry: -len(entry[0]))  # the longest phrase at a word wins
        self.longest = longest

    def _words(self, text: str) -> list[str]:
        """The normalised words to search: a growing prefix of the text is enough for a scope."""
        if self.scope is None:
            return normalize_for_shingles(text).split()
        wanted = self.scope + self.longest
        length = 64 * wanted
        while True:
            words = normalize_for_shingles(text[:length]).split()
            if length >= len(text) or len(words) > wanted:  # the last word of a cut may be partial
                return words[:wanted]
            length *= 4

    def kind(self, text: str) -> int:
        if not self.phrases:
            return 0
        words = self._words(text)
        starts = len(words) if self.scope is None else min(self.scope, len(words))
        for start in range(starts):
            for phrase, number in self.phrases.get(words[start], ()):
                if tuple(words[start : start + len(phrase)]) == phrase:
                    return number
        return 0

    def kinds(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.kind(text) for text in texts], dtype=np.uint32)
