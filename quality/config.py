from pydantic import Field

from medcurate.schemas.config import StrictModel


class QualityConfig(StrictModel):
    languages: list[str] = Field(
        default_factory=lambda: ["en"], description="ISO 639-1 codes kept; [] keeps all"
    )
    min_language_score: float = Field(0.4, ge=0, le=1)
    min_words: int = Field(5, ge=0, description="shorter texts are dropped")
