"""Boilerplate awareness: templated texts must also agree on their rare content.

Templated pages (the same paragraphs about hundreds of diseases, only the name changing) are
lexical near-duplicates, which MinHash alone cannot tell from a republished leaflet. Document
frequencies of shingles, counted over the whole corpus into a count-min sketch (one
CombineGlobally, read back as a side input), say which shingles are boilerplate.

No extra per-document data crosses a shuffle: a signature value is `a*h + b mod 2**32` with `a`
odd, a bijection, so it names the (pre-mixed) shingle hash `h` that reached it. For two
documents, each permutation samples one shingle of their union uniformly; among the permutations
whose sampled shingle is rare, the share where the signatures agree estimates the Jaccard of
their rare shingle sets. Pairs with too little rare content for that to mean anything fall back
on plain estimated Jaccard.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
from datasketch import MinHash

from medcurate.dedup.config import DedupConfig
from medcurate.dedup.minhash import EMPTY, SCHEME
from medcurate.pipelines.stage import count

# One odd multiplier per count-min row: rows index by different bits of the (already mixed) hash.
_ROW_MULTIPLIERS = np.array([0x9E3779B1, 0x85EBCA77], dtype=np.uint32)


@dataclass(frozen=True)
class DocumentFrequencies:
    """Count-min sketch of how many documents hold each shingle hash (an upper bound per hash)."""

    docs: int = 0
    table: np.ndarray | None = None  # rows x 2**bits, uint32

    def of(self, hashes: np.ndarray) -> np.ndarray:
        if self.table is None:
            return np.zeros(hashes.shape, dtype=np.uint32)
        shift = 32 - int(np.log2(self.table.shape[1]))
        return np.min(
            [
                row[(hashes * mult) >> np.uint32(shift)]
                for row, mult in zip(self.table, _ROW_MULTIPLIERS, strict=True)
            ],
            axis=0,
        )


class DocumentFrequency(beam.CombineFn):
    """(documents, their distinct shingle hashes concatenated) per batch -> DocumentFrequencies."""

    def __init__(self, bits: int) -> None:
        self.bits = bits

    def create_accumulator(self) -> DocumentFrequencies:
        return DocumentFrequencies()

    def add_input(self, acc: DocumentFrequencies, batch: tuple[int, np.ndarray]) -> DocumentFrequencies:
        docs, hashes = batch
        shift = np.uint32(32 - self.bits)
        table = np.stack(
            [np.bincount((hashes * mult) >> shift, minlength=1 << self.bits) for mult in _ROW_MULTIPLIERS]
        ).astype(np.uint32)
        return self.merge_accumulators([acc, DocumentFrequencies(docs, table)])

    def merge_accumulators(self, accumulators) -> DocumentFrequencies:
        docs, table = 0, None
        for acc in accumulators:
            docs += acc.docs
            if acc.table is not None:
                table = acc.table.copy() if table is None else np.add(table, acc.table, out=table)
        return DocumentFrequencies(docs, table)

    def extract_output(self, acc: DocumentFrequencies) -> DocumentFrequencies:
        return acc


class TextVerifier:
    """Whether text signatures are near-duplicates: estimated Jaccard, and rare content agreeing."""

    def __init__(self, config: DedupConfig) -> None:
        self.config = config
        a, b = MinHash(num_perm=config.num_perm, seed=config.seed, scheme=SCHEME).permutations
        self._a_inverse = np.array([pow(int(x), -1, 1 << 32) for x in a], dtype=np.uint32)
        self._b = b.astype(np.uint32)

    def rare(self, frequencies: DocumentFrequencies, signatures: np.ndarray) -> np.ndarray:
        """Per signature value: is the shingle that reached it rare in the corpus?"""
        cfg = self.config
        cutoff = max(cfg.boilerplate_min_docs, cfg.boilerplate_share * frequencies.docs)
        hashes = (signatures - self._b) * self._a_inverse
        return (frequencies.of(hashes) < cutoff) & (signatures != EMPTY)

    def close(self, frequencies: DocumentFrequencies, centre: np.ndarray, others: np.ndarray) -> np.ndarray:
        """Boolean per row of `others` (signatures, one per row): a near-duplicate of `centre`?"""
        cfg = self.config
        equal = others == centre
        similar = equal.sum(axis=1) >= cfg.threshold * centre.shape[0]
        if not cfg.boilerplate or frequencies.table is None or not similar.any():
            return similar
        # The union's sampled shingle is the one with the smaller value (equal values: the same one).
        sampled_rare = np.where(
            others < centre, self.rare(frequencies, others), self.rare(frequencies, centre)
        )
        rare = sampled_rare.sum(axis=1)
        agree = (equal & sampled_rare).sum(axis=1)
        checked = rare >= cfg.rare_min_share * centre.shape[0]
        verdict = similar & (~checked | (agree >= cfg.rare_threshold * rare))
        count("dedup/boilerplate_rejected", int((similar & ~verdict).sum()))
        return verdict
