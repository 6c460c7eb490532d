"""DeduplicateSamples: exact and near-duplicate removal as a Beam transform.

Only small records cross the shuffles: a node key (rank + exact-hash prefix + sample id, about 70
bytes), band keys (10 bytes each), a MinHash signature (4 bytes per permutation, shuffled twice for
candidate verification) or a 64-bit pHash. Texts and image bytes stay in the samples, which are
joined back to their keep/drop decision by id once, at the end.

The node key sorts best-first (highest quality, then longest, then smallest exact hash and id), so
the smallest key of a connected component, which connected components find anyway, is its keeper.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.pvalue import TaggedOutput

from medcurate.dedup import lsh
from medcurate.dedup.boilerplate import (
    DocumentFrequencies,
    DocumentFrequency,
    TextVerifier,
    number_set,
    pack_payload,
    unpack_payloads,
)
from medcurate.dedup.clusters import ConnectedComponents
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.core import EXACT, NEAR, image_fingerprint, key_exact, key_id, node_key, stars
from medcurate.dedup.multimodal import document_hash, image_set_key
from medcurate.dedup.normalize import exact_text_hash, normalize_citation
from medcurate.dedup.notices import NoticeFinder
from medcurate.pipelines.stage import DROPS, SAMPLES, Progress, count, emit_event
from medcurate.schemas.events import Drop
from medcurate.schemas.sample import Modality
from medcurate.warehouse.catalog import PublishedHashes

STAGE = "dedup"
NODES = "nodes"
KNOWN = "known"
SHINGLES = "shingles"
ASSIGNMENTS = "assignments"
CANDIDATE_PAYLOADS = "candidate_payloads"
__all__ = ["EXACT", "NEAR", "DeduplicateSamples", "assign_clusters", "key_exact", "key_id", "node_key"]


class _DocumentFrequencyFn(DocumentFrequency, beam.CombineFn):
    """The document-frequency sketch as a Beam CombineFn (lifted: only sketches cross a shuffle)."""


def set_exact_hash(sample: dict[str, Any], radius: int) -> tuple[str, int, list[bytes]]:
    """Sets the sample's exact hash (and an image's pHash); returns (exact hash, size, image bands).

    Pure and repeatable, so a later pass over staged samples sets the same fields again."""
    if sample["modality"] == Modality.IMAGE:
        exact, size, phash, bands = image_fingerprint(
            sample["image_bytes"] or b"", radius, sample["image_phash"]
        )
        sample["image_phash"] = phash
    else:
        (exact, size), bands = exact_text_hash(sample["text"] or ""), []
        if sample["modality"] == Modality.MULTIMODAL:
            exact = document_hash(exact, sample)  # same text, other images: not a duplicate
    sample["exact_hash"] = exact
    return exact, size, bands


class _Fingerprint(beam.DoFn):
    """Per batch: exact hashes, MinHash signatures and band keys, pHashes; one node record per sample."""

    def __init__(self, config: DedupConfig, known_exact_hashes: Container[str]) -> None:
        self.config = config
        self.known = known_exact_hashes

    def setup(self) -> None:
        self.hasher = self.config.hasher()
        self.bands, self.rows = lsh.optimal_bands(self.config.threshold, self.config.num_perm)
        self.notices = NoticeFinder(
            self.config.notice_kinds if self.config.notices else {}, self.config.notice_scope
        )
        self.progress = Progress(STAGE)

    def process(self, batch: list[dict[str, Any]]) -> Iterator[Any]:
        yield from self.fingerprint(batch)
        self.progress.advance(len(batch))

    def fingerprint(self, batch: list[dict[str, Any]]) -> Iterator[Any]:
        """The outputs of `process`, without progress reporting."""
        texts = []
        for sample in batch:
            exact, size, bands = set_exact_hash(sample, self.config.image_hamming_radius)
            phash = sample["image_phash"] if sample["modality"] == Modality.IMAGE else None
            if sample["modality"] == Modality.IMAGE and not bands:
                count("dedup/image_undecodable")
            yield sample
            if exact in self.known:
                yield TaggedOutput(KNOWN, (sample["id"], (sample["id"], 1, EXACT)))
                continue
            key = node_key(sample["id"], sample["quality_score"], size, exact)
            if sample["modality"] == Modality.IMAGE:
                # Undecodable images carry no pHash: they only join byte-identical twins.
                yield TaggedOutput(NODES, (key, sample["modality"], exact, bands, phash if bands else None))
            else:
                texts.append((key, sample["modality"], exact, sample["text"] or "", image_set_key(sample)))
        if texts:
            if self.config.citations:
                texts = [(*head, normalize_citation(text), images) for *head, text, images in texts]
            bodies = [text for *_, text, _ in texts]
            empty = np.empty(0, dtype=np.uint32)
            if self.config.boilerplate or self.config.verify != "estimate":
                signatures, shingles = self.hasher.signatures_and_shingles(bodies)
            else:
                signatures, shingles = self.hasher.signatures(bodies), [empty] * len(bodies)
            if self.config.boilerplate:
                yield TaggedOutput(SHINGLES, (len(texts), np.concatenate(shingles)))
            if self.config.verify == "estimate":
                shingles = [empty] * len(bodies)
            band_keys = lsh.text_band_keys(signatures, self.bands, self.rows)
            for (key, modality, exact, text, images_key), sig, own, row in zip(
                texts, signatures, shingles, band_keys, strict=True
            ):
                # A document's bands carry its image set: near-duplicates share text and images.
                bands = [
                    b"t" + images_key + bytes([i]) + int(v).to_bytes(8, "little") for i, v in enumerate(row)
                ]
                if modality == Modality.MULTIMODAL and not text.strip():
                    bands = []  # images without text (a study without report): equal only when exact
                numbers = number_set(text) if self.config.compares_numbers else empty
                payload = pack_payload(sig, own, numbers, self.notices.kind(text))
                yield TaggedOutput(NODES, (key, modality, exact, bands, payload))


def _star_to_min(group: tuple[Any, Iterable[str]]) -> Iterator[tuple[str, str]]:
    members = sorted(set(group[1]))
    count("dedup/exact_edges", len(members) - 1)
    for other in members[1:]:
        yield members[0], other


def _candidates(bucket: tuple[bytes, Iterable[str]]) -> list[tuple[str, str]]:
    pairs = lsh.candidate_pairs(bucket[1])
    count("dedup/candidate_pairs", len(pairs))
    return pairs


def _both_ends(pair: tuple[str, str]) -> Iterator[tuple[str, str | None]]:
    """A candidate pair keyed by its first node (which sends its payload to the second), and a
    marker (None) keyed by its second node (which then sends its own payload once)."""
    yield pair
    yield pair[1], None


def _send_payloads(joined: tuple[str, dict[str, list]]) -> Iterator[Any]:
    """For a node in some candidate pair: its payload to each pair's second node (tagged with its
    key), to itself if it is a second node (tagged None), and to `CANDIDATE_PAYLOADS` for the
    final decisions. Nodes in no pair send nothing: their payloads never cross another shuffle."""
    key, parts = joined
    others = [other for other in parts["pair"] if other is not None]
    target = len(others) < len(parts["pair"])
    for payload in parts["sig"] if others or target else ():
        for other in others:
            yield other, (key, payload)
        if target:
            yield key, (None, payload)
        yield TaggedOutput(CANDIDATE_PAYLOADS, (key, (False, payload)))


def _verify(verifier: TextVerifier):
    def verify(
        joined: tuple[str, Iterable[tuple[str | None, bytes]]], frequencies: DocumentFrequencies
    ) -> Iterator[tuple[str, str]]:
        key, received = joined
        received = list(received)
        candidates = [(other, payload) for other, payload in received if other is not None]
        for payload in [payload for other, payload in received if other is None] if candidates else ():
            signatures, sets, numbers, kinds = unpack_payloads(
                [payload, *(theirs for _, theirs in candidates)], verifier.config.num_perm
            )
            others = np.arange(1, len(candidates) + 1)
            close = verifier.close(frequencies, signatures, sets, 0, others, numbers, kinds)
            count("dedup/verified_edges", int(close.sum()))
            count("dedup/candidates_rejected", int((~close).sum()))
            for (other, _), verified in zip(candidates, close, strict=True):
                if verified:
                    yield other, key

    return verify


def _payload(node: tuple) -> tuple[str, tuple[bool, Any]]:
    """(node key, (is an image, payload)): what the final decision needs of a node."""
    return node[0], (node[1] == Modality.IMAGE, node[4])


def _attach_payload(joined: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[str, bool, Any]]]:
    key, parts = joined
    for root in parts["root"]:
        for is_image, payload in parts["payload"]:
            yield root, (key, is_image, payload)


def star_decisions(verifier: TextVerifier, radius: int):
    """Component -> verified stars -> (sample id, (cluster id, cluster size, drop reason or None)).
    The component: (its root, unused; its members as (node key, is an image, payload or pHash))."""

    def decide(
        group: tuple[str, Iterable[tuple[str, bool, Any]]], frequencies: DocumentFrequencies
    ) -> Iterator[tuple[str, tuple]]:
        members = sorted(group[1])
        keys = [key for key, _, _ in members]
        count("dedup/component_members", len(keys))
        exact = np.array([key_exact(key) for key in keys], dtype=object)
        if members[0][1]:
            # Undecodable images have no pHash: they only join byte-identical twins.
            decoded = np.array([payload is not None for *_, payload in members], dtype=bool)
            hashes = np.array([payload or 0 for *_, payload in members], dtype=np.uint64)

            def close_to(centre: int, rest: np.ndarray) -> np.ndarray:
                near = np.bitwise_count(hashes[rest] ^ hashes[centre]) <= radius
                return (exact[rest] == exact[centre]) | (near & decoded[rest] & decoded[centre])

        else:
            sigs, sets, numbers, kinds = unpack_payloads(
                [payload for *_, payload in members], verifier.config.num_perm
            )

            def close_to(centre: int, rest: np.ndarray) -> np.ndarray:
                # Exact twins always belong together, also when they have no shingles at all.
                return (exact[rest] == exact[centre]) | verifier.close(
                    frequencies, sigs, sets, centre, rest, numbers, kinds
                )

        for star in stars(len(keys), close_to):
            centre = keys[star[0]]
            for index in star:
                member = keys[index]
                if member == centre:
                    reason = None
                else:
                    reason = EXACT if key_exact(member) == key_exact(centre) else NEAR
                yield key_id(member), (key_id(centre), len(star), reason)

    return decide


def apply_decision(
    sample: dict[str, Any], decision: tuple[str, int, str | None] | None, repeat: bool = False
) -> dict[str, Any] | Drop:
    """The kept sample with its cluster fields set, or its Drop. No decision: a cluster of its own;
    `repeat`: a second copy of the same source record (same id), which goes as an exact duplicate."""
    cluster, size, reason = decision or (sample["id"], 1, None)
    drop_reason = reason or (EXACT if repeat else None)
    if drop_reason:
        return Drop(STAGE, drop_reason, sample["source_uri"], sample["id"])
    sample["dedup_cluster"] = cluster
    sample["dedup_cluster_size"] = size
    count("dedup/kept")
    return sample


def _apply(joined: tuple[str, dict[str, list]]) -> Iterator[Any]:
    sample_id, parts = joined
    decisions = parts["decision"]
    for index, sample in enumerate(parts["sample"]):
        # The same id twice is the same source record read twice: keep one.
        result = apply_decision(sample, decisions[0] if decisions else None, repeat=index > 0)
        kept = not isinstance(result, Drop)
        cluster = result["dedup_cluster"] if kept else (decisions[0][0] if decisions else sample_id)
        yield TaggedOutput(ASSIGNMENTS, {"id": sample["id"], "cluster": cluster, "keep": kept})
        yield result if kept else emit_event(result)


class DeduplicateSamples(beam.PTransform):
    """Samples -> DoOutputsTuple: SAMPLES (one keeper per cluster, cluster fields set) and DROPS.

    ASSIGNMENTS carries `{"id", "cluster", "keep"}` for every sample, for reports and the CLI.

    `known_exact_hashes` are exact hashes already published (from the catalog): samples with one
    of them are dropped as exact duplicates and take no part in clustering.
    """

    def __init__(self, config: DedupConfig, known_exact_hashes: Iterable[str] = ()) -> None:
        super().__init__()
        self.config = config
        self.known = frozenset(known_exact_hashes)

    def expand(self, samples):
        fingerprinted = samples | "Fingerprint" >> Fingerprint(self.config, self.known)
        decisions = small_records(fingerprinted) | "Decisions" >> ClusterDecisions(self.config)
        keyed = fingerprinted[SAMPLES] | "ById" >> beam.Map(lambda s: (s["id"], s))
        applied = (
            {"sample": keyed, "decision": decisions}
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "Apply" >> beam.FlatMap(_apply).with_outputs(DROPS, ASSIGNMENTS, main=SAMPLES)
        )
        return applied


class Fingerprint(beam.PTransform):
    """Samples -> DoOutputsTuple: SAMPLES (exact hash set), and the small records clustering needs:
    NODES, KNOWN (samples already published) and SHINGLES (document-frequency sketches)."""

    def __init__(self, config: DedupConfig, known_exact_hashes: Iterable[str] | PublishedHashes = ()) -> None:
        super().__init__()
        self.config = config
        # Published hashes are read by each worker (only their shard paths are pickled).
        self.known: Container[str] = (
            known_exact_hashes
            if isinstance(known_exact_hashes, PublishedHashes)
            else frozenset(known_exact_hashes)
        )

    def expand(self, samples):
        cfg = self.config
        return (
            samples
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=cfg.batch_size)
            | "Fingerprint"
            >> beam.ParDo(_Fingerprint(cfg, self.known)).with_outputs(NODES, KNOWN, SHINGLES, main=SAMPLES)
        )


def small_records(fingerprinted) -> dict[str, beam.PCollection]:
    """What `ClusterDecisions` takes from `Fingerprint`'s outputs (never the samples)."""
    return {tag: fingerprinted[tag] for tag in (NODES, KNOWN, SHINGLES)}


