from typing import Literal

from pydantic import Field

from medcurate.schemas.config import StrictModel


class DedupConfig(StrictModel):
    exact: bool = True
    near: bool = True
    threshold: float = Field(
        0.8, gt=0, le=1, description="estimated Jaccard above which texts are near-duplicates"
    )
    num_perm: int = Field(128, ge=16)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(5, ge=1)
    seed: int = 1
