"""The end-to-end curation pipeline: ingest → signals → de-identify → dedup → route → shards,
then validation and versioned publishing. Each stage lives in its own area; this wires them."""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from medcurate import __version__
from medcurate.annotators.beam import ApplyVerdicts, RouteForReview
from medcurate.cli import describe_error
from medcurate.config import RunConfig, config_hash, resolved_config
from medcurate.dedup.beam import DeduplicateSamples
from medcurate.dedup.multimodal import DropRepeatedImages
from medcurate.pipelines.ingest.beam import IngestSources
from medcurate.pipelines.ingest.studies import AssembleStudies
from medcurate.pipelines.options import pipeline_options
from medcurate.pipelines.stage import COUNTER_NAMESPACE, DEAD_LETTERS, DROPS, SAMPLES
from medcurate.privacy.beam import DeidentifySamples
from medcurate.privacy.text import deid_artifacts
from medcurate.quality.beam import ComputeSignals
from medcurate.quality.expectations import SUITE_NAME, validate_shards
from medcurate.quality.models import bundled_relevance_dir, describe, latest_artifact
from medcurate.schemas.events import counts_by_reason
from medcurate.schemas.manifest import Manifest, ShardInfo, StageCounts, ValidationInfo
from medcurate.schemas.sample import SAMPLE_SCHEMA, SCHEMA_VERSION, to_arrow_row
from medcurate.warehouse import locks, storage
from medcurate.warehouse.catalog import Catalog, catalog_path
from medcurate.warehouse.faults import fault_point
from medcurate.warehouse.publish import publish_version

if TYPE_CHECKING:
    from medcurate.annotators.push import PushResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    version_dir: str
    manifest: Manifest
    dead_letter_path: str
    report_dir: str
    pushed: PushResult | None = None
    warnings: tuple[str, ...] = ()


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


