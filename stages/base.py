"""What every Beam stage shares: output tags, per-reason counters and progress lines.

A stage is a pure core (functions over sample dicts) plus a thin adapter built from these pieces.
Every sample that leaves the main output goes to DEAD_LETTERS (it failed) or DROPS (it was
deliberately left out), each with a reason, so that read = published + dropped + dead-lettered.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from medcurate.schemas.events import DeadLetter, Drop, Event

SAMPLES = "samples"
DEAD_LETTERS = "dead_letters"
DROPS = "drops"

COUNTER_NAMESPACE = "medcurate"
log = logging.getLogger("medcurate.progress")


_T = TypeVar("_T")
_SHARED: dict[tuple[str, str], Any] = {}
_SHARED_LOCK = threading.Lock()


def _in_worker_process() -> bool:
    """Whether this process is a local runner's worker (started by Beam for this run alone)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", "") == "apache_beam.runners.worker.sdk_worker_main"


def shared_model(kind: str, key: str, load: Callable[[], _T]) -> _T:
    """One loaded model per worker process for each (kind, key), whatever the number of DoFn
    instances that use it: the pipeline applies a stage to several branches, and each instance
    loading its own copy would multiply the memory a worker needs."""
    with _SHARED_LOCK:
        if (kind, key) not in _SHARED:
            if _in_worker_process():
                from medcurate.cli import skip_unused_frameworks

                skip_unused_frameworks()  # as the `medcurate` command does in its own process
            _SHARED[kind, key] = load()
        return _SHARED[kind, key]


def release_shared_models() -> None:
    """Drops the models `shared_model` holds in this process (a later use loads them again). The
    passes after the per-sample stages call it: a worker then does not carry its models into the
    passes where its memory peaks (deduplication, the final selection)."""
    with _SHARED_LOCK:
        if not _SHARED:
            return
        _SHARED.clear()
    gc.collect()


def event_counter_name(event: Event) -> str:
    return f"{event.kind}:{event.stage}/{event.reason}"


def count(name: str, value: int = 1) -> None:
    Metrics.counter(COUNTER_NAMESPACE, name).inc(value)


def emit_event(event: Event) -> TaggedOutput:
    """Count the event under its stage and reason, and route it to its side output."""
    count(event_counter_name(event))
    tag = DEAD_LETTERS if isinstance(event, DeadLetter) else DROPS
    return TaggedOutput(tag, event.to_dict())


class Progress:
    """Logs `stage: N done (R/s)` at most every `interval_s` seconds; cheap enough for hot loops."""

    def __init__(self, stage: str, interval_s: float = 10.0) -> None:
        self.stage = stage
        self.interval_s = interval_s
        self.done = 0
        self._start = self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            rate = self.done / max(now - self._start, 1e-9)
            log.info("%s: %d done (%.1f/s)", self.stage, self.done, rate)


class SampleStageFn(beam.DoFn):
    """Base DoFn for stages over batches of samples (use after `beam.BatchElements`).

    Subclasses implement `process_samples(samples) -> iterable of sample dicts or Events` (not
    `process_batch`: Beam reserves that name for batched DoFns); an
    exception on a batch is retried sample by sample so one bad sample dead-letters alone.
    """

    stage = "stage"
    failure_reason = "processing_error"

    def setup(self) -> None:
        self.progress = Progress(self.stage)

    def process_samples(self, samples: list[dict[str, Any]]) -> list[dict[str, Any] | Event]:
        raise NotImplementedError

    def process(self, batch: list[dict[str, Any]]) -> Iterator[Any]:
        try:
            results = self.process_samples(batch)
        except Exception:
            results = []
            for sample in batch:
                try:
                    results.extend(self.process_samples([sample]))
                except Exception as error:
                    results.append(
                        DeadLetter.from_exception(
                            self.stage, self.failure_reason, sample["source_uri"], error, sample["id"]
                        )
                    )
        self.progress.advance(len(batch))
        for result in results:
            if isinstance(result, DeadLetter | Drop):
                yield emit_event(result)
            else:
                yield result
