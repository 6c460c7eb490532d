"""The end-to-end curation pipeline: ingest → signals → de-identify → dedup → route → shards,
then validation and versioned publishing. Each stage lives in its own area; this wires them."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.pvalue import TaggedOutput

from medcurate import __version__
from medcurate.annotators.beam import LeastSure, apply_and_count, route_and_count, uncertainty_by_kind
from medcurate.annotators.verdicts import is_settled, load_verdicts
from medcurate.cli import describe_error
from medcurate.config import RunConfig, config_hash, resolved_config
from medcurate.dedup.beam import (
    KNOWN,
    NODES,
    SHINGLES,
    Fingerprint,
    apply_decision,
    document_frequencies,
    set_exact_hash,
)
from medcurate.dedup.multimodal import drop_repeated_images, image_keys
from medcurate.dedup.plan import (
    ID_SCHEMA,
    IDS_PREFIX,
    KNOWN_PREFIX,
    KNOWN_SCHEMA,
    NODE_ROWS,
    NODE_SCHEMA,
    NODES_PREFIX,
    PlanDedupFn,
    dropped_ids,
    known_row,
    node_row,
    shard_verdicts,
)
from medcurate.pipelines.ingest.beam import IngestSources
from medcurate.pipelines.ingest.studies import AssembleStudies
from medcurate.pipelines.options import local_worker_environment, pipeline_options
from medcurate.pipelines.stage import COUNTER_NAMESPACE, DEAD_LETTERS, DROPS, SAMPLES, emit_event
from medcurate.pipelines.staged import (
    ShardWriter,
    StagedUnits,
    Unit,
    WriteJsonLinesFn,
    WriteRecordsFn,
    WriteStagedFn,
    plan_shards,
    read_unit,
)
from medcurate.privacy.beam import DeidentifySamples
from medcurate.quality.beam import ComputeSignals
from medcurate.quality.expectations import SUITE_NAME, validate_shards
from medcurate.quality.models import bundled_relevance_dir, describe, latest_artifact
from medcurate.schemas.events import Drop, counts_by_reason
from medcurate.schemas.manifest import Manifest, ShardInfo, StageCounts, ValidationInfo
from medcurate.schemas.sample import SCHEMA_VERSION
from medcurate.stages.base import release_shared_models
from medcurate.warehouse import locks, storage
from medcurate.warehouse.catalog import Catalog, PublishedHashes, catalog_path
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


EVENTS = "events"  # staging sub-folder of the per-bundle event files


def write_events(collections: list, staging_dir: str, kind: str) -> None:
    """Dead letters or drops (`kind`), each collection written where it is produced, one JSON-lines
    file per bundle under the staging folder's events/ (no shuffle: a local runner would hold every
    event in the command's memory until the last one arrived). `gather_events` joins them."""
    for index, events in enumerate(collections):
        _ = events | f"Write{kind.title().replace('_', '')}{index}" >> beam.ParDo(
            WriteJsonLinesFn(storage.join(staging_dir, EVENTS), kind)
        )


def gather_events(staging_dir: str, kind: str) -> str:
    """The per-bundle files of `write_events` copied into one staging file `kind`.jsonl (streamed);
    its path."""
    target = storage.join(staging_dir, f"{kind}.jsonl")
    storage.concatenate(sorted(storage.glob(storage.join(staging_dir, EVENTS, f"{kind}-*.jsonl"))), target)
    return target


def published_exact_hashes(config: RunConfig) -> PublishedHashes:
    """Exact hashes already published in the datasets `dedup.against_published` names: their shard
    paths, which each worker reads (never the hashes themselves in the command or a pickled DoFn)."""
    path = catalog_path(config.publish.output_dir, config.publish.catalog)
    if not config.dedup.against_published or not storage.exists(path):
        return PublishedHashes([])
    with Catalog(path, read_only=True) as catalog:
        return PublishedHashes(
            [shard for name in config.dedup.against_published for shard in catalog.latest_shards(name)]
        )


def quality_models(config: RunConfig) -> dict[str, str]:
    """Model folder per head: configured, else the latest `medcurate quality train` wrote beside the
    datasets, else the bundled bootstrap relevance model (which also stands in for quality)."""
    trained = storage.join(config.publish.output_dir, "models")
    relevance = (
        config.quality.relevance_model or latest_artifact(trained, "relevance") or bundled_relevance_dir()
    )
    quality = config.quality.quality_model or latest_artifact(trained, "quality") or relevance
    return {"relevance": str(relevance), "quality": str(quality)}


IDS = "ids"
CANDIDATES = "candidates"


