"""Cheap text-quality signals (computed) and the keep/drop decision (separate, configurable)."""

from __future__ import annotations

from medcurate.quality.config import QualityConfig


def text_signals(text: str) -> dict[str, float]:
    words = text.split()
    chars = max(len(text), 1)
    return {
        "word_count": float(len(words)),
        "char_count": float(len(text)),
        "mean_word_length": sum(map(len, words)) / len(words) if words else 0.0,
        "alpha_ratio": sum(ch.isalpha() for ch in text) / chars,
        "upper_ratio": sum(ch.isupper() for ch in text) / chars,
        "line_count": float(text.count("\n") + 1),
    }


def drop_reason(
    signals: dict[str, float], language: str, language_score: float, config: QualityConfig
) -> str | None:
    """Why a text should be left out, or None to keep it. Unsure language calls never drop."""
    if signals["word_count"] < config.min_words:
        return "too_short"
    if config.languages and language not in config.languages and language_score >= config.min_language_score:
        return "language_not_allowed"
    return None
