"""Records of what did not become a published sample: dead letters (failures) and drops (decisions).

Neither ever carries content: a stage, a reason code, the source URI, the sample id and at most the
class name of an exception (exception messages can quote the input, so they are never kept).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import pyarrow as pa

EVENT_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("source_uri", pa.string()),
        pa.field("sample_id", pa.string()),
        pa.field("error_type", pa.string()),
    ],
    metadata={"medcurate.schema": "event", "medcurate.schema_version": "1"},
)


@dataclass(frozen=True)
class _Event:
    stage: str
    reason: str
    source_uri: str
    sample_id: str | None = None
    error_type: str | None = None
    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class DeadLetter(_Event):
    """An input or sample that failed: it could not be read or processed."""

    kind: ClassVar[str] = "dead_letter"

    @classmethod
    def from_exception(
        cls, stage: str, reason: str, source_uri: str, error: BaseException, sample_id: str | None = None
    ) -> DeadLetter:
        return cls(stage, reason, source_uri, sample_id, type(error).__name__)


@dataclass(frozen=True)
class Drop(_Event):
    """A sample deliberately left out of the dataset (duplicate, wrong language, too short...)."""

    kind: ClassVar[str] = "drop"


Event = DeadLetter | Drop


def count_key(event: Event | dict[str, Any]) -> str:
    """The key under which manifests and summaries count an event: `stage/reason`."""
    if isinstance(event, dict):
        return f"{event['stage']}/{event['reason']}"
    return f"{event.stage}/{event.reason}"


def counts_by_reason(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(map(count_key, events)).items()))