def document_frequencies(shingles, bits: int):
    """The document-frequency sketch of all texts, as a side input."""
    return beam.pvalue.AsSingleton(
        shingles | "DocumentFrequency" >> beam.CombineGlobally(_DocumentFrequencyFn(bits))
    )


def _verified_edges(pairs, signatures, verifier: TextVerifier, frequencies):
    """Candidate pairs and the candidates' (node key, payload) -> (verified edges, the candidates'
    (node key, (False, payload)) for the final decisions)."""
    ends = pairs | "BothEnds" >> beam.FlatMap(_both_ends)
    sent = (
        {"sig": signatures, "pair": ends}
        | "JoinFirst" >> beam.CoGroupByKey()
        | "SendPayloads" >> beam.FlatMap(_send_payloads).with_outputs(CANDIDATE_PAYLOADS, main="sent")
    )
    verified = (
        sent["sent"]
        | "JoinSecond" >> beam.GroupByKey()
        | "Verify" >> beam.FlatMap(_verify(verifier), frequencies)
    )
    return verified, sent[CANDIDATE_PAYLOADS]


def _component_decisions(
    edges: list, payloads, verifier: TextVerifier, frequencies, cfg: DedupConfig, pipeline
):
    """Edges and the payloads of the nodes on them -> (sample id, (cluster id, size, drop reason))."""
    roots = (
        edges
        | "Edges" >> beam.Flatten(pipeline=pipeline)
        | "Components" >> ConnectedComponents(cfg.cc_rounds)
    )
    return (
        {"root": roots, "payload": payloads}
        | "JoinPayloads" >> beam.CoGroupByKey()
        | "ByRoot" >> beam.FlatMap(_attach_payload)
        | "GroupComponents" >> beam.GroupByKey()
        | "Decide" >> beam.FlatMap(star_decisions(verifier, cfg.image_hamming_radius), frequencies)
    )


