from pydantic import Field

from medcurate.schemas.config import StrictModel


class ReviewConfig(StrictModel):
    """Which samples go to physician review instead of straight to the dataset."""

    audit_fraction: float = Field(0.05, ge=0, le=1, description="random share of every source kind")
    min_deid_confidence: float = Field(0.6, ge=0, le=1, description="less confident de-id goes to review")
    seed: int = 0
