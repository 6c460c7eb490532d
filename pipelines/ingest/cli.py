"""`medcurate ingest INPUT... --output OUT_DIR`: ingestion alone, the same core the pipeline runs.

Writes OUT_DIR/samples/part-NNNNN.parquet (the sample schema), OUT_DIR/dead_letters.jsonl and
OUT_DIR/drops.jsonl (inputs skipped, with the reason), and prints how many inputs were listed,
samples written, dead letters and skips by reason (counts only: file names can identify a patient).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

# A part is flushed when it holds this many samples or this many bytes of text and images.
PART_ROWS = 10_000
PART_BYTES = 128 * 1024 * 1024


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="read sources into samples (Parquet) and dead letters (JSONL), without the rest of the pipeline",
        description="Read WARC/HTML, images/DICOM and clinical notes/FHIR into samples of the sample schema.",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="files, folders or globs (any Beam filesystem)"
    )
    parser.add_argument("--output", "-o", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--config", type=Path, help="run config YAML; its `ingest` section applies")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="e.g. ingest.max_text_chars=100000",
    )
    parser.set_defaults(handler=run_ingest)


def run_ingest(args: argparse.Namespace, extra: list[str]) -> int:
    from medcurate.cli import CliError
    from medcurate.config import ConfigError, load_config
    from medcurate.pipelines.ingest.sources import NoInputError, list_inputs, read_source
    from medcurate.schemas.events import DeadLetter, Drop

    try:
        config = load_config(args.config, args.overrides).ingest
        inputs = list_inputs(args.inputs)
    except (ConfigError, NoInputError) as error:
        raise CliError(str(error)) from None
    samples_dir = args.output / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    writer = _PartWriter(samples_dir)
    dead_by_reason: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    with (
        (args.output / "dead_letters.jsonl").open("w", encoding="utf-8") as dead_letters,
        (args.output / "drops.jsonl").open("w", encoding="utf-8") as drops,
    ):
        for path in inputs:
            items = read_source(path.uri, config, lambda reason: skipped.update([reason]), path.skip)
            for item in items:
                if isinstance(item, DeadLetter):
                    dead_by_reason[item.reason] += 1
                    dead_letters.write(json.dumps(item.to_dict()) + "\n")
                elif isinstance(item, Drop):
                    skipped[item.reason] += 1
                    drops.write(json.dumps(item.to_dict()) + "\n")
                else:
                    writer.add(item)
    writer.close()
    print(f"inputs: {len(inputs)}  samples: {writer.rows}  dead letters: {sum(dead_by_reason.values())}")
    for reason, n in sorted(dead_by_reason.items()):
        print(f"  dead letter {reason}: {n}")
    for reason, n in sorted(skipped.items()):
        print(f"  skipped {reason}: {n}")
    return 0


class _PartWriter:
    """Buffers samples and writes them as numbered Parquet parts of bounded size."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.buffer: list[dict[str, Any]] = []
        self.buffered_bytes = 0
        self.parts = 0
        self.rows = 0

    def add(self, sample: dict[str, Any]) -> None:
        self.buffer.append(sample)
        self.buffered_bytes += len(sample.get("text") or "") + len(sample.get("image_bytes") or b"")
        if len(self.buffer) >= PART_ROWS or self.buffered_bytes >= PART_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        import pyarrow.parquet as pq

        from medcurate.schemas.sample import samples_to_table

        pq.write_table(samples_to_table(self.buffer), self.folder / f"part-{self.parts:05d}.parquet")
        self.parts += 1
        self.rows += len(self.buffer)
        self.buffer, self.buffered_bytes = [], 0

    def close(self) -> None:
        self.flush()
