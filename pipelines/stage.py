"""Moved to `medcurate.stages.base`; kept so that existing imports keep working."""

from medcurate.stages.base import (
    COUNTER_NAMESPACE,
    DEAD_LETTERS,
    DROPS,
    SAMPLES,
    Progress,
    SampleStageFn,
    count,
    emit_event,
    event_counter_name,
    log,
)

__all__ = [
    "COUNTER_NAMESPACE",
    "DEAD_LETTERS",
    "DROPS",
    "SAMPLES",
    "Progress",
    "SampleStageFn",
    "count",
    "emit_event",
    "event_counter_name",
    "log",
]
