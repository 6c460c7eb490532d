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
on the plain rule.

Also here: `TextVerifier`, the one verification rule both the in-process path and the Beam
transform apply (exact Jaccard or containment of shingle sets, or the MinHash estimate, then the
numbers and notice-kind rules), so the two paths give the same clusters. Pure numpy: no Beam import.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from medcurate.dedup.config import DedupConfig
from medcurate.dedup.minhash import EMPTY, ShingleSets, intersections, permutations
from medcurate.dedup.normalize import normalize_exact

_DIGITS = re.compile(r"[0-9]+")
# One odd multiplier per count-min row: rows index by different bits of the (already mixed) hash.
_ROW_MULTIPLIERS = np.array([0x9E3779B1, 0x85EBCA77], dtype=np.uint32)
_HEAD = 2  # payload header: shingle count, notice kind


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


class DocumentFrequency:
    """(documents, their distinct shingle hashes concatenated) per batch -> DocumentFrequencies.

    Written as a Beam CombineFn's four methods; the Beam transform mixes in `beam.CombineFn`.
    """

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


def pack_payload(signature: np.ndarray, shingles: np.ndarray, numbers: np.ndarray, kind: int = 0) -> bytes:
    """What a text node carries through the Beam shuffles: its signature, shingle set, numbers and
    notice kind."""
    head = np.array([len(shingles), kind], dtype=np.uint32)
    return b"".join(a.astype(np.uint32).tobytes() for a in (head, signature, shingles, numbers))


def unpack_payloads(
    payloads: Sequence[bytes], num_perm: int
) -> tuple[np.ndarray, ShingleSets, ShingleSets, np.ndarray]:
    """Signatures (rows), shingle sets, number sets and notice kinds of the payloads, in order."""
    arrays = [np.frombuffer(payload, dtype=np.uint32) for payload in payloads]
    body = _HEAD + num_perm
    cuts = [(body, body + int(a[0])) for a in arrays]
    return (
        np.stack([a[_HEAD:body] for a in arrays]),
        ShingleSets.pack([a[lo:hi] for a, (lo, hi) in zip(arrays, cuts, strict=True)]),
        ShingleSets.pack([a[hi:] for a, (_, hi) in zip(arrays, cuts, strict=True)]),
        np.array([a[1] for a in arrays], dtype=np.uint32),
    )


# In a number set, a year (four digits, 1800-2099) is YEAR_TAG | year, any other digit run its
# CRC-32 with the top bit cleared: years sort last and can be compared by value.
YEAR_TAG = 0x80000000
_YEARS = range(1800, 2100)


def _number_value(run: str) -> int:
    if len(run) == 4 and int(run) in _YEARS:
        return YEAR_TAG | int(run)
    return zlib.crc32(run.encode()) & (YEAR_TAG - 1)


def number_set(text: str) -> np.ndarray:
    """Sorted distinct values of the digit runs of the text's exact form ("12-14 May" -> 12, 14)."""
    runs = set(_DIGITS.findall(normalize_exact(text)))
    return np.unique(np.array([_number_value(run) for run in runs], dtype=np.uint32))


def _near_years(numbers: ShingleSets, centre: int, other: int, slack: int) -> int:
    """Years of `other` that are not the centre's but within `slack` of one of them (matched once),
    when the two also share another number (a volume, a page): a conference paper and the
    journal article of the next year share only the title and a near year."""
    mine = numbers.of(centre)
    theirs = numbers.of(other)
    if not np.intersect1d(mine[mine < YEAR_TAG], theirs[theirs < YEAR_TAG]).size:
        return 0
    mine = set((mine[mine >= YEAR_TAG] - YEAR_TAG).tolist())
    theirs = set((theirs[theirs >= YEAR_TAG] - YEAR_TAG).tolist())
    free = sorted(mine - theirs)
    found = 0
    for year in sorted(theirs - mine):
        near = next((y for y in free if abs(y - year) <= slack), None)
        if near is not None:
            free.remove(near)
            found += 1
    return found


