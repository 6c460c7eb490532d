"""The Beam adapter of ingestion: `pipeline | IngestSources(config.ingest)`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import DoOutputsTuple, PBegin

from medcurate.pipelines.config import IngestConfig
from medcurate.pipelines.ingest.common import STAGE, display_uri
from medcurate.pipelines.ingest.sources import (
    InputPath,
    check_patterns,
    match_pattern,
    part_count,
    read_source,
)
from medcurate.pipelines.stage import DEAD_LETTERS, DROPS, SAMPLES, Progress, count, emit_event
from medcurate.schemas.events import DeadLetter, Drop


class ListInputsFn(beam.DoFn):
    """One input pattern in; out, lazily, every path it names as (path bytes, skip reason).

    Inputs travel as (path bytes, skip reason): a file name that is not UTF-8 is a valid path,
    and Beam's string coder would refuse it."""

    def process(self, pattern: str) -> Iterator[tuple[bytes, str]]:
        for path in match_pattern(pattern):
            yield path.raw, path.skip or ""


def _parts(listed: tuple[bytes, str], part_bytes: int) -> Iterator[tuple[bytes, str, int, int]]:
    """A listed input as the (path, skip, part, parts) units its readers take."""
    parts = part_count(InputPath.from_raw(*listed), part_bytes)
    for part in range(parts):
        yield (*listed, part, parts)


class ReadSourceFn(beam.DoFn):
    """One part of a listed input in, its samples out; its dead letters to DEAD_LETTERS, skips to DROPS."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config

    def setup(self) -> None:
        self.progress = Progress(STAGE)

    def process(self, unit: tuple[bytes, str, int, int]) -> Iterator[Any]:
        raw, skip, part, parts = unit
        path = InputPath.from_raw(raw, skip)
        if not part:
            count("inputs")
        try:
            for item in read_source(path.uri, self.config, skip=path.skip, part=(part, parts)):
                yield emit_event(item) if isinstance(item, DeadLetter | Drop) else item
        except Exception as error:  # read_source already guards; this keeps one file from failing a bundle
            count("read")
            yield emit_event(DeadLetter.from_exception(STAGE, "read_error", display_uri(path.uri), error))
        self.progress.advance()


class IngestSources(beam.PTransform):
    """Matches `config.inputs` inside the pipeline (a pattern matching nothing still fails at
    construction), reads each path once, a large line-delimited file by several workers at once
    (`ingest.part_bytes`); outputs SAMPLES, DEAD_LETTERS and DROPS (inputs skipped with a reason).
    The job graph holds the patterns only, never the list of files."""

    def __init__(self, config: IngestConfig) -> None:
        super().__init__()
        self.config = config
        check_patterns(config.inputs)

    def expand(self, pbegin: PBegin) -> DoOutputsTuple:
        return (
            pbegin
            | "Patterns" >> beam.Create(list(dict.fromkeys(self.config.inputs)))
            | "MatchInputs" >> beam.ParDo(ListInputsFn())
            | "EachOnce" >> beam.Distinct()
            | "Parts" >> beam.FlatMap(_parts, self.config.part_bytes)
            | "SpreadInputs" >> beam.Reshuffle()
            | "ReadSources"
            >> beam.ParDo(ReadSourceFn(self.config)).with_outputs(DEAD_LETTERS, DROPS, main=SAMPLES)
        )
