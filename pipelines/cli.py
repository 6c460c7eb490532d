"""`medcurate run`: the end-to-end curation job."""

from __future__ import annotations

import argparse
import sys

from medcurate.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the curation pipeline and publish a new dataset version",
        description="Ingest, score, de-identify, deduplicate and route samples, then publish a validated, "
        "versioned Parquet dataset. Unrecognised --flags are passed to Apache Beam (e.g. Dataflow's "
        "--project, --region, --temp_location).",
        epilog="example: medcurate run --config configs/demo.yaml --set dedup.threshold=0.7",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML run config (defaults apply to what it omits)")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config key, e.g. --set quality.min_words=3 (repeatable)",
    )
    parser.add_argument(
        "--input", dest="inputs", metavar="PATH", action="append", help="input file, folder or glob"
    )
    parser.add_argument("--output", metavar="DIR", help="output folder (publish.output_dir)")
    parser.add_argument("--dataset", help="dataset name")
    parser.add_argument(
        "--runner",
        help="Beam runner: FnApiRunner (local, default), DaskRunner (a dask.distributed cluster: "
        "--dask_client_address=HOST:PORT, else a local cluster of worker processes) or DataflowRunner",
    )
    parser.set_defaults(handler=run_command, accepts_extra=True)


def _overrides(args: argparse.Namespace) -> list[str]:
    shortcuts = {"publish.output_dir": args.output, "dataset": args.dataset, "runner.name": args.runner}
    extra = [f"{key}={value}" for key, value in shortcuts.items() if value]
    if args.inputs:
        extra.append(f"ingest.inputs={list(args.inputs)!r}")
    return [*args.overrides, *extra]


def format_summary(result) -> str:
    counts = result.manifest.counts
    rows = [("read", counts.read), ("published", counts.published)]
    rows += [(f"dropped  {key}", n) for key, n in counts.dropped.items()]
    rows += [(f"dead letter  {key}", n) for key, n in counts.dead_lettered.items()]
    rows += [(f"review  {key}", n) for key, n in result.manifest.review.items()]
    width = max(len(label) for label, _ in rows)
    lines = [f"  {label:<{width}}  {n:>8,}" for label, n in rows]
    balance = "balanced" if counts.balanced else "NOT BALANCED: some samples are unaccounted for"
    validation = result.manifest.validation
    status = "passed" if validation.passed else "FAILED: " + ", ".join(validation.failed_expectations)
    return "\n".join(
        [
            f"run {result.run_id}: {result.manifest.dataset} {result.manifest.version}",
            *lines,
            f"  read = published + dropped + dead letters: {balance}",
            f"  validation: {status}",
            *(
                [
                    f"  pushed to review: {result.pushed.sent} sent, {result.pushed.left_in_outbox} in the outbox"
                ]
                if result.pushed
                else []
            ),
            f"  dead letters: {result.dead_letter_path}",
            f"  reports: {result.report_dir}",
            f"published: {result.version_dir}",
        ]
    )


def run_command(args: argparse.Namespace, extra: list[str]) -> int:
    """0 when a validated version was published, also when a later step (reports, the review push)
    failed: those print as warnings. Errors before the version is published fail the run."""
    from medcurate.config import ConfigError, load_config

    try:
        config = load_config(args.config, _overrides(args))
    except ConfigError as error:
        raise CliError(str(error)) from None
    if not config.ingest.inputs:
        raise CliError("no inputs: set ingest.inputs in the config or pass --input PATH")
    from medcurate.pipelines.curate import run

    result = run(config, extra)
    print(format_summary(result))
    for warning in result.warnings:
        print(f"medcurate: warning: {warning}", file=sys.stderr)
    return 0 if result.manifest.validation.passed and result.manifest.counts.balanced else 1
