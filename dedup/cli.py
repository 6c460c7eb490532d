"""`medcurate dedup text|images`: dedup over files.

Text inputs that fit in memory (up to `local_max_bytes`) run the stage's pure core in this process
(`dedup.core`, no Beam import: the whole command's cold start counts); larger ones run the Beam
transform in process. Images always run the core unless `--runner beam` (it keeps only hashes).
Both paths give the same clusters.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medcurate.cli import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dedup", help="exact and near-duplicate clusters of texts or images")
    commands = parser.add_subparsers(dest="dedup_command", metavar="KIND", required=True)

    text = commands.add_parser("text", help="cluster JSONL records with `id` and `text`")
    text.add_argument("--input", required=True, type=Path, help="JSONL, one {id, text} per line")
    text.add_argument("--output", required=True, type=Path, help="JSONL, one {id, cluster, keep} per line")
    text.add_argument("--threshold", type=float, help="estimated Jaccard for near-duplicates")
    text.add_argument("--shingle", choices=("char", "word"))
    text.add_argument("--ngram", type=int)
    text.add_argument("--num-perm", type=int)
    text.add_argument(
        "--citations",
        action="store_true",
        default=None,
        help="texts are bibliographic records: citation clean-up before comparison",
    )
    text.add_argument(
        "--numbers-missing", type=int, help="digit runs of the smaller set that may be missing in the other"
    )
    text.add_argument(
        "--numbers-year-slack",
        type=int,
        help="years this far apart count as shared beside another shared number (online-first and print)",
    )
    _runner(text, "auto: local when the input fits (dedup.local_max_bytes)")
    text.set_defaults(handler=run_text)

    images = commands.add_parser("images", help="cluster image files (PNG, JPEG, DICOM...)")
    images.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    images.add_argument("--output", required=True, type=Path, help="JSONL, one {id, cluster, keep} per line")
    images.add_argument("--radius", type=int, help="Hamming radius of perceptual hashes")
    _runner(images, "auto: local (it keeps only hashes, one image decoded at a time)")
    images.set_defaults(handler=run_images)


def _runner(parser: argparse.ArgumentParser, auto: str) -> None:
    parser.add_argument(
        "--runner",
        choices=("auto", "local", "beam"),
        default="auto",
        help=f"local: the in-process core; beam: the Beam transform; {auto}",
    )


def _config(**overrides: Any):
    from pydantic import ValidationError

    from medcurate.dedup.config import DedupConfig

    try:
        return DedupConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        raise CliError(
            f"invalid dedup options: {error.errors()[0]['loc'][0]}: {error.errors()[0]['msg']}"
        ) from None


def _write(path: Path, rows: list[dict[str, Any]]) -> int:
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    print(f"{len(rows)} records, {sum(row['keep'] for row in rows)} kept -> {path}")
    return 0


def _read_records(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise CliError(f"cannot read {path}: {type(error).__name__}") from None
    records, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise CliError(f"{path}:{number}: not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "id" not in record:
            raise CliError(f"{path}:{number}: needs `id` and a string `text`")
        record_id = str(record["id"])
        if record_id in seen:
            raise CliError(f"{path}:{number}: duplicate id")
        seen.add(record_id)
        records.append({"id": record_id, "text": record["text"], "line": number})
    return records


def run_text(args: argparse.Namespace, extra: list[str]) -> int:
    config = _config(
        threshold=args.threshold,
        shingle=args.shingle,
        ngram=args.ngram,
        num_perm=args.num_perm,
        citations=args.citations,
        numbers_missing=args.numbers_missing,
        numbers_year_slack=args.numbers_year_slack,
    )
    runner = getattr(args, "runner", "auto")
    if runner == "auto":
        try:
            size = args.input.stat().st_size
        except OSError as error:
            raise CliError(f"cannot read {args.input}: {type(error).__name__}") from None
        runner = "local" if size <= config.local_max_bytes else "beam"
    records = _read_records(args.input)
    if runner == "local":
        from medcurate.dedup.core import assign_text_clusters

        ids, texts = [r["id"] for r in records], [r["text"] for r in records]
        return _write(args.output, assign_text_clusters(ids, texts, config))

    from medcurate.dedup.beam import assign_clusters
    from medcurate.schemas.sample import new_sample

    samples = [
        new_sample(
            id=r["id"],
            source_kind="web",
            modality="text",
            source_uri=f"{args.input}#{r['line']}",
            text=r["text"],
        )
        for r in records
    ]
    return _write(args.output, assign_clusters(samples, config))


def run_images(args: argparse.Namespace, extra: list[str]) -> int:
    config = _config(image_hamming_radius=args.radius)
    ids = [str(path) for path in args.inputs]
    if len(set(ids)) != len(ids):
        raise CliError(f"duplicate input: {next(i for i in ids if ids.count(i) > 1)}")

    def read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as error:
            raise CliError(f"cannot read {path}: {type(error).__name__}") from None

    if getattr(args, "runner", "auto") in ("auto", "local"):
        from medcurate.dedup.core import assign_image_clusters

        return _write(args.output, assign_image_clusters(ids, map(read, args.inputs), config))

    from medcurate.dedup.beam import assign_clusters
    from medcurate.schemas.sample import new_sample

    samples = [
        new_sample(id=i, source_kind="image", modality="image", source_uri=i, image_bytes=read(path))
        for i, path in zip(ids, args.inputs, strict=True)
    ]
    return _write(args.output, assign_clusters(samples, config))