class ClusterDecisions(beam.PTransform):
    """Fingerprint outputs -> (sample id, (cluster id, cluster size, drop reason or None)) for every
    sample in a cluster of two or more, or already published; a sample absent is a cluster alone.
    Only node keys, band keys, signatures and pHashes cross the shuffles, and payloads (signature,
    shingle set) only for candidates after the first join."""

    def __init__(self, config: DedupConfig) -> None:
        super().__init__()
        self.config = config

    def expand(self, fingerprinted: dict[str, beam.PCollection]):
        cfg = self.config
        nodes = fingerprinted[NODES]
        frequencies = document_frequencies(fingerprinted[SHINGLES], cfg.df_sketch_bits)
        verifier = TextVerifier(cfg, count)
        edges = []
        if cfg.exact:
            edges.append(
                nodes
                | "ByExactHash" >> beam.Map(lambda n: (f"{n[1]}:{n[2]}", n[0]))
                | "GroupExact" >> beam.GroupByKey()
                | "ExactEdges" >> beam.FlatMap(_star_to_min)
            )
        if cfg.near:
            text_nodes = nodes | "TextNodes" >> beam.Filter(lambda n: n[1] != Modality.IMAGE)
            image_nodes = nodes | "ImageNodes" >> beam.Filter(lambda n: n[1] == Modality.IMAGE)
            signatures = text_nodes | "Signatures" >> beam.Map(lambda n: (n[0], n[4]))
            pairs = (
                text_nodes
                | "TextBands" >> beam.FlatMap(lambda n: ((band, n[0]) for band in n[3]))
                | "GroupTextBands" >> beam.GroupByKey()
                | "Candidates" >> beam.FlatMap(_candidates)
                | "DistinctCandidates" >> beam.Distinct()
            )
            verified, candidate_payloads = _verified_edges(pairs, signatures, verifier, frequencies)
            edges.append(verified)
            radius = cfg.image_hamming_radius
            edges.append(
                image_nodes
                | "ImageBands" >> beam.FlatMap(lambda n: ((band, (n[0], n[4])) for band in n[3]))
                | "GroupImageBands" >> beam.GroupByKey()
                | "ImageEdges" >> beam.FlatMap(lambda group: lsh.image_edges(list(group[1]), radius))
            )
            # A text node in no candidate pair is in no component (its exact twins share its bands,
            # so they are candidates): only candidates, images and text nodes without bands need
            # their payloads for the final decisions.
            unbanded = (
                nodes
                | "ImagesOrNoBands" >> beam.Filter(lambda n: n[1] == Modality.IMAGE or not n[3])
                | "OwnPayloads" >> beam.Map(_payload)
            )
            payloads = (unbanded, candidate_payloads) | "Payloads" >> beam.Flatten()
        else:
            payloads = nodes | "Payloads" >> beam.Map(_payload)
        decisions = _component_decisions(edges, payloads, verifier, frequencies, cfg, nodes.pipeline)
        return (decisions, fingerprinted[KNOWN]) | "AllDecisions" >> beam.Flatten()


def assign_clusters(
    samples: Iterable[dict[str, Any]], config: DedupConfig, known_exact_hashes: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Run the transform in process over in-memory samples; one assignment per sample, input order."""
    samples = list(samples)
    order = {sample["id"]: index for index, sample in enumerate(samples)}
    with tempfile.TemporaryDirectory(prefix="medcurate-dedup-") as tmp:
        with beam.Pipeline(runner="FnApiRunner") as pipeline:
            outputs = (
                pipeline
                | "Samples" >> beam.Create(samples, reshuffle=False)
                | "Dedup" >> DeduplicateSamples(config, known_exact_hashes)
            )
            (
                outputs[ASSIGNMENTS]
                | "Json" >> beam.Map(json.dumps)
                | "Write" >> beam.io.WriteToText(str(Path(tmp) / "assignments"), file_name_suffix=".jsonl")
            )
        rows = [json.loads(line) for path in Path(tmp).glob("assignments*") for line in path.open()]
    return sorted(rows, key=lambda row: order[row["id"]])
