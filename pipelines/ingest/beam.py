"""The Beam adapter of ingestion: `pipeline | IngestSources(config.ingest)`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import DoOutputsTuple, PBegin

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.common import STAGE
from medcurate.pipelines.ingest.sources import expand_inputs, read_source
from medcurate.pipelines.stage import DEAD_LETTERS, SAMPLES, Progress, count, emit_event
from medcurate.schemas.events import DeadLetter


class ReadSourceFn(beam.DoFn):
    """One input URI in, its samples out; its dead letters to DEAD_LETTERS."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config

    def setup(self) -> None:
        self.progress = Progress(STAGE)

    def process(self, uri: str) -> Iterator[Any]:
        try:
            for item in read_source(uri, self.config):
                yield emit_event(item) if isinstance(item, DeadLetter) else item
        except Exception as error:  # read_source already guards; this keeps one file from failing a bundle
            count("read")
            yield emit_event(DeadLetter.from_exception(STAGE, "read_error", uri, error))
        self.progress.advance()


class IngestSources(beam.PTransform):
    """Expands `config.inputs` (at construction, so a pattern matching nothing fails fast),
    spreads the files across workers and reads each; outputs SAMPLES and DEAD_LETTERS."""

    def __init__(self, config: IngestConfig) -> None:
        super().__init__()
        self.config = config
        self.uris = expand_inputs(config.inputs)

    def expand(self, pbegin: PBegin) -> DoOutputsTuple:
        return (
            pbegin
            | "ListInputs" >> beam.Create(self.uris)
            | "SpreadInputs" >> beam.Reshuffle()
            | "ReadSources" >> beam.ParDo(ReadSourceFn(self.config)).with_outputs(DEAD_LETTERS, main=SAMPLES)
        )
