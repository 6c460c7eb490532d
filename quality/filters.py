"""Standard web-text filters (Gopher quality, Gopher repetition, C4, FineWeb) split in two halves:
`filter_statistics` measures a text once (stored on every sample), `filter_reason` compares those
numbers with configurable thresholds (the published defaults live in `quality.config`).

The rules, constants and duplicate counters are DataTrove's (the maintained reference
implementation); DataTrove's filters fuse measuring and deciding and tokenise with NLTK (about
0.2 s per 2,000-word page), so the words and sentences here come from two regular expressions
instead (same punctuation-splitting as the Treebank tokenizer on ordinary prose).
"""

from __future__ import annotations

import re

from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, END_PUNCTUATION, POLICY_SUBSTRINGS
from datatrove.pipeline.filters.gopher_quality_filter import STOP_WORDS
from datatrove.pipeline.filters.gopher_repetition_filter import (
    find_all_duplicate,
    find_duplicates,
    find_top_duplicate,
    get_n_grams,
)
from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

from medcurate.quality.config import TextFilters

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)")
_PARAGRAPH = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
_STOP_WORDS = frozenset(STOP_WORDS)
_TERMINAL = tuple(TERMINAL_PUNCTUATION)


def split_words(text: str) -> list[str]:
    """Words and punctuation marks as separate tokens (what Gopher's rules count)."""
    return _WORD.findall(text)


def count_sentences(line: str) -> int:
    return len(_SENTENCE_END.split(line.strip())) if line.strip() else 0


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def gopher_quality_statistics(text: str, words: list[str]) -> dict[str, float]:
    content = [w for w in words if any(ch not in PUNCTUATION_SET for ch in w)]
    lines = text.splitlines() or [""]
    return {
        "gopher.words": float(len(content)),
        "gopher.mean_word_length": _ratio(sum(map(len, content)), len(content)),
        "gopher.hash_word_ratio": _ratio(text.count("#"), len(words)),
        "gopher.ellipsis_word_ratio": _ratio(text.count("...") + text.count("…"), len(words)),
        "gopher.bullet_lines_ratio": _ratio(
            sum(line.lstrip().startswith(("•", "-")) for line in lines), len(lines)
        ),
        "gopher.ellipsis_lines_ratio": _ratio(
            sum(line.rstrip().endswith(("...", "…")) for line in lines), len(lines)
        ),
        "gopher.alpha_words_ratio": _ratio(sum(any(c.isalpha() for c in w) for w in words), len(words)),
        "gopher.stop_words": float(len(_STOP_WORDS.intersection(words))),
    }


def gopher_repetition_statistics(
    text: str, words: list[str], top_n: list[int], dup_n: list[int]
) -> dict[str, float]:
    size = len(text)
    paragraphs = _PARAGRAPH.split(text.strip())
    para_dups, para_chars = find_duplicates(paragraphs)
    lines = _LINES.split(text)
    line_dups, line_chars = find_duplicates(lines)
    stats = {
        "repetition.dup_para_frac": _ratio(para_dups, len(paragraphs)),
        "repetition.dup_para_char_frac": _ratio(para_chars, size),
        "repetition.dup_line_frac": _ratio(line_dups, len(lines)),
        "repetition.dup_line_char_frac": _ratio(line_chars, size),
    }
    for n in top_n:
        grams = get_n_grams(words, n)
        stats[f"repetition.top_{n}_gram_char_frac"] = (
            _ratio(find_top_duplicate(grams), size) if grams else 0.0
        )
    for n in dup_n:
        stats[f"repetition.dup_{n}_gram_char_frac"] = _ratio(find_all_duplicate(words, n), size)
    return stats


def c4_statistics(text: str, min_words_per_line: int, max_word_length: int) -> dict[str, float]:
    """Document-level C4 numbers. As in C4's code, only lines that survive the line rules (terminal
    punctuation, 3+ words, no over-long word) count sentences, "lorem ipsum" and curly brackets."""
    sentences = kept = total = javascript = policy = lorem = curly = 0
    for raw in text.splitlines():
        line = raw.strip()
        words = line.split()
        total += 1
        if any(len(word) > max_word_length for word in words):
            continue
        line = CITATION_REGEX.sub("", line)
        if not line.endswith(END_PUNCTUATION) or line.endswith("...") or len(words) < min_words_per_line:
            continue
        lower = line.lower()
        lorem += "lorem ipsum" in lower
        if "javascript" in lower:
            javascript += 1
            continue
        curly += "{" in line
        if any(phrase in lower for phrase in POLICY_SUBSTRINGS):
            policy += 1
            continue
        kept += 1
        sentences += count_sentences(line)
    return {
        "c4.sentences": float(sentences),
        "c4.lines_kept_ratio": _ratio(kept, total),
        "c4.javascript_lines": float(javascript),
        "c4.policy_lines": float(policy),
        "c4.lorem_ipsum": float(lorem),
        "c4.curly_bracket": float(curly),
    }