class _PrepareForDedupFn(beam.DoFn):
    """A staged sample as deduplication sees it (images repeated across documents left out, as the
    final pass leaves them out); also its (id, position), and its active-learning record."""

    def __init__(self, no_images_left: str, budgets: dict[str, int]) -> None:
        self.no_images_left = no_images_left
        self.budgets = budgets

    def setup(self) -> None:
        release_shared_models()  # every model user ran before this pass (its input waits on them)
        self._repeated: tuple[list[str] | None, frozenset[str]] = (None, frozenset())

    def process(self, staged: tuple[str, dict[str, Any]], repeated: list[str]) -> Iterator[Any]:
        position, sample = staged
        if self._repeated[0] is not repeated:  # the side input is the same list for a whole bundle
            self._repeated = (repeated, frozenset(repeated))
        result = drop_repeated_images(sample, self._repeated[1], self.no_images_left)
        if not isinstance(result, Drop):  # a Drop: the final pass drops it and records why
            yield result
            yield TaggedOutput(IDS, (result["id"], position))
            for record in uncertainty_by_kind(result, self.budgets):
                yield TaggedOutput(CANDIDATES, record)


class _RoutableFn(beam.DoFn):
    """Active-learning records of samples that survive deduplication and have no settled verdict."""

    def __init__(self, reviews_dir: str) -> None:
        self.reviews_dir = reviews_dir

    def setup(self) -> None:
        self.verdicts = load_verdicts(self.reviews_dir)
        self.dropped: tuple[str | None, frozenset[str]] = (None, frozenset())

    def process(self, record: tuple[str, tuple], verdicts_path: str) -> Iterator[tuple[str, tuple]]:
        if self.dropped[0] != verdicts_path:  # read once per worker: the ids dedup drops
            self.dropped = (verdicts_path, dropped_ids(verdicts_path))
        sample_id = record[1][1]
        if sample_id not in self.dropped[1] and not is_settled(self.verdicts.get(sample_id)):
            yield record


class _SelectFn(beam.DoFn):
    """One output shard: its staged row groups read back, each sample's decisions applied (repeated
    images, dedup, physicians' verdicts, review routing, provenance), the kept samples written."""

    def __init__(self, config: RunConfig, data_dir: str, provenance: tuple[str, str, str]) -> None:
        self.config = config
        self.data_dir = data_dir
        self.provenance = provenance

    def setup(self) -> None:
        self.verdicts = load_verdicts(self.config.review.reviews_dir)

    def process(
        self,
        shard: tuple[int, int, list[Unit]],
        verdicts_path: str,
        repeated: list[str],
        picked: list[str],
    ) -> Iterator[Any]:
        index, count_, units = shard
        config = self.config
        repeated_keys, uncertain = frozenset(repeated), frozenset(picked)
        # Dedup's verdicts on this shard's rows only, by staged position.
        verdicts = shard_verdicts(verdicts_path, {unit[0].rsplit("/", 1)[-1] for unit in units})
        writer = ShardWriter(
            storage.join(self.data_dir, f"part-{index:05d}-of-{count_:05d}.parquet"),
            config.publish.compression,
            config.publish.row_group_bytes,
        )
        for unit in units:
            for position, staged in read_unit(unit):
                result = drop_repeated_images(staged, repeated_keys, config.ingest.multimodal.no_images_left)
                if not isinstance(result, Drop):
                    set_exact_hash(result, config.dedup.image_hamming_radius)
                    result = apply_decision(result, *verdicts.get(position, (None, False)))
                if not isinstance(result, Drop):
                    result = apply_and_count(result, self.verdicts)
                if isinstance(result, Drop):
                    yield emit_event(result)
                    continue
                routed = route_and_count(result, config.review, uncertain)
                writer.write(stamp_provenance(routed, *self.provenance))
        writer.close()


