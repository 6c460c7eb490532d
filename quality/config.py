from typing import Any

from pydantic import Field, field_validator

from medcurate.schemas.config import StrictModel


class GopherQualityThresholds(StrictModel):
    """Gopher (Rae et al. 2021, appendix A1.1) as DataTrove's defaults; null turns a rule off."""

    enabled: bool = True
    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2


class GopherRepetitionThresholds(StrictModel):
    """Gopher table A1 repetition limits (fractions of the document's characters or parts)."""

    enabled: bool = True
    dup_line_frac: float | None = 0.3
    dup_para_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2
    top_n_gram_char_frac: dict[int, float] = Field(default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16})
    dup_n_gram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )


class C4Thresholds(StrictModel):
    """C4 (Raffel et al. 2020): lines kept only if they end in terminal punctuation and have 3+ words."""

    enabled: bool = True
    min_num_sentences: int | None = 5
    min_words_per_line: int = 3
    max_word_length: int = 1000
    filter_lorem_ipsum: bool = True
    filter_curly_bracket: bool = True


class FineWebThresholds(StrictModel):
    """FineWeb's custom line rules (Penedo et al. 2024)."""

    enabled: bool = True
    line_punct_thr: float | None = 0.12
    short_line_thr: float | None = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float | None = 0.01
    new_line_ratio: float | None = 0.3


class TextFilters(StrictModel):
    gopher_quality: GopherQualityThresholds = Field(default_factory=GopherQualityThresholds)
    gopher_repetition: GopherRepetitionThresholds = Field(default_factory=GopherRepetitionThresholds)
    c4: C4Thresholds = Field(default_factory=C4Thresholds)
    fineweb: FineWebThresholds = Field(default_factory=FineWebThresholds)


def clinical_filters() -> TextFilters:
    """Clinical notes are short, terse, list-like and often upper case: only the rules that catch
    broken or machine-repeated text apply (see docs/quality.md for each choice)."""
    return TextFilters(
        gopher_quality=GopherQualityThresholds(
            min_doc_words=None,
            min_stop_words=None,
            min_avg_word_length=2,
            max_avg_word_length=12,
            # Punctuation counts as words here, and a note's dates, vitals, doses and lab values
            # are content: a vitals-heavy note falls below half, so the rule is off.
            min_alpha_words_ratio=None,
        ),
        # Structured records (FHIR renderings, lab panels) repeat field names by design: only whole
        # repeated lines and paragraphs (copy-forward) count.
        gopher_repetition=GopherRepetitionThresholds(top_n_gram_char_frac={}, dup_n_gram_char_frac={}),
        c4=C4Thresholds(enabled=False),
        fineweb=FineWebThresholds(enabled=False),
    )


def default_filters_by_kind() -> dict[str, TextFilters]:
    return {"web": TextFilters(), "clinical": clinical_filters()}


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        nested = (
            isinstance(value, dict) and isinstance(out.get(key), dict) and key in TextFilters.model_fields
        )
        out[key] = _merge(out[key], value) if nested else value
    return out


class QualityConfig(StrictModel):
    languages: list[str] = Field(
        default_factory=lambda: ["en"], description="ISO 639-1 codes kept; [] keeps all"
    )
    min_language_score: float = Field(0.4, ge=0, le=1)
    min_words: int = Field(5, ge=0, description="shorter texts are dropped")
    filters: dict[str, TextFilters] = Field(
        default_factory=default_filters_by_kind,
        description="text filter thresholds per source kind; kinds not listed use the web defaults",
    )
    relevance_model: str | None = Field(
        None, description="fastText health-relevance model (.ftz); null: the bundled bootstrap model"
    )
    quality_model: str | None = Field(
        None,
        description="fastText quality model trained from physicians' verdicts (`medcurate quality train`); "
        "null: the relevance model stands in until one is trained",
    )

    @field_validator("filters", mode="before")
    @classmethod
    def _over_kind_defaults(cls, value: Any) -> Any:
        """A kind's settings change its defaults key by key (`quality.filters.clinical.c4.enabled=true`
        keeps the other clinical defaults); the kinds not mentioned keep theirs."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {kind: f.model_dump() for kind, f in default_filters_by_kind().items()}
        for kind, section in value.items():
            base = merged.get(kind, TextFilters().model_dump())
            merged[kind] = _merge(base, section) if isinstance(section, dict) else section
        return merged

    def filters_for(self, source_kind: str | None) -> TextFilters:
        return self.filters.get(source_kind or "", self.filters.get("web") or TextFilters())