def fineweb_statistics(text: str, words: list[str], short_line_length: int) -> dict[str, float]:
    lines = [line for line in text.split("\n") if line.strip()]
    return {
        "fineweb.line_punct_ratio": _ratio(sum(line.endswith(_TERMINAL) for line in lines), len(lines)),
        "fineweb.short_line_ratio": _ratio(sum(len(line) <= short_line_length for line in lines), len(lines)),
        "fineweb.char_dup_ratio": _ratio(find_duplicates(lines)[1], len(text.replace("\n", ""))),
        "fineweb.list_ratio": _ratio(text.count("\n"), len(words)),
    }


def filter_statistics(text: str, filters: TextFilters) -> dict[str, float]:
    """Every statistic the enabled filters decide on, keyed `family.name` (stored on the sample)."""
    words = split_words(text)
    stats: dict[str, float] = {}
    if filters.gopher_quality.enabled:
        stats |= gopher_quality_statistics(text, words)
    rep = filters.gopher_repetition
    if rep.enabled:
        stats |= gopher_repetition_statistics(
            text, words, sorted(rep.top_n_gram_char_frac), sorted(rep.dup_n_gram_char_frac)
        )
    if filters.c4.enabled:
        stats |= c4_statistics(text, filters.c4.min_words_per_line, filters.c4.max_word_length)
    if filters.fineweb.enabled:
        stats |= fineweb_statistics(text, words, filters.fineweb.short_line_length)
    return stats


def _above(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit


def _below(value: float, limit: float | None) -> bool:
    return limit is not None and value < limit


def gopher_quality_reason(stats: dict[str, float], filters: TextFilters) -> str | None:
    t = filters.gopher_quality
    words = stats["gopher.words"]
    checks = [
        ("short_doc", _below(words, t.min_doc_words)),
        ("long_doc", _above(words, t.max_doc_words)),
        ("below_avg_word_length", _below(stats["gopher.mean_word_length"], t.min_avg_word_length)),
        ("above_avg_word_length", _above(stats["gopher.mean_word_length"], t.max_avg_word_length)),
        ("too_many_hashes", _above(stats["gopher.hash_word_ratio"], t.max_symbol_word_ratio)),
        ("too_many_ellipsis", _above(stats["gopher.ellipsis_word_ratio"], t.max_symbol_word_ratio)),
        ("too_many_bullets", _above(stats["gopher.bullet_lines_ratio"], t.max_bullet_lines_ratio)),
        ("too_many_end_ellipsis", _above(stats["gopher.ellipsis_lines_ratio"], t.max_ellipsis_lines_ratio)),
        ("below_alpha_words_ratio", _below(stats["gopher.alpha_words_ratio"], t.min_alpha_words_ratio)),
        ("too_few_stop_words", _below(stats["gopher.stop_words"], t.min_stop_words)),
    ]
    return next((f"gopher_quality.{name}" for name, failed in checks if failed), None)


def gopher_repetition_reason(stats: dict[str, float], filters: TextFilters) -> str | None:
    t = filters.gopher_repetition
    for name in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
        if _above(stats[f"repetition.{name}"], getattr(t, name)):
            return f"gopher_repetition.{name}"
    for n, limit in sorted(t.top_n_gram_char_frac.items()):
        if _above(stats[f"repetition.top_{n}_gram_char_frac"], limit):
            return f"gopher_repetition.top_{n}_gram"
    for n, limit in sorted(t.dup_n_gram_char_frac.items()):
        if _above(stats[f"repetition.dup_{n}_gram_char_frac"], limit):
            return f"gopher_repetition.dup_{n}_gram"
    return None


def c4_reason(stats: dict[str, float], filters: TextFilters) -> str | None:
    t = filters.c4
    if t.filter_lorem_ipsum and stats["c4.lorem_ipsum"]:
        return "c4.lorem_ipsum"
    if t.filter_curly_bracket and stats["c4.curly_bracket"]:
        return "c4.curly_bracket"
    if _below(stats["c4.sentences"], t.min_num_sentences):
        return "c4.too_few_sentences"
    return None


def fineweb_reason(stats: dict[str, float], filters: TextFilters) -> str | None:
    t = filters.fineweb
    if _below(stats["fineweb.line_punct_ratio"], t.line_punct_thr):
        return "fineweb.line_punct_ratio"
    if _above(stats["fineweb.short_line_ratio"], t.short_line_thr):
        return "fineweb.short_line_ratio"
    if _above(stats["fineweb.char_dup_ratio"], t.char_duplicates_ratio):
        return "fineweb.char_dup_ratio"
    if _above(stats["fineweb.list_ratio"], t.new_line_ratio):
        return "fineweb.list_ratio"
    return None


def filter_reason(stats: dict[str, float], filters: TextFilters) -> str | None:
    """The first failed rule as `family.rule` (the drop reason), or None to keep the text."""
    deciders = (
        (filters.gopher_quality.enabled, gopher_quality_reason),
        (filters.gopher_repetition.enabled, gopher_repetition_reason),
        (filters.c4.enabled, c4_reason),
        (filters.fineweb.enabled, fineweb_reason),
    )
    for enabled, decide in deciders:
        reason = decide(stats, filters) if enabled else None
        if reason:
            return reason
    return None