def build_pipeline(
    pipeline: beam.Pipeline,
    config: RunConfig,
    run_id: str,
    staging_dir: str,
    known_exact_hashes: PublishedHashes | frozenset[str] = frozenset(),
    models: dict[str, str] | None = None,
) -> None:
    """Per-sample stages stream to staged Parquet (`pipelines.staged`); deduplication writes its
    node records (with payloads), (id, position) pairs and published ids beside them and decides
    out of core (`dedup.plan`), into one verdicts file that the final pass reads per shard, so
    nothing of it crosses a shuffle; repeated images and active learning shuffle only ids and keys;
    drops and dead letters are written per bundle; the final pass reads the staged row groups back
    and writes the published shards. Whole samples never cross a shuffle (except the parts of DICOM
    studies, which are joined into one sample)."""
    models = models or quality_models(config)
    ingested = pipeline | "Ingest" >> IngestSources(config.ingest)
    studies = ingested[SAMPLES] | "AssembleStudies" >> AssembleStudies(merge=False)
    dead_letters = [ingested[DEAD_LETTERS]]
    drops = [ingested[DROPS], studies[DROPS]]
    staged_paths, image_keys_found = [], []
    for branch, samples in zip(("Notes", "Studies"), studies[SAMPLES], strict=True):
        signals = samples | f"{branch}Signals" >> ComputeSignals(
            config.quality, models["relevance"], models["quality"]
        )
        deidentified = signals[SAMPLES] | f"{branch}Deidentify" >> DeidentifySamples(config.deid)
        staged_paths.append(
            deidentified[SAMPLES]
            | f"{branch}Stage"
            >> beam.ParDo(WriteStagedFn(storage.join(staging_dir, "samples"), branch.lower()))
        )
        image_keys_found.append(
            deidentified[SAMPLES]
            | f"{branch}ImageKeys" >> beam.FlatMap(lambda sample: [(key, 1) for key in image_keys(sample)])
        )
        dead_letters += [signals[DEAD_LETTERS], deidentified[DEAD_LETTERS]]
        drops += [signals[DROPS], deidentified[DROPS]]

    repeated = beam.pvalue.AsList(
        image_keys_found
        | "AllImageKeys" >> beam.Flatten()
        | "CountDocuments" >> beam.CombinePerKey(sum)
        | "Repeated" >> beam.Filter(lambda item, limit: item[1] > limit, config.dedup.max_image_repeats)
        | "RepeatedKeys" >> beam.Keys()
    )
    units = staged_paths | "StagedPaths" >> beam.Flatten() | "StagedUnits" >> StagedUnits()
    budgets = config.review.active_budget_by_kind
    prepared = (
        units
        | "ReadForDedup" >> beam.FlatMap(read_unit)
        | "PrepareForDedup"
        >> beam.ParDo(
            _PrepareForDedupFn(config.ingest.multimodal.no_images_left, budgets), repeated
        ).with_outputs(IDS, CANDIDATES, main=SAMPLES)
    )
    fingerprinted = prepared[SAMPLES] | "Fingerprint" >> Fingerprint(config.dedup, known_exact_hashes)
    # Node records (with the texts' verification payloads), (id, position) pairs and the ids of
    # samples already published go to small Parquet files, not through Beam's shuffles (held in
    # memory on a local runner): deduplication decides from them out of core (dedup.plan) and
    # writes one verdicts file, which the final pass reads for its own shard's rows.
    plan_dir = storage.join(staging_dir, "dedup")
    verdicts = beam.pvalue.AsSingleton(
        (
            fingerprinted[NODES]
            | "WriteNodes"
            >> beam.ParDo(WriteRecordsFn(plan_dir, NODES_PREFIX, NODE_SCHEMA, node_row, NODE_ROWS)),
            prepared[IDS] | "WriteIds" >> beam.ParDo(WriteRecordsFn(plan_dir, IDS_PREFIX, ID_SCHEMA)),
            fingerprinted[KNOWN]
            | "WriteKnown" >> beam.ParDo(WriteRecordsFn(plan_dir, KNOWN_PREFIX, KNOWN_SCHEMA, known_row)),
        )
        | "PlanFiles" >> beam.Flatten()
        | "AllPlanFiles" >> beam.combiners.ToList()
        | "Deduplicate"
        >> beam.ParDo(
            PlanDedupFn(config.dedup, plan_dir),
            document_frequencies(fingerprinted[SHINGLES], config.dedup.df_sketch_bits),
        )
    )
    if any(budgets.values()):
        picked = (
            prepared[CANDIDATES]
            | "Routable" >> beam.ParDo(_RoutableFn(config.review.reviews_dir), verdicts)
            | "LeastSure" >> LeastSure(budgets)
        )
    else:
        picked = pipeline | "NoActiveLearning" >> beam.Create([])
    provenance = (run_id, code_version(), config_hash(config))
    selected = (
        units
        | "AllUnits" >> beam.combiners.ToList()
        | "PlanShards" >> beam.FlatMap(plan_shards, config.publish.num_shards)
        | "SpreadShards" >> beam.Reshuffle()
        | "WriteShards"
        >> beam.ParDo(
            _SelectFn(config, storage.join(staging_dir, "data"), provenance),
            verdicts,
            repeated,
            beam.pvalue.AsList(picked),
        ).with_outputs(DROPS, main=SAMPLES)
    )
    drops.append(selected[DROPS])
    write_events(dead_letters, staging_dir, "dead_letters")
    write_events(drops, staging_dir, "drops")


def _events_by_reason(path: str) -> dict[str, int]:
    """Events of a JSON-lines file counted by reason, read line by line (never all held at once)."""
    with storage.open_read(path) as handle:
        return counts_by_reason(
            json.loads(line) for line in io.TextIOWrapper(handle, "utf-8") if line.strip()
        )


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
    with local_worker_environment(config.runner):
        result = pipeline.run()
        result.wait_until_finish()

    # Imported once the workers are done, not before: it pulls in spaCy (and torch where allowed),
    # which the driver needs only to name the tagger in the manifest, not while it runs the workers.
    from medcurate.privacy.text import deid_artifacts

    dead_lettered = _events_by_reason(gather_events(staging_dir, "dead_letters"))
    dropped = _events_by_reason(gather_events(staging_dir, "drops"))
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
                dropped=dropped,
                dead_lettered=dead_lettered,
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
