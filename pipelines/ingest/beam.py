"""The Beam adapter of ingestion: `pipeline | IngestSources(config.ingest)`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import DoOutputsTuple, PBegin

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.common import STAGE, display_uri
from medcurate.pipelines.ingest.sources import InputPath, list_inputs, read_source
from medcurate.pipelines.stage import DEAD_LETTERS, DROPS, SAMPLES, Progress, count, emit_event
from medcurate.schemas.events import DeadLetter, Drop


class ReadSourceFn(beam.DoFn):
    """One listed input in, its samples out; its dead letters to DEAD_LETTERS, skips to DROPS.

    Inputs travel as (path bytes, skip reason): a file name that is not UTF-8 is a valid path,
    and Beam's string coder would refuse it."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config

    def setup(self) -> None:
        self.progress = Progress(STAGE)

    def process(self, listed: tuple[bytes, str]) -> Iterator[Any]:
        path = InputPath.from_raw(*listed)
        count("inputs")
        try:
            for item in read_source(path.uri, self.config, skip=path.skip):
                yield emit_event(item) if isinstance(item, DeadLetter | Drop) else item
        except Exception as error:  # read_source already guards; this keeps one file from failing a bundle
            count("read")
            yield emit_event(DeadLetter.from_exception(STAGE, "read_error", display_uri(path.uri), error))
        self.progress.advance()


class IngestSources(beam.PTransform):
    """Lists `config.inputs` (at construction, so a pattern matching nothing fails fast),
    spreads the paths across workers and reads each; outputs SAMPLES, DEAD_LETTERS and DROPS
    (inputs skipped with a reason)."""

    def __init__(self, config: IngestConfig) -> None:
        super().__init__()
        self.config = config
        self.inputs = list_inputs(config.inputs)

    def expand(self, pbegin: PBegin) -> DoOutputsTuple:
        return (
            pbegin
            | "ListInputs" >> beam.Create([(path.raw, path.skip or "") for path in self.inputs])
            | "SpreadInputs" >> beam.Reshuffle()
            | "ReadSources"
            >> beam.ParDo(ReadSourceFn(self.config)).with_outputs(DEAD_LETTERS, DROPS, main=SAMPLES)
        )