def code_version() -> str:
    """Package version, plus the git commit when running from a checkout (for reproducibility)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__


def stamp_provenance(
    sample: dict[str, Any], run_id: str, pipeline_version: str, hash_: str
) -> dict[str, Any]:
    return {**sample, "run_id": run_id, "pipeline_version": pipeline_version, "config_hash": hash_}


class WriteEvents(beam.PTransform):
    """Dead letters or drops as one JSON-lines file (they are small: ids and reason codes only)."""

    def __init__(self, path_prefix: str) -> None:
        super().__init__()
        self.path_prefix = path_prefix

    def expand(self, events):
        return (
            events
            | "ToJson" >> beam.Map(lambda event: json.dumps(event, sort_keys=True))
            | "Write"
            >> beam.io.WriteToText(self.path_prefix, file_name_suffix=".jsonl", shard_name_template="")
        )


def published_exact_hashes(config: RunConfig) -> set[str]:
    """Exact hashes already published in the datasets `dedup.against_published` names."""
    path = catalog_path(config.publish.output_dir, config.publish.catalog)
    if not config.dedup.against_published or not storage.exists(path):
        return set()
    with Catalog(path, read_only=True) as catalog:
        return set().union(*(catalog.exact_hashes(name) for name in config.dedup.against_published))


def quality_models(config: RunConfig) -> dict[str, str]:
    """Model folder per head: configured, else the latest `medcurate quality train` wrote beside the
    datasets, else the bundled bootstrap relevance model (which also stands in for quality)."""
    trained = storage.join(config.publish.output_dir, "models")
    relevance = (
        config.quality.relevance_model or latest_artifact(trained, "relevance") or bundled_relevance_dir()
    )
    quality = config.quality.quality_model or latest_artifact(trained, "quality") or relevance
    return {"relevance": str(relevance), "quality": str(quality)}


def build_pipeline(
    pipeline: beam.Pipeline,
    config: RunConfig,
    run_id: str,
    staging_dir: str,
    known_exact_hashes: set[str] | frozenset[str] = frozenset(),
    models: dict[str, str] | None = None,
) -> None:
    ingested = pipeline | "Ingest" >> IngestSources(config.ingest)
    studies = ingested[SAMPLES] | "AssembleStudies" >> AssembleStudies()
    models = models or quality_models(config)
    signals = studies[SAMPLES] | "Signals" >> ComputeSignals(
        config.quality, models["relevance"], models["quality"]
    )
    deidentified = signals[SAMPLES] | "Deidentify" >> DeidentifySamples(config.deid)
    repeats = deidentified[SAMPLES] | "DropRepeatedImages" >> DropRepeatedImages(
        config.dedup.max_image_repeats, config.ingest.multimodal.no_images_left
    )
    deduplicated = repeats[SAMPLES] | "Deduplicate" >> DeduplicateSamples(config.dedup, known_exact_hashes)
    reviewed = deduplicated[SAMPLES] | "ApplyVerdicts" >> ApplyVerdicts(config.review.reviews_dir)
    (
        reviewed[SAMPLES]
        | "Route" >> RouteForReview(config.review)
        | "Provenance" >> beam.Map(stamp_provenance, run_id, code_version(), config_hash(config))
        | "ToArrowRows" >> beam.Map(to_arrow_row)
        | "WriteShards"
        >> beam.io.WriteToParquet(
            storage.join(staging_dir, "data", "part"),
            schema=SAMPLE_SCHEMA,
            file_name_suffix=".parquet",
            codec=config.publish.compression,
            num_shards=config.publish.num_shards,
            row_group_buffer_size=config.publish.row_group_bytes,
        )
    )
    (
        (ingested[DEAD_LETTERS], signals[DEAD_LETTERS], deidentified[DEAD_LETTERS])
        | "AllDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters" >> WriteEvents(storage.join(staging_dir, "dead_letters"))
    )
    (
        (
            ingested[DROPS],
            studies[DROPS],
            signals[DROPS],
            deidentified[DROPS],
            repeats[DROPS],
            deduplicated[DROPS],
            reviewed[DROPS],
        )
        | "AllDrops" >> beam.Flatten()
        | "WriteDrops" >> WriteEvents(storage.join(staging_dir, "drops"))
    )


def _read_events(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in storage.read_text(path).splitlines() if line.strip()]


def _counters(result: beam.runners.runner.PipelineResult) -> Counter[str]:
    totals: Counter[str] = Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace(COUNTER_NAMESPACE))["counters"]:
        totals[counter.key.metric.name] += counter.committed or 0
    return totals


def _site_dictionary(config: RunConfig) -> dict[str, Any] | None:
    """Name, version and hashes of the run's site dictionary, loaded (and checked) before any work:
    a broken dictionary stops the run here rather than in every worker."""
    if not config.deid.site:
        return None
    from medcurate.privacy.site import SiteDictionary

    return SiteDictionary.load(config.deid.site).describe()


def run(config: RunConfig, beam_args: list[str] | None = None) -> RunResult:
    run_id = new_run_id()
    site = _site_dictionary(config)
    dataset_dir = storage.join(config.publish.output_dir, config.dataset)
    staging_dir = storage.join(dataset_dir, locks.STAGING, run_id)
    log.info("run %s: curating %s into %s", run_id, config.dataset, dataset_dir)
    with locks.live_run(dataset_dir, run_id):
        return _run(config, beam_args, run_id, site, dataset_dir, staging_dir)


def _run(
    config: RunConfig,
    beam_args: list[str] | None,
    run_id: str,
    site: dict[str, Any] | None,
    dataset_dir: str,
    staging_dir: str,
) -> RunResult:
    output_dir = config.publish.output_dir
    pipeline = beam.Pipeline(options=pipeline_options(config.runner, beam_args or []))
    # Resolved once: the manifest names exactly the models the run applied.
    models = quality_models(config)
    build_pipeline(pipeline, config, run_id, staging_dir, published_exact_hashes(config), models)
    result = pipeline.run()
    result.wait_until_finish()

    dead_letters = _read_events(storage.join(staging_dir, "dead_letters.jsonl"))
    drops = _read_events(storage.join(staging_dir, "drops.jsonl"))
    staged_shards = storage.glob(storage.join(staging_dir, "data", "part*.parquet"))
    hash_ = config_hash(config)
    validation = validate_shards(staged_shards, hash_)
    validation_path = storage.join(staging_dir, "validation.json")
    storage.write_text(validation_path, json.dumps(validation.results, indent=1, default=str))
    counters = _counters(result)

    def make_manifest(version: str, parent: str | None, shards: list[ShardInfo]) -> Manifest:
        rows = sum(s.rows for s in shards)
        return Manifest(
            dataset=config.dataset,
            version=version,
            parent=parent,
            run_id=run_id,
            created_at=datetime.now(UTC).isoformat(),
            code_version=code_version(),
            schema_version=SCHEMA_VERSION,
            config=resolved_config(config),
            config_hash=hash_,
            models={
                **deid_artifacts(config.deid),
                **{f"{head}_model": describe(folder) for head, folder in models.items()},
            },
            site_dictionary=site,
            shards=shards,
            rows=rows,
            counts=StageCounts(
                inputs=counters["inputs"],
                read=counters["read"],
                published=rows,
                dropped=counts_by_reason(drops),
                dead_lettered=counts_by_reason(dead_letters),
            ),
            validation=ValidationInfo(
                passed=validation.passed,
                suite=SUITE_NAME,
                results_path="validation/results.json",
                failed_expectations=validation.failed,
            ),
            review={
                k.removeprefix("review:"): v for k, v in sorted(counters.items()) if k.startswith("review:")
            },
        )

    version_dir, manifest = publish_version(
        staged_shards,
        validation_path,
        dataset_dir,
        catalog_path(output_dir, config.publish.catalog),
        make_manifest,
        config.publish.catalog_wait_s,
    )
    log.info("run %s: published %s", run_id, version_dir)

    # The version is published: what fails from here on is a warning, never a failed run.
    warnings: list[str] = []
    dead_letter_path = storage.join(output_dir, "dead_letter", config.dataset, f"{run_id}.jsonl")
    report_dir = storage.join(output_dir, "reports", config.dataset, run_id)

    def write_reports() -> None:
        storage.move(storage.join(staging_dir, "dead_letters.jsonl"), dead_letter_path)
        storage.move(storage.join(staging_dir, "drops.jsonl"), storage.join(report_dir, "drops.jsonl"))
        storage.write_text_atomic(
            storage.join(report_dir, "summary.json"), manifest.counts.model_dump_json(indent=2) + "\n"
        )

    _after_publish("reports", "writing the run reports", write_reports, warnings)

    def write_html_report() -> None:
        from medcurate.quality.report import build_report

        build_report(version_dir, report_dir)

    _after_publish("report_html", "writing the HTML run report", write_html_report, warnings)
    _after_publish(
        "cleanup", "removing the staging folder", lambda: storage.delete_tree(staging_dir), warnings
    )
    pushed = None
    if config.review.push_after_run and manifest.validation.passed:

        def push() -> None:
            nonlocal pushed
            pushed = _push_for_review(config, version_dir, manifest, report_dir)

        _after_publish("review_push", "pushing to review", push, warnings)
        if pushed is not None and pushed.left_in_outbox:
            warnings.append(
                f"review push: {pushed.left_in_outbox} task(s) kept in the outbox {config.review.outbox}"
                f" ({pushed.unreachable or 'not all sent'}); `medcurate review push` sends them later"
            )
    return RunResult(run_id, version_dir, manifest, dead_letter_path, report_dir, pushed, tuple(warnings))


def _after_publish(step: str, what: str, action: Callable[[], None], warnings: list[str]) -> None:
    """Runs one step after publishing; a failure becomes a warning line (the version stays published)."""
    try:
        fault_point(step)
        action()
    except Exception as error:
        log.debug("%s failed", what, exc_info=True)
        warnings.append(f"{what} failed: {describe_error(error)}")


def _push_for_review(config: RunConfig, version_dir: str, manifest: Manifest, report_dir: str) -> PushResult:
    from medcurate.annotators.push import pending_in_shards, push_samples

    shards = [storage.join(version_dir, shard.path) for shard in manifest.shards]
    pushed = push_samples(pending_in_shards(shards), config.review)
    storage.write_text(storage.join(report_dir, "review_push.json"), json.dumps(asdict(pushed), indent=2))
    return pushed