class TextVerifier:
    """Whether two texts are near-duplicates: their shingle sets (or signatures) close enough, and,
    with boilerplate awareness, their rare content agreeing."""

    def __init__(self, config: DedupConfig, count: Callable[[str, int], None] | None = None) -> None:
        self.config = config
        self.count = count
        a, b = permutations(config.num_perm, config.seed)
        self._a_inverse = np.array([pow(int(x), -1, 1 << 32) for x in a], dtype=np.uint32)
        self._b = b

    @property
    def needs_shingles(self) -> bool:
        return self.config.verify != "estimate"

    def rare(self, frequencies: DocumentFrequencies, signatures: np.ndarray) -> np.ndarray:
        """Per signature value: is the shingle that reached it rare in the corpus?"""
        cfg = self.config
        cutoff = max(cfg.boilerplate_min_docs, cfg.boilerplate_share * frequencies.docs)
        hashes = (signatures - self._b) * self._a_inverse
        return (frequencies.of(hashes) < cutoff) & (signatures != EMPTY)

    def similar(
        self, signatures: np.ndarray, sets: ShingleSets | None, centre: int, others: np.ndarray
    ) -> np.ndarray:
        """The plain rule: exact Jaccard (or containment) of shingle sets, or estimated Jaccard."""
        cfg = self.config
        if cfg.verify == "estimate":
            agree = (signatures[others] == signatures[centre]).sum(axis=1)
            return agree >= cfg.threshold * signatures.shape[1]
        shared = intersections(
            sets.values, sets.starts, sets.counts, np.full(len(others), centre, dtype=np.int64), others
        )
        mine, theirs = sets.counts[centre], sets.counts[others]
        base = mine + theirs - shared if cfg.verify == "jaccard" else np.minimum(mine, theirs)
        return (base > 0) & (shared >= cfg.threshold * base)

    def numbers_agree(self, numbers: ShingleSets, centre: int, others: np.ndarray) -> np.ndarray:
        """Texts that both hold numbers must share `numbers_agree` of the smaller number set (and
        miss at most `numbers_missing` of it): a record with another year, volume, page range or
        dose is another record. Years within `numbers_year_slack` of each other count as shared."""
        shared = intersections(
            numbers.values,
            numbers.starts,
            numbers.counts,
            np.full(len(others), centre, dtype=np.int64),
            others,
        )
        smaller = np.minimum(numbers.counts[centre], numbers.counts[others])
        slack = self.config.numbers_year_slack
        if slack:
            for index in np.flatnonzero(shared < smaller):
                shared[index] += _near_years(numbers, centre, int(others[index]), slack)
        agree = shared >= (self.config.numbers_agree or 0) * smaller
        if self.config.numbers_missing is not None:
            agree &= smaller - shared <= self.config.numbers_missing
        return (smaller == 0) | agree

    def close(
        self,
        frequencies: DocumentFrequencies,
        signatures: np.ndarray,
        sets: ShingleSets | None,
        centre: int,
        others: np.ndarray,
        numbers: ShingleSets | None = None,
        kinds: np.ndarray | None = None,
    ) -> np.ndarray:
        """Boolean per index in `others`: a near-duplicate of text `centre`?

        `kinds`: notice kind per text (`dedup.notices`); texts of different kinds never are.
        """
        cfg = self.config
        others = np.asarray(others, dtype=np.int64)
        similar = self.similar(signatures, sets, centre, others)
        if kinds is not None and cfg.notices:
            similar &= kinds[others] == kinds[centre]
        if cfg.compares_numbers and numbers is not None and similar.any():
            similar &= self.numbers_agree(numbers, centre, others)
        if not cfg.boilerplate or frequencies.table is None or not similar.any():
            return similar
        mine, theirs = signatures[centre], signatures[others]
        equal = theirs == mine
        # The union's sampled shingle is the one with the smaller value (equal values: the same one).
        sampled_rare = np.where(theirs < mine, self.rare(frequencies, theirs), self.rare(frequencies, mine))
        rare = sampled_rare.sum(axis=1)
        agree = (equal & sampled_rare).sum(axis=1)
        checked = rare >= cfg.rare_min_share * signatures.shape[1]
        verdict = similar & (~checked | (agree >= cfg.rare_threshold * rare))
        if self.count is not None:
            self.count("dedup/boilerplate_rejected", int((similar & ~verdict).sum()))
        return verdict
