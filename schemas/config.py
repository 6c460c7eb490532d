"""Base of every configuration section: unknown keys are errors, so typos never pass silently."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
